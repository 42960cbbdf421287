"""The prepared GPU check (``tools/gpu_check.py``): CUDA parity, throughput, training.

Runs on a bare GPU machine with torch and mmengine (core-only mode,
``MMAGIC_CM_CORE_ONLY=1``: no MMagic needed) plus diffusers for the
baseline, in one call of a few minutes, and writes ``gpu_check.json`` and
``gpu_check.md`` into an output folder. Sections (each timed; a failing
section is recorded and the next one runs):

- ``parity``: ImageNet-64 (seeded random weights in the released raw
  format) one-step and multistep (ts 0,22,39) images on CUDA in fp32
  against the CPU's for the same noise (the criterion: within one level on
  >= 99.9% of values), and the shipped digits CD and CT models likewise;
- ``throughput``: ImageNet-64 one-step at batch 64 and 256 in fp32, bf16
  and fp16: eager NCHW, channels_last, ``torch.compile`` (default and
  reduce-overhead); diffusers' ``UNet2DModel`` on the same weights in the
  same dtype; and the share of the GPU's measured bf16 matmul rate;
- ``lsun``: LSUN-256 one-step at batch 16 in fp16 and bf16;
- ``training``: 20 iterations of the digits CD objective under DDP (an
  NCCL process group of one) with fp16 autocast + loss scaling and with
  bf16 autocast: losses finite, checkpoint reloadable;
- ``deploy`` (not run by default: ``--sections deploy``, a call of its
  own): ImageNet-64 D exported to ONNX (fp32, fp16) and run by ONNX
  Runtime's CUDA and TensorRT providers beside PyTorch (:func:`deploy`;
  needs onnxruntime-gpu, else those rows say what is missing).

``dry_run`` runs every section on the CPU with tiny sizes (what CI runs):
the tiny test architecture, batch 2, no fp16 (CUDA only) and no compile.
"""
from __future__ import annotations

import copy
import json
import math
import os
import os.path as osp
import tempfile
import time
import traceback
from functools import partial
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from .images import to_uint8
from .models.fast import InferenceUNets
from .models.precond import Denoiser, KarrasPrecond
from .models.samplers import sample_multistep, sample_onestep
from .models.sigmas import sampling_sigmas
from .models.weights import build_unet
from .testing import ROOT, seeded_state_dict

CONFIGS = osp.join(ROOT, 'configs', 'consistency_models')
DIGITS_WEIGHTS = osp.join(ROOT, 'mmagic_cm', 'weights', 'digits')
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def unet_config(base: str) -> dict:
    """The UNet dict of ``configs/consistency_models/_base_/<base>``."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(CONFIGS, '_base_', base),
                           import_custom_modules=False).model.unet.to_dict()


TINY_UNET = dict(type='ConsistencyUNetModel', image_size=16, in_channels=3, model_channels=32,
                 num_res_blocks=1, attention_resolutions='8', channel_mult='1,2',
                 num_classes=1000, num_heads=2, num_head_channels=16,
                 use_scale_shift_norm=True, resblock_updown=True, dropout=0.0)


def seeded_unet(cfg: dict, seed: int = 0) -> torch.nn.Module:
    """A UNet holding seeded random weights (the parity fixtures' rule)."""
    unet = build_unet(cfg, meta=True)
    state = seeded_state_dict([(k, v.shape) for k, v in unet.state_dict().items()], seed)
    unet.load_state_dict(state, strict=True, assign=True)
    return unet.eval()


def sync(device) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn: Callable, device, reps: int = 3, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_tflops(device, dtype=torch.bfloat16, n: int = 8192) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, reps=5, warmup=2) / 1e12


# ------------------------------------------------------------------ parity
def sample_images(unet, precond: KarrasPrecond, noise: torch.Tensor, labels, device,
                  ts=None, seed: int = 0) -> np.ndarray:
    """uint8 images of one-step (``ts`` None) or multistep sampling on ``device``;
    all noise is drawn on the CPU, so both devices see the same numbers."""
    unet = unet.to(device)
    den = Denoiser(unet, precond, clip=True)
    cond = {} if labels is None else {'y': labels.to(device)}
    gen = torch.Generator().manual_seed(seed)

    def randn_like(x):
        return torch.randn(x.shape, generator=gen).to(x.device)

    def d(x, s):
        return den(x, s, **cond)

    x = noise.to(device) * precond.sigma_max
    with torch.no_grad():
        if ts is None:
            out = sample_onestep(d, x, sampling_sigmas('onestep', 40, device=device))
        else:
            sigmas = sampling_sigmas('multistep', 40, precond.sigma_min, precond.sigma_max,
                                     precond.rho, ts)
            out = sample_multistep(d, x, sigmas, randn_like, precond.sigma_min,
                                   precond.sigma_max)
    return to_uint8(out.clamp(-1, 1)).cpu().numpy()


def compare(ours: np.ndarray, ref: np.ndarray) -> Dict:
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    return dict(max_levels=int(diff.max()), within_one=float((diff <= 1).mean()),
                equal=float((diff == 0).mean()), passed=bool((diff <= 1).mean() >= 0.999))


def parity(device, dry_run: bool) -> Dict:
    precond = KarrasPrecond(boundary_condition=True)
    cfg = TINY_UNET if dry_run else unet_config('cm_imagenet64.py')
    n = 2 if dry_run else 16
    unet = seeded_unet(cfg)
    size = unet.image_size
    noise = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(n) * 37 % 1000
    out = {}
    for name, ts in (('imagenet64_onestep', None), ('imagenet64_multistep', (0, 22, 39))):
        cpu = sample_images(copy.deepcopy(unet), precond, noise, labels, 'cpu', ts)
        dev = sample_images(copy.deepcopy(unet), precond, noise, labels, device, ts)
        out[name] = compare(dev, cpu)
    from .models.weights import load_unet_from
    digits = unet_config('cm_digits16.py')
    digits['dropout'] = 0.0
    noise = torch.randn(100, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(100) % 10
    for kind in ('cd', 'ct'):
        unet = build_unet(digits, meta=True)
        load_unet_from(unet, osp.join(DIGITS_WEIGHTS, f'{kind}_digits16_ema.pt'))
        cpu = sample_images(copy.deepcopy(unet).eval(), precond, noise, labels, 'cpu')
        dev = sample_images(copy.deepcopy(unet).eval(), precond, noise, labels, device)
        out[f'digits_{kind}_onestep'] = compare(dev, cpu)
    return out


# ------------------------------------------------------------------ throughput
def ours_runner(unet, precond, batch, dtype, channels_last, compile, device, inputs=None):
    """D(x, 80) on ``device`` (``inputs``: (x, sigma, y) to use instead of random ones)."""
    net, autocast = InferenceUNets().get(unet.to(device), DTYPES[dtype], channels_last, compile)
    den = Denoiser(net, precond, clip=True)
    if inputs is None:
        x = torch.randn(batch, 3, unet.image_size, unet.image_size, device=device) * 80.0
        y = None if unet.num_classes is None else torch.arange(batch, device=device) % 1000
        sigma = torch.full((batch, ), 80.0, device=device)
    else:
        x, sigma, y = (None if t is None else t.to(device) for t in inputs)

    @torch.no_grad()
    def run():
        ctx = torch.autocast(torch.device(device).type, dtype=autocast) if autocast \
            else torch.autocast(torch.device(device).type, enabled=False)
        with ctx:
            return den(x, sigma) if y is None else den(x, sigma, y=y)
    return run


def diffusers_runner(state, cfg, precond, batch, dtype, device):
    from .convert import DiffusersNet, build_diffusers_unet
    unet = build_diffusers_unet(state, cfg, torch.float32).to(device)
    torch_dtype = DTYPES[dtype]
    if torch_dtype != torch.float32:
        unet = unet.to(torch_dtype)  # as diffusers' users do: torch_dtype=...
    den = Denoiser(DiffusersNet(unet), precond, clip=True)
    size = cfg['image_size']
    x = torch.randn(batch, 3, size, size, device=device, dtype=torch_dtype) * 80.0
    y = torch.arange(batch, device=device) % 1000 if cfg.get('num_classes') else None
    sigma = torch.full((batch, ), 80.0, device=device, dtype=torch_dtype)

    @torch.no_grad()
    def run():
        return den(x, sigma) if y is None else den(x, sigma, y=y)
    return run


def unet_gflop(unet_cfg: dict) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with torch.device('meta'):
        unet = build_unet(unet_cfg)
        x = torch.zeros(1, 3, unet.image_size, unet.image_size)
        kw = {} if unet.num_classes is None else {'y': torch.zeros(1, dtype=torch.long)}
        counter = FlopCounterMode(display=False)
        with counter:
            unet(x, torch.zeros(1), **kw)
    return counter.get_total_flops() / 1e9


def throughput(device, dry_run: bool, deadline: float, base: str = 'cm_imagenet64.py',
               batches=(64, 256), dtypes=('fp32', 'bf16', 'fp16'),
               variants=None, compare_diffusers: bool = True) -> Dict:
    cfg = TINY_UNET if dry_run else unet_config(base)
    if dry_run:
        batches = (2, )
        dtypes = tuple(d for d in dtypes if d != 'fp16')
    if variants is None:
        variants = [('eager', False, False), ('channels_last', True, False)]
        if not dry_run:
            variants += [('compile', True, True), ('compile reduce-overhead', True,
                                                     'reduce-overhead')]
    unet = seeded_unet(cfg).to(device)
    state = {k: v.detach().cpu() for k, v in unet.state_dict().items()}
    precond = KarrasPrecond(boundary_condition=True)
    gflop = unet_gflop(cfg)
    rows: List[Dict] = []
    for batch in batches:
        for dtype in dtypes:
            impls = [(f'mmagic_cm {name}', partial(ours_runner, copy.deepcopy(unet), precond,
                                                   batch, dtype, cl, cp, device))
                     for name, cl, cp in variants]
            if compare_diffusers:
                impls.append(('diffusers', partial(diffusers_runner, state, cfg, precond, batch,
                                                   dtype, device)))
            for name, make in impls:
                row = dict(impl=name, batch=batch, dtype=dtype)
                if time.perf_counter() > deadline:
                    rows.append(dict(row, skipped='time budget'))
                    continue
                try:
                    run = make()
                    t0 = time.perf_counter()
                    run()
                    sync(device)
                    row['first_call_s'] = time.perf_counter() - t0  # compile time too
                    sec = timed(run, device, reps=3 if not dry_run else 1)
                    row.update(s_per_batch=sec, images_per_s=batch / sec,
                               tflops=gflop * batch / sec / 1e3)
                except Exception as exc:  # a path that fails here is a finding
                    row['error'] = f'{type(exc).__name__}: {str(exc).splitlines()[0][:300]}'
                rows.append(row)
                if torch.device(device).type == 'cuda':
                    torch.cuda.empty_cache()
    return dict(unet_gflop_per_image=gflop, rows=rows)


# ------------------------------------------------------------------ deploy
#: (impl, dtype) rows of the deploy section; 'onnxruntime <provider>' run the exported file
DEPLOY_ROWS = (('mmagic_cm channels_last', 'fp32'), ('mmagic_cm channels_last', 'fp16'),
               ('onnxruntime cuda', 'fp32'), ('onnxruntime cuda', 'fp16'),
               ('onnxruntime tensorrt', 'fp32'), ('onnxruntime tensorrt', 'fp16'))


def deploy(device, dry_run: bool, deadline: float, batch: int = 64) -> Dict:
    """ImageNet-64 D(x, σ_max), one-step sampling's one call, exported to ONNX
    here (dynamic batch, fp32 and fp16) and run by ONNX Runtime's CUDA and
    TensorRT providers (TensorRT in fp16 for the fp16 file) beside PyTorch:
    images/s, first-call seconds (TensorRT's engine build) and the uint8
    images' PSNR against PyTorch fp32. A provider this onnxruntime lacks
    (the plain CPU build has neither) gives a skipped row naming it."""
    from .evaluation.quality import psnr
    from .export import export_denoiser
    from .models.consistency_model import ConsistencyModel
    from .models.exported import ExportedDenoiser, require, require_provider
    dev = torch.device(device)
    cfg = TINY_UNET if dry_run else unet_config('cm_imagenet64.py')
    batch = 2 if dry_run else batch
    model = ConsistencyModel(unet=seeded_unet(cfg), batch_size=batch).eval()
    precond, size = model.precond, cfg['image_size']
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 3, size, size, generator=gen) * precond.sigma_max
    sigma = torch.full((batch, ), float(precond.sigma_max))
    y = torch.arange(batch) * 37 % 1000
    rows: List[Dict] = []
    files: Dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix='mmagic_cm_deploy_') as folder:
        reference = None
        for impl, dtype in DEPLOY_ROWS:
            row = dict(impl=impl, dtype=dtype, batch=batch)
            rows.append(row)
            provider = impl.split()[-1] if impl.startswith('onnxruntime') else None
            if dry_run and provider is not None:
                provider = 'cpu' if provider == 'cuda' else None  # the CPU provider instead
                row['impl'] = 'onnxruntime cpu' if provider else impl
            if (dry_run and impl.startswith('onnxruntime tensorrt')) or \
                    (dev.type == 'cpu' and dtype == 'fp16' and provider is None):
                row['skipped'] = 'needs a GPU'
                continue
            if time.perf_counter() > deadline:
                row['skipped'] = 'time budget'
                continue
            try:
                if provider is None:
                    run = ours_runner(model.unet, precond, batch, dtype, True, False, device,
                                      inputs=(x, sigma, y))
                else:
                    ort = require('onnxruntime', 'the deploy section')
                    require_provider(ort, provider)  # before exporting
                    if dtype not in files:
                        files[dtype] = osp.join(folder, f'imagenet64_{dtype}.onnx')
                        t0 = time.perf_counter()
                        export_denoiser(model.cpu(), files[dtype], 'onnx', dtype,
                                        dynamic_batch=True, log=lambda line: None)
                        row['export_s'] = time.perf_counter() - t0
                    den = ExportedDenoiser(files[dtype], device=dev, provider=provider)
                    xd, sd, yd = x.to(dev), sigma.to(dev), y.to(dev)
                    run = partial(den, xd, sd, yd)
                t0 = time.perf_counter()
                out = run()
                sync(device)
                row['first_call_s'] = time.perf_counter() - t0  # TensorRT builds its engine
                sec = timed(run, device, reps=1 if dry_run else 3)
                row.update(s_per_batch=sec, images_per_s=batch / sec)
                # uint8 levels / 127.5: psnr's peak-to-peak 2 is 255 levels
                images = to_uint8(out.float().clamp(-1, 1)).cpu().float() / 127.5
                if (impl, dtype) == DEPLOY_ROWS[0]:  # PyTorch fp32: the reference
                    reference = (out.float().cpu(), images)
                if reference is not None:
                    row.update(psnr_db=float(psnr(images.reshape(1, -1),
                                                  reference[1].reshape(1, -1))),
                               max_abs_diff=float((out.float().cpu() - reference[0]).abs().max()))
            except Exception as exc:  # a provider that is absent or fails is a finding
                key = 'skipped' if isinstance(exc, ImportError) else 'error'
                row[key] = f'{type(exc).__name__}: {str(exc).splitlines()[0][:400]}'
            if dev.type == 'cuda':
                torch.cuda.empty_cache()
    return dict(rows=rows)


# ------------------------------------------------------------------ training
def training(device, dry_run: bool, iters: int = 20) -> Dict:
    """The digits CD objective under DDP (one process) with autocast."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .datasets.digits import load_digits_arrays
    from .images import from_uint8
    from .training.objectives import ConsistencyDistillation
    dev = torch.device(device)
    backend = 'nccl' if dev.type == 'cuda' else 'gloo'
    if not dist.is_initialized():
        with socket_port() as port:
            address = f'tcp://127.0.0.1:{port}'
        dist.init_process_group(backend, init_method=address, rank=0, world_size=1)
    cfg = unet_config('cm_digits16.py')
    images, labels = load_digits_arrays(16, 'train')
    x_all, y_all = from_uint8(images), torch.from_numpy(labels)
    modes = [('fp16', torch.float16, True), ('bf16', torch.bfloat16, False)]
    if dev.type == 'cpu':
        modes = [('bf16', torch.bfloat16, False)]
        iters = 2 if dry_run else iters
    out = {}
    try:
        for name, amp_dtype, scale in modes:
            torch.manual_seed(0)
            online = build_unet(cfg).to(dev)
            precond = KarrasPrecond(boundary_condition=True, weight_schedule='uniform')
            objective = ConsistencyDistillation(
                precond, teacher=dict(path=osp.join(DIGITS_WEIGHTS, 'edm_digits16_ema.pt'),
                                      dropout=0.1),
                unet_cfg=cfg, online=online, loss='l2',
                schedule=dict(type='original', start_ema=0.95, start_scales=18)).to(dev)
            objective.init_online(online)  # the teacher's weights
            objective.make_copies(online)  # the target network
            objective.online_changed(online)
            model = DDP(online, device_ids=[dev.index or 0] if dev.type == 'cuda' else None)
            opt = torch.optim.RAdam(online.parameters(), lr=4e-5)
            scaler = torch.amp.GradScaler(dev.type, enabled=scale)
            losses = []
            t0 = time.perf_counter()
            for step in range(iters):
                idx = torch.randint(0, len(x_all), (64, ))
                x, y = x_all[idx].to(dev), y_all[idx].to(dev)
                with torch.autocast(dev.type, dtype=amp_dtype):
                    loss = objective(model, x, y, step)['loss'].mean()
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                objective.after_step(online, step)
                losses.append(loss.item())
            sync(dev)
            seconds = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as folder:
                path = osp.join(folder, 'online.pt')
                torch.save(online.state_dict(), path)
                fresh = build_unet(cfg, meta=True)
                from .models.weights import load_unet_from
                load_unet_from(fresh, path)
                reloaded = all(torch.equal(a.float().cpu(), b.float().cpu()) for a, b in
                               zip(online.state_dict().values(), fresh.state_dict().values()))
            out[name] = dict(iters=iters, first_loss=losses[0], last_loss=losses[-1],
                             finite=bool(np.isfinite(losses).all()), reloaded=reloaded,
                             seconds=seconds, backend=backend)
    finally:
        dist.destroy_process_group()
    return out


class socket_port:
    """A free TCP port on 127.0.0.1 (as a context manager yielding it)."""

    def __enter__(self) -> int:
        import socket
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


# ------------------------------------------------------------------ run
def environment(device) -> Dict:
    env = dict(torch=torch.__version__, cuda=torch.version.cuda, device=str(device),
               date=time.strftime('%Y-%m-%d'))
    if torch.device(device).type == 'cuda':
        env['gpu'] = torch.cuda.get_device_name(device)
        env['bf16_matmul_tflops'] = matmul_tflops(device)
    else:
        env['gpu'] = None
        env['bf16_matmul_tflops'] = matmul_tflops(device, n=256)
    try:
        import diffusers
        env['diffusers'] = diffusers.__version__
    except ImportError:
        env['diffusers'] = None
    return env


SECTIONS = ('parity', 'throughput', 'lsun', 'training', 'deploy')
#: what a plain run does: deploy (exports, TensorRT engine builds: minutes)
#: runs as a call of its own, ``--sections deploy``, with the whole budget
DEFAULT_SECTIONS = SECTIONS[:-1]


def run_gpu_check(out_dir: str, device: Optional[str] = None, dry_run: bool = False,
                  budget_s: float = 420.0, sections=DEFAULT_SECTIONS) -> Dict:
    """Run the sections and write ``gpu_check.json`` and ``gpu_check.md`` to ``out_dir``."""
    device = device or ('cpu' if dry_run else 'cuda')
    if torch.device(device).type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {device}: CUDA is not available; use --dry-run on a CPU')
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f'unknown section(s) {sorted(unknown)}; choose from '
                         f'{", ".join(SECTIONS)}')
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    deadline = start + budget_s
    report = dict(dry_run=dry_run, environment=environment(device), sections={})
    for name in SECTIONS:
        if name not in sections:
            continue
        t0 = time.perf_counter()
        try:
            if name == 'parity':
                result = parity(device, dry_run)
            elif name == 'throughput':
                result = throughput(device, dry_run, deadline - 60)  # leave time for the rest
            elif name == 'lsun':
                result = throughput(device, dry_run, deadline - 30, base='cm_lsun256.py',
                                    batches=(16, ), dtypes=('fp16', 'bf16'),
                                    variants=[('channels_last', True, False)],
                                    compare_diffusers=False)
            elif name == 'training':
                result = training(device, dry_run)
            else:
                result = deploy(device, dry_run, deadline)
            report['sections'][name] = dict(result=result)
        except Exception as exc:
            report['sections'][name] = dict(error=''.join(
                traceback.format_exception_only(type(exc), exc)).strip()[-2000:])
        report['sections'][name]['seconds'] = time.perf_counter() - t0
    report['seconds'] = time.perf_counter() - start
    with open(osp.join(out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(report, f, indent=1)
    with open(osp.join(out_dir, 'gpu_check.md'), 'w') as f:
        f.write(markdown(report))
    return report


def markdown(report: Dict) -> str:
    env = report['environment']
    lines = [f"# GPU check ({env['gpu'] or 'CPU dry run'}; torch {env['torch']}, CUDA "
             f"{env['cuda']}, diffusers {env['diffusers']}; {env['date']})", '',
             f"bf16 matmul: {env['bf16_matmul_tflops']:.3g} TFLOP/s", '']
    sec = report['sections']
    if 'parity' in sec:
        lines += ['## parity (CUDA fp32 vs CPU, uint8)', '',
                  '| case | max levels | within one level | equal | pass |',
                  '|---|---|---|---|---|']
        for case, r in sec['parity'].get('result', {}).items():
            lines.append(f"| {case} | {r['max_levels']} | {r['within_one']:.5f} | "
                         f"{r['equal']:.4f} | {r['passed']} |")
        lines.append('')
    for name in ('throughput', 'lsun'):
        if name in sec and 'result' in sec[name]:
            peak = env['bf16_matmul_tflops']
            lines += [f'## {name}', '', '| impl | dtype | batch | images/s | TFLOP/s | '
                      '% of bf16 matmul | first call (s) |', '|---|---|---|---|---|---|---|']
            for r in sec[name]['result']['rows']:
                if 'images_per_s' in r:
                    lines.append(f"| {r['impl']} | {r['dtype']} | {r['batch']} | "
                                 f"{r['images_per_s']:.1f} | {r['tflops']:.3g} | "
                                 f"{100 * r['tflops'] / peak:.0f} | "
                                 f"{r['first_call_s']:.1f} |")
                else:
                    lines.append(f"| {r['impl']} | {r['dtype']} | {r['batch']} | "
                                 f"{r.get('error') or r.get('skipped')} | | | |")
            lines.append('')
    if 'deploy' in sec and 'result' in sec['deploy']:
        lines += ['## deploy (ImageNet-64 D at sigma_max: one-step sampling; ONNX files exported '
                  'with dynamic batch)', '',
                  '| impl | dtype | batch | images/s | first call (s) | PSNR vs PyTorch fp32 (dB) '
                  '| max abs diff of D |', '|---|---|---|---|---|---|---|']
        for r in sec['deploy']['result']['rows']:
            if 'images_per_s' in r:
                quality = (f"{r['psnr_db']:.1f} | {r['max_abs_diff']:.3g}" if 'psnr_db' in r
                           else 'no PyTorch fp32 row | ')
                lines.append(f"| {r['impl']} | {r['dtype']} | {r['batch']} | "
                             f"{r['images_per_s']:.1f} | {r['first_call_s']:.1f} | {quality} |")
            else:
                lines.append(f"| {r['impl']} | {r['dtype']} | {r['batch']} | "
                             f"{r.get('error') or r.get('skipped')} | | | |")
        lines.append('')
    if 'training' in sec and 'result' in sec['training']:
        lines += ['## training (digits CD, DDP of one)', '',
                  '| amp | iters | first loss | last loss | finite | reloaded | s |',
                  '|---|---|---|---|---|---|---|']
        for amp, r in sec['training']['result'].items():
            lines.append(f"| {amp} | {r['iters']} | {r['first_loss']:.4g} | "
                         f"{r['last_loss']:.4g} | {r['finite']} | {r['reloaded']} | "
                         f"{r['seconds']:.1f} |")
        lines.append('')
    for name, r in sec.items():
        if 'error' in r:
            lines.append(f'- {name} failed: {r["error"].splitlines()[-1]}')
    return '\n'.join(lines) + '\n'


def summary_ok(report: Dict) -> bool:
    """True when no section failed and every parity case passed."""
    sec = report['sections']
    if any('error' in r for r in sec.values()) or any(
            'error' in r for r in sec.get('deploy', {}).get('result', {}).get('rows', [])):
        return False
    return all(r['passed'] for r in sec.get('parity', {}).get('result', {}).values()) \
        and all(math.isfinite(r['last_loss']) and r['reloaded']
                for r in sec.get('training', {}).get('result', {}).values())
