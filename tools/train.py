#!/usr/bin/env python
"""Train a consistency model (CD, CT, ECT, sCT, sCD) or its EDM teacher with mmengine.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp [fp16|bf16]]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm] [--strategy ddp|fsdp]

Many processes: ``tools/dist_train.sh CONFIG NPROC [...]`` (torchrun + DDP;
gloo on CPU; ``--strategy fsdp`` shards the model with FSDP instead); on a
Slurm cluster ``tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR [...]``.
``MMAGIC_CM_CORE_ONLY=1``: torch and mmengine alone, no MMagic (the digits
configs; :mod:`mmagic_cm.training.core_only`).
Checkpoints, logs and the config go to the work dir (default
``work_dirs/CONFIG_NAME``); ``--resume`` continues the latest one there (or
the given file) exactly: the same N(k), mu(k), EMAs, optimizer state and
data order as an uninterrupted run.
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
    p = argparse.ArgumentParser(description='Train a consistency model')
    p.add_argument('config', help='training config file')
    p.add_argument('--work-dir', help='folder for checkpoints and logs')
    p.add_argument('--resume', nargs='?', const='auto', default=None,
                   help='resume from the latest checkpoint in the work dir, or from CKPT')
    p.add_argument('--amp', nargs='?', const='auto', default=None,
                   choices=['auto', 'fp16', 'bf16'],
                   help='mixed precision: fp16 on CUDA, bf16 on CPU (auto), or as given')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. train_cfg.max_iters=100')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--strategy', choices=['ddp', 'fsdp'], default='ddp',
                   help='many processes: replicate the model (ddp) or shard parameters, '
                   'gradients and optimizer state across them (fsdp; mmengine FlexibleRunner)')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    p.add_argument('--verbose', action='store_true',
                   help='also show the third-party warnings MMagic prints on import')
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def prepare_config(args: argparse.Namespace):
    """Config with the command line applied; checks the files it needs."""
    import torch

    from mmagic_cm.training.checks import (
        check_resume_matches,
        check_training_inputs,
        resume_checkpoint,
    )
    from mmagic_cm.training.core_only import core_only_config, load_training_config

    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = load_training_config(args.config)  # core-only: without MMagic's metrics
    cfg.merge_from_dict(args.cfg_options)
    core_only_config(cfg)  # core-only: the plugin's scope; MMagic's classes refused
    cfg.launcher = args.launcher
    if args.launcher in ('pytorch', 'slurm') and not torch.cuda.is_available():
        cfg.env_cfg.dist_cfg.backend = 'gloo'  # NCCL needs GPUs
        # CPU modules take no device_ids in DDP
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
    if args.strategy == 'fsdp':
        if args.launcher not in ('pytorch', 'slurm'):
            raise ValueError('--strategy fsdp shards the model across processes: start them '
                             'with tools/dist_train.sh CONFIG NPROC --strategy fsdp')
        wrapper = dict(type='MMFullyShardedDataParallel', use_orig_params=True)
        if not torch.cuda.is_available():
            # mmengine's default is LOCAL_RANK's GPU; a string, as the config file the
            # run dumps (and --resume reads back) must be Python (torch.device prints as cpu)
            wrapper['device_id'] = 'cpu'
        # 'full': rank 0 saves an ordinary checkpoint (resume, export_weights, sampling);
        # mmengine's FSDPStrategy with the model's own key names (mmagic_cm.training.fsdp)
        import mmagic_cm.training.fsdp  # noqa: F401  (registers ConsistencyFSDPStrategy)
        cfg.strategy = dict(type='ConsistencyFSDPStrategy', model_wrapper=wrapper,
                            state_dict_cfg='full')
        cfg.pop('model_wrapper_cfg', None)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        dtype = args.amp
        if dtype == 'auto':
            dtype = 'fp16' if torch.cuda.is_available() else 'bf16'
        if dtype == 'fp16' and not torch.cuda.is_available():
            raise ValueError('--amp fp16 needs CUDA; on the CPU use --amp bf16')
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.dtype = {'fp16': 'float16', 'bf16': 'bfloat16'}[dtype]
        else:
            # mmengine's AmpOptimWrapper is GPU-only; bf16 needs no loss scale
            cfg.optim_wrapper.type = 'BF16AutocastOptimWrapper'
    if args.resume == 'auto':  # the work dir's own files: copied or moved dirs resume
        cfg.load_from = resume_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None  # nothing there: a fresh start
    elif args.resume:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'checkpoint to resume from not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    check_training_inputs(cfg)
    check_resume_matches(cfg)
    return cfg


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    # denormal floats (tiny gradients and Adam moments of a fine-tuned network)
    # make CPU math many times slower; flushed to zero, before torch starts its
    # threads (they inherit the setting), and back to the default after
    torch.set_flush_denormal(True)
    try:
        return train(args)
    finally:
        torch.set_flush_denormal(False)


def train(args: argparse.Namespace) -> int:
    from mmagic_cm.cli.quiet import import_mmagic, quiet_runner_logger
    import_mmagic(args.verbose)
    from mmengine.config.utils import ConfigParsingError

    import mmagic_cm  # noqa: F401  (registers models, datasets, hooks)
    from mmagic_cm.files.checkpoint import CheckpointError
    try:
        if args.launcher == 'slurm':  # an srun task: torch's variables from Slurm's
            from mmagic_cm.distributed.launch import slurm_env
            slurm_env()
        cfg = prepare_config(args)
    except (ValueError, FileNotFoundError, CheckpointError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2

    import torch
    from mmengine.runner import Runner

    from mmagic_cm.training.checks import cleaned_work_dir
    if args.launcher in ('pytorch', 'slurm') and not torch.cuda.is_available() \
            and not torch.distributed.is_initialized():
        # mmengine's pytorch and slurm launchers pin a CUDA device per rank; on
        # the CPU start the gloo process group here (the runner then uses it)
        torch.distributed.init_process_group('gloo')
    try:
        with cleaned_work_dir(cfg.work_dir):
            if args.strategy == 'fsdp':
                import warnings

                from mmengine.runner import FlexibleRunner
                # mmengine 0.10 calls torch's older FSDP state-dict API (works, warns)
                warnings.filterwarnings('ignore', message=r'FSDP\.state_dict_type',
                                        category=FutureWarning)
                runner = FlexibleRunner.from_cfg(cfg)
            else:
                runner = Runner.from_cfg(cfg)
            quiet_runner_logger(runner, args.verbose)
            runner.train()
    except (FloatingPointError, CheckpointError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
