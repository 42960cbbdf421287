#!/usr/bin/env python
"""MMagic's inference demo, with this plugin's models (``consistency_models``).

The same command line as MMagic's ``demo/mmagic_inference_demo.py``; every
MMagic model stays reachable. Examples::

    python demo/mmagic_inference_demo.py --model-name consistency_models \\
        --model-config configs/consistency_models/\\
consistency_models_8xb256-imagenet1k-onestep-64x64.py \\
        --model-ckpt cd_imagenet64_lpips.pt --label 145 --result-out-dir out.jpg

    python demo/mmagic_inference_demo.py --model-name consistency_models --model-setting 2 \\
        --model-ckpt cd_bedroom256_lpips.pt --result-out-dir bedroom.png
"""
from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None):
    from mmagic_cm.cli import cfg_options_action
    DictAction = cfg_options_action()  # noqa: N806 (mmengine's, refusing items without '=')
    p = ArgumentParser(description='MMagic inference demo (with mmagic_cm models)')
    p.add_argument('--img', default=None, help='input image file')
    p.add_argument('--video', default=None, help='input video file')
    p.add_argument('--label', default=None, help='label for conditional models: an '
                   'integer, or an ImageNet class name for consistency_models')
    p.add_argument('--trimap', default=None, help='trimap for matting models')
    p.add_argument('--mask', default=None, help='mask file for inpainting models')
    p.add_argument('--text', default='', help='text for text2image models')
    p.add_argument('--result-out-dir', default=None, help='output image or video path')
    p.add_argument('--model-name', default=None, help='model name, e.g. consistency_models')
    p.add_argument('--model-setting', type=int, default=None,
                   help="index into the model's metafile settings (default 0)")
    p.add_argument('--config-name', default=None, help="a metafile setting's Name")
    p.add_argument('--model-config', default=None, help='custom config file')
    p.add_argument('--model-ckpt', default=None, help='local checkpoint file (or URL)')
    p.add_argument('--device', default=None,
                   help='cpu, cuda, cuda:N (default: cuda if available, else cpu)')
    p.add_argument('--extra-parameters', nargs='+', action=DictAction,
                   help='inferencer extras, e.g. num_batches=8')
    p.add_argument('--seed', type=int, default=2022, help='random seed of the inferencer')
    p.add_argument('--verbose', action='store_true',
                   help='also show the third-party warnings MMagic prints on import')
    p.add_argument('--print-supported-models', action='store_true',
                   help='print all supported models')
    p.add_argument('--print-supported-tasks', action='store_true',
                   help='print all supported tasks')
    p.add_argument('--print-task-supported-models', default=None,
                   help='print the models that support a task')
    args, unknown = p.parse_known_args(argv)
    if len(unknown) % 2:
        p.error(f'extra arguments must come in --key value pairs, got {unknown}')
    extra = {}
    for key, value in zip(unknown[::2], unknown[1::2]):
        if not key.startswith('--'):
            p.error(f'extra argument names start with --, got {key!r}')
        extra[key[2:].replace('-', '_')] = int(value) if value.isdigit() else value
    return args, extra


def main(argv: Optional[List[str]] = None) -> int:
    args, extra = parse_args(argv)
    import torch
    from mmengine.config.utils import ConfigParsingError

    # first: lets mmagic import on mmcv-lite, adds consistency_models
    from mmagic_cm.cli.quiet import import_mmagic
    import_mmagic(args.verbose, apis=True)
    from mmagic.apis import MMagicInferencer

    from mmagic_cm.files.checkpoint import CheckpointError

    if args.print_supported_models:
        print('all supported models:')
        print(MMagicInferencer.get_inference_supported_models())
        return 0
    if args.print_supported_tasks:
        print('all supported tasks:')
        print(MMagicInferencer.get_inference_supported_tasks())
        return 0
    if args.print_task_supported_models:
        print(f'{args.print_task_supported_models} models:')
        print(MMagicInferencer.get_task_supported_models(args.print_task_supported_models))
        return 0

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    label = args.label
    if label is not None and label.lstrip('-').isdigit():
        label = int(label)  # MMagic's own models take integer labels
    try:
        editor = MMagicInferencer(
            model_name=args.model_name, model_setting=args.model_setting,
            config_name=args.config_name, model_config=args.model_config,
            model_ckpt=args.model_ckpt, device=device,
            extra_parameters=args.extra_parameters, seed=args.seed)
        editor.infer(img=args.img, video=args.video, label=label, trimap=args.trimap,
                     mask=args.mask, text=args.text, result_out_dir=args.result_out_dir,
                     **extra)
    except (ValueError, CheckpointError, FileNotFoundError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if args.result_out_dir:
        print(f'wrote {args.result_out_dir}')
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
