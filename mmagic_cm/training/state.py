"""A ``ConsistencyModel``'s training state: objective, target and EMA copies, step counter.

A model with ``train_cfg`` builds one :class:`TrainingState` through the
registry (``MODELS.build(dict(type='TrainingState', model=..., unet_cfg=...))``):
``models/`` never imports this layer. The objective is found through the
registry too: ``train_cfg.type``, or the registered :class:`~.objectives.Objective`
that declares the model's ``training_mode`` (:func:`objective_type`).

The state's modules and tensors are attributes of the model itself
(``train_step_count``, ``objective``, ``ema_unets``), so that checkpoints
keep the keys of earlier releases: ``train_step_count``, ``ema_unets.*``
and, renamed by the model's state-dict hook
(:func:`~mmagic_cm.models.weights.plain_state_keys`), the objective's
``target_unet.*``, ``loss_metric.*``, ``weight_net.*``. This object holds the
settings (``ema_rates``, ``seed``, ``init_from``, the objective's config) and
the steps of training, each taking the model:

- :meth:`start`: the start of training (online weights, copies);
- :meth:`make_copies`: the target and EMA copies, created on demand;
- :meth:`loss`: one batch's loss under the step's seeded RNG;
- :meth:`after_step`: the target, the EMAs, ``k += 1``.
"""
from __future__ import annotations

import difflib
from typing import Dict, Optional, Tuple

import torch
from mmengine.dist import get_rank
from mmengine.model import ExponentialMovingAverage
from torch import nn

from ..export.runtime import is_exported_file
from ..files.checkpoint import ema_key
from ..models.weights import load_unet_from
from ..registry import MODELS, init_arguments
from .objectives import Objective

#: train_cfg keys the training state keeps; the rest configure the objective
STATE_KEYS = ('ema_rates', 'seed', 'init_from')


def training_modes() -> Dict[str, str]:
    """``training_mode`` -> registered objective name, from the objectives'
    own ``training_mode`` (registration order)."""
    return {vars(cls)['training_mode']: name for name, cls in MODELS.module_dict.items()
            if isinstance(cls, type) and issubclass(cls, Objective)
            and vars(cls).get('training_mode')}


def objective_type(training_mode: str, train_cfg: dict) -> str:
    """The registered objective ``train_cfg`` asks for: its ``type``, else the
    objective of ``training_mode``; ValueError when there is none."""
    if 'type' in train_cfg:
        return train_cfg['type']
    modes = training_modes()
    if training_mode not in modes:
        raise ValueError(f'training_mode {training_mode!r} cannot train; choose one '
                         f'of {", ".join(modes)} (or give train_cfg.type)')
    return modes[training_mode]


def check_objective_keys(objective: dict) -> None:
    """Refuse train_cfg keys the objective does not take, naming the close ones."""
    cls = MODELS.get(objective['type'])
    if cls is None:
        raise ValueError(f'train_cfg.type={objective["type"]!r} is no registered objective')
    takes = init_arguments(cls)
    if takes is None:  # it takes any keyword: nothing to check here
        return
    known = (takes - {'online', 'precond', 'unet_cfg'}) | set(STATE_KEYS) | {'type'}
    for key in objective:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f'; did you mean {close[0]!r}?' if close else ''
            raise ValueError(f'train_cfg.{key}: not a setting of {objective["type"]} (it takes '
                             f'{", ".join(sorted(known))}){hint}')


def step_seed(seed: int, step: int, rank: int) -> int:
    """A training step's seed from (train_cfg.seed, step, rank), in [0, 2**62);
    the hash of a tuple of ints is the same in every Python process."""
    return hash((int(seed), step, rank)) & (2**62 - 1)


@MODELS.register_module()
class TrainingState:
    """What training keeps beside a model's online UNet (see the module docstring).

    Built, it gives ``model`` its step counter (``train_step_count``, a long
    scalar buffer) and objective (``model.objective``); the target and EMA
    copies come later (:meth:`make_copies`).

    Args:
        model: the ``ConsistencyModel`` (its ``train_cfg``, ``training_mode``,
            ``unet`` and ``precond``).
        unet_cfg: the UNet's config (a teacher's architecture), or the module.
    """

    def __init__(self, model: nn.Module, unet_cfg=None):
        if is_exported_file(model.model_path):
            raise ValueError(f'model_path {model.model_path} is an exported graph: it samples '
                             'only (a config without train_cfg), it cannot train')
        tc = dict(model.train_cfg)
        objective = {k: v for k, v in tc.items() if k not in STATE_KEYS}
        objective['type'] = objective_type(model.training_mode, tc)
        model.register_buffer('train_step_count', torch.zeros((), dtype=torch.long))
        check_objective_keys(objective)
        self.objective_cfg = dict(objective, unet_cfg=unet_cfg)
        model.objective = self.build_objective(model)
        self.ema_rates = tuple(float(r) for r in tc.get('ema_rates', ()))
        self.seed, self.init_from = tc.get('seed', 0), tc.get('init_from')

    def build_objective(self, model: nn.Module) -> Objective:
        """A new objective for ``model``'s online UNet and preconditioning."""
        return MODELS.build(dict(self.objective_cfg, online=model.unet, precond=model.precond))

    def make_copies(self, model: nn.Module) -> None:
        """Create the objective's target and the EMA copies of the online UNet.

        Done when training starts (:meth:`start`, the first loss) or a
        training checkpoint arrives, not at construction: a model built from a
        training config only to sample (MMagic's ``test.py``, say) then holds
        one UNet, not five.
        """
        if hasattr(model, 'ema_unets'):
            return
        model.objective.make_copies(model.unet)
        model.ema_unets = nn.ModuleDict({
            ema_key(r): ExponentialMovingAverage(model.unet, momentum=1 - r)
            for r in self.ema_rates
        }).requires_grad_(False)

    def copy_prefixes(self, model: nn.Module) -> Tuple[str, ...]:
        """Parameter-name prefixes of the training copies (the EMA and target
        networks): never optimised. A one-process or DDP run builds its
        optimizer before they exist; under FSDP they must exist before the
        model is wrapped, and the optimizer leaves them out
        (:mod:`mmagic_cm.training.fsdp`)."""
        return ('ema_unets.', *(f'objective.{name}.' for name in
                                getattr(model.objective, 'copy_names', ())))

    def start(self, model: nn.Module) -> None:
        """The start of training, after the model's random init: the
        objective's learned parts (sCT/sCD's weighting u(t)) drawn as a new
        objective draws them, after the UNet (a run's random init then
        depends on the seed only, not on when the runner built the model:
        mmengine's FlexibleRunner, used for FSDP, builds it after the data
        loader, its Runner before); the online network from ``init_from`` or
        the objective (CD: the teacher); the target and EMA copies from it."""
        with torch.no_grad():
            learned = [(n, p) for n, p in model.objective.named_parameters() if p.requires_grad]
            if learned:
                fresh = dict(self.build_objective(model).named_parameters())
                for name, param in learned:
                    param.copy_(fresh[name])
        if self.init_from:
            load_unet_from(model.unet, self.init_from, local_hint='train_cfg.init_from=PATH')
        else:
            model.objective.init_online(model.unet)
        self.make_copies(model)
        self.online_changed(model)

    def online_changed(self, model: nn.Module) -> None:
        """The online weights were replaced: the target and EMAs take them."""
        model.objective.online_changed(model.unet)
        for ema in getattr(model, 'ema_unets', {}).values():
            ema.module.load_state_dict(model.unet.state_dict())

    def loss(self, model: nn.Module, x_start: torch.Tensor, labels: Optional[torch.Tensor]
             ) -> Dict[str, torch.Tensor]:
        """The objective's loss of one batch at the current step.

        Args:
            x_start: (N, C, H, W) clean images in [-1, 1].
            labels: (N,) long class labels, or None.

        Returns:
            ``{'loss': scalar, ...logs}``. The step's randomness (noise, noise
            levels, dropout) comes from a generator seeded by
            ``(seed, step, rank)``: a resumed run draws what the uninterrupted
            one would have. FloatingPointError for a loss that is not finite.
        """
        self.make_copies(model)
        step = int(model.train_step_count)
        devices = [x_start.device] if x_start.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(step_seed(self.seed, step, get_rank()))
            out = model.objective(model.unet, x_start, labels, step)
        loss = out.pop('loss').mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f'the training loss is {loss.item()} at step {step}; stopping. Checkpoints '
                'already saved are kept: resume from the last one with a lower lr or '
                'gradient clipping (optim_wrapper.clip_grad)')
        return dict(loss=loss, **out)

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        """After each optimizer step: the objective's target, the EMAs, ``k += 1``."""
        self.make_copies(model)
        model.objective.after_step(model.unet, int(model.train_step_count))
        for ema in model.ema_unets.values():
            ema.update_parameters(model.unet)
        model.train_step_count += 1
