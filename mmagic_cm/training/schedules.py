"""Training schedules: discretisation N(k), target EMA mu(k), noise-level sampling.

- :class:`OriginalSchedule` is the original ``create_ema_and_scales_fn``
  (``target_ema_mode`` fixed/adaptive x ``scale_mode`` fixed/progressive).
- :class:`ImprovedSchedule` is Song & Dhariwal (2023):
  ``N(k) = min(s0 * 2^floor(k / K'), s1) + 1`` with
  ``K' = floor(K / (log2(s1 / s0) + 1))`` and no EMA target (mu = 0).

Both are pure functions of the training step, so a resumed run continues
with exactly the N(k) and mu(k) it would have had.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch

from ..denoiser.sigmas import karras_sigma


class OriginalSchedule:
    """``(mu, N)`` at step k, as the original ``create_ema_and_scales_fn``.

    Args:
        target_ema_mode: 'fixed' (mu = start_ema) or 'adaptive'
            (mu(k) = exp(s0 * log(start_ema) / N(k))).
        scale_mode: 'fixed' (N = start_scales) or 'progressive'
            (N(k) = ceil(sqrt(k/K * ((s1+1)^2 - s0^2) + s0^2) - 1) + 1).
        start_ema, start_scales, end_scales, total_steps: as the original flags.
    """

    def __init__(self, target_ema_mode: str = 'fixed', scale_mode: str = 'fixed',
                 start_ema: float = 0.95, start_scales: int = 40, end_scales: int = 40,
                 total_steps: int = 600000):
        if (target_ema_mode, scale_mode) not in (('fixed', 'fixed'), ('fixed', 'progressive'),
                                                 ('adaptive', 'progressive')):
            raise ValueError(f'target_ema_mode={target_ema_mode!r} with '
                             f'scale_mode={scale_mode!r} is not a schedule of the original '
                             'code: use fixed/fixed, fixed/progressive or adaptive/progressive')
        self.target_ema_mode = target_ema_mode
        self.scale_mode = scale_mode
        self.start_ema = start_ema
        self.start_scales = start_scales
        self.end_scales = end_scales
        self.total_steps = total_steps

    def __call__(self, step: int) -> Tuple[float, int]:
        if self.scale_mode == 'fixed':
            return float(self.start_ema), int(self.start_scales)
        s0, s1 = self.start_scales, self.end_scales
        scales = np.ceil(
            np.sqrt((step / self.total_steps) * ((s1 + 1)**2 - s0**2) + s0**2) - 1).astype(
                np.int32)
        scales = np.maximum(scales, 1)
        if self.target_ema_mode == 'adaptive':
            c = -np.log(self.start_ema) * s0
            target_ema = np.exp(-c / scales)
        else:
            target_ema = self.start_ema
        return float(target_ema), int(scales + 1)


class ImprovedSchedule:
    """The improved curriculum: N doubles every K' steps from s0 to s1; mu = 0."""

    def __init__(self, s0: int = 10, s1: int = 1280, total_steps: int = 400000):
        self.s0, self.s1, self.total_steps = s0, s1, total_steps
        self.k_prime = max(1, math.floor(total_steps / (math.log2(s1 / s0) + 1)))

    def __call__(self, step: int) -> Tuple[float, int]:
        return 0.0, int(min(self.s0 * 2**(step // self.k_prime), self.s1) + 1)


SCHEDULES = {'original': OriginalSchedule, 'improved': ImprovedSchedule}


def build_schedule(cfg):
    """A schedule from ``dict(type='original'|'improved', **kwargs)``."""
    if callable(cfg) and not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    name = cfg.pop('type', 'original')
    if name not in SCHEDULES:
        raise ValueError(f'unknown schedule {name!r}; choose original or improved')
    return SCHEDULES[name](**cfg)


def uniform_indices(num_scales: int, batch_size: int, device='cpu',
                    generator=None) -> torch.Tensor:
    """Grid indices uniform in ``[0, num_scales - 2]`` (the original)."""
    return torch.randint(0, num_scales - 1, (batch_size, ), device=device,
                         generator=generator)


def lognormal_indices(num_scales: int, batch_size: int, sigma_min: float, sigma_max: float,
                      rho: float, p_mean: float = -1.1, p_std: float = 2.0, device='cpu',
                      generator=None) -> torch.Tensor:
    """Grid indices with probability proportional to
    ``erf((log s_{i+1} - P_mean) / (sqrt 2 P_std)) - erf((log s_i - P_mean) / (sqrt 2 P_std))``
    (Song & Dhariwal 2023: a lognormal discretised over the Karras grid,
    ascending sigmas s_i; returned as indices into the descending grid)."""
    sigmas = karras_sigma(torch.arange(num_scales, dtype=torch.float64), num_scales,
                          sigma_min, sigma_max, rho)  # descending
    cdf = torch.erf((torch.log(sigmas) - p_mean) / (math.sqrt(2) * p_std))
    probs = (cdf[:-1] - cdf[1:]).clamp_min(0)  # mass between grid points i and i+1
    return torch.multinomial(probs.float(), batch_size, replacement=True,
                             generator=generator).to(device)


def lognormal_sigmas(batch_size: int, p_mean: float = -1.2, p_std: float = 1.2, device='cpu',
                     generator=None) -> torch.Tensor:
    """EDM teacher noise levels ``exp(P_mean + P_std * z)`` (the original's sampler)."""
    return torch.exp(p_mean + p_std * torch.randn(batch_size, device=device,
                                                  generator=generator))


class ECTSchedule:
    """ECT's r(t) at step k: ``r = max(0, t · (1 − q^-(s+1) · a(t)))`` with the
    stage ``s = k // double`` and ``a(t) = 1`` ('const') or
    ``1 + k_ · sigmoid(−b · t)`` ('sigmoid'), as ``locuslab/ect``: every
    ``double`` steps ``t − r`` halves (q = 2).

    Args:
        q: the decay factor per stage (> 1).
        double: steps per stage (their ``--double``, in iterations here).
        mapping: 'sigmoid' or 'const'.
        k, b: the sigmoid mapping's parameters.
    """

    def __init__(self, q: float = 2.0, double: int = 10000, mapping: str = 'sigmoid',
                 k: float = 8.0, b: float = 1.0):
        if mapping not in ('sigmoid', 'const'):
            raise ValueError(f"ECT mapping {mapping!r}: choose 'sigmoid' or 'const'")
        if not q > 1 or not int(double) >= 1:
            raise ValueError(f'ECT needs q > 1 and double >= 1 steps, got q={q}, '
                             f'double={double}')
        self.q, self.double, self.mapping, self.k, self.b = q, int(double), mapping, k, b

    def stage(self, step: int) -> int:
        return int(step) // self.double

    def __call__(self, t: torch.Tensor, step: int) -> torch.Tensor:
        """r (N,) for noise levels t (N,) at training step ``step``."""
        decay = 1 / self.q**(self.stage(step) + 1)
        if self.mapping == 'sigmoid':
            decay = decay * (1 + self.k * torch.sigmoid(-self.b * t))
        return torch.clamp(t * (1 - decay), min=0)
