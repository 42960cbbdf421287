"""Shared fixtures; helpers live in :mod:`mmagic_cm.testing` (tests import the package only)."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

import mmagic_cm  # noqa: F401  (registers modules, installs the mmcv stand-in)
from mmagic_cm.testing import TINY_CONFIGS


@pytest.fixture(scope='session', autouse=True)
def _own_cache_home(tmp_path_factory):
    """What the runtimes compile from exported files (OpenVINO, TensorRT) is
    cached under $XDG_CACHE_HOME: the tests' own, not the user's (child
    processes inherit it)."""
    old = os.environ.get('XDG_CACHE_HOME')
    os.environ['XDG_CACHE_HOME'] = str(tmp_path_factory.mktemp('cache_home'))
    yield
    if old is None:
        os.environ.pop('XDG_CACHE_HOME', None)
    else:
        os.environ['XDG_CACHE_HOME'] = old


@pytest.fixture
def tiny_cond_config():
    return osp.join(TINY_CONFIGS, 'cm_tiny_cond.py')


@pytest.fixture
def tiny_uncond_config():
    return osp.join(TINY_CONFIGS, 'cm_tiny_uncond.py')


class StubInception(torch.nn.Module):
    """Stands in for Tero's TorchScript Inception: uint8 images -> features."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 2)
        return x.flatten(1)


@pytest.fixture
def eval_setup(tmp_path, tiny_uncond_config):
    rng = np.random.default_rng(0)
    images = tmp_path / 'images'
    images.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            images / f'{i}.png')
    inception = tmp_path / 'inception.pt'
    torch.jit.script(StubInception()).save(str(inception))
    torch.manual_seed(0)
    from mmengine.config import Config

    from mmagic_cm.registry import MODELS
    unet = MODELS.build(Config.fromfile(tiny_uncond_config).model).unet
    ckpt = tmp_path / 'tiny.pt'
    torch.save(unet.state_dict(), ckpt)
    return dict(images=str(images), inception=str(inception), ckpt=str(ckpt))
