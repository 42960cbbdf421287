"""Training objectives: one small registered module per recipe, built from ``train_cfg``.

The training state (:class:`~.state.TrainingState`) builds one through the
registry: ``train_cfg.type``, or the objective whose ``training_mode`` is the
model's, with the model's preconditioning and UNet config; the objective
owns what its recipe needs besides the online network: the target network
and its EMA schedule, the frozen teacher, the distance metric, the
noise-level sampler. The training state calls

- ``objective(online, x_start, labels, step)`` -> ``{'loss': (N,), ...logs}``;
- ``objective.init_online(online)`` at the start of training (CD: the
  teacher's weights), ``objective.online_changed(online)`` when the online
  weights were replaced (the target follows), and
  ``objective.after_step(online, step)`` after each optimizer step.

The randomness of a step (noise, noise levels, dropout) comes from the
global torch RNG, which the training state seeds per step.
"""
from __future__ import annotations

import copy
from functools import partial
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ..denoiser.precond import Denoiser, KarrasPrecond
from ..models.weights import build_unet, load_unet_from
from ..registry import MODELS
from .dropout import SharedDropout
from .losses import ECT_WEIGHTINGS, build_metric, consistency_loss, ect_loss, edm_loss
from .schedules import (
    ECTSchedule,
    ImprovedSchedule,
    build_schedule,
    lognormal_indices,
    lognormal_sigmas,
    uniform_indices,
)


def check_teacher_file(path: str) -> None:
    """Raise FileNotFoundError (one line) for a local teacher file that is missing."""
    from ..files.checkpoint import find_local_file, is_url
    if path and not is_url(path) and find_local_file(path) is None:
        raise FileNotFoundError(
            f'teacher checkpoint not found: {path} (model.train_cfg.teacher.path); train '
            'the EDM teacher first, or point the config at its weights')


@torch.no_grad()
def update_ema(target: nn.Module, source: nn.Module, rate: float) -> None:
    """``target <- rate * target + (1 - rate) * source``, as the original."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.detach().mul_(rate).add_(s.detach(), alpha=1 - rate)


class FrozenTeacher:
    """A distillation objective's EDM teacher: ``teacher=dict(path, dropout,
    init_from_teacher)`` checked at build, the UNet read on first use, held
    without being registered (no state-dict entries, no DDP, no optimizer).

    Args:
        teacher: the ``train_cfg.teacher`` dict.
        unet_cfg: the student's UNet config (the teacher's architecture).
        mode: the training mode's name, for messages.
        default_dropout: the teacher's dropout when ``teacher.dropout`` is not given
            (None: the student's).
    """

    KEYS = ('path', 'dropout', 'init_from_teacher')

    def __init__(self, teacher: Optional[dict], unet_cfg, mode: str,
                 default_dropout: Optional[float] = None):
        if not teacher or not teacher.get('path'):
            raise ValueError(f'{mode} needs train_cfg.teacher=dict(path=EDM_CHECKPOINT); '
                             'train without a teacher with its training counterpart')
        self.cfg = dict(teacher)
        unknown = set(self.cfg) - set(self.KEYS)
        if unknown:
            raise ValueError(f'train_cfg.teacher: unknown key(s) {sorted(unknown)}; known: '
                             f'{", ".join(self.KEYS)}')
        self.unet_cfg = copy.deepcopy(unet_cfg)
        self.default_dropout = default_dropout
        self.module: Optional[nn.Module] = None

    def get(self, device='cpu') -> nn.Module:
        """The frozen teacher UNet on ``device`` (eval mode), read on first use."""
        if self.module is None:
            path = self.cfg['path']
            check_teacher_file(path)
            cfg = dict(self.unet_cfg)
            default = cfg.get('dropout', 0.0) if self.default_dropout is None \
                else self.default_dropout
            cfg['dropout'] = self.cfg.get('dropout', default)
            teacher = build_unet(cfg, meta=True)
            load_unet_from(teacher, path, local_hint='train_cfg.teacher.path=PATH')
            self.module = teacher.requires_grad_(False).eval()
        return self.module.to(device)

    def init_online(self, online: nn.Module) -> None:
        """The online network starts from the teacher's weights (unless
        ``init_from_teacher=False``)."""
        if self.cfg.get('init_from_teacher', True):
            online.load_state_dict(self.get(next(online.parameters()).device).state_dict())


class Objective(nn.Module):
    """Base: the interface :class:`~.state.TrainingState` calls.

    A subclass registered in ``MODELS`` is selected by ``train_cfg.type`` (its
    name), or by a model's ``training_mode`` when it declares that mode as its
    own ``training_mode`` (:func:`~.state.objective_type`).
    """

    #: the ``training_mode`` that selects this objective (None: by ``train_cfg.type`` only)
    training_mode: Optional[str] = None
    #: the modules :meth:`make_copies` adds (copies of the online network, never optimised)
    copy_names: Tuple[str, ...] = ()

    def __init__(self, precond: KarrasPrecond, unet_cfg=None, online: nn.Module = None):
        super().__init__()
        self.precond = precond

    def d_of(self, net: nn.Module, labels: Optional[torch.Tensor],
            precond: Optional[KarrasPrecond] = None):
        """D(x, σ) of ``net`` (a :class:`Denoiser`) with the labels bound."""
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

    training_mode = 'edm'

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
        loss = edm_loss(self.d_of(online, labels), x_start, sigmas, noise, self.weighting,
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

    training_mode = 'consistency_training'

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

    copy_names = ('target_unet', )

    def teacher_d(self, labels, device):
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
            self.d_of(online, labels), self.d_of(target, labels), x_start, num_scales,
            noise, indices, self.loss_metric, teacher=self.teacher_d(labels, x_start.device),
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

    training_mode = 'consistency_distillation'

    def __init__(self, precond: KarrasPrecond, teacher: Optional[dict] = None,
                 unet_cfg=None, **kwargs):
        super().__init__(precond, **kwargs)
        self.frozen = FrozenTeacher(teacher, unet_cfg, 'consistency_distillation')

    def teacher(self, device='cpu') -> nn.Module:
        """The frozen EDM teacher UNet on ``device``, read on first use."""
        return self.frozen.get(device)

    def teacher_d(self, labels, device):
        return self.d_of(self.teacher(device), labels,
                             self.precond.with_boundary_condition(False))

    def init_online(self, online: nn.Module) -> None:
        self.frozen.init_online(online)


@MODELS.register_module()
class EasyConsistencyTuning(Objective):
    """Easy Consistency Tuning (ECT; Geng et al., ICLR 2025, ``locuslab/ect``).

    Continuous-time consistency training that starts from a diffusion model
    (``train_cfg.init_from``: the EDM teacher's weights): t ~ lognormal, r from
    t by :class:`~.schedules.ECTSchedule` (t − r shrinks by q every
    ``double`` steps), one noise for x_t and x_r, the same dropout masks in
    both passes, the target the online network at r under no-grad (the clean
    image at r = 0), metric ``sqrt(d² + c²) − c``, weight ``1 / (t − r)``.

    Args:
        p_mean, p_std: ln t ~ N(p_mean, p_std²).
        q, double, mapping, k, b: the r(t) schedule (:class:`ECTSchedule`).
        c: the metric's offset (0: the plain L2 norm, ECT's default).
        weighting: 'inverse-gap', ``1 / (t − r)`` (locuslab/ect on CIFAR-10), or
            'snrpk', ``SNR(t) + 1/σ_d²`` (locuslab/ect on ImageNet-64, ``--wt
            snrpk``); :func:`~.losses.ect_weights`.
        scalings: the preconditioning the loss trains through: 'boundary', the
            model's consistency scalings (``c_skip(σ_min) = 1``, ``c_out(σ_min)
            = 0``, which sampling uses too), or 'edm', plain EDM scalings, as
            locuslab/ect trains (its CIFAR-10 ``ECMPrecond`` shifts by its
            σ_min = 0.003 only at evaluation, as this model's sampling then does
            with the precond's ``sigma_min``; its ImageNet-64 EDM2 ``Precond``
            never shifts).
    """

    training_mode = 'ect'

    def __init__(self, precond: KarrasPrecond, p_mean: float = -1.1, p_std: float = 2.0,
                 q: float = 2.0, double: int = 10000, mapping: str = 'sigmoid',
                 k: float = 8.0, b: float = 1.0, c: float = 0.0,
                 weighting: str = 'inverse-gap', scalings: str = 'boundary', **base):
        super().__init__(precond, **base)
        if weighting not in ECT_WEIGHTINGS:
            raise ValueError(f'train_cfg.weighting={weighting!r}: choose one of '
                             f'{", ".join(ECT_WEIGHTINGS)}')
        if scalings not in ('boundary', 'edm'):
            raise ValueError(f"train_cfg.scalings={scalings!r}: choose 'boundary' or 'edm'")
        self.p_mean, self.p_std, self.c = p_mean, p_std, c
        self.weighting, self.scalings = weighting, scalings
        self.schedule = ECTSchedule(q, double, mapping, k, b)

    def forward(self, online, x_start, labels, step) -> Dict[str, torch.Tensor]:
        # the draws in locuslab/ect's order: t, the noise, then dropout
        t = (torch.randn([len(x_start), 1, 1, 1], device=x_start.device) * self.p_std
             + self.p_mean).exp().flatten()
        r = self.schedule(t, step)
        noise = torch.randn_like(x_start)
        precond = self.precond.with_boundary_condition(False) if self.scalings == 'edm' \
            else self.precond
        loss = ect_loss(self.d_of(online, labels, precond), x_start, t, r, noise, self.c,
                        dropout=SharedDropout(online), weighting=self.weighting,
                        sigma_data=self.precond.sigma_data)
        return dict(loss=loss, stage=torch.tensor(float(self.schedule.stage(step))))
