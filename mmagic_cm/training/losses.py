"""Training losses: distance metrics (small classes) and the three objectives.

Metrics map two image batches (N, C, H, W) in [-1, 1] to per-sample
distances (N,). Objectives follow the original ``KarrasDenoiser``:

- :func:`edm_loss`: denoising score matching with a weighting of sigma;
- :func:`consistency_loss`: consistency distillation (a Heun step of the
  teacher between adjacent noise levels) and consistency training (an Euler
  step that uses the clean image), against a target network.

Randomness (noise, noise-level indices) is passed in, so the same inputs
give the same loss as the original code.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..denoiser.precond import append_dims
from ..denoiser.sigmas import karras_sigma
from .dropout import SharedDropout

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over all but the batch dim."""
    return x.mean(dim=list(range(1, x.ndim)))


class L1Loss(nn.Module):
    """Mean absolute difference per sample."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mean_flat((x - y).abs())


class L2Loss(nn.Module):
    """Mean squared difference per sample (the paper's l2 metric)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mean_flat((x - y)**2)


class L2At32Loss(nn.Module):
    """Squared difference after bilinear resizing to 32x32 ('l2-32')."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=32, mode='bilinear')
        y = F.interpolate(y, size=32, mode='bilinear')
        return mean_flat((x - y)**2)


class PseudoHuberLoss(nn.Module):
    """``sqrt(||x - y||^2 + c^2) - c`` (Song & Dhariwal 2023).

    Args:
        c: the offset; None gives the improved recipe's ``0.00054 * sqrt(d)``
            with d = C*H*W of the images.
    """

    def __init__(self, c: Optional[float] = None):
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.c if self.c is not None else 0.00054 * math.sqrt(x[0].numel())
        sq = ((x - y)**2).flatten(1).sum(1)
        return torch.sqrt(sq + c**2) - c


#: metric names usable in ``train_cfg.loss`` (a name, or dict(type=name, ...))
METRICS = {'l1': L1Loss, 'l2': L2Loss, 'l2-32': L2At32Loss, 'pseudo-huber': PseudoHuberLoss}


def build_metric(cfg) -> nn.Module:
    """A metric from a name ('l1', 'l2', 'l2-32', 'lpips', 'pseudo-huber') or
    ``dict(type=name, **kwargs)``."""
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(type=cfg) if isinstance(cfg, str) else dict(cfg)
    name = cfg.pop('type')
    if name == 'lpips':
        from .lpips import LPIPSLoss
        return LPIPSLoss(**cfg)
    if name not in METRICS:
        raise ValueError(f'unknown loss metric {name!r}; choose one of '
                         f'{", ".join([*METRICS, "lpips"])}')
    return METRICS[name](**cfg)


def get_weightings(weight_schedule: str, sigmas: torch.Tensor, sigma_data: float
                   ) -> torch.Tensor:
    """Per-sample loss weights of the original code, from SNR = sigma^-2."""
    snrs = sigmas**-2
    if weight_schedule == 'snr':
        return snrs
    if weight_schedule == 'snr+1':
        return snrs + 1
    if weight_schedule == 'karras':
        return snrs + 1.0 / sigma_data**2
    if weight_schedule == 'truncated-snr':
        return torch.clamp(snrs, min=1.0)
    if weight_schedule == 'uniform':
        return torch.ones_like(snrs)
    raise ValueError(f'unknown weight_schedule {weight_schedule!r}; choose snr, snr+1, '
                     'karras, truncated-snr or uniform')


def edm_loss(denoise: Denoise, x_start: torch.Tensor, sigmas: torch.Tensor,
             noise: torch.Tensor, weight_schedule: str = 'karras',
             sigma_data: float = 0.5) -> torch.Tensor:
    """Weighted denoising loss of the EDM teacher, per sample (N,).

    Args:
        denoise: ``D(x, sigma)`` of the model being trained.
        x_start: (N, C, H, W) clean images in [-1, 1].
        sigmas: (N,) noise levels (e.g. lognormal).
        noise: standard normal like ``x_start``.
    """
    x_t = x_start + noise * append_dims(sigmas, x_start.ndim)
    denoised = denoise(x_t, sigmas)
    weights = append_dims(get_weightings(weight_schedule, sigmas, sigma_data), x_start.ndim)
    return mean_flat(weights * (denoised - x_start)**2)


def heun_step(teacher: Optional[Denoise], x: torch.Tensor, t: torch.Tensor,
              next_t: torch.Tensor, x_start: torch.Tensor) -> torch.Tensor:
    """One Heun step of the probability-flow ODE from ``t`` to ``next_t``.

    Without a teacher, the clean image stands in for the denoiser (CT).
    """
    dims = x.ndim
    denoised = x_start if teacher is None else teacher(x, t)
    d = (x - denoised) / append_dims(t, dims)
    samples = x + d * append_dims(next_t - t, dims)
    denoised = x_start if teacher is None else teacher(samples, next_t)
    next_d = (samples - denoised) / append_dims(next_t, dims)
    return x + (d + next_d) * append_dims((next_t - t) / 2, dims)


def euler_step(teacher: Optional[Denoise], x: torch.Tensor, t: torch.Tensor,
               next_t: torch.Tensor, x_start: torch.Tensor) -> torch.Tensor:
    """One Euler step from ``t`` to ``next_t`` (CT: the clean image as denoiser)."""
    denoised = x_start if teacher is None else teacher(x, t)
    d = (x - denoised) / append_dims(t, x.ndim)
    return x + d * append_dims(next_t - t, x.ndim)


def consistency_loss(online: Denoise, target: Denoise, x_start: torch.Tensor,
                     num_scales: int, noise: torch.Tensor, indices: torch.Tensor,
                     metric: Callable, teacher: Optional[Denoise] = None,
                     sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                     weighting: str = 'uniform', sigma_data: float = 0.5
                     ) -> torch.Tensor:
    """Consistency distillation (``teacher`` given) or training loss, per sample.

    Args:
        online: ``f_theta(x, sigma)``, the model being trained (with grad).
        target: ``f_theta-(x, sigma)``, the EMA/stop-grad target.
        x_start: (N, C, H, W) clean images in [-1, 1].
        num_scales: N of the discretisation (grid points).
        noise: standard normal like ``x_start``.
        indices: (N,) long grid indices in ``[0, num_scales - 2]``.
        metric: distance ``d(x, y) -> (N,)``.
        teacher: the EDM teacher's denoiser (CD, Heun step), or None (CT,
            Euler step with the clean image).
        weighting: an original ``weight_schedule`` name of sigma_n, or
            'improved' for ``1 / (sigma_n - sigma_{n+1})`` (Song & Dhariwal 2023).

    Returns:
        (N,) weighted distances ``lambda * d(f(x_t, t), f^-(x_t2, t2))``.
    """
    t = karras_sigma(indices, num_scales, sigma_min, sigma_max, rho)
    t2 = karras_sigma(indices + 1, num_scales, sigma_min, sigma_max, rho)
    x_t = x_start + noise * append_dims(t, x_start.ndim)

    # the target sees the same dropout masks as the online network
    dropout_state = torch.get_rng_state()
    distiller = online(x_t, t)
    with torch.no_grad():
        step = euler_step if teacher is None else heun_step
        x_t2 = step(teacher, x_t, t, t2, x_start).detach()
    torch.set_rng_state(dropout_state)
    with torch.no_grad():
        distiller_target = target(x_t2, t2).detach()

    if weighting == 'improved':
        weights = 1.0 / (t - t2)
    else:
        weights = get_weightings(weighting, t, sigma_data)
    return metric(distiller, distiller_target) * weights


#: ECT's loss weightings: locuslab/ect's CIFAR-10 one (``main`` branch) and
#: its ImageNet-64 one (``imgnet`` branch, ``--wt snrpk``)
ECT_WEIGHTINGS = ('inverse-gap', 'snrpk')


def ect_weights(t: torch.Tensor, r: torch.Tensor, weighting: str = 'inverse-gap',
                sigma_data: float = 0.5) -> torch.Tensor:
    """ECT's per-sample loss weights (N,): ``1 / (t − r)`` ('inverse-gap',
    locuslab/ect on CIFAR-10) or ``SNR(t) + 1/σ_d² = (t² + σ_d²) / (t σ_d)²``
    ('snrpk', locuslab/ect on ImageNet-64: EDM's λ(σ), the 'karras' weighting)."""
    if weighting == 'inverse-gap':
        return 1 / (t - r)
    if weighting == 'snrpk':
        return (t**2 + sigma_data**2) / (t * sigma_data)**2
    raise ValueError(f'ECT weighting {weighting!r}: choose one of {", ".join(ECT_WEIGHTINGS)}')


def ect_loss(online: Denoise, x_start: torch.Tensor, t: torch.Tensor, r: torch.Tensor,
             noise: torch.Tensor, c: float = 0.0, dropout: Optional[SharedDropout] = None,
             weighting: str = 'inverse-gap', sigma_data: float = 0.5) -> torch.Tensor:
    """Easy Consistency Tuning's loss (Geng et al. 2025), per sample (N,).

    ``||f(x + t·n, t) − sg f(x + r·n, r)||`` under the pseudo-Huber metric
    ``sqrt(d² + c²) − c`` (c = 0: the plain norm) over the whole image,
    weighted by ``1 / (t − r)`` (or ``SNR(t) + 1/σ_d²``: :func:`ect_weights`);
    r = 0 compares with the clean image.

    Args:
        online: ``f(x, sigma)`` with grad.
        x_start: (N, C, H, W) clean images in [-1, 1].
        t, r: (N,) noise levels, ``0 <= r < t``.
        noise: standard normal like ``x_start`` (shared by both levels).
        dropout: the online network's :class:`SharedDropout`: the pass at r
            reuses the pass at t's masks (None: nothing shared).
        weighting, sigma_data: the weights (:func:`ect_weights`).
    """
    if weighting not in ECT_WEIGHTINGS:
        raise ValueError(f'ECT weighting {weighting!r}: choose one of '
                         f'{", ".join(ECT_WEIGHTINGS)}')
    dims = x_start.ndim
    with dropout.record() if dropout is not None else contextlib.nullcontext():
        out_t = online(x_start + noise * append_dims(t, dims), t)
    keep = r > 0
    if bool(keep.any()):
        with torch.no_grad(), dropout.replay() if dropout is not None else contextlib.nullcontext():
            out_r = online(x_start + noise * append_dims(r, dims), r)
        out_r = torch.where(append_dims(keep, dims), torch.nan_to_num(out_r), x_start)
    else:
        out_r = x_start
    sq = ((out_t - out_r)**2).flatten(1).sum(1)
    dist = torch.sqrt(sq + c**2) - c if c > 0 else torch.sqrt(sq)
    if weighting == 'inverse-gap':
        return dist / (t - r)  # locuslab/ect's division, bit for bit
    return dist * ect_weights(t, r, weighting, sigma_data)

