#!/usr/bin/env python
"""Sample images from a consistency model (or its EDM teacher) into an .npz.

A CPU-capable replacement for the original ``scripts/image_sample.py``: the
same images for the same weights, seed, generator, labels and sampler
settings, written as ``arr_0`` (N x H x W x 3 uint8) and, for class-
conditional models, ``arr_1`` (N int64 labels).

Example:
    python tools/sample.py configs/consistency_models/\\
consistency_models_8xb256-imagenet1k-onestep-64x64.py \\
        --checkpoint cd_imagenet64_lpips.pt --num-samples 16 --batch-size 4 \\
        --labels 145 --out samples.npz --grid grid.png

Many processes (FID-scale runs): ``tools/dist_sample.sh CONFIG NPROC [...]``
or ``torchrun ... tools/sample.py`` (Slurm: ``tools/slurm_sample.sh PARTITION
JOB CONFIG [...]``); each process draws its share of the
shards in ``OUT.shards/`` and rank 0 gathers them into OUT, equal to the
single-process result. ``--shard-size`` alone makes a one-process run
resumable; see :mod:`mmagic_cm.distributed.shards`. The work is
:func:`mmagic_cm.apis.sampling.sample_to_file`.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmagic_cm.cli import cfg_options_action
    DictAction = cfg_options_action()  # noqa: N806 (mmengine's, refusing items without '=')
    p = argparse.ArgumentParser(
        description='Sample images from a consistency model into an .npz '
        '(like the original scripts/image_sample.py).')
    p.add_argument('config', help='config file, e.g. configs/consistency_models/...py')
    p.add_argument('--checkpoint', help='local .pt file or http(s) URL; default: the '
                   "config's model_path")
    p.add_argument('--num-samples', type=int, help='images to draw (default: one batch, '
                   'or one per --labels entry)')
    p.add_argument('--batch-size', type=int, help="default: the config's batch_size")
    p.add_argument('--seed', type=int, help="generator seed (default: the config's)")
    p.add_argument('--generator', help='dummy | determ | determ-indiv')
    p.add_argument('--labels', help='class labels for class-conditional models: one for '
                   'all, or one per sample; integers or ImageNet class names, comma-'
                   'separated (e.g. "145" or "king penguin,goldfish"). Default: seeded '
                   'random labels')
    from mmagic_cm.sampling.samplers import sampler_names
    p.add_argument('--sampler', help=' | '.join(sampler_names()) + " (default: the config's)")
    p.add_argument('--ts', help='multistep grid indices, e.g. 0,22,39')
    p.add_argument('--trig-ts', help='trigflow: intermediate TrigFlow times in (0, pi/2), '
                   'e.g. 1.1 (the default for --steps 2)')
    p.add_argument('--steps', type=int, help='schedule length (multistep: grid size)')
    p.add_argument('--out', default='samples.npz', help='output .npz (default %(default)s)')
    p.add_argument('--grid', help='also write a grid of the images (.png, .jpg, .webp, ...); '
                   'tiles under 64 px are upscaled (nearest neighbour)')
    p.add_argument('--grid-native', action='store_true',
                   help='keep the grid at the images\' own size')
    p.add_argument('--device', default=None, help='cpu | cuda | cuda:N (default: cuda if '
                   'available, else cpu)')
    p.add_argument('--dtype', help='fp32 | bf16 | fp16 (fp16 on CUDA only); bf16/fp16 run '
                   'the UNet trunk in that dtype')
    p.add_argument('--channels-last', choices=('on', 'off'), default=None,
                   help='NHWC memory format for the UNet (default: on unless the config '
                   'says otherwise; measured faster on CPUs); off: the plain NCHW path, the '
                   'original\'s layout')
    p.add_argument('--compile', nargs='?', const=True, default=None, metavar='MODE',
                   help='torch.compile the UNet (the first batch compiles, minutes on a '
                   'CPU; needs a C++ compiler there); optional mode, e.g. reduce-overhead '
                   '(CUDA graphs on a GPU)')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    p.add_argument('--verbose', action='store_true',
                   help='also show the third-party warnings MMagic prints on import')
    p.add_argument('--shard-size', type=int,
                   help='draw in shards of this many samples (a multiple of the batch '
                   'size), each saved to OUT.shards/ when done, so that a rerun after an '
                   'interruption skips them; default under torchrun: whole batches of '
                   'about 1000')
    p.add_argument('--max-shards', type=int,
                   help='draw at most this many shards (per process), then exit; the same '
                   'command again continues (jobs in time slices)')
    p.add_argument('--keep-shards', action='store_true',
                   help='keep OUT.shards/ after writing OUT')
    p.add_argument('--launcher', choices=['auto', 'none', 'pytorch', 'slurm'], default='auto',
                   help="pytorch: one of torchrun's processes (tools/dist_sample.sh), each "
                   "drawing its share of the shards; slurm: one of srun's tasks "
                   "(tools/slurm_sample.sh); auto (default): pytorch when torchrun's "
                   'variables are set')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. model.s_churn=0.5')
    return p.parse_args(argv)


def job_from_args(args: argparse.Namespace):
    """The parsed command line as a :class:`~mmagic_cm.apis.sampling.SamplingJob`."""
    from mmagic_cm.apis.sampling import SamplingJob
    return SamplingJob(
        config=args.config, checkpoint=args.checkpoint, num_samples=args.num_samples,
        labels=args.labels, out=args.out, grid=args.grid, device=args.device,
        batch_size=args.batch_size, seed=args.seed, generator=args.generator,
        sampler=args.sampler, ts=args.ts, trig_ts=args.trig_ts, steps=args.steps,
        dtype=args.dtype,
        channels_last=args.channels_last, compile=args.compile,
        progress=not args.no_progress, shard_size=args.shard_size,
        max_shards=args.max_shards, keep_shards=args.keep_shards, launcher=args.launcher,
        grid_native=args.grid_native,
        cfg_options=args.cfg_options)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmagic_cm.cli.quiet import import_mmagic
    import_mmagic(args.verbose, models=False)
    from mmengine.config.utils import ConfigParsingError

    from mmagic_cm.apis.sampling import sample_to_file
    from mmagic_cm.files.checkpoint import CheckpointError
    try:
        result = sample_to_file(job_from_args(args))
    except (ValueError, CheckpointError, FileNotFoundError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if result['images'] is None:  # not all shards drawn yet, or not rank 0
        print(result['message'])
        return 0
    n = len(result['images'])
    print(f'wrote {n} images {result["images"].shape[1:]} to {args.out}'
          + (f' and a grid to {args.grid}' if args.grid else '')
          + f' (build {result["build_s"]:.2f}s, load {result["load_s"]:.2f}s, sample '
          f'{result["sample_s"]:.2f}s)')
    return 0


def start_openvino_early(argv: List[str]) -> None:
    """Start compiling an OpenVINO ``--checkpoint`` (.xml) on a thread before
    this command's imports: :mod:`mmagic_cm.export.early` is loaded from its
    file, as the package imports torch and mmengine first (seconds that the
    compile overlaps); the package finds this same module later."""
    path = next((v for k, v in zip(argv, argv[1:]) if k == '--checkpoint'), None) or \
        next((a.split('=', 1)[1] for a in argv if a.startswith('--checkpoint=')), None)
    if not path or not path.lower().endswith('.xml'):
        return
    import importlib.util
    import os.path as osp
    name = 'mmagic_cm.export.early'
    module = sys.modules.get(name)
    if module is None:
        package = importlib.util.find_spec('mmagic_cm')
        if package is None or not package.submodule_search_locations:
            return
        spec = importlib.util.spec_from_file_location(
            name, osp.join(list(package.submodule_search_locations)[0], 'export', 'early.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    module.start_openvino(path)


if __name__ == '__main__':
    start_openvino_early(sys.argv[1:])
    from mmagic_cm.cli import exit_now, run_main
    exit_now(run_main(main))
