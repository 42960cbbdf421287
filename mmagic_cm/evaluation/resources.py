"""Checks before an MMagic evaluation run, so that it fails in one line.

MMagic's generative metrics download their feature networks when first
built (Tero Karras' Inception for FID/IS, his VGG16 for precision/recall);
offline, MMagic logs a failed download and raises deep inside the runner.
:func:`check_eval_resources` fetches them up front or says which file to
fetch and where to put it, and checks that the real images are there.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import List, Tuple

from ..files.checkpoint import CheckpointError, resolve_checkpoint

TERO_INCEPTION_URL = ('https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/'
                      'metrics/inception-2015-12-05.pt')
TERO_VGG16_URL = ('https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/'
                  'metrics/vgg16.pt')
INCEPTION_METRICS = ('FrechetInceptionDistance', 'FID-Full', 'IS', 'InceptionScore', 'FID',
                     'TransFID', 'TransIS')
VGG_METRICS = ('PrecisionAndRecall', 'PR')
#: metrics that compare against real images
REAL_METRICS = ('FrechetInceptionDistance', 'FID-Full', 'FID', 'PrecisionAndRecall', 'PR')


class EvaluationSetupError(RuntimeError):
    """A file or folder the evaluation needs is missing."""


def mmagic_cache_dir() -> str:
    from mmagic.utils.io_utils import MMAGIC_CACHE_DIR
    return MMAGIC_CACHE_DIR


def required_files(cfg) -> List[Tuple[str, str, str]]:
    """``(metric, url, local path)`` for each feature network the metrics load."""
    needs = []
    for metric in cfg.get('test_evaluator', {}).get('metrics', []):
        kind = metric.get('type')
        if kind in INCEPTION_METRICS and metric.get('inception_style', 'StyleGAN') == 'StyleGAN':
            path = metric.get('inception_path') or osp.join(
                mmagic_cache_dir(), osp.basename(TERO_INCEPTION_URL))
            needs.append((kind, TERO_INCEPTION_URL, path))
        elif kind in VGG_METRICS and metric.get('vgg16_script'):
            needs.append((kind, TERO_VGG16_URL, metric['vgg16_script']))
    return needs


def _fetch(url: str, path: str, metric: str) -> None:
    if osp.isfile(path):
        return
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    import torch
    try:
        torch.hub.download_url_to_file(url, path, progress=True)
    except Exception as exc:  # any network failure reads the same to a user
        raise EvaluationSetupError(
            f'{metric} needs {url} ({getattr(exc, "reason", exc)}). Without network '
            f'access, download it elsewhere and put it at {path}.') from None


def check_eval_resources(cfg, checkpoint: str) -> str:
    """Fetch or verify everything ``tools/test.py`` needs; returns the local checkpoint.

    Raises:
        EvaluationSetupError / CheckpointError: with one line naming the
        missing file or folder and the fix.
    """
    local_ckpt = resolve_checkpoint(checkpoint, local_hint='a local file as CHECKPOINT')
    for metric, url, path in required_files(cfg):
        _fetch(url, path, metric)
    metrics = cfg.get('test_evaluator', {}).get('metrics', [])
    needs_real = any(m.get('type') in REAL_METRICS and not m.get('inception_pkl')
                     and not m.get('vgg16_pkl') for m in metrics)
    if needs_real:
        dataset = cfg.test_dataloader.dataset
        root = dataset.get('data_root') or ''
        if not osp.isdir(root):
            raise EvaluationSetupError(
                f'real images not found at data_root={root!r}: the metrics compare '
                'against the dataset there; put it there or pass --cfg-options '
                'test_dataloader.dataset.data_root=DIR')
        ann = dataset.get('ann_file')
        if ann and not osp.isfile(osp.join(root, ann)):
            raise EvaluationSetupError(
                f'annotation file {osp.join(root, ann)} not found (MMagic\'s ImageNet '
                'dataset lists its images there, one "path label" per line)')
    return local_ckpt


__all__ = ['CheckpointError', 'EvaluationSetupError', 'check_eval_resources',
           'required_files']
