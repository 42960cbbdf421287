"""The prepared GPU check (``tools/gpu_check.py``): throughput, CUDA parity, training.

Runs on a bare GPU machine with torch and mmengine (core-only mode,
``MMAGIC_CM_CORE_ONLY=1``: no MMagic needed) plus diffusers for the
baseline (a recent one: it runs beside the machine's huggingface_hub;
``tools/gpu_check_wheels.sh``), in one call of about 7.5 minutes
(:data:`DEFAULT_BUDGET_S`), and writes ``gpu_check.json`` and
``gpu_check.md`` into an output folder. Sections, in this order (each timed;
a failing section or row is recorded, with the root cause of its exception
(:func:`describe_error`), and the next one runs):

- ``throughput``: ImageNet-64 one-step D(x, 80), rows in the order of
  :func:`plan_rows`: batch 256 first (eager bf16, fp16, fp32: ours beside
  diffusers' ``UNet2DModel`` on the same weights in the same dtype and
  layout, and ours with the opt-in fused GroupNorm; then ``torch.compile``
  of both, compiled the same way), then batch 64, then the rest (GroupNorm in
  the compute dtype, cudnn.benchmark, NCHW, reduce-overhead); each row's
  images/s, ratio to diffusers, share of the GPU's measured bf16 matmul rate,
  preparation and first-call seconds. A row expected to overrun the budget
  (:data:`ESTIMATE_S`) is skipped, not started;
- ``parity``: ImageNet-64 (seeded random weights in the released raw
  format) one-step and multistep (ts 0,22,39) images on CUDA in fp32
  against the CPU's for the same noise (the criterion: within one level on
  >= 99.9% of values), and the shipped digits CD and CT models likewise;
- ``lsun``: LSUN-256 one-step at batch 16 in bf16 and fp16;
- ``training``: 20 iterations of the digits CD objective under DDP (an
  NCCL process group of one) with fp16 autocast + loss scaling and with
  bf16 autocast: losses finite, checkpoint reloadable;
- ``deploy`` (not run by default: ``--sections deploy``, a call of its
  own): ImageNet-64 D exported to ONNX (fp32, fp16) and run by ONNX
  Runtime's CUDA and TensorRT providers beside PyTorch (:func:`deploy`;
  needs onnxruntime-gpu, else those rows say what is missing).

``dry_run`` runs every section on the CPU with tiny sizes (what CI runs):
the tiny test architecture, batches 4 and 2 for 256 and 64, no fp16 (CUDA
only), the first two compiled rows through dynamo alone (backend 'eager').
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

from ..denoiser.fast import DTYPES, InferenceUNets
from ..denoiser.precond import Denoiser, KarrasPrecond
from ..files.images import to_uint8
from ..models.weights import build_unet
from ..sampling.samplers import sample_multistep, sample_onestep, sampling_sigmas
from ..testing.fixtures import ROOT, seeded_state_dict

CONFIGS = osp.join(ROOT, 'configs', 'consistency_models')
DIGITS_WEIGHTS = osp.join(ROOT, 'mmagic_cm', 'weights', 'digits')


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
    from ..models.weights import load_unet_from
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
#: throughput variants: name -> (channels_last, compile: False | True | a mode,
#: norm (ours only: GroupNorm32.mode), cudnn.benchmark). 'eager' is what
#: sampling does by default (channels_last); each runs for ours and diffusers
#: alike, except the norm variants (ours only). Compiled rows compile both
#: UNets the same way: ``torch.compile(unet, mode=...)`` after the same dtype
#: and layout, with dynamo reset before each.
VARIANTS = {
    'eager': (True, False, 'fp32', False),
    'eager fused-norm': (True, False, 'fused', False),
    'eager dtype-norm': (True, False, 'dtype', False),
    'eager cudnn.benchmark': (True, False, 'fp32', True),
    'eager NCHW': (False, False, 'fp32', False),
    'compile': (True, True, 'fp32', False),
    'compile fused-norm': (True, True, 'fused', False),
    'compile reduce-overhead': (True, 'reduce-overhead', 'fp32', False),
}
#: seconds a row is expected to take on the H200, at worst (issue 22's run: a
#: first torch.compile call took 32-50 s; an eager batch-256 row: preparing the
#: UNet 1-3 s, a first call under 3 s, four timed batches ~1.5 s in bf16, more
#: in fp32): a row whose estimate no longer fits before the deadline is skipped
ESTIMATE_S = {'eager': 6.0, 'compile': 50.0}
ESTIMATE_FP32_EXTRA_S = 4.0


def plan_rows(batches=(256, 64), dtypes=('bf16', 'fp16', 'fp32')) -> List[Dict]:
    """The throughput rows in the order they run, what matters first:

    1. ``batches[0]`` (256: the goal's batch), eager: per dtype (bf16, fp16,
       fp32) ours beside diffusers, and ours with the fused GroupNorm (bf16,
       fp16: the opt-in fast path); then compiled, per dtype, ours beside
       diffusers (compiled rows cost 32-50 s each, so all eager rows first);
    2. ``batches[1]`` (64): the same eager rows; compiled in bf16 only, with
       reduce-overhead (CUDA graphs) beside the default mode;
    3. the rest, at ``batches[0]`` in bf16: GroupNorm in the compute dtype,
       cudnn.benchmark (both UNets), the plain NCHW layout (both), compiled
       with the fused GroupNorm, reduce-overhead (both).
    """
    rows: List[Dict] = []

    def add(batch, dtype, *pairs):
        rows.extend(dict(impl=impl, variant=variant, batch=batch, dtype=dtype)
                    for impl, variant in pairs)

    low = [d for d in dtypes if d != 'fp32']
    first = batches[0]
    for batch in batches:
        for dtype in dtypes:
            add(batch, dtype, ('mmagic_cm', 'eager'), ('diffusers', 'eager'))
            if dtype in low:
                add(batch, dtype, ('mmagic_cm', 'eager fused-norm'))
        for dtype in (dtypes if batch == first else dtypes[:1]):
            add(batch, dtype, ('mmagic_cm', 'compile'), ('diffusers', 'compile'))
            if batch != first:
                add(batch, dtype, ('mmagic_cm', 'compile reduce-overhead'))
    top = dtypes[0]
    add(first, top, ('mmagic_cm', 'eager dtype-norm'),
        ('mmagic_cm', 'eager cudnn.benchmark'), ('diffusers', 'eager cudnn.benchmark'),
        ('mmagic_cm', 'eager NCHW'), ('diffusers', 'eager NCHW'),
        ('mmagic_cm', 'compile fused-norm'), ('mmagic_cm', 'compile reduce-overhead'),
        ('diffusers', 'compile reduce-overhead'))
    return rows


def estimate_s(row: Dict) -> float:
    """Expected seconds of one throughput row on the H200 (:data:`ESTIMATE_S`)."""
    kind = row['variant'].split()[0]
    extra = ESTIMATE_FP32_EXTRA_S if row['dtype'] == 'fp32' else 0.0
    return ESTIMATE_S[kind] + extra


def fits(row: Dict, now: float, deadline: float) -> bool:
    """Whether ``row`` is expected to end before ``deadline`` (the budget rule)."""
    return now + estimate_s(row) <= deadline


def reached(rows: List[Dict], seconds: float) -> List[Dict]:
    """The rows the budget rule runs in ``seconds``, if each takes its estimate."""
    now, out = 0.0, []
    for row in rows:
        if fits(row, now, seconds):
            now += estimate_s(row)
            out.append(row)
    return out


def describe_error(exc: BaseException, limit: int = 400) -> str:
    """``Type: message`` of the innermost exception of ``exc``'s chain
    (``__cause__``, else ``__context__``): the root cause, where a wrapper's
    first line points elsewhere (diffusers' "Failed to import ... look up to see
    its traceback"); the outermost follows when it is another exception."""
    inner, seen = exc, {id(exc)}
    while True:
        nxt = inner.__cause__ if inner.__cause__ is not None else (
            None if inner.__suppress_context__ else inner.__context__)
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        inner = nxt

    def line(e: BaseException) -> str:
        text = ' '.join(str(e).split())  # one line
        return f'{type(e).__name__}: {text}' if text else type(e).__name__

    out = line(inner)
    if inner is not exc:
        out += f' (raised as {line(exc)[:200]})'
    return out if len(out) <= limit else out[:limit - 3] + '...'


def ours_runner(unet, precond, batch, dtype, channels_last, compile, device, inputs=None,
                norm: str = 'fp32', backend: Optional[str] = None):
    """D(x, 80) on ``device`` (``inputs``: (x, sigma, y) to use instead of random
    ones); ``backend`` compiles with that torch.compile backend instead of
    through InferenceUNets (the dry run: 'eager', dynamo without inductor)."""
    nets = InferenceUNets()
    net, autocast = nets.get(unet.to(device), DTYPES[dtype], channels_last,
                             compile if backend is None else False, norm)
    if compile and backend is not None:
        net = torch.compile(net, backend=backend)
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


def diffusers_runner(state, cfg, precond, batch, dtype, device, channels_last: bool = True,
                     compile=False, backend: Optional[str] = None):
    """diffusers' ``UNet2DModel`` on the same weights, cast to ``dtype`` as its
    users do (``torch_dtype``), in the same layout, compiled as ours is."""
    from ..conversion.diffusers_unet import DiffusersNet, build_diffusers_unet
    unet = build_diffusers_unet(state, cfg, torch.float32).to(device)
    torch_dtype = DTYPES[dtype]
    if torch_dtype != torch.float32:
        unet = unet.to(torch_dtype)  # as diffusers' users do: torch_dtype=...
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    if compile:
        mode = compile if isinstance(compile, str) else None
        unet = torch.compile(unet, mode=mode) if backend is None else \
            torch.compile(unet, backend=backend)
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


#: the dry run's stand-ins for the H200's batch sizes (tiny UNet, CPU)
DRY_BATCHES = {256: 4, 64: 2, 16: 2}
#: compiled rows the dry run runs (dynamo with the 'eager' backend: ~10 s each
#: on 2 CPU cores); later ones are skipped as 'dry run'
DRY_COMPILED_ROWS = 2


def throughput(device, dry_run: bool, deadline: float, base: str = 'cm_imagenet64.py',
               rows: Optional[List[Dict]] = None, compare_diffusers: bool = True,
               clock: Callable[[], float] = time.perf_counter) -> Dict:
    """Run ``rows`` (default :func:`plan_rows`) in order; a row expected to end
    after ``deadline`` (:func:`fits`) is skipped ('time budget'), later cheaper
    ones still run. The dry run: the tiny UNet, :data:`DRY_BATCHES`, no fp16,
    compiled rows through dynamo alone."""
    cfg = TINY_UNET if dry_run else unet_config(base)
    plan = plan_rows() if rows is None else rows
    if not compare_diffusers:
        plan = [r for r in plan if r['impl'] != 'diffusers']
    if dry_run:
        plan = [dict(r, batch=DRY_BATCHES.get(r['batch'], 2)) for r in plan
                if r['dtype'] != 'fp16']
    unet = seeded_unet(cfg).to(device)
    state = {k: v.detach().cpu() for k, v in unet.state_dict().items()}
    precond = KarrasPrecond(boundary_condition=True)
    gflop = unet_gflop(cfg)
    backend = 'eager' if dry_run else None
    compiled = 0
    out: List[Dict] = []
    for plan_row in plan:
        row = dict(plan_row, impl=f"{plan_row['impl']} {plan_row['variant']}")
        batch, dtype = row['batch'], row['dtype']
        channels_last, compile, norm, benchmark = VARIANTS[plan_row['variant']]
        out.append(row)
        if compile and dry_run and compiled >= DRY_COMPILED_ROWS:
            row['skipped'] = 'dry run (compiled rows after the first two)'
            continue
        if not fits(plan_row, clock(), deadline):
            row['skipped'] = 'time budget'
            continue
        compiled += bool(compile)
        cudnn_benchmark = torch.backends.cudnn.benchmark
        run = None
        try:
            torch.backends.cudnn.benchmark = benchmark
            if compile:
                torch._dynamo.reset()  # each compiled row on its own (no recompile limits)
            t0 = clock()
            if plan_row['impl'] == 'diffusers':
                run = diffusers_runner(state, cfg, precond, batch, dtype, device, channels_last,
                                       compile, backend)
            else:
                run = ours_runner(unet, precond, batch, dtype, channels_last, compile, device,
                                  norm=norm, backend=backend)
            row['prepare_s'] = clock() - t0
            t0 = clock()
            run()
            sync(device)
            row['first_call_s'] = clock() - t0  # compile time too
            sec = timed(run, device, reps=3 if not dry_run else 1)
            row.update(s_per_batch=sec, images_per_s=batch / sec,
                       tflops=gflop * batch / sec / 1e3)
        except Exception as exc:  # a path that fails here is a finding
            row['error'] = describe_error(exc)
        finally:
            torch.backends.cudnn.benchmark = cudnn_benchmark
            del run
            if compile:
                torch._dynamo.reset()
            if torch.device(device).type == 'cuda':
                torch.cuda.empty_cache()
    return dict(unet_gflop_per_image=gflop, rows=out, summary=goal_summary(out))


def _best(rows: List[Dict], prefix: str) -> Optional[float]:
    speeds = [r['images_per_s'] for r in rows if r['impl'].startswith(prefix)]
    return max(speeds) if speeds else None


def goal_summary(rows: List[Dict]) -> List[Dict]:
    """Per (batch, dtype) with both UNets measured: ours eager / diffusers eager
    (the default paths), ours' best compiled / diffusers' best compiled, and
    best / best (any variant)."""
    done = [r for r in rows if 'images_per_s' in r]
    out = []
    for batch, dtype in dict.fromkeys((r['batch'], r['dtype']) for r in done):
        same = [r for r in done if (r['batch'], r['dtype']) == (batch, dtype)]
        entry = dict(batch=batch, dtype=dtype)
        for name, ours, theirs in (
                ('eager', 'mmagic_cm eager', 'diffusers eager'),
                ('compiled', 'mmagic_cm compile', 'diffusers compile'),
                ('best', 'mmagic_cm ', 'diffusers ')):
            if name == 'eager':  # exactly the default rows, not the other eager variants
                a = next((r['images_per_s'] for r in same if r['impl'] == ours), None)
                b = next((r['images_per_s'] for r in same if r['impl'] == theirs), None)
            else:
                a, b = _best(same, ours), _best(same, theirs)
            if a and b:
                entry[f'{name}_ratio'] = a / b
        if len(entry) > 2:
            out.append(entry)
    return out


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
    from ..export import export_denoiser
    from ..export.runtime import ExportedDenoiser, require, require_provider
    from ..models.consistency_model import ConsistencyModel
    from .quality import psnr
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
                row[key] = describe_error(exc)
            if dev.type == 'cuda':
                torch.cuda.empty_cache()
    return dict(rows=rows)


# ------------------------------------------------------------------ training
def training(device, dry_run: bool, iters: int = 20) -> Dict:
    """The digits CD objective under DDP (one process) with autocast."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from ..datasets.digits import load_digits_arrays
    from ..files.images import from_uint8
    from ..training.objectives import ConsistencyDistillation
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
                from ..models.weights import load_unet_from
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


#: in the order they run: throughput first (its batch-256 rows are what the
#: goal is about), then the sections the budget does not cut
SECTIONS = ('throughput', 'parity', 'lsun', 'training', 'deploy')
#: what a plain run does: deploy (exports, TensorRT engine builds: minutes)
#: runs as a call of its own, ``--sections deploy``, with the whole budget
DEFAULT_SECTIONS = SECTIONS[:-1]
#: the default budget: one device call of about 8 minutes with start-up (the
#: wheels' install, imports: ~20 s) reaches every batch-256 throughput row
#: (tests/tools/test_gpu_check.py checks it against :data:`ESTIMATE_S`)
DEFAULT_BUDGET_S = 450.0
#: seconds kept back from the throughput rows for the sections after them
#: (on the H200: parity ~30 s with its CPU side, LSUN ~15 s, training ~15 s)
RESERVE_S = {'throughput': 60.0, 'lsun': 30.0}
#: seconds a run spends before the first throughput row (the environment's
#: matmul, the seeded ImageNet-64 UNet, its FLOP count)
SETUP_S = 15.0
LSUN_ROWS = [dict(impl='mmagic_cm', variant='eager', batch=16, dtype=d) for d in ('bf16', 'fp16')]


def run_gpu_check(out_dir: str, device: Optional[str] = None, dry_run: bool = False,
                  budget_s: float = DEFAULT_BUDGET_S, sections=DEFAULT_SECTIONS) -> Dict:
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
    report = dict(dry_run=dry_run, budget_s=budget_s, environment=environment(device),
                  sections={})
    for name in SECTIONS:
        if name not in sections:
            continue
        t0 = time.perf_counter()
        try:
            if name == 'parity':
                result = parity(device, dry_run)
            elif name == 'throughput':
                result = throughput(device, dry_run, deadline - RESERVE_S['throughput'])
            elif name == 'lsun':
                result = throughput(device, dry_run, deadline - RESERVE_S['lsun'],
                                    base='cm_lsun256.py', rows=LSUN_ROWS,
                                    compare_diffusers=False)
            elif name == 'training':
                result = training(device, dry_run)
            else:
                result = deploy(device, dry_run, deadline)
            report['sections'][name] = dict(result=result)
        except Exception as exc:
            report['sections'][name] = dict(
                error=describe_error(exc, limit=1000),
                traceback=''.join(traceback.format_exception(type(exc), exc,
                                                             exc.__traceback__))[-6000:])
        report['sections'][name]['seconds'] = time.perf_counter() - t0
    report['seconds'] = time.perf_counter() - start
    with open(osp.join(out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(report, f, indent=1)
    with open(osp.join(out_dir, 'gpu_check.md'), 'w') as f:
        f.write(markdown(report))
    return report


def diffusers_ratio(row: Dict, rows: List[Dict]) -> Optional[float]:
    """Ours' images/s over diffusers' in the same batch and dtype: the same
    variant where diffusers has it, else the same kind (eager or compile)."""
    if not row['impl'].startswith('mmagic_cm ') or 'images_per_s' not in row:
        return None
    variant = row['impl'].split(' ', 1)[1]
    theirs = {r['impl'].split(' ', 1)[1]: r['images_per_s'] for r in rows
              if r['impl'].startswith('diffusers ') and 'images_per_s' in r
              and (r['batch'], r['dtype']) == (row['batch'], row['dtype'])}
    base = theirs.get(variant) or theirs.get(variant.split()[0])
    return row['images_per_s'] / base if base else None


def throughput_lines(name: str, result: Dict, peak: float) -> List[str]:
    """The markdown of a throughput section: its rows in run order, then the
    goal's ratios per batch and dtype."""
    rows = result['rows']
    lines = [f'## {name} (rows in the order they ran)', '',
             '| impl | dtype | batch | images/s | x diffusers | TFLOP/s | % of bf16 matmul '
             '| prepare (s) | first call (s) |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if 'images_per_s' in r:
            ratio = diffusers_ratio(r, rows)
            lines.append(f"| {r['impl']} | {r['dtype']} | {r['batch']} | "
                         f"{r['images_per_s']:.1f} | "
                         f"{'' if ratio is None else f'{ratio:.2f}'} | {r['tflops']:.3g} | "
                         f"{100 * r['tflops'] / peak:.0f} | {r['prepare_s']:.1f} | "
                         f"{r['first_call_s']:.1f} |")
        else:
            lines.append(f"| {r['impl']} | {r['dtype']} | {r['batch']} | "
                         f"{r.get('error') or r.get('skipped')} | | | | | |")
    lines.append('')
    if result.get('summary'):
        lines += ['ours / diffusers (eager: the default paths; compiled: best compiled of '
                  'each; best: best of each, any variant):', '',
                  '| batch | dtype | eager | compiled | best |', '|---|---|---|---|---|']
        for e in result['summary']:
            cells = ' | '.join(f"{e[k]:.2f}" if k in e else '' for k in
                               ('eager_ratio', 'compiled_ratio', 'best_ratio'))
            lines.append(f"| {e['batch']} | {e['dtype']} | {cells} |")
        lines.append('')
    return lines


def markdown(report: Dict) -> str:
    env = report['environment']
    lines = [f"# GPU check ({env['gpu'] or 'CPU dry run'}; torch {env['torch']}, CUDA "
             f"{env['cuda']}, diffusers {env['diffusers']}; {env['date']})", '',
             f"bf16 matmul: {env['bf16_matmul_tflops']:.3g} TFLOP/s", '']
    sec = report['sections']
    for name in ('throughput', 'lsun'):
        if name in sec and 'result' in sec[name]:
            lines += throughput_lines(name, sec[name]['result'], env['bf16_matmul_tflops'])
    if 'parity' in sec:
        lines += ['## parity (CUDA fp32 vs CPU, uint8)', '',
                  '| case | max levels | within one level | equal | pass |',
                  '|---|---|---|---|---|']
        for case, r in sec['parity'].get('result', {}).items():
            lines.append(f"| {case} | {r['max_levels']} | {r['within_one']:.5f} | "
                         f"{r['equal']:.4f} | {r['passed']} |")
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
            lines.append(f'- {name} failed: {r["error"]}')
    return '\n'.join(lines) + '\n'


def summary_ok(report: Dict) -> bool:
    """True when no section and no row failed (rows skipped for the time
    budget are not failures) and every parity case passed."""
    sec = report['sections']
    if any('error' in r for r in sec.values()) or any(
            'error' in r for name in ('throughput', 'lsun', 'deploy')
            for r in sec.get(name, {}).get('result', {}).get('rows', [])):
        return False
    return all(r['passed'] for r in sec.get('parity', {}).get('result', {}).values()) \
        and all(math.isfinite(r['last_loss']) and r['reloaded']
                for r in sec.get('training', {}).get('result', {}).values())
