"""Checkpoint conversion end to end (``tools/convert_checkpoint.py``).

A released raw ``.pt`` (or a training checkpoint) becomes a diffusers
``ConsistencyModelPipeline`` folder and back; before anything is written,
the converted UNet's outputs are checked against ours on the same inputs,
and outputs are written atomically (an existing destination is replaced
only with ``force``, and only by a complete, checked result).
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
import tempfile
import time

import torch

from .fileio import atomic_write, make_readable, replace_path
from .models.weights import check_unet_state_dict


def conversion_config(path: str) -> dict:
    """What conversion needs of a config: UNet, precond, steps, clip, training mode."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path).model
    if 'unet' not in cfg:
        raise ValueError(f'{path} has no model.unet: not a consistency-model config')
    unet_cfg = cfg.unet.to_dict() if hasattr(cfg.unet, 'to_dict') else dict(cfg.unet)
    from .models.precond import merge_precond_configs, uses_boundary_condition
    denoiser = dict(merge_precond_configs(cfg.get('precond'), cfg.get('denoiser')) or {})
    denoiser.pop('distillation', None)
    denoiser['boundary_condition'] = uses_boundary_condition(
        cfg.get('training_mode', 'consistency_distillation'))
    return dict(unet=unet_cfg, denoiser=denoiser, steps=int(cfg.get('steps', 40)),
                clip_denoised=bool(cfg.get('clip_denoised', True)),
                training_mode=cfg.get('training_mode', 'consistency_distillation'))


def check_dst(dst: str, to_diffusers: bool, force: bool) -> None:
    """Refuse to replace ``dst`` without ``force``, and what is not ours even with it."""
    if not osp.lexists(dst):
        return
    if not force:
        raise FileExistsError(f'{dst} exists; pass --force to replace it')
    if to_diffusers and osp.isdir(dst) and os.listdir(dst) and \
            not osp.isfile(osp.join(dst, 'model_index.json')):
        raise FileExistsError(f'{dst} is a folder but not a diffusers pipeline (no '
                              'model_index.json); refusing to replace it, even with --force')
    if not to_diffusers and osp.isdir(dst):
        raise FileExistsError(f'{dst} is a folder; the raw output is a .pt file path')


def our_unet(unet_cfg: dict, state):
    """ConsistencyUNetModel holding ``state`` (float32 copies), built without init."""
    from .convert import _clean_cfg
    from .models.unet import ConsistencyUNetModel
    with torch.device('meta'):
        unet = ConsistencyUNetModel(**_clean_cfg(unet_cfg))
    unet.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return unet.eval()


def run_check(args, unet_cfg: dict, ours, theirs, denoiser: dict) -> dict:
    """Compare the UNets' outputs; raises ValueError above the tolerance."""
    from .convert import output_difference
    from .models.precond import build_precond
    from .models.settings import default_device
    device = default_device(args.device)
    sigmas = (float(denoiser.get('sigma_max', 80.0)), 0.5)
    diff, scale = output_difference(ours.to(device), theirs.to(device), unet_cfg,
                                    sigmas=sigmas, device=device,
                                    precond=build_precond(dict(denoiser)))
    limit = args.tolerance * max(1.0, scale)
    result = dict(diff=diff, scale=scale, limit=limit, sigmas=sigmas)
    if not diff <= limit:  # also catches NaN
        raise ValueError(
            f'check failed: the converted UNet differs from the source by up to {diff:.3g} '
            f'(outputs up to {scale:.3g}; tolerance {limit:.3g}) at sigma '
            f'{", ".join(f"{s:g}" for s in sigmas)}; nothing was written. This is a conversion '
            'bug for this architecture: please report it with CONFIG')
    return result


def to_diffusers(args, conf: dict) -> dict:
    from .checkpoint import load_unet_state_dict
    from .convert import (
        _meta_unet,
        diffusers_scheduler_config,
        diffusers_unet_config,
        load_diffusers_unet,
        save_diffusers_folder,
    )
    if not conf['denoiser']['boundary_condition']:
        raise ValueError(f"training_mode={conf['training_mode']!r} (plain EDM scalings: an EDM "
                         "teacher or an sCT/sCD model): diffusers' "
                         'CMStochasticIterativeScheduler only applies consistency-model '
                         'scalings; only CD, CT and ECT models convert')
    diffusers_unet_config(conf['unet'])  # fail early on what diffusers cannot express
    diffusers_scheduler_config(conf['denoiser'], num_train_timesteps=conf['steps'])
    dtype = {'fp32': torch.float32, 'fp16': torch.float16}[args.dtype]
    state = load_unet_state_dict(args.src, local_hint='SRC (a local .pt file)', ema=args.ema)
    check_unet_state_dict(_meta_unet(conf['unet']), state, args.src)
    parent = osp.dirname(osp.abspath(args.dst))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f'.{osp.basename(osp.abspath(args.dst))}.tmp')
    try:
        save_diffusers_folder(tmp, state, conf['unet'], conf['denoiser'], dtype=dtype,
                              num_train_timesteps=conf['steps'],
                              clip_denoised=conf['clip_denoised'])
        check = None
        if not args.no_check:
            ours = our_unet(conf['unet'], {k: v.to(dtype) for k, v in state.items()})
            theirs = load_diffusers_unet(tmp, torch.float32)
            check = run_check(args, conf['unet'], ours, theirs, conf['denoiser'])
        make_readable(tmp)
        replace_path(tmp, args.dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dict(check=check, params=sum(v.numel() for v in state.values()))


def to_raw(args, conf: dict) -> dict:
    from .convert import (
        _meta_unet,
        build_diffusers_unet,
        diffusers_state_dict_to_unet,
        diffusers_unet_config,
        read_diffusers_unet,
        read_scheduler_config,
        unet_config_from_diffusers,
    )
    if args.ema is not None:
        raise ValueError('--ema applies to checkpoints saved by training (.pt SRC); a '
                         'diffusers folder holds one set of weights')
    dtype = {'fp32': torch.float32, 'fp16': torch.float16}[args.dtype]
    config, dstate = read_diffusers_unet(args.src)
    folder_cfg = unet_config_from_diffusers(config)
    state = diffusers_state_dict_to_unet(dstate, folder_cfg)
    check_unet_state_dict(_meta_unet(conf['unet']), state, args.src)
    ours_d, theirs_d = diffusers_unet_config(conf['unet']), diffusers_unet_config(folder_cfg)
    differ = [f'{k}={theirs_d[k]!r} vs {ours_d[k]!r}' for k in ours_d
              if k != 'dropout' and ours_d[k] != theirs_d[k]]
    if differ:
        raise ValueError(f'{args.src}\'s UNet differs from CONFIG\'s: '
                         f'{"; ".join(differ)} (folder vs CONFIG)')
    warnings = []
    sched = read_scheduler_config(args.src)
    if sched:
        for key, default in (('sigma_min', 0.002), ('sigma_max', 80.0), ('sigma_data', 0.5),
                             ('rho', 7.0)):
            ours_v = float(conf['denoiser'].get(key, default))
            if key in sched and abs(float(sched[key]) - ours_v) > 1e-9 * max(1, ours_v):
                warnings.append(f'the folder\'s scheduler has {key}={sched[key]}, CONFIG\'s '
                                f'denoiser {ours_v}; sampling uses CONFIG\'s')
    out = {k: v.to(dtype) for k, v in state.items()}
    check = None
    if not args.no_check:  # the very tensors that are written
        ours = our_unet(conf['unet'], out)
        theirs = build_diffusers_unet(out, folder_cfg, dtype=torch.float32)
        check = run_check(args, conf['unet'], ours, theirs, conf['denoiser'])
    atomic_write(args.dst, lambda f: torch.save(out, f))
    return dict(check=check, params=sum(v.numel() for v in out.values()), warnings=warnings)


def convert_checkpoint(args) -> dict:
    """Convert ``args.src`` (raw ``.pt`` or diffusers folder) to the other
    format at ``args.dst`` for ``args.config``, checked, written atomically.

    ``args``: the options of ``tools/convert_checkpoint.py`` (config, src,
    dst, dtype, ema, force, no_check, tolerance, device).
    """
    from .checkpoint import is_url
    t0 = time.perf_counter()
    conf = conversion_config(args.config)
    if not is_url(args.src) and not osp.exists(args.src):
        raise FileNotFoundError(f'SRC not found: {args.src}')
    direction = 'raw' if osp.isdir(args.src) else 'diffusers'
    check_dst(args.dst, direction == 'diffusers', args.force)
    if osp.abspath(args.src) == osp.abspath(args.dst):
        raise ValueError('SRC and DST are the same path')
    result = (to_diffusers if direction == 'diffusers' else to_raw)(args, conf)
    result.update(direction=direction, seconds=time.perf_counter() - t0)
    return result


def export_unet_weights(checkpoint: str, out: str, ema=None, fp16: bool = False,
                        force: bool = False) -> dict:
    """A training checkpoint's UNet (the EMA copy at ``ema``, else the online
    weights) as a bare state-dict file, the released format (``tools/export_weights.py``).

    Refused before anything is written: ``out`` being the input, a folder, in
    a place that cannot be written, or an existing file without ``force``;
    weights with NaN or infinite values. Written atomically.

    Returns ``dict(tensors, mib)``.
    """
    from .checkpoint import extract_unet_state_dict, read_checkpoint
    from .fileio import check_outputs
    from .models.weights import check_finite
    check_outputs({'OUT': out}, {'CHECKPOINT': checkpoint})
    if osp.exists(out) and not force:
        raise ValueError(f'{out} exists; give another name, or --force to replace it')
    state = extract_unet_state_dict(read_checkpoint(checkpoint), ema=ema)
    check_finite(state, checkpoint)
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    state = {k: v.contiguous().clone() for k, v in state.items()}
    atomic_write(out, lambda f: torch.save(state, f))
    return dict(tensors=len(state), mib=osp.getsize(out) / 2**20)
