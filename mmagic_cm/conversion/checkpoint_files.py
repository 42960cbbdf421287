"""Whole checkpoint files converted, checked and written atomically.

:func:`convert_checkpoint` (``tools/convert_checkpoint.py``): a released raw
``.pt`` (or a training checkpoint) becomes a diffusers
``ConsistencyModelPipeline`` folder and back; before anything is written,
the converted UNet's outputs are checked against ours on the same inputs,
and outputs are written atomically (an existing destination is replaced
only with ``force``, and only by a complete, checked result). The weights'
mapping itself is :mod:`.diffusers_unet`.

:func:`export_unet_weights` (``tools/export_weights.py``): a training
checkpoint's UNet as a file of the released format, with its provenance.
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
import tempfile
import time
from typing import Optional

import torch

from ..files.atomic import atomic_write, make_readable, replace_path
from ..files.provenance import attach, checkpoint_provenance
from ..models.weights import check_unet_state_dict


def conversion_config(path: str) -> dict:
    """What conversion needs of a config: UNet, precond, steps, clip, training mode."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path).model
    if 'unet' not in cfg:
        raise ValueError(f'{path} has no model.unet: not a consistency-model config')
    unet_cfg = cfg.unet.to_dict() if hasattr(cfg.unet, 'to_dict') else dict(cfg.unet)
    from ..denoiser.precond import precond_config, uses_boundary_condition
    precond = dict(precond_config(cfg) or {})
    precond['boundary_condition'] = uses_boundary_condition(
        cfg.get('training_mode', 'consistency_distillation'))
    return dict(unet=unet_cfg, precond=precond, steps=int(cfg.get('steps', 40)),
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
    from ..denoiser.unet import ConsistencyUNetModel
    from .diffusers_unet import _clean_cfg
    with torch.device('meta'):
        unet = ConsistencyUNetModel(**_clean_cfg(unet_cfg))
    unet.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return unet.eval()


def run_check(unet_cfg: dict, ours, theirs, precond_cfg: dict, tolerance: float = 1e-4,
              device: Optional[str] = None) -> dict:
    """Compare the UNets' outputs on ``device`` (default: CUDA if available);
    raises ValueError above ``tolerance`` (times the output magnitude past 1)."""
    from ..denoiser.precond import build_precond
    from ..sampling.settings import default_device
    from .diffusers_unet import output_difference
    device = default_device(device)
    sigmas = (float(precond_cfg.get('sigma_max', 80.0)), 0.5)
    diff, scale = output_difference(ours.to(device), theirs.to(device), unet_cfg,
                                    sigmas=sigmas, device=device,
                                    precond=build_precond(dict(precond_cfg)))
    limit = tolerance * max(1.0, scale)
    result = dict(diff=diff, scale=scale, limit=limit, sigmas=sigmas)
    if not diff <= limit:  # also catches NaN
        raise ValueError(
            f'check failed: the converted UNet differs from the source by up to {diff:.3g} '
            f'(outputs up to {scale:.3g}; tolerance {limit:.3g}) at sigma '
            f'{", ".join(f"{s:g}" for s in sigmas)}; nothing was written. This is a conversion '
            'bug for this architecture: please report it with CONFIG')
    return result


def to_diffusers(conf: dict, src: str, dst: str, dtype: str = 'fp32', ema=None,
                 check: bool = True, tolerance: float = 1e-4,
                 device: Optional[str] = None) -> dict:
    """``src`` (raw ``.pt`` or URL) as a diffusers folder ``dst``, checked (see
    :func:`convert_checkpoint`)."""
    from ..files.checkpoint import load_unet_state_dict
    from .diffusers_unet import (
        _meta_unet,
        diffusers_scheduler_config,
        diffusers_unet_config,
        load_diffusers_unet,
        save_diffusers_folder,
    )
    if not conf['precond']['boundary_condition']:
        raise ValueError(f"training_mode={conf['training_mode']!r} (plain EDM scalings: an EDM "
                         "teacher or an sCT/sCD model): diffusers' "
                         'CMStochasticIterativeScheduler only applies consistency-model '
                         'scalings; only CD, CT and ECT models convert')
    diffusers_unet_config(conf['unet'])  # fail early on what diffusers cannot express
    diffusers_scheduler_config(conf['precond'], num_train_timesteps=conf['steps'])
    dtype = {'fp32': torch.float32, 'fp16': torch.float16}[dtype]
    state = load_unet_state_dict(src, local_hint='SRC (a local .pt file)', ema=ema)
    check_unet_state_dict(_meta_unet(conf['unet']), state, src)
    parent = osp.dirname(osp.abspath(dst))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f'.{osp.basename(osp.abspath(dst))}.tmp')
    try:
        save_diffusers_folder(tmp, state, conf['unet'], conf['precond'], dtype=dtype,
                              num_train_timesteps=conf['steps'],
                              clip_denoised=conf['clip_denoised'])
        result = None
        if check:
            ours = our_unet(conf['unet'], {k: v.to(dtype) for k, v in state.items()})
            theirs = load_diffusers_unet(tmp, torch.float32)
            result = run_check(conf['unet'], ours, theirs, conf['precond'], tolerance, device)
        make_readable(tmp)
        replace_path(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dict(check=result, params=sum(v.numel() for v in state.values()))


def to_raw(conf: dict, src: str, dst: str, dtype: str = 'fp32', ema=None, check: bool = True,
           tolerance: float = 1e-4, device: Optional[str] = None) -> dict:
    """A diffusers folder ``src`` as a raw ``.pt`` file ``dst``, checked (see
    :func:`convert_checkpoint`)."""
    from .diffusers_unet import (
        _meta_unet,
        build_diffusers_unet,
        diffusers_state_dict_to_unet,
        diffusers_unet_config,
        read_diffusers_unet,
        read_scheduler_config,
        unet_config_from_diffusers,
    )
    if ema is not None:
        raise ValueError('--ema applies to checkpoints saved by training (.pt SRC); a '
                         'diffusers folder holds one set of weights')
    dtype = {'fp32': torch.float32, 'fp16': torch.float16}[dtype]
    config, dstate = read_diffusers_unet(src)
    folder_cfg = unet_config_from_diffusers(config)
    state = diffusers_state_dict_to_unet(dstate, folder_cfg)
    check_unet_state_dict(_meta_unet(conf['unet']), state, src)
    ours_d, theirs_d = diffusers_unet_config(conf['unet']), diffusers_unet_config(folder_cfg)
    differ = [f'{k}={theirs_d[k]!r} vs {ours_d[k]!r}' for k in ours_d
              if k != 'dropout' and ours_d[k] != theirs_d[k]]
    if differ:
        raise ValueError(f'{src}\'s UNet differs from CONFIG\'s: '
                         f'{"; ".join(differ)} (folder vs CONFIG)')
    warnings = []
    sched = read_scheduler_config(src)
    if sched:
        for key, default in (('sigma_min', 0.002), ('sigma_max', 80.0), ('sigma_data', 0.5),
                             ('rho', 7.0)):
            ours_v = float(conf['precond'].get(key, default))
            if key in sched and abs(float(sched[key]) - ours_v) > 1e-9 * max(1, ours_v):
                warnings.append(f'the folder\'s scheduler has {key}={sched[key]}, CONFIG\'s '
                                f'precond {ours_v}; sampling uses CONFIG\'s')
    out = {k: v.to(dtype) for k, v in state.items()}
    result = None
    if check:  # the very tensors that are written
        ours = our_unet(conf['unet'], out)
        theirs = build_diffusers_unet(out, folder_cfg, dtype=torch.float32)
        result = run_check(conf['unet'], ours, theirs, conf['precond'], tolerance, device)
    atomic_write(dst, lambda f: torch.save(out, f))
    return dict(check=result, params=sum(v.numel() for v in out.values()), warnings=warnings)


def convert_checkpoint(config: str, src: str, dst: str, *, dtype: str = 'fp32', ema=None,
                       force: bool = False, check: bool = True, tolerance: float = 1e-4,
                       device: Optional[str] = None) -> dict:
    """Convert ``src`` (raw ``.pt``, URL or diffusers folder) to the other
    format at ``dst`` for ``config``, checked, written atomically.

    Args:
        config: the model's config file.
        src: a ``.pt`` file or URL (-> a diffusers folder), or a diffusers
            folder (-> a ``.pt`` file).
        dst: the output; replaced only with ``force``.
        dtype: 'fp32' or 'fp16', of the written weights.
        ema: for training checkpoints, the EMA rate whose weights to convert.
        check: run both UNets on the same inputs and refuse to write past
            ``tolerance`` (times the output magnitude when above 1).
        device: of the check (default: CUDA if available, else the CPU).

    Returns:
        ``dict(direction, params, check, seconds[, warnings])``.
    """
    from ..files.checkpoint import is_url
    t0 = time.perf_counter()
    conf = conversion_config(config)
    if not is_url(src) and not osp.exists(src):
        raise FileNotFoundError(f'SRC not found: {src}')
    direction = 'raw' if osp.isdir(src) else 'diffusers'
    check_dst(dst, direction == 'diffusers', force)
    if osp.abspath(src) == osp.abspath(dst):
        raise ValueError('SRC and DST are the same path')
    result = (to_diffusers if direction == 'diffusers' else to_raw)(
        conf, src, dst, dtype=dtype, ema=ema, check=check, tolerance=tolerance, device=device)
    result.update(direction=direction, seconds=time.perf_counter() - t0)
    return result


def export_unet_weights(checkpoint: str, out: str, ema=None, fp16: bool = False,
                        force: bool = False, provenance: Optional[dict] = None) -> dict:
    """A training checkpoint's UNet (the EMA copy at ``ema``, else the online
    weights) as a bare state-dict file, the released format (``tools/export_weights.py``).

    The file carries its provenance (config, iteration, EMA rate, commit:
    :mod:`mmagic_cm.files.provenance`); entries of ``provenance`` override what
    the checkpoint says.

    Refused before anything is written: ``out`` being the input, a folder, in
    a place that cannot be written, or an existing file without ``force``;
    weights with NaN or infinite values. Written atomically.

    Returns ``dict(tensors, mib)``.
    """
    from ..files.atomic import check_outputs
    from ..files.checkpoint import extract_unet_state_dict, read_checkpoint
    from ..models.weights import check_finite
    check_outputs({'OUT': out}, {'CHECKPOINT': checkpoint})
    if osp.exists(out) and not force:
        raise ValueError(f'{out} exists; give another name, or --force to replace it')
    loaded = read_checkpoint(checkpoint)
    state = extract_unet_state_dict(loaded, ema=ema)
    check_finite(state, checkpoint)
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    state = {k: v.contiguous().clone() for k, v in state.items()}
    found = checkpoint_provenance(loaded, ema)
    found.update({k: v for k, v in (provenance or {}).items() if v is not None})
    state = attach(state, found)
    atomic_write(out, lambda f: torch.save(state, f))
    return dict(tensors=len(state), mib=osp.getsize(out) / 2**20)
