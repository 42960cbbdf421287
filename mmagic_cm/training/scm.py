"""Continuous-time consistency models in TrigFlow (sCM; Lu & Song, ICLR 2025): sCT, sCD.

One step, per batch of clean images x_0 (TrigFlow: :mod:`mmagic_cm.denoiser.trigflow`):

1. t = arctan(e^τ / σ_d), τ ~ N(p_mean, p_std²); z ~ N(0, σ_d² I);
   x_t = cos t · x_0 + sin t · z.
2. dx_t/dt: ``cos t · z − sin t · x_0`` (sCT) or ``σ_d F_teacher(x_t/σ_d, t)`` (sCD).
3. F = F_θ(x_t/σ_d, t) with grad (dropout masks recorded); under no-grad, with
   the same masks, the time derivative of the same network along the
   trajectory, ``cos t sin t · dF/dt``, by forward-mode autodiff
   (``torch.func.jvp``) or a central finite difference.
4. g = −cos² t (σ_d F⁻ − dx_t/dt) − w · (cos t sin t · x_t + σ_d cos t sin t dF⁻/dt),
   with the tangent warm-up w = min(1, step / tangent_warmup); g is
   normalised, g / (‖g‖ + c).
5. loss = prior(t) · mean((F − F⁻ − g)²) / e^{u(t)} + u(t), with the learned
   log-variance u(t) (the paper's adaptive weighting w_φ = −u) and the prior
   weighting 1/σ (σ = σ_d tan t).

The gradient of mean((F − sg(F) − g)²) is the sCM gradient −2 (g · ∂F/∂θ).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..denoiser.precond import KarrasPrecond, append_dims
from ..denoiser.trigflow import TrigFlowPrecond, trig_to_sigma, trigflow_network
from ..registry import MODELS
from .dropout import SharedDropout
from .objectives import FrozenTeacher, Objective

TANGENTS = ('jvp', 'finite-difference')


class AdaptiveWeight(nn.Module):
    """The learned log-variance u(t) of sCM's adaptive weighting: a small MLP
    on Fourier features of ln σ (σ = σ_d tan t); starts at u = 0."""

    def __init__(self, features: int = 32, hidden: int = 64):
        super().__init__()
        self.register_buffer('freqs', torch.exp(torch.linspace(math.log(0.1), math.log(10.0),
                                                               features // 2)))
        self.mlp = nn.Sequential(nn.Linear(features, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, log_sigma: torch.Tensor) -> torch.Tensor:
        """(N,) ln σ -> (N,) u."""
        args = log_sigma.float()[:, None] * self.freqs[None]
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=1)).squeeze(1)


def time_derivative(fn: Callable, x_in: torch.Tensor, t: torch.Tensor, dxdt: torch.Tensor,
                    sigma_data: float, tangent: str = 'jvp', fd_step: float = 1e-3,
                    fp32: bool = True) -> torch.Tensor:
    """``cos t sin t · d/dt F(x_t/σ_d, t)`` along dx_t/dt (no grad).

    Args:
        fn: ``F(x_in, t)``.
        x_in: (N, C, H, W) x_t / σ_d; t (N,) in (0, π/2); dxdt like x_in.
        tangent: 'jvp' (forward-mode autodiff, exact) or 'finite-difference'
            (central, steps ± fd_step in t, at most half the distance to 0 and
            π/2; for networks without forward-mode rules, or to average out a
            time embedding's high frequencies).
        fp32: run the derivative in float32 under mixed precision (autocast
            off; FastGen's choice: a bf16 JVP loses the tangent's small terms).
    """
    if fp32 and torch.is_autocast_enabled(x_in.device.type):
        with torch.autocast(x_in.device.type, enabled=False):
            return time_derivative(fn, x_in.float(), t.float(), dxdt.float(), sigma_data,
                                   tangent, fd_step, fp32=False)
    cs = torch.cos(t) * torch.sin(t)
    v_x = append_dims(cs, x_in.ndim) * dxdt / sigma_data
    if tangent == 'jvp':
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            # the fused attention kernels have no forward-mode rule: the math one has
            with warnings.catch_warnings(), sdpa_kernel(SDPBackend.MATH):
                # torch's first JVP scripts its decompositions (a FutureWarning)
                warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated',
                                        category=FutureWarning)
                return torch.func.jvp(fn, (x_in, t), (v_x, cs))[1]
        except (NotImplementedError, RuntimeError) as err:
            if 'forward' not in str(err).lower() and 'jvp' not in str(err).lower():
                raise
            first = str(err).splitlines()[0]
            raise RuntimeError(
                f'the time derivative by forward-mode autodiff failed ({first}); '
                "set train_cfg.tangent='finite-difference' for networks with operations that "
                'have no forward-mode rule') from None
    if tangent != 'finite-difference':
        raise ValueError(f'train_cfg.tangent={tangent!r}: choose one of {", ".join(TANGENTS)}')
    # a step that stays inside (0, π/2) for every t (an EDM network's time input
    # ln(σ_d tan t) exists only there)
    h = torch.minimum(torch.full_like(t, fd_step), torch.minimum(t, math.pi / 2 - t) / 2)
    along = dxdt / sigma_data
    hx = append_dims(h, x_in.ndim)
    plus = fn(x_in + hx * along, t + h)
    minus = fn(x_in - hx * along, t - h)
    return append_dims(cs, x_in.ndim) * (plus - minus) / (2 * hx)


def scm_tangent(F_minus: torch.Tensor, dF: torch.Tensor, x_t: torch.Tensor,
                dxdt: torch.Tensor, t: torch.Tensor, sigma_data: float, warmup: float,
                norm_const: float = 0.1, norm: str = 'rms') -> torch.Tensor:
    """sCM's normalised tangent g (N, C, H, W); ``dF`` is cos t sin t · dF⁻/dt.

    ``norm``: 'rms' divides by the root mean square plus ``norm_const`` (the
    same for every image size; NVlabs FastGen's default), 'l2' by the
    Euclidean norm plus it (the paper's formula).
    """
    cos, sin = (append_dims(f(t), x_t.ndim) for f in (torch.cos, torch.sin))
    g = -cos * cos * (sigma_data * F_minus - dxdt) \
        - warmup * (cos * sin * x_t + sigma_data * dF)
    size = g.flatten(1).norm(dim=1)
    if norm == 'rms':
        size = size / math.sqrt(g[0].numel())
    elif norm != 'l2':
        raise ValueError(f"train_cfg.tangent_norm={norm!r}: choose 'rms' or 'l2'")
    return g / append_dims(size + norm_const, g.ndim)


@MODELS.register_module()
class ContinuousConsistencyTraining(Objective):
    """sCT: continuous-time consistency training in TrigFlow (dx_t/dt from the data).

    Args:
        p_mean, p_std: τ = ln σ ~ N(p_mean, p_std²), t = arctan(e^τ / σ_d).
        tangent: 'jvp' or 'finite-difference' (step ``fd_step`` in t).
        tangent_fp32: the time derivative in float32 under ``--amp`` (FastGen's
            choice; False: in the autocast dtype, faster).
        tangent_warmup: steps over which the second tangent term ramps to 1.
        tangent_norm, tangent_norm_const: g / (‖g‖ + c) ('rms' or 'l2').
        prior_weighting: weight the loss by 1/σ (FastGen's default).
        adaptive_weighting: learn u(t) (the loss becomes e^{-u} · l + u).
    """

    training_mode = 'sct'

    def __init__(self, precond: KarrasPrecond, p_mean: float = -1.0, p_std: float = 1.4,
                 tangent: str = 'jvp', fd_step: float = 1e-3, tangent_fp32: bool = True,
                 tangent_warmup: int = 1000,
                 tangent_norm: str = 'rms', tangent_norm_const: float = 0.1,
                 prior_weighting: bool = True, adaptive_weighting: bool = True, **base):
        super().__init__(precond, **base)
        trigflow_network(precond, None)  # refuses preconditionings TrigFlow cannot express
        if tangent not in TANGENTS:
            raise ValueError(f'train_cfg.tangent={tangent!r}: choose one of {", ".join(TANGENTS)}')
        if tangent_norm not in ('rms', 'l2'):
            raise ValueError(f"train_cfg.tangent_norm={tangent_norm!r}: choose 'rms' or 'l2'")
        self.p_mean, self.p_std = p_mean, p_std
        self.tangent, self.fd_step, self.tangent_fp32 = tangent, fd_step, bool(tangent_fp32)
        self.tangent_warmup = max(int(tangent_warmup), 0)
        self.tangent_norm, self.tangent_norm_const = tangent_norm, tangent_norm_const
        self.prior_weighting = prior_weighting
        if adaptive_weighting:
            self.weight_net = AdaptiveWeight()

    def sample_t(self, n: int, device) -> torch.Tensor:
        tau = torch.randn(n, device=device) * self.p_std + self.p_mean
        return torch.atan(tau.exp() / self.precond.sigma_data)

    def velocity(self, x_start, z, x_t, t, labels) -> torch.Tensor:
        """dx_t/dt: the data's own (sCT)."""
        cos, sin = (append_dims(f(t), x_start.ndim) for f in (torch.cos, torch.sin))
        return cos * z - sin * x_start

    def forward(self, online, x_start, labels, step) -> Dict[str, torch.Tensor]:
        sd = self.precond.sigma_data
        t = self.sample_t(len(x_start), x_start.device)
        z = torch.randn_like(x_start) * sd
        cos, sin = (append_dims(f(t), x_start.ndim) for f in (torch.cos, torch.sin))
        x_t = cos * x_start + sin * z
        with torch.no_grad():
            dxdt = self.velocity(x_start, z, x_t, t, labels)
        cond = {} if labels is None else {'y': labels}
        fn = trigflow_network(self.precond, online, **cond)
        shared = SharedDropout(online)
        with shared.record():
            F_theta = fn(x_t / sd, t)
        F_minus = F_theta.detach()
        with torch.no_grad(), shared.replay():
            dF = time_derivative(fn, x_t / sd, t, dxdt, sd, self.tangent, self.fd_step,
                                 self.tangent_fp32)
        warmup = min(1.0, step / self.tangent_warmup) if self.tangent_warmup else 1.0
        g = scm_tangent(F_minus.float(), dF.float(), x_t, dxdt, t, sd, warmup,
                        self.tangent_norm_const, self.tangent_norm)
        if not torch.isfinite(g).all():
            raise FloatingPointError(
                f'the sCM tangent is not finite at step {step}; stopping. Checkpoints already '
                'saved are kept: resume from the last one with a lower lr, a longer '
                "tangent_warmup or tangent='finite-difference'")
        raw = F.mse_loss(F_theta.float(), (F_minus.float() + g), reduction='none')
        raw = raw.flatten(1).mean(1)
        loss = raw
        if self.prior_weighting:
            loss = loss / trig_to_sigma(t, sd)
        logs = {}
        if hasattr(self, 'weight_net'):
            u = self.weight_net(torch.log(trig_to_sigma(t, sd)))
            loss = loss * torch.exp(-u) + u
            logs['logvar'] = u.detach().mean()
        return dict(loss=loss, unweighted=raw.detach().mean(),
                    tangent_warmup=torch.tensor(warmup), **logs)


@MODELS.register_module()
class ContinuousConsistencyDistillation(ContinuousConsistencyTraining):
    """sCD: as sCT, with dx_t/dt = σ_d F_teacher(x_t/σ_d, t) from a frozen EDM teacher.

    Args:
        teacher: ``dict(path=EDM_CHECKPOINT, dropout=0.0, init_from_teacher=True)``;
            read on first use, never saved in checkpoints.
        unet_cfg: the student's UNet config (the teacher's architecture).
        (the rest as :class:`ContinuousConsistencyTraining`)
    """

    training_mode = 'scd'

    def __init__(self, precond: KarrasPrecond, teacher: Optional[dict] = None,
                 unet_cfg=None, **kwargs):
        super().__init__(precond, **kwargs)
        self.frozen = FrozenTeacher(teacher, unet_cfg, 'continuous_consistency_distillation',
                                    default_dropout=0.0)

    def velocity(self, x_start, z, x_t, t, labels) -> torch.Tensor:
        teacher = self.frozen.get(x_start.device)
        cond = {} if labels is None else {'y': labels}
        sd = self.precond.sigma_data
        fn = trigflow_network(self.teacher_precond(), teacher, **cond)
        return sd * fn(x_t / sd, t)

    def teacher_precond(self) -> KarrasPrecond:
        """The teacher's preconditioning: EDM scalings with the student's time
        input (the student starts from the teacher's weights), or the
        original's 250 ln σ under a student with TrigFlow's own time input."""
        p = self.precond
        if isinstance(p, TrigFlowPrecond):
            return KarrasPrecond(p.sigma_data, p.sigma_min, p.sigma_max, p.rho)
        return p.with_boundary_condition(False)

    def init_online(self, online: nn.Module) -> None:
        self.frozen.init_online(online)

