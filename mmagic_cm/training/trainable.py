"""The training half of :class:`~mmagic_cm.models.ConsistencyModel`.

``train_cfg`` of the model selects the objective by ``training_mode``:

- ``'edm'``: the teacher; denoising loss with lognormal noise levels and the
  denoiser's ``weight_schedule``;
- ``'consistency_distillation'``: Heun steps of a frozen EDM teacher
  (``teacher=dict(path=..., dropout=...)``) against a target network;
- ``'consistency_training'``: Euler steps with the clean image.

The target network follows mu(k) of the ``schedule`` (no copy when mu is
always 0, the improved recipe: the online network under stop-grad). EMA
copies at ``ema_rates`` (mmengine ``ExponentialMovingAverage`` wrappers) live
in the model and so in every checkpoint. :class:`ConsistencyEMAHook` calls
:meth:`TrainableMixin.after_optimizer_step` after each iteration.

Each step's randomness (noise, noise levels, dropout) comes from a generator
seeded by ``(train_cfg.seed, step, rank)``: a resumed run draws what the
uninterrupted one would have.
"""
from __future__ import annotations

import copy
from typing import Dict, Optional

import torch
from mmengine.dist import get_rank
from mmengine.model import ExponentialMovingAverage
from torch import nn

from ..models.denoiser import KarrasDenoiser
from .losses import build_metric, consistency_loss, edm_loss
from .schedules import (
    ImprovedSchedule,
    build_schedule,
    lognormal_indices,
    lognormal_sigmas,
    uniform_indices,
)

TRAINING_MODES = ('edm', 'consistency_distillation', 'consistency_training')


def ema_key(rate: float) -> str:
    """ModuleDict key of the EMA copy at ``rate`` (dots are not allowed)."""
    return 'ema_' + repr(float(rate)).replace('.', 'p')


@torch.no_grad()
def update_ema(target: nn.Module, source: nn.Module, rate: float) -> None:
    """``target <- rate * target + (1 - rate) * source``, as the original."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.detach().mul_(rate).add_(s.detach(), alpha=1 - rate)


class _NotAModule:
    """Holds a module without registering it (no state-dict entries, no DDP)."""

    def __init__(self, module: Optional[nn.Module] = None):
        self.module = module


class TrainableMixin:
    """Training state and losses; mixed into ``ConsistencyModel``."""

    def setup_training(self, train_cfg: Optional[Dict], unet_cfg) -> None:
        """Build the training state, unless the model was built to sample.

        A model whose weights come from ``model_path`` (built on the meta
        device) samples only: it gets no target/EMA copies and no step
        counter, so released and shipped files load into it strictly.
        ``tools/train.py`` clears ``model_path`` to train.
        """
        self.train_cfg = dict(train_cfg or {})
        self.trainable = bool(train_cfg) and not self.weights_pending
        if not self.trainable:
            return
        if self.training_mode not in TRAINING_MODES:
            raise ValueError(f'training_mode {self.training_mode!r} cannot train; choose '
                             f'one of {", ".join(TRAINING_MODES)}')
        tc = self.train_cfg
        self.register_buffer('train_step_count', torch.zeros((), dtype=torch.long))
        self.loss_metric = build_metric(tc.get('loss', 'l2'))
        for p in self.loss_metric.parameters():
            p.requires_grad_(False)
        if self.training_mode != 'edm':
            self.schedule = build_schedule(tc.get('schedule', dict(type='original')))
            if not isinstance(self.schedule, ImprovedSchedule):
                self.target_unet = copy.deepcopy(self.unet).requires_grad_(False)
        self.ema_rates = tuple(float(r) for r in tc.get('ema_rates', ()))
        self.ema_unets = nn.ModuleDict({
            ema_key(r): ExponentialMovingAverage(self.unet, momentum=1 - r)
            for r in self.ema_rates
        })
        for ema in self.ema_unets.values():
            ema.requires_grad_(False)
        teacher = tc.get('teacher')
        if self.training_mode == 'consistency_distillation' and not teacher:
            raise ValueError('consistency_distillation needs train_cfg.teacher='
                             'dict(path=EDM_CHECKPOINT); use consistency_training without one')
        self._teacher = _NotAModule()
        self._teacher_cfg = dict(teacher or {})
        self._unet_cfg = copy.deepcopy(unet_cfg)

    # -------------------------------------------------------------- teacher
    def teacher_path(self) -> Optional[str]:
        return self._teacher_cfg.get('path') if hasattr(self, '_teacher_cfg') else None

    def check_training_files(self) -> None:
        """Raise FileNotFoundError now for a missing teacher checkpoint."""
        from ..checkpoint import find_local_file, is_url
        path = self.teacher_path()
        if path and not is_url(path) and find_local_file(path) is None:
            raise FileNotFoundError(
                f'teacher checkpoint not found: {path} (train_cfg.teacher.path); train the '
                'EDM teacher first or point the config at its weights')

    def teacher(self) -> nn.Module:
        """The frozen EDM teacher UNet, loaded on first use."""
        if self._teacher.module is None:
            from ..checkpoint import check_unet_state_dict, load_unet_state_dict
            from ..models.consistency_model import build_unet
            self.check_training_files()
            cfg = dict(self._unet_cfg)
            cfg['dropout'] = self._teacher_cfg.get('dropout', cfg.get('dropout', 0.0))
            with torch.device('meta'):
                teacher = build_unet(cfg)
            state = load_unet_state_dict(self._teacher_cfg['path'],
                                         local_hint='train_cfg.teacher.path=PATH')
            check_unet_state_dict(teacher, state, self._teacher_cfg['path'])
            state = {k: v.float() for k, v in state.items()}
            teacher.load_state_dict(state, strict=True, assign=True)
            teacher.requires_grad_(False).eval()
            self._teacher.module = teacher
        return self._teacher.module.to(self.device)

    # ---------------------------------------------------------------- losses
    def _step_seed(self, step: int) -> int:
        return hash((int(self.train_cfg.get('seed', 0)), step, get_rank())) & (2**62 - 1)

    def training_loss(self, x_start: torch.Tensor, labels: Optional[torch.Tensor]
                      ) -> Dict[str, torch.Tensor]:
        """Loss of one batch at the current step; ``{'loss': ..., ...}`` for logging."""
        if not self.trainable:
            raise ValueError('this model cannot train: it has no train_cfg, or it was built to '
                             'sample (model_path set); tools/train.py builds it for training')
        step = int(self.train_step_count)
        kwargs = {} if labels is None else {'y': labels}
        den = self.denoiser
        devices = [x_start.device] if x_start.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._step_seed(step))
            if self.training_mode == 'edm':
                sigma = self.train_cfg.get('sigma_sampler', {})
                sigmas = lognormal_sigmas(len(x_start), sigma.get('p_mean', -1.2),
                                          sigma.get('p_std', 1.2), device=x_start.device)
                noise = torch.randn_like(x_start)
                loss = edm_loss(self._denoise_fn(self.unet, kwargs), x_start, sigmas, noise,
                                den.weight_schedule, den.sigma_data)
                log = {}
            else:
                mu, num_scales = self.schedule(step)
                noise = torch.randn_like(x_start)
                sampler = self.train_cfg.get('noise_sampler', 'uniform')
                if sampler == 'uniform':
                    indices = uniform_indices(num_scales, len(x_start), x_start.device)
                else:
                    sampler = dict(sampler)
                    sampler.pop('type', None)
                    indices = lognormal_indices(num_scales, len(x_start), den.sigma_min,
                                                den.sigma_max, den.rho, device=x_start.device,
                                                **sampler)
                target = getattr(self, 'target_unet', self.unet)
                teacher = None
                if self.training_mode == 'consistency_distillation':
                    teacher = self._denoise_fn(
                        self.teacher(), kwargs,
                        KarrasDenoiser(den.sigma_data, den.sigma_min, den.sigma_max, den.rho,
                                       distillation=False))
                loss = consistency_loss(
                    self._denoise_fn(self.unet, kwargs), self._denoise_fn(target, kwargs),
                    x_start, num_scales, noise, indices, self.loss_metric, teacher=teacher,
                    sigma_min=den.sigma_min, sigma_max=den.sigma_max, rho=den.rho,
                    weighting=self.train_cfg.get('weighting', den.weight_schedule),
                    sigma_data=den.sigma_data)
                log = dict(num_scales=torch.tensor(float(num_scales)),
                           target_ema=torch.tensor(float(mu)))
        loss = loss.mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f'the training loss is {loss.item()} at step {step}; stopping. Checkpoints '
                'already saved are kept: resume from the last one with a lower lr or '
                'gradient clipping (optim_wrapper.clip_grad)')
        return dict(loss=loss, **log)

    def _denoise_fn(self, unet: nn.Module, kwargs: Dict, denoiser=None):
        denoiser = denoiser or self.denoiser

        def denoise(x, sigma):
            return denoiser.denoise(unet, x, sigma, **kwargs)[1]

        return denoise

    # ---------------------------------------------------------- after a step
    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Target EMA with mu(k), EMA copies, then ``k += 1``."""
        if not self.trainable:
            return
        step = int(self.train_step_count)
        if hasattr(self, 'target_unet'):
            mu, _ = self.schedule(step)
            update_ema(self.target_unet, self.unet, mu)
        for ema in self.ema_unets.values():
            ema.update_parameters(self.unet)
        self.train_step_count += 1

    def init_training_weights(self) -> None:
        """Start of training: online <- ``train_cfg.init_from`` or the teacher (CD);
        target and EMAs <- online."""
        if not self.trainable:
            return
        init_from = self.train_cfg.get('init_from')
        if init_from:
            from ..checkpoint import check_unet_state_dict, load_unet_state_dict
            state = load_unet_state_dict(init_from, local_hint='train_cfg.init_from=PATH')
            check_unet_state_dict(self.unet, state, init_from)
            self.unet.load_state_dict(state)
        elif self.training_mode == 'consistency_distillation' and self._teacher_cfg.get(
                'init_from_teacher', True):
            self.unet.load_state_dict(self.teacher().state_dict())
        if hasattr(self, 'target_unet'):
            self.target_unet.load_state_dict(self.unet.state_dict())
        for ema in self.ema_unets.values():
            ema.module.load_state_dict(self.unet.state_dict())
