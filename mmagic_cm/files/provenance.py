"""Provenance of trained weights: which config, iteration, EMA rate and commit made them.

Training checkpoints get ``meta['commit']`` (``WeightsOnlyCheckpointHook``);
``tools/export_weights.py`` writes the provenance into the bare UNet file as
the state dict's ``_metadata['mmagic_cm']`` entry, which ``torch.load`` (also
``weights_only``) keeps and ``load_state_dict`` ignores, so the file stays
the released format. ``read_provenance(path)`` reads it back.
"""
from __future__ import annotations

import os.path as osp
import subprocess
from collections import OrderedDict
from typing import Mapping, Optional

KEY = 'mmagic_cm'


def git_commit(path: Optional[str] = None) -> Optional[str]:
    """The commit checked out at ``path`` (default: this package's checkout),
    with ``-dirty`` when tracked files differ from it; None outside git."""
    where = path or osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    try:
        head = subprocess.run(['git', '-C', where, 'rev-parse', 'HEAD'], capture_output=True,
                              text=True, timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(['git', '-C', where, 'status', '--porcelain',
                                '--untracked-files=no'], capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ('-dirty' if dirty.stdout.strip() else '')


def checkpoint_provenance(checkpoint: Mapping, ema: Optional[float]) -> dict:
    """What an mmengine training checkpoint says of itself: config file name,
    experiment, iteration, the EMA rate exported, commit (None when unknown)."""
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, Mapping) else {}
    meta = meta if isinstance(meta, Mapping) else {}
    config = meta.get('config_name')
    if config is None and isinstance(meta.get('experiment_name'), str):
        config = meta['experiment_name'].rsplit('_', 2)[0] + '.py'
    iteration = meta.get('iter')
    return dict(config=config, experiment=meta.get('experiment_name'),
                iteration=int(iteration) if iteration is not None else None,
                ema=ema, commit=meta.get('commit'))


def attach(state: Mapping, provenance: dict) -> OrderedDict:
    """``state`` as an OrderedDict carrying ``provenance`` in its ``_metadata``."""
    out = OrderedDict(state)
    out._metadata = OrderedDict({KEY: {k: v for k, v in provenance.items()}})
    return out


def read_provenance(path: str) -> Optional[dict]:
    """The provenance stored in an exported weights file, or None."""
    import torch
    state = torch.load(path, map_location='cpu', weights_only=True)
    meta = getattr(state, '_metadata', None) or {}
    found = meta.get(KEY)
    return dict(found) if found is not None else None
