"""Shared fixtures; helpers live in :mod:`mmagic_cm.testing` (tests import the package only)."""
from __future__ import annotations

import os.path as osp

import pytest

import mmagic_cm  # noqa: F401  (registers modules, installs the mmcv stand-in)
from mmagic_cm.testing import TINY_CONFIGS


@pytest.fixture
def tiny_cond_config():
    return osp.join(TINY_CONFIGS, 'cm_tiny_cond.py')


@pytest.fixture
def tiny_uncond_config():
    return osp.join(TINY_CONFIGS, 'cm_tiny_uncond.py')
