"""Checks before training starts: each problem one line, before any work.

Used by ``tools/train.py``; MMagic's own ``tools/train.py`` meets the same
problems when the run reaches them (a missing teacher when it is first
read, a dataset folder when it is listed).
"""
from __future__ import annotations

import contextlib
import os.path as osp
from typing import Optional


def saved_config(text: str):
    """The config a checkpoint's ``meta['cfg']`` holds, its ``custom_imports``
    not imported (only its entries are read; core-only mode lacks MMagic's)."""
    import os
    import tempfile

    from mmengine.config import Config
    fd, path = tempfile.mkstemp(suffix='.py')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        return Config.fromfile(path, import_custom_modules=False)
    finally:
        os.remove(path)


def check_resume_matches(cfg) -> None:
    """Refuse to resume from a checkpoint that another model config saved."""
    if not cfg.get('resume'):
        return
    path = cfg.get('load_from')
    if path is None:
        from mmengine.runner import find_latest_checkpoint
        path = find_latest_checkpoint(cfg.work_dir)
        if path is None:
            return  # nothing to resume: mmengine starts from scratch
    import torch
    try:
        meta = torch.load(path, map_location='cpu', weights_only=True).get('meta', {})
    except Exception as exc:
        raise ValueError(f'cannot read {path} as a training checkpoint '
                         f'({type(exc).__name__}); resume from a file tools/train.py '
                         'saved') from None
    if 'cfg' not in meta:
        return
    try:
        saved = saved_config(meta['cfg']).model
    except Exception:  # noqa: BLE001 (e.g. FSDP runs before issue 24 dumped device_id=cpu)
        return  # a config mmengine could not read back: nothing to compare with
    for key in ('training_mode', 'unet'):
        if saved.get(key) != cfg.model.get(key):
            raise ValueError(
                f'{path} was saved by another config (model.{key}: {saved.get(key)!r} there, '
                f'{cfg.model.get(key)!r} here); resume with its config, or train into a '
                'new --work-dir')
    ema_now = tuple((cfg.model.get('train_cfg') or {}).get('ema_rates', ()))
    ema_then = tuple((saved.get('train_cfg') or {}).get('ema_rates', ()))
    if ema_now != ema_then:
        raise ValueError(f'{path} has EMA rates {ema_then}, this config {ema_now}; resume '
                         'with its config, or train into a new --work-dir')


def check_training_ranges(cfg) -> None:
    """One-line errors for settings that cannot train: no iterations, an empty
    batch, a learning rate that is not positive, an unknown digits split."""
    loop = cfg.get('train_cfg') or {}
    iters = loop.get('max_iters')
    if iters is not None and (not isinstance(iters, int) or iters < 1):
        raise ValueError(f'train_cfg.max_iters={iters!r}: must be a positive number of '
                         'iterations')
    batch = (cfg.get('train_dataloader') or {}).get('batch_size')
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise ValueError(f'train_dataloader.batch_size={batch!r}: must be >= 1')
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    lr = optimizer.get('lr')
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                           or not lr > 0):
        raise ValueError(f'optim_wrapper.optimizer.lr={lr!r}: must be a positive number')
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    if dataset.get('type') == 'DigitsDataset' and dataset.get('split', 'train') not in (
            'train', 'test', 'all'):
        raise ValueError(f"train_dataloader.dataset.split={dataset.get('split')!r}: choose "
                         "'train', 'test' or 'all'")


def check_training_inputs(cfg) -> None:
    """One-line errors for a missing teacher and an empty or unreadable dataset,
    and for settings that cannot train (:func:`check_training_ranges`)."""
    from .objectives import check_teacher_file
    check_training_ranges(cfg)
    teacher = (cfg.model.get('train_cfg') or {}).get('teacher') or {}
    check_teacher_file(teacher.get('path'))
    loss = (cfg.model.get('train_cfg') or {}).get('loss')
    if loss == 'lpips' or isinstance(loss, dict) and loss.get('type') == 'lpips':
        from .lpips import LPIPSLoss
        kwargs = {} if isinstance(loss, str) else {k: v for k, v in loss.items() if k != 'type'}
        LPIPSLoss(**kwargs).ensure_weights()  # downloads now, or says what to fetch
    dataset = cfg.train_dataloader.dataset
    root = dataset.get('data_root')
    if dataset.get('type') in ('BasicImageDataset', 'ImageNet') and root is not None:
        from ..datasets.folders import check_image_folder
        check_image_folder(osp.join(root, (dataset.get('data_prefix') or {}).get('gt', '')
                                    if isinstance(dataset.get('data_prefix'), dict) else
                                    dataset.get('data_prefix') or ''))


def _intact(path: str) -> bool:
    """Whether a checkpoint file is complete: its zip records and their CRCs check."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues in ``work_dir``, found in the work
    dir itself: mmengine's ``last_checkpoint`` holds an absolute path, so a
    copied work dir would resume from the original's files and a moved one
    would fail. The file it names is looked up by name here, else the newest
    ``iter_*.pth``; a truncated or corrupt one is skipped with a warning that
    names it and the one used. None: nothing to resume.
    """
    import glob
    import re
    import sys
    if not osp.isdir(work_dir):
        return None
    found = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    found.sort(key=lambda p: int(re.findall(r'\d+', osp.basename(p))[0]), reverse=True)
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            named = osp.join(work_dir, osp.basename(f.read().strip()))
        if named in found:
            found.remove(named)
            found.insert(0, named)
    for i, path in enumerate(found):
        if _intact(path):
            if i:
                print(f'warning: {", ".join(found[:i])} is truncated or corrupt; resuming '
                      f'from {path}', file=sys.stderr)
            return path
    if found:
        raise ValueError(f'every checkpoint in {work_dir} is truncated or corrupt '
                         f'({", ".join(found)}); start a new run')
    return None


@contextlib.contextmanager
def cleaned_work_dir(work_dir: str):
    """Context for building and running the runner: a work dir this run created
    is removed again if the run fails before saving any checkpoint (a mistake
    found at the start leaves nothing behind); one with checkpoints is kept."""
    import glob
    import shutil
    existed = osp.exists(work_dir)
    try:
        yield
    except BaseException:
        if not existed and not glob.glob(osp.join(work_dir, '*.pth')):
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
