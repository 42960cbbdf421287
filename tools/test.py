#!/usr/bin/env python
"""Evaluate a checkpoint the MMagic way: FID, IS and precision/recall.

    python tools/test.py CONFIG CHECKPOINT [--out metrics.json] [--work-dir DIR]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch]

CHECKPOINT is a released raw ``.pt`` file, a checkpoint saved by this
project, or a URL. The metrics and the real-image dataset come from the
config (``configs/_base_/gen_eval.py`` and ``configs/_base_/datasets/``).
Before the run starts, missing metric weights are fetched (or named, with
where to put them, when offline) and the dataset folder is checked.
Under torchrun (``--launcher pytorch``) each process draws its share.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmagic_cm.cli import cfg_options_action
    DictAction = cfg_options_action()  # noqa: N806 (mmengine's, refusing items without '=')
    p = argparse.ArgumentParser(description='Evaluate a consistency model (MMagic metrics)')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file or URL')
    p.add_argument('--out', help='write the metrics to this JSON file')
    p.add_argument('--work-dir', help='folder for logs (default work_dirs/CONFIG_NAME)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. test_evaluator.metrics.0.fake_nums=5000')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    p.add_argument('--verbose', action='store_true',
                   help='also show the third-party warnings MMagic prints on import')
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmagic_cm.cli.quiet import import_mmagic, known_warnings_silenced, quiet_runner_logger
    import_mmagic(args.verbose)
    from mmengine.config import Config
    from mmengine.config.utils import ConfigParsingError

    import mmagic_cm  # noqa: F401
    from mmagic_cm.evaluation import EvaluationSetupError, check_eval_resources
    from mmagic_cm.files.checkpoint import CheckpointError

    try:
        if not osp.isfile(args.config):
            raise FileNotFoundError(f'config file not found: {args.config}')
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(args.cfg_options)
        cfg.launcher = args.launcher
        cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
            'work_dirs', osp.splitext(osp.basename(args.config))[0])
        # the plugin's loader reads raw released files and URLs, strictly
        cfg.model.model_path = check_eval_resources(cfg, args.checkpoint)
        cfg.model.pop('train_cfg', None)  # evaluation samples: no training copies
        cfg.load_from = None
    except (ValueError, FileNotFoundError, CheckpointError, EvaluationSetupError,
            ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2

    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    quiet_runner_logger(runner, args.verbose)
    captured = {}

    class CaptureMetrics(Hook):
        # MMagic's MultiTestLoop hands the metrics to hooks, not to the caller

        def after_test_epoch(self, runner, metrics=None):
            captured.update(metrics or {})

    runner.register_hook(CaptureMetrics(), 'LOWEST')
    try:
        with known_warnings_silenced(args.verbose):  # MMagic's TorchScript Inception
            runner.test()
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    metrics = {k: float(v) for k, v in captured.items() if isinstance(v, (int, float))}
    if args.out:
        import mmengine
        mmengine.dump(metrics, args.out)
    print(metrics)
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
