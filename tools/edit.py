#!/usr/bin/env python
"""Zero-shot editing with a consistency model: inpaint, colorize, super-resolve,
denoise, interpolate, or generate from strokes.

Examples (offline, the shipped digits model)::

    python tools/edit.py configs/consistency_models/\\
consistency_models_cd_digits-onestep-16x16.py --task inpaint \\
        --input demo/editing/digits --mask bottom --labels 0,1,2,3,4,5,6,7,8,9 \\
        --out-dir edits/inpaint

    python tools/edit.py CONFIG --task interpolate --labels 3,8 --num-points 8 \\
        --out-dir edits/interp

Writes, per input image, ``OUT/<name>.png`` (the result) and
``OUT/<name>_input.png`` (the input as the task saw it), plus ``OUT/grid.png``
(inputs above results). Once all is computed, the new files and links to
the other files of an existing ``OUT`` are staged in a folder that then
takes ``OUT``'s place: an error leaves ``OUT`` exactly as it was.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import List, Optional


def task_help() -> str:
    """The registered tasks, each with what it needs."""
    from mmagic_cm.editing import task_names, task_of
    needs = dict(mask='needs --mask', sigma='needs --sigma')

    def hint(spec):
        said = [needs[o] for o in spec.options if o in needs]
        said += [] if spec.takes_images else ['no --input']
        return f'{spec.name} ({", ".join(said)})' if said else spec.name
    return ' | '.join(hint(task_of(n)) for n in task_names())


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmagic_cm.cli import cfg_options_action
    DictAction = cfg_options_action()  # noqa: N806 (mmengine's, refusing items without '=')
    p = argparse.ArgumentParser(description='Zero-shot editing with a consistency model')
    p.add_argument('config', help='a consistency-model config (CD or CT)')
    p.add_argument('--task', required=True, help=task_help())
    p.add_argument('--input', nargs='+', help='image files and/or folders (PNG, JPEG, ...)')
    p.add_argument('--mask', help='inpainting mask: an image (white = keep) or a built-in: '
                   'box, bottom, top, left, right, strokes')
    p.add_argument('--invert-mask', action='store_true',
                   help='white = fill instead (MMagic\'s convention)')
    p.add_argument('--binarize-mask', action='store_true',
                   help='threshold a grey mask at 128 instead of refusing it')
    p.add_argument('--fit', default='none', choices=('none', 'resize', 'center-crop'),
                   help='inputs of another size: refuse (default), stretch, or scale and '
                   'crop the middle')
    p.add_argument('--labels', help='class-conditional models: one label for all or one '
                   'per image (integers or ImageNet names); interpolate: start,end')
    p.add_argument('--checkpoint', help="weights (default: the config's model_path)")
    p.add_argument('--ts', help='multistep grid indices (default: the config\'s multistep '
                   'ts, else 0,10,20,30,39 of 40, spread over --steps if given)')
    p.add_argument('--steps', type=int, help='grid size for --ts (default 40)')
    p.add_argument('--sigma', type=float, help='denoise: noise std of the inputs (images '
                   'in [-1, 1]); stroke: noise level to start from (e.g. 0.5-5)')
    p.add_argument('--add-noise', action='store_true',
                   help='denoise: add noise of std --sigma to the inputs first (a demo)')
    p.add_argument('--patch-size', type=int, default=8,
                   help='superres: side of the kept patch means (default %(default)s)')
    p.add_argument('--num-points', type=int, default=8, help='interpolate: images')
    p.add_argument('--seed', type=int, default=0, help='noise seed (default %(default)s)')
    p.add_argument('--batch-size', type=int)
    p.add_argument('--device', help='cpu | cuda | cuda:N (default: cuda if available)')
    p.add_argument('--dtype', help='fp32 | bf16 | fp16 (fp16 on CUDA only)')
    p.add_argument('--out-dir', required=True, help='output folder')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--verbose', action='store_true',
                   help='also show the third-party warnings MMagic prints on import')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return p.parse_args(argv)


def load_inputs(args, size: int):
    """(images (N, 3, S, S) in [-1, 1], names, mask or None)."""
    import torch

    from mmagic_cm.editing import task_of
    from mmagic_cm.editing.io import list_images, load_image, load_mask, load_superres_input
    from mmagic_cm.editing.masks import BUILTIN_MASKS
    spec = task_of(args.task)
    if not spec.takes_images:
        if args.input:
            raise ValueError(f'--task {args.task} takes no --input (it starts from noise)')
        return None, None, None
    if not args.input:
        raise ValueError(f'--task {args.task} needs --input images or folders')
    files = list_images(args.input)
    if 'patch_size' in spec.options:  # patch-mean inputs of size/patch_size too
        images = torch.stack([load_superres_input(f, size, args.patch_size, args.fit)
                              for f in files])
    else:
        images = torch.stack([load_image(f, size, args.fit) for f in files])
    names = [osp.splitext(osp.basename(f))[0] for f in files]
    outputs = names + [f'{n}_input' for n in names] + ['grid']
    if len(set(outputs)) != len(outputs):
        raise ValueError('outputs are named after the inputs (NAME.png, NAME_input.png, '
                         'grid.png) and two would share a name; rename the inputs (two with '
                         'one name, one called grid, or A and A_input)')
    mask = None
    if 'mask' in spec.options:
        if not args.mask:
            raise ValueError(f'--task {args.task} needs --mask (an image, white = keep, or one of '
                             f'{", ".join(BUILTIN_MASKS)})')
        if args.mask in BUILTIN_MASKS and not osp.exists(args.mask):
            mask = args.mask
        else:
            mask = load_mask(args.mask, size, args.fit, args.binarize_mask, args.invert_mask)
    elif args.mask:
        raise ValueError(f'--mask is for --task inpaint, not {args.task}')
    return images, names, mask


def run(args: argparse.Namespace) -> dict:
    from mmagic_cm.apis.build import build_from_config, default_device
    from mmagic_cm.editing import edit, task_names
    from mmagic_cm.editing.io import check_out_dir, write_edit_results

    if args.task not in task_names():
        raise ValueError(f'unknown --task {args.task!r}; choose one of '
                         f'{", ".join(task_names())}')
    check_out_dir(args.out_dir)  # before the work
    t0 = time.perf_counter()
    # editing's ts/steps are not the config's sampler settings
    model, _ = build_from_config(args.config, args.checkpoint, args.cfg_options,
                                 batch_size=args.batch_size, dtype=args.dtype)
    images, names, mask = load_inputs(args, model.image_shape[-1])
    model.to(default_device(args.device, model.model_path)).eval()
    model.materialize()
    t1 = time.perf_counter()
    result = edit(model, args.task, images, mask=mask, labels=args.labels, ts=args.ts,
                  steps=args.steps, sigma=args.sigma, patch_size=args.patch_size,
                  add_noise=args.add_noise, num_points=args.num_points, seed=args.seed,
                  dtype=args.dtype, progress=not args.no_progress)
    t2 = time.perf_counter()
    if names is None:
        names = [f'interp_{i:02d}' for i in range(len(result.images))]
    write_edit_results(args.out_dir, names, result)
    return dict(result=result, names=names, load_s=t1 - t0, edit_s=t2 - t1)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmagic_cm.cli.quiet import import_mmagic
    import_mmagic(args.verbose, models=False)
    from mmengine.config.utils import ConfigParsingError

    from mmagic_cm.files.checkpoint import CheckpointError
    try:
        out = run(args)
    except (ValueError, CheckpointError, FileNotFoundError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'{args.task}: wrote {len(out["names"])} results and their inputs to '
          f'{args.out_dir} (+ grid.png; load {out["load_s"]:.2f}s, edit {out["edit_s"]:.2f}s)')
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
