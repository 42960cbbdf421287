"""Training hooks: target/EMA updates, and checkpoints that load ``weights_only``.

``ConsistencyEMAHook``: target and EMA updates after every optimizer step.

A hook rather than code in ``train_step`` so that it runs the same under any
mmengine model wrapper (DDP, FSDP, DeepSpeed), which call the model's
``forward(mode='loss')`` and step the optimizer themselves.
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import nullcontext

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP


@HOOKS.register_module()
class ConsistencyEMAHook(Hook):
    """After each training iteration: ``target <- mu(k) target + (1 - mu(k)) online``,
    every EMA copy at its rate, and the model's step counter ``k += 1``.

    ``k`` is the model's ``train_step_count`` buffer, saved in checkpoints,
    so a resumed run uses the N(k) and mu(k) it would have used.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        # FSDP: each rank holds a slice of every flat parameter; the updates
        # need whole tensors, written back to the slices after
        whole = (FSDP.summon_full_params(runner.model, writeback=True)
                 if isinstance(runner.model, FSDP) else nullcontext())
        with whole:
            model.after_optimizer_step()


def _to_plain(obj):
    """numpy and HistoryBuffer objects -> tensors, numbers and tagged dicts."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {'__history_buffer__': True, 'log': _to_plain(log), 'count': _to_plain(count),
                'max_length': obj.max_length}
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        out = type(obj)() if type(obj) in (dict, OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _to_plain(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_plain(v) for v in obj)
    return obj


def _from_plain(obj):
    from mmengine.logging import HistoryBuffer
    if isinstance(obj, dict):
        if obj.get('__history_buffer__'):
            buf = HistoryBuffer(max_length=obj['max_length'])
            for value, count in zip(obj['log'].tolist(), obj['count'].tolist()):
                buf.update(value, count)
            return buf
        for k, v in obj.items():
            obj[k] = _from_plain(v)
    return obj


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Keep training checkpoints loadable with ``torch.load(weights_only=True)``,
    and record in their ``meta`` the config file and the commit that trained them.

    mmengine stores its log history as ``HistoryBuffer`` objects holding numpy
    arrays, which ``weights_only`` refuses (torch >= 2.6 makes it the
    default, so mmengine could not even resume its own files). Before a save
    they become tensors and tagged dicts; after a load, buffers again. A
    resumed run follows its config's ``param_scheduler`` even where the
    checkpoint was saved under another (:func:`~.optim.follow_config_schedule`).
    """

    priority = 'VERY_LOW'

    def before_run(self, runner) -> None:
        from ..files.provenance import git_commit
        self.commit = git_commit()
        self.config_name = getattr(runner.cfg, 'filename', None)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # provenance for tools/export_weights.py: the commit and config that trained it
        meta = checkpoint.setdefault('meta', {})
        meta.setdefault('commit', getattr(self, 'commit', None))
        name = getattr(self, 'config_name', None)
        meta.setdefault('config_name', name.rsplit('/', 1)[-1] if name else None)
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = _to_plain(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            _from_plain(checkpoint['message_hub'].get('log_scalars', {}))
        if getattr(runner, '_resume', False):  # mmengine restores schedulers after this
            from .optim import follow_config_schedule
            line = follow_config_schedule(checkpoint, runner.cfg.get('param_scheduler'),
                                          (runner.cfg.get('train_cfg') or {}).get('max_iters'))
            if line:
                runner.logger.warning(line)
