"""Optimisation: bf16 autocast on any device, and EDM2's inverse-square-root lr decay.

mmengine's ``AmpOptimWrapper`` refuses to run without a GPU. bf16 keeps
fp32's exponent range, so no loss scaling is needed: autocast in the forward
pass is all there is to it. mmengine has no inverse-square-root schedule
(FastGen's sCM and locuslab/ect's ImageNet recipes use one):
:class:`InverseSquareRootLR`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import OPTIM_WRAPPERS, PARAM_SCHEDULERS


@OPTIM_WRAPPERS.register_module()
class BF16AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward pass runs under bf16 autocast."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device, dtype=torch.bfloat16):
            yield


@PARAM_SCHEDULERS.register_module()
class InverseSquareRootLR(LRSchedulerMixin, _ParamScheduler):
    """EDM2's learning-rate decay (Karras et al. 2024, "Analyzing and Improving
    the Training Dynamics of Diffusion Models"), as NVlabs FastGen's
    ``LambdaInverseSquareRootScheduler`` and locuslab/ect's
    ``learning_rate_schedule``: at iteration n (from 0),

        lr(n) = lr_0 / sqrt(max(n / decay_steps, 1)) · min(n / warmup_steps, 1)

    (no ramp with ``warmup_steps=0``; constant with ``decay_steps=0``). The value
    is computed from the base lr and the step count, so it resumes exactly;
    it does not chain with other lr schedulers.

    Args:
        decay_steps: iterations at the full lr before the decay starts
            (FastGen's sCM on ImageNet-64: 35,000; ECT's ImageNet-64: 2,000).
        warmup_steps: iterations of a linear ramp from 0 (FastGen: 0).
        (the rest as mmengine's schedulers; ``by_epoch=False``: per iteration)
    """

    def __init__(self, optimizer, decay_steps: int = 35000, warmup_steps: int = 0,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = False,
                 verbose: bool = False):
        if decay_steps < 0 or warmup_steps < 0:
            raise ValueError('InverseSquareRootLR needs decay_steps >= 0 and warmup_steps '
                             f'>= 0, got {decay_steps}, {warmup_steps}')
        self.decay_steps, self.warmup_steps = decay_steps, warmup_steps
        super().__init__(optimizer, begin=begin, end=end, last_step=last_step,
                         by_epoch=by_epoch, verbose=verbose)  # the mixin adds 'lr'

    def factor(self, n: int) -> float:
        """The multiplier of the base lr at iteration ``n``."""
        f = 1.0
        if self.decay_steps > 0 and n > self.decay_steps:
            f /= math.sqrt(n / self.decay_steps)
        if n < self.warmup_steps:
            f *= n / self.warmup_steps
        return f

    def _get_value(self):
        return [base * self.factor(self.last_step) for base in self.base_values]
