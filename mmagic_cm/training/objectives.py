"""Training objectives: one small registered module per recipe, built from ``train_cfg``.

``ConsistencyModel`` builds one by name (``OBJECTIVES[training_mode]``, or
``train_cfg.type``) with the model's preconditioning and UNet config; the
objective owns what its recipe needs besides the online network: the target
network and its EMA schedule, the frozen teacher, the distance metric, the
noise-level sampler. The model calls

- ``objective(online, x_start, labels, step)`` -> ``{'loss': (N,), ...logs}``;
- ``objective.init_online(online)`` at the start of training (CD: the
  teacher's weights), ``objective.online_changed(online)`` when the online
  weights were replaced (the target follows), and
  ``objective.after_step(online, step)`` after each optimizer step.

The randomness of a step (noise, noise levels, dropout) comes from the
global torch RNG, which the model seeds per step.
"""
from __future__ import annotations

import copy
from functools import partial
from typing import Dict, Optional

import torch
from torch import nn

from ..models.precond import Denoiser, KarrasPrecond
from ..models.weights import build_unet, load_unet_from
from ..registry import MODELS
from .losses import build_metric, consistency_loss, edm_loss
from .schedules import (
    ImprovedSchedule,
    build_schedule,
    lognormal_indices,
    lognormal_sigmas,
    uniform_indices,
)


def check_teacher_file(path: str) -> None:
    """Raise FileNotFoundError (one line) for a local teacher file that is missing."""
    from ..checkpoint import find_local_file, is_url
    if path and not is_url(path) and find_local_file(path) is None:
        raise FileNotFoundError(
            f'teacher checkpoint not found: {path} (model.train_cfg.teacher.path); train '
            'the EDM teacher first, or point the config at its weights')


@torch.no_grad()
def update_ema(target: nn.Module, source: nn.Module, rate: float) -> None:
    """``target <- rate * target + (1 - rate) * source``, as the original."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.detach().mul_(rate).add_(s.detach(), alpha=1 - rate)


class _Hidden:
    """Holds a module without registering it (no state-dict entries, no DDP)."""

    def __init__(self, module: Optional[nn.Module] = None):
        self.module = module


class Objective(nn.Module):
    """Base: the interface :class:`~mmagic_cm.models.ConsistencyModel` calls."""

    def __init__(self, precond: KarrasPrecond, unet_cfg=None, online: nn.Module = None):
        super().__init__()
        self.precond = precond

    def denoiser(self, net: nn.Module, labels: Optional[torch.Tensor],
                 precond: Optional[KarrasPrecond] = None):
        """D(x, σ) of ``net`` with the labels bound."""
        cond = {} if labels is None else {'y': labels}
        return partial(Denoiser(net, precond or self.precond), **cond)

    def init_online(self, online: nn.Module) -> None:
        """Start of training: the online network's weights (default: as initialised)."""

    def make_copies(self, online: nn.Module) -> None:
        """Create what the objective keeps beside the online network (a target
        copy), at the start of training or when a training checkpoint
        arrives; never for a model that only samples."""

    def online_changed(self, online: nn.Module) -> None:
        """The online weights were replaced (loaded, initialised)."""

    def after_step(self, online: nn.Module, step: int) -> None:
        """After optimizer step ``step``."""


@MODELS.register_module()
class EDMObjective(Objective):
    """The EDM teacher: denoising loss at lognormal noise levels.

    Args:
        sigma_sampler: ``dict(p_mean=-1.2, p_std=1.2)`` of ln σ ~ N(p_mean, p_std²).
        weighting: a weight schedule name; default the precond's.
    """

    def __init__(self, precond: KarrasPrecond, sigma_sampler: Optional[dict] = None,
                 weighting: Optional[str] = None, **base):
        super().__init__(precond, **base)
        sigma_sampler = dict(sigma_sampler or {})
        self.p_mean = sigma_sampler.pop('p_mean', -1.2)
        self.p_std = sigma_sampler.pop('p_std', 1.2)
        if sigma_sampler:
            raise ValueError(f'train_cfg.sigma_sampler: unknown key(s) {sorted(sigma_sampler)}; '
                             'known: p_mean, p_std')
        self.weighting = weighting or precond.weight_schedule

    def forward(self, online, x_start, labels, step) -> Dict[str, torch.Tensor]:
        sigmas = lognormal_sigmas(len(x_start), self.p_mean, self.p_std, device=x_start.device)
        noise = torch.randn_like(x_start)
        loss = edm_loss(self.denoiser(online, labels), x_start, sigmas, noise, self.weighting,
                        self.precond.sigma_data)
        return dict(loss=loss)


@MODELS.register_module()
class ConsistencyTraining(Objective):
    """Consistency training (CT, iCT): Euler steps with the clean image.

    Args:
        loss: distance metric name or dict ('l1', 'l2', 'l2-32', 'lpips',
            'pseudo-huber').
        schedule: N(k) and target EMA mu(k) (``dict(type='original'|'improved',
            ...)``); the improved one has no target copy (mu = 0: the online
            network under stop-grad).
        noise_sampler: 'uniform' grid indices, or ``dict(type='lognormal',
            p_mean, p_std)``.
        weighting: weight schedule name, or 'improved' (1 / (σ_n − σ_{n+1})).
    """

    def __init__(self, precond: KarrasPrecond, loss='l2', schedule: Optional[dict] = None,
                 noise_sampler='uniform', weighting: Optional[str] = None,
                 online: nn.Module = None, **base):
        super().__init__(precond, online=online, **base)
        self.loss_metric = build_metric(loss).requires_grad_(False)
        self.schedule = build_schedule(schedule or dict(type='original'))
        # the improved schedule's target is the online network under stop-grad
        self.uses_target_copy = not isinstance(self.schedule, ImprovedSchedule)
        self.noise_sampler = noise_sampler
        self.weighting = weighting or precond.weight_schedule

    def teacher_denoiser(self, labels, device):
        """The teacher's D(x, σ); None: the clean image stands in (CT)."""
        return None

    def indices(self, num_scales: int, x_start: torch.Tensor) -> torch.Tensor:
        if self.noise_sampler == 'uniform':
            return uniform_indices(num_scales, len(x_start), x_start.device)
        sampler = dict(self.noise_sampler)
        sampler.pop('type', None)
        p = self.precond
        return lognormal_indices(num_scales, len(x_start), p.sigma_min, p.sigma_max, p.rho,
                                 device=x_start.device, **sampler)

    def make_copies(self, online: nn.Module) -> None:
        if self.uses_target_copy and not hasattr(self, 'target_unet'):
            self.target_unet = copy.deepcopy(online).requires_grad_(False)

    def forward(self, online, x_start, labels, step) -> Dict[str, torch.Tensor]:
        mu, num_scales = self.schedule(step)
        noise = torch.randn_like(x_start)
        indices = self.indices(num_scales, x_start)
        if self.uses_target_copy and not hasattr(self, 'target_unet'):
            raise RuntimeError('the target network is missing: call make_copies(online) at '
                               'the start of training')
        target = getattr(self, 'target_unet', online)
        p = self.precond
        loss = consistency_loss(
            self.denoiser(online, labels), self.denoiser(target, labels), x_start, num_scales,
            noise, indices, self.loss_metric, teacher=self.teacher_denoiser(labels, x_start.device),
            sigma_min=p.sigma_min, sigma_max=p.sigma_max, rho=p.rho, weighting=self.weighting,
            sigma_data=p.sigma_data)
        return dict(loss=loss, num_scales=torch.tensor(float(num_scales)),
                    target_ema=torch.tensor(float(mu)))

    def online_changed(self, online: nn.Module) -> None:
        if hasattr(self, 'target_unet'):
            self.target_unet.load_state_dict(online.state_dict())

    def after_step(self, online: nn.Module, step: int) -> None:
        if hasattr(self, 'target_unet'):
            mu, _ = self.schedule(step)
            update_ema(self.target_unet, online, mu)


@MODELS.register_module()
class ConsistencyDistillation(ConsistencyTraining):
    """Consistency distillation (CD): Heun steps of a frozen EDM teacher.

    Args:
        teacher: ``dict(path=EDM_CHECKPOINT, dropout=..., init_from_teacher=True)``;
            the teacher is read on first use and never saved in checkpoints.
        unet_cfg: the student's UNet config (the teacher's architecture).
        (the rest as :class:`ConsistencyTraining`)
    """

    def __init__(self, precond: KarrasPrecond, teacher: Optional[dict] = None,
                 unet_cfg=None, **kwargs):
        super().__init__(precond, **kwargs)
        if not teacher or not teacher.get('path'):
            raise ValueError('consistency_distillation needs train_cfg.teacher='
                             'dict(path=EDM_CHECKPOINT); use consistency_training without one')
        self.teacher_cfg = dict(teacher)
        unknown = set(self.teacher_cfg) - {'path', 'dropout', 'init_from_teacher'}
        if unknown:
            raise ValueError(f'train_cfg.teacher: unknown key(s) {sorted(unknown)}; known: '
                             'path, dropout, init_from_teacher')
        self.unet_cfg = copy.deepcopy(unet_cfg)
        self._teacher = _Hidden()

    def teacher(self, device='cpu') -> nn.Module:
        """The frozen EDM teacher UNet on ``device``, read on first use."""
        if self._teacher.module is None:
            path = self.teacher_cfg['path']
            check_teacher_file(path)
            cfg = dict(self.unet_cfg)
            cfg['dropout'] = self.teacher_cfg.get('dropout', cfg.get('dropout', 0.0))
            teacher = build_unet(cfg, meta=True)
            load_unet_from(teacher, path, local_hint='train_cfg.teacher.path=PATH')
            self._teacher.module = teacher.requires_grad_(False).eval()
        return self._teacher.module.to(device)

    def teacher_denoiser(self, labels, device):
        return self.denoiser(self.teacher(device), labels,
                             self.precond.with_boundary_condition(False))

    def init_online(self, online: nn.Module) -> None:
        if self.teacher_cfg.get('init_from_teacher', True):
            device = next(online.parameters()).device
            online.load_state_dict(self.teacher(device).state_dict())
