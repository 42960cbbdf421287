"""``ConsistencyEMAHook``: target and EMA updates after every optimizer step.

A hook rather than code in ``train_step`` so that it runs the same under any
mmengine model wrapper (DDP, FSDP, DeepSpeed), which call the model's
``forward(mode='loss')`` and step the optimizer themselves.
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


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
        model.after_optimizer_step()
