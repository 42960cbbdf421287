#!/usr/bin/env python
"""Convert a consistency-model UNet between the released ``.pt`` and diffusers.

The direction follows SRC: a ``.pt`` file (a released checkpoint, or one saved
by training: pick its EMA with ``--ema``) or URL becomes a
``ConsistencyModelPipeline`` folder (``unet/`` = ``UNet2DModel``,
``scheduler/`` = ``CMStochasticIterativeScheduler``, ``model_index.json``);
a diffusers folder becomes a raw ``.pt`` state dict that loads into
``ConsistencyUNetModel`` (and the original code) with ``strict=True``.

After converting, both UNets (ours with the raw weights, diffusers' with the
converted ones, both as written in ``--dtype``, run in float32) denoise the
same seeded inputs at two noise levels (with class labels if conditional);
the conversion fails, leaving nothing behind, if their outputs differ by more
than ``--tolerance`` (scaled by the output magnitude when above 1).

Example:
    python tools/convert_checkpoint.py \\
        configs/consistency_models/consistency_models_cd-lpips_imagenet1k-64x64.py \\
        cd_imagenet64_lpips.pt cd_imagenet64_lpips_diffusers
    python tools/convert_checkpoint.py CONFIG cd_imagenet64_lpips_diffusers back.pt
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
from typing import List, Optional

DTYPES = ('fp32', 'fp16')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Convert a consistency-model UNet between the released raw .pt format '
        'and a diffusers ConsistencyModelPipeline folder (direction from SRC).')
    p.add_argument('config', help='config of the model, e.g. configs/consistency_models/'
                   'consistency_models_cd-lpips_imagenet1k-64x64.py')
    p.add_argument('src', help='.pt file or http(s) URL (-> diffusers folder), or a '
                   'diffusers folder (-> .pt file)')
    p.add_argument('dst', help='output: a folder for diffusers, a .pt file for raw')
    p.add_argument('--ema', type=float, help='for checkpoints saved by training: convert '
                   'the EMA weights at this rate (e.g. 0.9999) instead of the online ones')
    p.add_argument('--dtype', default='fp32', choices=DTYPES,
                   help='dtype of the written weights (default %(default)s)')
    p.add_argument('--no-check', action='store_true',
                   help='skip running both UNets to compare their outputs')
    p.add_argument('--tolerance', type=float, default=1e-4,
                   help='largest accepted max abs output difference, times the output '
                   'magnitude when that exceeds 1 (default %(default)s)')
    p.add_argument('--device', help='device of the check: cpu | cuda | cuda:N (default: '
                   'cuda if available, else cpu)')
    p.add_argument('--force', action='store_true', help='replace an existing DST')
    return p.parse_args(argv)


def load_config(path: str):
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path).model
    if 'unet' not in cfg:
        raise ValueError(f'{path} has no model.unet: not a consistency-model config')
    unet_cfg = cfg.unet.to_dict() if hasattr(cfg.unet, 'to_dict') else dict(cfg.unet)
    denoiser = dict(cfg.get('denoiser') or {})
    denoiser['distillation'] = 'consistency' in cfg.get('training_mode',
                                                        'consistency_distillation')
    return dict(unet=unet_cfg, denoiser=denoiser, steps=int(cfg.get('steps', 40)),
                clip_denoised=bool(cfg.get('clip_denoised', True)),
                training_mode=cfg.get('training_mode', 'consistency_distillation'))


def check_dst(dst: str, to_diffusers: bool, force: bool) -> None:
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
    import torch

    from mmagic_cm.convert import _clean_cfg
    from mmagic_cm.models.unet import ConsistencyUNetModel
    with torch.device('meta'):
        unet = ConsistencyUNetModel(**_clean_cfg(unet_cfg))
    unet.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return unet.eval()


def run_check(args, unet_cfg: dict, ours, theirs, denoiser: dict) -> dict:
    """Compare the UNets' outputs; raises ValueError above the tolerance."""
    import torch

    from mmagic_cm.convert import output_difference
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if torch.device(device).type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; use --device cpu')
    sigmas = (float(denoiser.get('sigma_max', 80.0)), 0.5)
    diff, scale = output_difference(ours.to(device), theirs.to(device), unet_cfg,
                                    sigmas=sigmas, device=device)
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
    import torch

    from mmagic_cm.checkpoint import check_unet_state_dict, load_unet_state_dict
    from mmagic_cm.convert import (
        _meta_unet,
        diffusers_scheduler_config,
        diffusers_unet_config,
        load_diffusers_unet,
        save_diffusers_folder,
    )
    if conf['training_mode'] == 'edm':
        raise ValueError('training_mode=\'edm\' (an EDM teacher): diffusers\' '
                         'CMStochasticIterativeScheduler only applies consistency-model '
                         'scalings; only consistency models (CD/CT) convert')
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
        for folder, _, files in os.walk(tmp):  # mkdtemp/safetensors make 0700/0600
            os.chmod(folder, 0o777 & ~_umask())
            for name in files:
                os.chmod(osp.join(folder, name), 0o666 & ~_umask())
        _replace(tmp, args.dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dict(check=check, params=sum(v.numel() for v in state.values()))


def to_raw(args, conf: dict) -> dict:
    import torch

    from mmagic_cm.checkpoint import check_unet_state_dict, read_checkpoint
    from mmagic_cm.convert import (
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
    parent = osp.dirname(osp.abspath(args.dst))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, suffix='.tmp',
                               prefix=f'.{osp.basename(args.dst)}.')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(out, f)
        check = None
        if not args.no_check:
            ours = our_unet(conf['unet'], read_checkpoint(tmp))
            theirs = build_diffusers_unet({k: v.to(dtype) for k, v in state.items()},
                                          folder_cfg, dtype=torch.float32)
            check = run_check(args, conf['unet'], ours, theirs, conf['denoiser'])
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        _replace(tmp, args.dst)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    return dict(check=check, params=sum(v.numel() for v in out.values()), warnings=warnings)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace(tmp: str, dst: str) -> None:
    """Move ``tmp`` to ``dst``; an existing ``dst`` goes only once ``tmp`` is there."""
    if not osp.lexists(dst) or not (osp.isdir(tmp) or osp.isdir(dst)) or osp.islink(dst):
        os.replace(tmp, dst)  # atomic
        return
    fd, old = tempfile.mkstemp(dir=osp.dirname(osp.abspath(dst)),
                               prefix=f'.{osp.basename(dst)}.old')
    os.close(fd)
    os.unlink(old)
    os.replace(dst, old)
    try:
        os.replace(tmp, dst)
    except BaseException:
        os.replace(old, dst)
        raise
    if osp.isdir(old):
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.unlink(old)


def run(args: argparse.Namespace) -> dict:
    from mmagic_cm.checkpoint import is_url
    t0 = time.perf_counter()
    conf = load_config(args.config)
    if not is_url(args.src) and not osp.exists(args.src):
        raise FileNotFoundError(f'SRC not found: {args.src}')
    direction = 'raw' if osp.isdir(args.src) else 'diffusers'
    check_dst(args.dst, direction == 'diffusers', args.force)
    if osp.abspath(args.src) == osp.abspath(args.dst):
        raise ValueError('SRC and DST are the same path')
    result = (to_diffusers if direction == 'diffusers' else to_raw)(args, conf)
    result.update(direction=direction, seconds=time.perf_counter() - t0)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmengine.config.utils import ConfigParsingError

    import mmagic_cm  # noqa: F401  (registers the modules)
    from mmagic_cm.checkpoint import CheckpointError
    try:
        result = run(args)
    except (ValueError, CheckpointError, OSError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    for line in result.get('warnings', ()):
        print(f'warning: {line}', file=sys.stderr)
    what = 'diffusers folder' if result['direction'] == 'diffusers' else 'raw UNet state dict'
    print(f'wrote {what} {args.dst} ({result["params"] / 1e6:.2f}M parameters, {args.dtype}) '
          f'from {args.src} in {result["seconds"]:.1f}s')
    check = result['check']
    if check is None:
        print('check skipped (--no-check)')
    else:
        print(f'check: ConsistencyUNetModel vs diffusers UNet2DModel at sigma '
              f'{", ".join(f"{s:g}" for s in check["sigmas"])}: max abs difference '
              f'{check["diff"]:.3g} (outputs up to {check["scale"]:.3g}, tolerance '
              f'{check["limit"]:.3g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
