"""Karras/EDM preconditioning and noise schedule (no network inside).

``KarrasDenoiser`` wraps any network ``F(x, t, **kwargs)`` into the denoiser
``D(x, sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x, t(sigma))``
with the network time input ``t = 250 * ln(sigma)``. Consistency models use
the boundary-condition variant, whose ``c_skip(sigma_min) = 1`` and
``c_out(sigma_min) = 0`` make ``D(x, sigma_min) = x`` exactly.
"""
from __future__ import annotations

from typing import Callable, Tuple

import torch

from ..registry import MODELS


def append_dims(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append trailing singleton dims to ``x`` until it has ``ndim`` dims."""
    if x.ndim > ndim:
        raise ValueError(f'input has {x.ndim} dims, more than the target {ndim}')
    return x[(..., ) + (None, ) * (ndim - x.ndim)]


def get_sigmas_karras(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                      rho: float = 7.0, device='cpu') -> torch.Tensor:
    """Karras et al. (2022) noise levels, descending, with a 0 appended.

    Args:
        n: number of noise levels (>= 1).
        sigma_min, sigma_max: end points; rho: schedule curvature.

    Returns:
        float32 tensor of shape (n + 1,): ``sigma_max ... sigma_min, 0``.
    """
    if n < 1:
        raise ValueError(f'need at least one noise level, got n={n}')
    ramp = torch.linspace(0, 1, n)
    lo, hi = sigma_min**(1 / rho), sigma_max**(1 / rho)
    sigmas = (hi + ramp * (lo - hi))**rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).to(device)


def karras_sigma(index, steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 rho: float = 7.0):
    """Noise level(s) at grid index ``index`` of a ``steps``-point Karras grid.

    ``index`` is a number (the multistep sampler: a Python float64, not the
    float32 of :func:`get_sigmas_karras`; that precision is part of matching
    the original images) or a tensor of indices (training: float32 for int
    indices, as the original's losses compute them).
    """
    hi, lo = sigma_max**(1 / rho), sigma_min**(1 / rho)
    return (hi + index / (steps - 1) * (lo - hi))**rho


@MODELS.register_module()
class KarrasDenoiser:
    """EDM preconditioning with the consistency-model boundary condition.

    Args:
        sigma_data: data standard deviation (0.5 for images in [-1, 1]).
        sigma_min, sigma_max: the noise range; sigma_min is also the
            consistency model's boundary.
        rho: Karras schedule curvature.
        weight_schedule: loss weighting name ('karras', 'snr', 'snr+1',
            'truncated-snr', 'uniform'), used by training.
        distillation: use the boundary-condition scalings (all consistency
            models, distilled or trained) instead of plain EDM's (teachers).
    """

    def __init__(self, sigma_data: float = 0.5, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0,
                 weight_schedule: str = 'karras', distillation: bool = False):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f'need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}')
        self.sigma_data = sigma_data
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.rho = rho
        self.weight_schedule = weight_schedule
        self.distillation = distillation

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sigma_data={self.sigma_data}, '
                f'sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, rho={self.rho}, '
                f'distillation={self.distillation})')

    def get_scalings(self, sigma: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """EDM ``(c_skip, c_out, c_in)`` for noise levels ``sigma`` (N,)."""
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / (sigma**2 + sd2)**0.5
        c_in = 1 / (sigma**2 + sd2)**0.5
        return c_skip, c_out, c_in

    def get_scalings_for_boundary_condition(self, sigma: torch.Tensor
                                            ) -> Tuple[torch.Tensor, ...]:
        """``(c_skip, c_out, c_in)`` with ``D(x, sigma_min) = x``."""
        sd2 = self.sigma_data**2
        shifted = sigma - self.sigma_min
        c_skip = sd2 / (shifted**2 + sd2)
        c_out = shifted * self.sigma_data / (sigma**2 + sd2)**0.5
        c_in = 1 / (sigma**2 + sd2)**0.5
        return c_skip, c_out, c_in

    def scalings(self, sigma: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The scalings this denoiser uses (boundary-condition or EDM)."""
        if self.distillation:
            return self.get_scalings_for_boundary_condition(sigma)
        return self.get_scalings(sigma)

    @staticmethod
    def time_input(sigma: torch.Tensor) -> torch.Tensor:
        """Network time input ``250 * ln(sigma)`` (tiny offset keeps 0 finite)."""
        return 1000 * 0.25 * torch.log(sigma + 1e-44)

    def get_sigmas(self, n: int, device='cpu') -> torch.Tensor:
        """``n`` Karras noise levels of this denoiser's range, plus a final 0."""
        return get_sigmas_karras(n, self.sigma_min, self.sigma_max, self.rho, device)

    def denoise(self, model: Callable, x_t: torch.Tensor, sigmas: torch.Tensor,
                **model_kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
        """Apply the preconditioned network.

        Args:
            model: network ``F(x, t, **model_kwargs)``.
            x_t: (N, C, H, W) noisy images.
            sigmas: (N,) noise levels.

        Returns:
            ``(model_output, denoised)``, both shaped like ``x_t``.
        """
        c_skip, c_out, c_in = (append_dims(s, x_t.ndim) for s in self.scalings(sigmas))
        model_output = model(c_in * x_t, self.time_input(sigmas), **model_kwargs)
        denoised = c_out * model_output + c_skip * x_t
        return model_output, denoised
