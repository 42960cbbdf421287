"""Optimisation: bf16 autocast on any device, EDM2's inverse-square-root lr decay,
and resuming with the config's schedule.

mmengine's ``AmpOptimWrapper`` refuses to run without a GPU. bf16 keeps
fp32's exponent range, so no loss scaling is needed: autocast in the forward
pass is all there is to it. mmengine has no inverse-square-root schedule
(FastGen's sCM and locuslab/ect's ImageNet recipes use one):
:class:`InverseSquareRootLR`. mmengine resumes a run with the schedulers'
state saved in the checkpoint, so a schedule changed in the config (a
longer decay, a later milestone) would silently not apply:
:func:`follow_config_schedule`.
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Optional

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


def _plain(obj):
    """Config values as plain dicts and lists, for comparison."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _with_ends(schedulers, max_iters):
    """Plain scheduler configs with mmengine's default ``end`` (``max_iters``) filled in."""
    out = _plain(list(schedulers))
    for s in out:
        if not s.get('by_epoch', True) and max_iters is not None:
            s.setdefault('end', max_iters)
    return out


def follow_config_schedule(checkpoint: dict, param_scheduler,
                           max_iters: Optional[int] = None) -> Optional[str]:
    """Make a resumed run follow ``param_scheduler`` (the config's) when the
    checkpoint was saved under another schedule.

    mmengine restores each scheduler from the checkpoint's state, ``begin``,
    ``end`` and ``T_max`` included, so a run resumed after the schedule was
    changed in its config would go on with the old one. When the config saved
    in ``checkpoint['meta']['cfg']`` has a different ``param_scheduler``, this
    builds the config's schedulers on a stand-in optimizer with the
    checkpoint's parameter groups, steps them to the checkpoint's iteration
    and writes their state, and the values they give there (the learning rate),
    into ``checkpoint`` in place: the run then goes on as a run of the new
    config from the start would, whose first iterations had the same rates.

    Args:
        checkpoint: a training checkpoint as mmengine loads it (changed in place).
        param_scheduler: the config's list of scheduler configs (per iteration).
        max_iters: the config's ``train_cfg.max_iters``: the ``end`` of a
            scheduler that sets none, as mmengine's runner makes it.

    Returns:
        A line for the log when the checkpoint's schedule was replaced or had to
        be kept; ``None`` when there was nothing to do.
    """
    from mmengine.registry import PARAM_SCHEDULERS

    from .checks import saved_config
    meta = checkpoint.get('meta') or {}
    saved_text = meta.get('cfg')
    states = checkpoint.get('param_schedulers')
    if not saved_text or not isinstance(states, list) or param_scheduler is None:
        return None
    if isinstance(param_scheduler, dict):
        param_scheduler = [param_scheduler]
    try:
        saved_cfg = saved_config(saved_text)
    except Exception:  # noqa: BLE001 (a config mmengine cannot read back: keep its state)
        return None
    saved = saved_cfg.get('param_scheduler')
    if saved is None:
        return None
    if isinstance(saved, dict):
        saved = [saved]
    saved_iters = (saved_cfg.get('train_cfg') or {}).get('max_iters')
    new = _with_ends(param_scheduler, max_iters)
    if _with_ends(saved, saved_iters) == new:
        return None
    groups = (checkpoint.get('optimizer') or {}).get('param_groups')
    if any(s.get('by_epoch', True) for s in new) or not groups:
        return ('param_scheduler differs from the checkpoint\'s, but only per-iteration '
                'schedules of a single optimizer can be moved to another: resuming with '
                'the checkpoint\'s schedule')
    # stand-in groups: the checkpoint's settings, the rate the run started with
    stand_in = []
    for g in groups:
        group = {k: v for k, v in g.items() if k not in ('params', 'lr')}
        group.update(params=[torch.zeros(1, requires_grad=True)], lr=g.get('initial_lr', g['lr']))
        stand_in.append(group)
    optimizer = torch.optim.SGD(stand_in)
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer)) for s in new]
    iteration = int(meta.get('iter', 0))
    with warnings.catch_warnings():  # the stand-in takes no optimizer steps
        warnings.simplefilter('ignore', UserWarning)
        for _ in range(iteration):  # as mmengine's ParamSchedulerHook, after each iteration
            for scheduler in schedulers:
                scheduler.step()
    keys = {s.param_name for s in schedulers}
    old_lr = groups[0].get('lr')
    for g, s in zip(groups, optimizer.param_groups):
        for key in keys:
            g[key] = s[key]
    checkpoint['param_schedulers'] = [s.state_dict() for s in schedulers]
    # max_iters counts: it is the end of a scheduler that sets none
    return (f'param_scheduler (or max_iters, its default end) differs from the '
            f'checkpoint\'s: resuming with the config\'s, as if it had run from the start '
            f'(iteration {iteration}: lr {old_lr:.4g} -> {groups[0].get("lr"):.4g})')
