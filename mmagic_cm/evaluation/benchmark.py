"""Sampling speed measurements (``tools/benchmark.py``): images/s, latency,
peak memory and achieved GFLOP/s of our sampling next to diffusers' pipeline
and the original code on the same weights (see the tool's docstring).

:func:`run_benchmark` takes the options as keywords (:class:`BenchmarkOptions`);
``tools/benchmark.py`` parses its command line into them.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import os.path as osp
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class BenchmarkOptions:
    """What :func:`run_benchmark` measures (``tools/benchmark.py``'s options).

    Rows: every combination of ``batch_sizes``, ``dtypes``, ``channels_last``
    and ``compile`` for ours, then each of ``compare`` (diffusers, original,
    onnxruntime, onnxruntime-tensorrt, openvino) with its defaults; ``reps``
    timed rounds after ``warmup``. ``checkpoint`` None: seeded random weights.
    ``first_image``: only the command-to-file time of one batch (of
    ``num_samples`` images in batches of the first batch size, if given).
    """
    config: str
    checkpoint: Optional[str] = None
    batch_sizes: Tuple[int, ...] = (1, 4)
    dtypes: Tuple[str, ...] = ('fp32', 'bf16')
    channels_last: Tuple[bool, ...] = (True, )
    compile: Tuple[bool, ...] = (False, )
    compile_mode: Optional[str] = None
    sampler: Optional[str] = None
    ts: Optional[str] = None
    steps: Optional[int] = None
    reps: int = 5
    warmup: int = 1
    compare: Tuple[str, ...] = ()
    cm_repo: Optional[str] = None
    device: str = 'cpu'
    threads: Optional[int] = None
    matmul_size: int = 4096
    quality: bool = False
    first_image: bool = False
    num_samples: Optional[int] = None


# ------------------------------------------------------------------ measuring
class PeakMemory:
    """Peak memory of the code inside: CUDA max allocated, or process RSS.

    On the CPU a thread polls ``/proc/self/statm`` every millisecond; the
    result is the process's peak resident set during the block (weights of
    every model loaded included) and its rise over the start.
    """

    def __init__(self, device):
        import torch
        self.torch = torch
        self.cuda = torch.device(device).type == 'cuda'
        self.peak = self.start = 0

    @staticmethod
    def rss() -> int:
        try:
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
        except (OSError, ValueError):  # not Linux
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def __enter__(self):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            self.start = self.torch.cuda.memory_allocated()
        else:
            self.start = self.peak = self.rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.peak = self.torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self.rss())


def timed(fn: Callable, device) -> float:
    """Seconds of ``fn()``; on CUDA between synchronised CUDA events."""
    import torch
    if torch.device(device).type == 'cuda':
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def matmul_gflops(dtype, device, n: int = 4096, reps: int = 5) -> float:
    """Best GFLOP/s of an n x n x n matrix product in ``dtype`` on ``device``."""
    import torch
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    with torch.inference_mode():
        a @ b
        best = min(timed(lambda: a @ b, device) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def unet_flops(unet_cfg: dict, batch: int = 1) -> int:
    """FLOPs of one UNet forward on ``batch`` images, counted on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mmagic_cm.models.weights import build_unet
    with torch.device('meta'):
        unet = build_unet(unet_cfg)
        size = unet.image_size
        x = torch.empty(batch, unet.in_channels, size, size)
        t = torch.empty(batch)
        y = torch.zeros(batch, dtype=torch.long) if unet.num_classes else None
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            unet(x, t, y)
    return counter.get_total_flops()


def batch_psnr(a, b) -> float:
    """One PSNR (dB) over two batches of images in [-1, 1]."""
    from mmagic_cm.evaluation import psnr
    return float(psnr(a.reshape(1, -1), b.reshape(1, -1)))


# ------------------------------------------------------------ implementations
class Setup:
    """What every implementation needs: config, weights, sampler settings."""

    def __init__(self, opts: BenchmarkOptions):
        import torch
        from mmengine.config import Config

        from mmagic_cm.denoiser.sigmas import check_ts
        from mmagic_cm.files.checkpoint import load_unet_state_dict
        from mmagic_cm.models.weights import build_unet
        from mmagic_cm.testing.fixtures import seeded_state_dict

        cfg = Config.fromfile(opts.config)
        self.model_cfg = cfg.model.to_dict()
        self.unet_cfg = dict(self.model_cfg['unet'])
        self.device = torch.device(opts.device)
        self.sampler = opts.sampler or (self.model_cfg.get('sampler') if self.model_cfg.get(
            'sampler') in ('onestep', 'multistep') else 'onestep')
        self.steps = opts.steps or int(self.model_cfg.get('steps', 40))
        self.ts = None
        if self.sampler == 'multistep':
            self.ts = check_ts(opts.ts or self.model_cfg.get('ts') or '0,22,39', self.steps)
        self.nfe = 1 if self.sampler == 'onestep' else len(self.ts) - 1
        with torch.device('meta'):
            meta = build_unet(self.unet_cfg)
        if opts.checkpoint:
            self.state_dict = load_unet_state_dict(opts.checkpoint)
            self.weights = opts.checkpoint
        else:
            self.state_dict = seeded_state_dict(
                [(k, v.shape) for k, v in meta.state_dict().items()], seed=0)
            self.weights = 'seeded random (seed 0)'
        self.num_classes = meta.num_classes
        self.shape = (meta.in_channels, meta.image_size, meta.image_size)
        from mmagic_cm.denoiser.precond import precond_config
        den = dict(precond_config(self.model_cfg) or {})
        den.pop('type', None)
        self.sigma_min = den.get('sigma_min', 0.002)
        self.sigma_max = den.get('sigma_max', 80.0)
        self.precond_cfg = den
        self.params = sum(v.numel() for v in meta.parameters())
        self.compile_mode = opts.compile_mode

    def inputs(self, batch: int):
        import torch
        gen = torch.Generator().manual_seed(batch)
        noise = torch.randn(batch, *self.shape, generator=gen).to(self.device)
        labels = None
        if self.num_classes:
            labels = (torch.arange(batch) * 7 % self.num_classes).to(self.device)
        return noise, labels


class Ours:
    """``ConsistencyModel.sample_batch`` with the fast paths as options."""

    name = 'mmagic_cm'

    def __init__(self, setup: Setup):
        import torch

        from mmagic_cm.models.weights import build_unet
        from mmagic_cm.registry import MODELS
        self.setup = setup
        with torch.device('meta'):
            unet = build_unet(setup.unet_cfg)
        unet.load_state_dict(setup.state_dict, strict=True, assign=True)
        unet.float()
        cfg = dict(setup.model_cfg, unet=unet, model_path=None, train_cfg=None)
        self.model = MODELS.build(cfg).to(setup.device).eval()

    def runner(self, batch: int, dtype: str, channels_last: bool, compile: bool):
        import torch

        from mmagic_cm.sampling.noise import get_generator
        noise, labels = self.setup.inputs(batch)
        if compile and self.setup.compile_mode:
            compile = self.setup.compile_mode
        kw = dict(sampler=self.setup.sampler, steps=self.setup.steps, dtype=dtype,
                  channels_last=channels_last, compile=compile)
        if self.setup.ts is not None:
            kw['ts'] = self.setup.ts

        def run():
            torch.manual_seed(0)  # multistep's later noise: the same in every call
            return self.model.sample_batch(batch, get_generator('dummy'), labels, noise=noise,
                                           **kw)
        return run


class Diffusers:
    """diffusers' ``ConsistencyModelPipeline`` on the same weights."""

    name = 'diffusers'

    def __init__(self, setup: Setup):
        import torch
        from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline

        from mmagic_cm.conversion.diffusers_unet import (
            build_diffusers_unet,
            diffusers_scheduler_config,
        )
        self.setup = setup
        unet = build_diffusers_unet(setup.state_dict, setup.unet_cfg, torch.float32)
        sched = CMStochasticIterativeScheduler(**diffusers_scheduler_config(
            dict(setup.precond_cfg, boundary_condition=True), num_train_timesteps=setup.steps))
        self.pipe = ConsistencyModelPipeline(unet=unet.to(setup.device), scheduler=sched)
        self.pipe.set_progress_bar_config(disable=True)
        self._cast = {}

    def runner(self, batch: int, dtype: str, channels_last: bool, compile: bool):
        import torch

        from mmagic_cm.denoiser.fast import DTYPES
        noise, labels = self.setup.inputs(batch)
        torch_dtype = DTYPES[dtype]
        pipe, ctx = self.pipe, contextlib.nullcontext
        if torch_dtype != torch.float32:
            if self.setup.device.type == 'cuda':  # as diffusers' users: torch_dtype=...
                if dtype not in self._cast:
                    from diffusers import ConsistencyModelPipeline
                    self._cast[dtype] = ConsistencyModelPipeline(
                        unet=copy.deepcopy(self.pipe.unet).to(torch_dtype),
                        scheduler=copy.deepcopy(self.pipe.scheduler))
                    self._cast[dtype].set_progress_bar_config(disable=True)
                pipe = self._cast[dtype]
            else:
                def ctx():
                    return torch.autocast('cpu', dtype=torch_dtype)
        kw = dict(num_inference_steps=1)
        if self.setup.ts is not None:  # grid index i (from sigma_max) is t = steps-1-i
            kw = dict(num_inference_steps=None,
                      timesteps=[self.setup.steps - 1 - i for i in self.setup.ts[:-1]])
        y = None if labels is None else labels

        def run():
            gen = torch.Generator(noise.device).manual_seed(0)  # its own multistep noise
            with ctx():
                out = pipe(batch_size=batch, class_labels=y, latents=noise.to(pipe.unet.dtype),
                           output_type='pt', generator=gen, **kw).images
            return out.float() * 2 - 1
        return run


class Original:
    """The original code's UNet and ``karras_sample`` (flash attention -> SDPA)."""

    name = 'original'

    def __init__(self, setup: Setup, cm_repo: str):
        import torch

        if not cm_repo or not osp.isdir(osp.join(cm_repo, 'cm')):
            raise ValueError('--compare original needs --cm-repo (or $CM_REPO): a checkout '
                             f'of openai/consistency_models; got {cm_repo!r}')
        from mmagic_cm.denoiser.unet import ConsistencyUNetModel
        from mmagic_cm.testing.reference import Reference
        self.setup = setup
        self.ref = Reference(cm_repo, attention='sdpa')
        u = setup.unet_cfg
        with torch.device('meta'):
            ours = ConsistencyUNetModel(**{k: v for k, v in u.items() if k != 'type'})
        flags = dict(image_size=ours.image_size, num_channels=ours.model_channels,
                     num_res_blocks=u.get('num_res_blocks', 2),
                     channel_mult=','.join(str(c) for c in ours.channel_mult),
                     attention_resolutions=str(u.get('attention_resolutions', '32,16,8')),
                     num_heads=u.get('num_heads', 4),
                     num_head_channels=u.get('num_head_channels', -1),
                     num_heads_upsample=u.get('num_heads_upsample', -1),
                     class_cond=ours.num_classes is not None,
                     use_scale_shift_norm=u.get('use_scale_shift_norm', True),
                     resblock_updown=u.get('resblock_updown', False),
                     learn_sigma=u.get('learn_sigma', False), dropout=0.0,
                     use_checkpoint=False, use_fp16=False, use_new_attention_order=False)
        if isinstance(u.get('attention_resolutions'), (list, tuple)):
            flags['attention_resolutions'] = ','.join(map(str, u['attention_resolutions']))
        if ours.num_classes not in (None, 1000):
            raise ValueError('--compare original: the original builds 1000 classes only')
        self.flags = flags
        with torch.device('meta'):
            model = self.ref.create_model(**flags)
        model.load_state_dict(setup.state_dict, strict=True, assign=True)
        self.models = {'fp32': model.float().eval().to(setup.device)}
        self.diffusion = self.ref.KarrasDenoiser(
            sigma_data=setup.precond_cfg.get('sigma_data', 0.5), sigma_min=setup.sigma_min,
            sigma_max=setup.sigma_max, distillation=True, loss_norm='l2')

    def runner(self, batch: int, dtype: str, channels_last: bool, compile: bool):
        import torch
        noise, labels = self.setup.inputs(batch)
        if dtype not in self.models:  # the original's use_fp16 (CUDA)
            model = copy.deepcopy(self.models['fp32'])
            model.dtype = torch.float16
            model.convert_to_fp16()
            self.models[dtype] = model
        model = self.models[dtype]
        s = self.setup

        class FirstNoise:  # the original draws x_T from generator.randn first
            def randn(self, *shape, device=None, **kw):
                return noise.to(device)

            def randn_like(self, x):
                return torch.randn_like(x)

        kwargs = {} if labels is None else {'y': labels}

        def run():
            torch.manual_seed(0)  # as for mmagic_cm: the same multistep noise
            with torch.no_grad():
                return s_sample(FirstNoise())

        def s_sample(gen):
            return self.ref.karras_sample(
                self.diffusion, model, (batch, *s.shape), steps=s.steps, model_kwargs=kwargs,
                device=s.device, clip_denoised=True, sampler=s.sampler,
                sigma_min=s.sigma_min, sigma_max=s.sigma_max,
                ts=None if s.ts is None else tuple(s.ts), generator=gen).float()
        return run


#: --dtypes only exported files run (OpenVINO's post-training quantisation)
EXPORT_ONLY_DTYPES = ('int8', )
#: --compare names that sample through an exported file, and its format
EXPORTED = {'onnxruntime': 'onnx', 'onnxruntime-tensorrt': 'onnx', 'openvino': 'openvino'}


class Exported:
    """``ConsistencyModel.sample_batch`` through a file exported for each
    (batch, dtype) row (:mod:`mmagic_cm.export`), ONNX Runtime or OpenVINO
    doing the network calls; static batch, exported before timing. On the
    CPU: ONNX Runtime's CPU provider and OpenVINO; on a GPU: ONNX Runtime's
    CUDA provider (``onnxruntime``) and TensorRT (``onnxruntime-tensorrt``,
    fp16 for fp16 rows), which need onnxruntime-gpu."""

    def __init__(self, setup: Setup, name: str):
        from mmagic_cm.export.runtime import require, require_provider
        gpu = setup.device.type == 'cuda'
        if (name == 'openvino' and gpu) or (name == 'onnxruntime-tensorrt' and not gpu):
            raise ValueError(f'--compare {name}: runs on ' + (
                'the CPU here (--device cpu)' if gpu else 'a GPU (--device cuda)'))
        require('onnx', f'--compare {name}')
        ort = require('onnxruntime' if name != 'openvino' else 'openvino', f'--compare {name}')
        self.provider = None
        if name != 'openvino':
            self.provider = 'tensorrt' if name == 'onnxruntime-tensorrt' else (
                'cuda' if gpu else 'cpu')
            require_provider(ort, self.provider)
        self.name = name
        self.setup = setup
        self.folder = tempfile.TemporaryDirectory(prefix='mmagic_cm_bench_')
        self.export_s = {}

    def supports(self, dtype: str) -> bool:
        from mmagic_cm.export.formats import format_named
        return dtype in format_named(EXPORTED[self.name]).dtypes

    def runner(self, batch: int, dtype: str, channels_last: bool, compile: bool):
        import torch

        from mmagic_cm.export import export_denoiser
        from mmagic_cm.registry import MODELS
        from mmagic_cm.sampling.noise import get_generator
        fmt = EXPORTED[self.name]
        path = osp.join(self.folder.name, f'b{batch}_{dtype}' +
                        ('.onnx' if fmt == 'onnx' else '.xml'))
        t0 = time.perf_counter()
        export_denoiser(Ours(self.setup).model.cpu(), path, fmt, dtype, batch_size=batch,
                        log=lambda line: None)
        self.export_s[(batch, dtype)] = time.perf_counter() - t0
        cfg = dict(self.setup.model_cfg, unet=self.setup.unet_cfg, model_path=path,
                   train_cfg=None, batch_size=batch)
        model = MODELS.build(cfg).to(self.setup.device).eval()
        model.exported_provider = self.provider
        model.materialize()
        noise, labels = self.setup.inputs(batch)
        kw = dict(sampler=self.setup.sampler, steps=self.setup.steps)
        if self.setup.ts is not None:
            kw['ts'] = self.setup.ts

        def run():
            torch.manual_seed(0)
            return model.sample_batch(batch, get_generator('dummy'), labels, noise=noise, **kw)
        return run


# ----------------------------------------------------------------------- rows
def build_rows(opts: BenchmarkOptions, setup: Setup, impls: Dict) -> List[dict]:
    """Rows: ours over every option, then each baseline with its default options."""
    import torch
    rows = []
    for batch in opts.batch_sizes:
        for dtype in opts.dtypes:
            for cl in opts.channels_last if dtype not in EXPORT_ONLY_DTYPES else ():
                for comp in opts.compile:
                    rows.append(dict(impl='mmagic_cm', dtype=dtype, batch=batch,
                                     channels_last=cl, compile=comp))
            for name in opts.compare:
                if dtype in EXPORT_ONLY_DTYPES and name not in EXPORTED:
                    continue
                if name in EXPORTED and not impls[name].supports(dtype):
                    continue  # e.g. bf16 ONNX: no CPU kernels
                if name == 'original' and dtype != 'fp32' and (
                        setup.device.type != 'cuda' or dtype != 'fp16'):
                    continue  # the original runs fp32 (fp16 with use_fp16 on CUDA)
                rows.append(dict(impl=name, dtype=dtype, batch=batch, channels_last=False,
                                 compile=False))
    for row in rows:
        row['options'] = '+'.join(o for o, on in (('channels_last', row['channels_last']),
                                                   ('compile', row['compile'])) if on) or '-'
        if row['impl'] == 'diffusers' and row['dtype'] != 'fp32':
            row['options'] = 'autocast' if setup.device.type == 'cpu' else 'cast'
        if row['impl'] == 'original' and row['dtype'] == 'fp16':
            row['options'] = 'use_fp16'
        if row['impl'] in EXPORTED:
            row['options'] = 'static batch'
        impl = impls[row['impl']]
        if row['impl'] == 'mmagic_cm':
            # a model per memory format: channels_last converts the float32
            # UNet in place, which interleaved rows would redo every call
            impl = impls.setdefault(('mmagic_cm', row['channels_last']), Ours(setup))
        row['run'] = impl.runner(row['batch'], row['dtype'], row['channels_last'],
                                 row['compile'])
    del torch
    return rows


def _keeping(run: Callable, outputs: list) -> Callable:
    return lambda: outputs.append(run())


def measure(opts: BenchmarkOptions, setup: Setup, rows: List[dict]) -> None:
    """Warm up (compile time recorded), then time all rows interleaved."""
    import torch
    ctx = torch.inference_mode
    for row in rows:
        with ctx(), PeakMemory(setup.device) as mem:
            t = timed(row['run'], setup.device)
            for _ in range(max(0, opts.warmup - 1)):
                t = timed(row['run'], setup.device)
        row['first_s'] = t
        row['times'] = []
        row['peak_bytes'], row['start_bytes'] = mem.peak, mem.start
    for _ in range(opts.reps):
        for row in rows:
            outputs = []
            with ctx(), PeakMemory(setup.device) as mem:
                row['times'].append(timed(_keeping(row['run'], outputs), setup.device))
            row['peak_bytes'] = max(row['peak_bytes'], mem.peak)
            row['output'] = outputs[0]


def summarize(opts: BenchmarkOptions, setup: Setup, rows: List[dict], flops_per_image: int,
              peaks: Dict[str, float]) -> List[dict]:
    out = []
    fp32_images = {}
    for row in rows:
        med = statistics.median(row['times'])
        best = min(row['times'])
        ips = row['batch'] / med
        gflops = flops_per_image * setup.nfe * ips / 1e9
        peak = peaks.get(row['dtype'])
        rec = {k: row[k] for k in ('impl', 'dtype', 'batch', 'options', 'channels_last',
                                   'compile')}
        rec.update(images_per_s=ips, s_per_batch=med, s_per_batch_best=best,
                   s_per_batch_all=row['times'], first_call_s=row['first_s'],
                   peak_mem_bytes=row['peak_bytes'],
                   peak_mem_rise_bytes=row['peak_bytes'] - row['start_bytes'],
                   gflops=gflops, matmul_gflops=peak,
                   pct_matmul=100 * gflops / peak if peak else None)
        if opts.quality:
            key = row['batch']
            if key not in fp32_images:  # ours in fp32 if in the run, else the first row
                fp32_images[key] = next(
                    (r['output'] for r in rows if r['batch'] == key and
                     r['impl'] == 'mmagic_cm' and r['dtype'] == 'fp32'), row['output'])
            rec['psnr_db'] = batch_psnr(row['output'].cpu(), fp32_images[key].cpu())
        out.append(rec)
    for rec in out:
        same = [r for r in out if r['batch'] == rec['batch']]
        orig = [r for r in same if r['impl'] == 'original' and r['dtype'] == 'fp32']
        diff = [r for r in same if r['impl'] == 'diffusers' and r['dtype'] == rec['dtype']]
        rec['x_original_fp32'] = (rec['images_per_s'] / orig[0]['images_per_s']
                                  if orig else None)
        rec['x_diffusers_same_dtype'] = (rec['images_per_s'] / diff[0]['images_per_s']
                                         if diff else None)
    return out


def _fmt(v, spec='.2f', none='-'):
    return none if v is None else format(v, spec)


def markdown(results: List[dict], quality: bool) -> str:
    head = ['impl', 'dtype', 'batch', 'options', 'images/s', 's/batch (median)',
            's/batch (best)', 'peak mem (GiB)', 'GFLOP/s', '% of matmul', 'x original fp32',
            'x diffusers']
    if quality:
        head.append('PSNR vs fp32 (dB)')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in results:
        cells = [r['impl'], r['dtype'], str(r['batch']), r['options'],
                 _fmt(r['images_per_s'], '.3f'), _fmt(r['s_per_batch'], '.3f'),
                 _fmt(r['s_per_batch_best'], '.3f'), _fmt(r['peak_mem_bytes'] / 2**30, '.2f'),
                 _fmt(r['gflops'], '.0f'), _fmt(r['pct_matmul'], '.0f'),
                 _fmt(r['x_original_fp32']), _fmt(r['x_diffusers_same_dtype'])]
        if quality:
            cells.append(_fmt(r.get('psnr_db'), '.1f'))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def machine(device) -> str:
    import torch
    if torch.device(device).type == 'cuda':
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'{name}, {torch.get_num_threads()} threads'


# ---------------------------------------------------------------- first image
#: a fresh process doing what the sampling command does,
#: :func:`~mmagic_cm.apis.sampling.sample_to_file` (``tools/sample.py`` parses its
#: command line into that call), reporting its times and peak resident memory
#: (the wrapper imports nothing more). VmHWM, not ru_maxrss: the latter keeps
#: the parent's peak across fork + exec.
FIRST_IMAGE = r'''
import re, resource, sys
from mmagic_cm.apis.sampling import SamplingJob, sample_to_file
result = sample_to_file(SamplingJob(**JOB))
print('TIMES', result['build_s'], result['load_s'], result['sample_s'])
try:
    with open('/proc/self/status') as f:
        peak = int(re.search(r'VmHWM:\s+(\d+) kB', f.read()).group(1)) * 1024
except (OSError, AttributeError):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print('PEAK_RSS_BYTES', peak, file=sys.stderr)
'''
TIMES = re.compile(r'TIMES (\S+) (\S+) (\S+)')


def _wall(cmd: List[str], env: Optional[Dict[str, str]] = None
          ) -> Tuple[float, subprocess.CompletedProcess]:
    """Seconds from start to exit of ``cmd`` run in the repository (``env``:
    added to this environment), and its completed process."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **env} if env else None)
    return time.perf_counter() - t0, proc


def first_image(opts: BenchmarkOptions, setup: Optional[Setup] = None) -> dict:
    """Command to file: the sampling command's work
    (:func:`~mmagic_cm.apis.sampling.sample_to_file`) in a fresh process writing
    one batch (the first of ``batch_sizes``; ``num_samples`` images in such
    batches, if given) to an ``.npz``, beside ``python -c
    "import torch"``; medians of ``reps`` runs of each, interleaved. The
    checkpoint: ``checkpoint``, else the config's local ``model_path`` (the
    shipped digits models), else a temporary file of seeded weights."""
    import torch
    checkpoint, source = opts.checkpoint, '--checkpoint'
    if not checkpoint:
        from ..apis.build import load_config
        path = load_config(opts.config, for_sampling=True).model.get('model_path')
        if path and osp.isfile(path):
            checkpoint, source = path, 'the config\'s model_path'
    checkpoint = osp.abspath(checkpoint) if checkpoint else None  # the child runs in REPO
    batch = opts.batch_sizes[0]
    images = opts.num_samples or batch
    reps = max(1, opts.reps)
    with tempfile.TemporaryDirectory() as folder:
        if not checkpoint:
            setup = setup or Setup(opts)
            checkpoint = osp.join(folder, 'seeded_unet.pt')
            torch.save(setup.state_dict, checkpoint)
            source = 'a temporary file of seeded weights'
        out = osp.join(folder, 'images.npz')
        torch_s = []
        results = {}
        for dtype in opts.dtypes:
            job = dict(config=osp.abspath(opts.config), checkpoint=checkpoint,
                       num_samples=images, batch_size=batch, device=opts.device, dtype=dtype,
                       out=out, progress=False, channels_last=bool(opts.channels_last[-1]))
            cmd = [sys.executable, '-c', FIRST_IMAGE.replace('JOB', repr(job))]
            runs = []
            for _ in range(reps):
                torch_s.append(_wall([sys.executable, '-c', 'import torch'])[0])
                wall, proc = _wall(cmd)
                if proc.returncode or not osp.isfile(out):
                    raise RuntimeError('sampling failed: '
                                       f'{(proc.stderr or proc.stdout).strip()[-3000:]}')
                os.unlink(out)
                times = TIMES.search(proc.stdout)
                peak = re.search(r'PEAK_RSS_BYTES (\d+)', proc.stderr)
                runs.append(dict(wall_s=wall, peak_mem_bytes=int(peak.group(1)) if peak else 0,
                                 **(dict(zip(('build_s', 'load_s', 'sample_s'),
                                             map(float, times.groups()))) if times else {})))
            results[dtype] = {k: statistics.median([r[k] for r in runs]) for k in runs[0]}
        import_torch_s = statistics.median(torch_s)
        for r in results.values():
            r['import_torch_s'] = import_torch_s
            r['x_import_torch'] = r['wall_s'] / import_torch_s
    return dict(checkpoint=source, images=images, batch=batch, reps=reps, results=results)


def whole_process_times(commands: Dict[str, List[str]], reps: int = 3,
                        env: Optional[Dict[str, Dict[str, str]]] = None) -> Dict[str, dict]:
    """Seconds from start to exit of each command (name -> argv, run in the
    repository), ``reps`` interleaved rounds so that other load slows all alike:
    ``{name: {'median_s', 'all_s'}}``; ``env``: extra environment per name.
    RuntimeError with the command's last output if one fails."""
    times: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(max(1, reps)):
        for name, cmd in commands.items():
            wall, proc = _wall(cmd, (env or {}).get(name))
            times[name].append(wall)
            if proc.returncode:
                raise RuntimeError(f'{name} failed (exit {proc.returncode}): '
                                   f'{(proc.stderr or proc.stdout).strip()[-2000:]}')
    return {name: dict(median_s=statistics.median(t), all_s=t) for name, t in times.items()}


def first_image_markdown(res: dict) -> str:
    lines = ['| dtype | images | build (s) | load (s) | sample (s) | command to file (s) '
             '| python -c "import torch" (s) | ratio | peak RSS (GiB) |',
             '|---|---|---|---|---|---|---|---|---|']
    for dtype, r in res['results'].items():
        lines.append(f"| {dtype} | {res['images']} | {r.get('build_s', float('nan')):.2f} | "
                     f"{r.get('load_s', float('nan')):.2f} | "
                     f"{r.get('sample_s', float('nan')):.2f} | {r['wall_s']:.2f} | "
                     f"{r['import_torch_s']:.2f} | {r['x_import_torch']:.2f} | "
                     f"{r['peak_mem_bytes'] / 2**30:.2f} |")
    return '\n'.join(lines)


# ----------------------------------------------------------------------- run
def run_benchmark(config: str, *, argv: Optional[List[str]] = None,
                  **options) -> Tuple[Dict, str]:
    """Benchmark sampling of ``config``'s model.

    Args:
        config: config file.
        argv: the command line, recorded in the report (``tools/benchmark.py``).
        **options: the fields of :class:`BenchmarkOptions` (``checkpoint``,
            ``batch_sizes``, ``dtypes``, ``channels_last``, ``compile``,
            ``compare``, ``device``, ...).

    Returns:
        ``(report, text)``: the JSON-able results and the Markdown tables.

    Raises:
        ValueError: a device, dtype or baseline that cannot run here.
    """
    import torch

    from ..denoiser.fast import DTYPES
    from ..sampling.settings import resolve_dtype
    opts = BenchmarkOptions(config=config, **{
        k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {opts.device}: CUDA is not available')
    unknown = set(opts.compare) - {'diffusers', 'original', *EXPORTED}
    if unknown:
        raise ValueError(f'--compare: unknown {sorted(unknown)}; choose diffusers, original, '
                         f'{", ".join(EXPORTED)}')
    if opts.num_samples is not None and (not opts.first_image or opts.num_samples < 1):
        raise ValueError(f'--num-samples {opts.num_samples}: give a positive number of images, '
                         'with --first-image (the throughput rows time single batches)')
    for dtype in opts.dtypes:
        if dtype in EXPORT_ONLY_DTYPES:
            if 'openvino' not in opts.compare or opts.first_image:
                raise ValueError(f'--dtypes {dtype}: only OpenVINO files run it; add '
                                 '--compare openvino (not with --first-image)')
            continue
        resolve_dtype(dtype, opts.device)
    report = dict(machine=machine(opts.device), torch=torch.__version__, config=opts.config,
                  argv=list(argv or []))
    if opts.first_image:
        res = first_image(opts)
        report['first_image'] = res
        return report, (f"# command to file: sampling {osp.basename(opts.config)} "
                        f"({report['machine']}; weights: {res['checkpoint']}; median of "
                        f"{res['reps']})\n\n" + first_image_markdown(res))

    setup = Setup(opts)
    impls = {'mmagic_cm': None}  # built per memory format in build_rows
    if 'diffusers' in opts.compare:
        impls['diffusers'] = Diffusers(setup)
    if 'original' in opts.compare:
        impls['original'] = Original(setup, opts.cm_repo)
    for name in EXPORTED:
        if name in opts.compare:
            impls[name] = Exported(setup, name)
    flops = unet_flops(setup.unet_cfg)
    peaks = {}
    if opts.matmul_size:
        peaks = {d: matmul_gflops(DTYPES[d], setup.device, opts.matmul_size)
                 for d in opts.dtypes if d in DTYPES}
    rows = build_rows(opts, setup, impls)
    measure(opts, setup, rows)
    if opts.matmul_size:  # again: the best of before and after the rows
        peaks = {d: max(v, matmul_gflops(DTYPES[d], setup.device, opts.matmul_size))
                 for d, v in peaks.items()}
    results = summarize(opts, setup, rows, flops, peaks)
    report.update(weights=setup.weights, sampler=setup.sampler, nfe=setup.nfe,
                  ts=setup.ts, params=setup.params, unet_gflop_per_image=flops / 1e9,
                  matmul_gflops=peaks, reps=opts.reps, warmup=opts.warmup, rows=results)
    lines = [
        f"# {osp.basename(opts.config)}: {setup.sampler} ({setup.nfe} UNet forward(s) per "
        f"image), {setup.params / 1e6:.0f}M parameters, {flops / 1e9:.1f} GFLOP per image "
        f"per forward; weights: {setup.weights}",
        f"# machine: {report['machine']}; torch {torch.__version__}; median of {opts.reps} "
        f"interleaved rounds after {opts.warmup} warm-up"]
    if peaks:
        lines.append('# matmul peak (GFLOP/s): ' + ', '.join(f'{d} {v:.0f}'
                                                           for d, v in peaks.items()))
    lines += ['', markdown(results, opts.quality)]
    for r in results:
        if r['compile']:
            lines.append(f"# compile + first call: {r['first_call_s']:.1f}s ({r['dtype']}, "
                         f"batch {r['batch']})")
    return report, '\n'.join(lines)
