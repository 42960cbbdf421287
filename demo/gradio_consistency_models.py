#!/usr/bin/env python
"""A web demo of consistency models: one-step generation and zero-shot editing.

Offline by default, on the shipped digits model; any config (and checkpoint)
otherwise. Tabs: Generate, Sketch, Inpaint, Colorize, Super-resolve,
Denoise, Interpolate; API endpoints ``/generate`` and ``/edit`` for
``gradio_client`` (docs/web_demo.md). Needs the ``demo`` extra:
``pip install -e ".[demo]" -c requirements/constraints.txt``.

Examples::

    python demo/gradio_consistency_models.py
    python demo/gradio_consistency_models.py --server-name 0.0.0.0 --server-port 7860
    python demo/gradio_consistency_models.py \\
        --config configs/consistency_models/\\
consistency_models_8xb256-imagenet1k-onestep-64x64.py --checkpoint cd_imagenet64_lpips.pt
    python demo/gradio_consistency_models.py --model-setting 1 --checkpoint cd_imagenet64_lpips.pt
"""
from __future__ import annotations

import os.path as osp
import sys
from argparse import ArgumentParser
from typing import List, Optional

DEFAULT_CONFIG = 'consistency_models_cd_digits-onestep-16x16'


def parse_args(argv: Optional[List[str]] = None):
    p = ArgumentParser(description='Web demo of consistency models (Gradio): generation '
                       'and zero-shot editing')
    model = p.add_mutually_exclusive_group()
    model.add_argument('--config', help=f'config file (default: the shipped digits model, '
                       f'{DEFAULT_CONFIG})')
    model.add_argument('--model-setting', type=int, default=None,
                       help='index into the metafile settings of consistency_models '
                       '(configs/consistency_models/metafile.yml)')
    p.add_argument('--checkpoint', help="local .pt file or URL; default: the config's "
                   'model_path')
    p.add_argument('--device', default=None, help='cpu | cuda | cuda:N (default: cuda if '
                   'available, else cpu)')
    p.add_argument('--server-name', default='127.0.0.1',
                   help='address to listen on (default %(default)s; 0.0.0.0: every '
                   'interface)')
    p.add_argument('--server-port', type=int, default=7860,
                   help='port (default %(default)s)')
    p.add_argument('--share', action='store_true',
                   help="also open a public gradio.live link (off by default; needs the "
                   'internet)')
    p.add_argument('--max-images', type=int, default=64,
                   help='the most images one request may generate (default %(default)s)')
    p.add_argument('--queue-size', type=int, default=32,
                   help='requests that may wait for the model (default %(default)s)')
    p.add_argument('--verbose', action='store_true',
                   help='also show the third-party warnings MMagic prints on import')
    return p.parse_args(argv)


def config_of(args) -> str:
    if args.config:
        return args.config
    from mmagic_cm.files.zoo import config_path, load_settings
    settings = load_settings('consistency_models')
    if args.model_setting is not None:
        if not 0 <= args.model_setting < len(settings):
            raise ValueError(f'--model-setting {args.model_setting}: choose 0 to '
                             f'{len(settings) - 1} (configs/consistency_models/metafile.yml)')
        return config_path(settings[args.model_setting])
    return config_path(next(s for s in settings if s['Name'] == DEFAULT_CONFIG))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('error: the web demo needs Gradio: pip install -e ".[demo]" -c '
              'requirements/constraints.txt', file=sys.stderr)
        return 2
    from mmagic_cm.cli.quiet import import_mmagic
    import_mmagic(args.verbose)
    from mmengine.config.utils import ConfigParsingError

    from mmagic_cm.apps import DemoApp, build_demo
    from mmagic_cm.files.checkpoint import CheckpointError
    try:
        config = config_of(args)
        print(f'loading {osp.basename(config)} ...', flush=True)
        app = DemoApp.from_config(config, args.checkpoint, args.device,
                                  max_images=args.max_images)
    except (ValueError, CheckpointError, FileNotFoundError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    demo = build_demo(app)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=1)
    demo.launch(server_name=args.server_name, server_port=args.server_port,
                share=args.share, ssr_mode=False)
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
