"""Sampling loops: plain functions of ``(denoiser, x, sigmas, generator, ...)``.

``denoiser(x, sigma)`` maps noisy images (N, C, H, W) at noise levels
``sigma`` (N,) to denoised images; ``sigmas`` is a descending schedule ending
in 0 (:func:`~mmagic_cm.models.denoiser.get_sigmas_karras`); ``generator`` is
one of :mod:`mmagic_cm.models.noise`. Each returns the final ``x`` (float,
unclamped). The arithmetic order follows the original code so that, given
the same denoiser outputs, float32 results match it bit for bit on the CPU.

- ``onestep``, ``multistep``: consistency models (``multistep`` runs
  :func:`sample_consistency`, which the editing tasks also use).
- ``heun``, ``euler``, ``ancestral``, ``dpm``, ``progdist``: the EDM teachers
  (``heun`` and ``dpm`` take Karras' ``s_churn``, ``s_tmin``, ``s_tmax``,
  ``s_noise``).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence

import torch

from .denoiser import append_dims, get_sigmas_karras, karras_sigma

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _steps(n: int, progress: bool, desc: str):
    if not progress:
        return range(n)
    from tqdm.auto import tqdm
    return tqdm(range(n), desc=desc, leave=False)


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """Karras ODE derivative ``(x - D(x)) / sigma``."""
    return (x - denoised) / append_dims(sigma, x.ndim)


def _churn(x, sigmas, i, generator, s_churn, s_tmin, s_tmax, s_noise):
    """Karras' churn: raise the noise level of step ``i`` to sigma_hat.

    Returns ``(x, sigma_hat)``. The noise is drawn at every step, churn or
    not, as the original does (it keeps the generator's stream aligned).
    """
    gamma = 0.0
    if s_tmin <= sigmas[i] <= s_tmax:
        gamma = min(s_churn / (len(sigmas) - 1), 2**0.5 - 1)
    eps = generator.randn_like(x) * s_noise
    sigma_hat = sigmas[i] * (gamma + 1)
    if gamma > 0:
        x = x + eps * (sigma_hat**2 - sigmas[i]**2)**0.5
    return x, sigma_hat


@torch.no_grad()
def sample_onestep(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
                   generator=None, progress: bool = False, callback=None) -> torch.Tensor:
    """One evaluation at ``sigmas[0]`` (sigma_max): noise -> image."""
    return denoiser(x, sigmas[0] * x.new_ones([x.shape[0]]))


@torch.no_grad()
def sample_consistency(denoiser: Denoiser, x: torch.Tensor, sigmas: Sequence[float], generator,
                       sigma_min: float = 0.002, sigma_max: float = 80.0,
                       project: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                       progress: bool = False, callback=None) -> torch.Tensor:
    """Consistency sampling through the noise levels ``sigmas`` (Python floats).

    ``x`` is at noise level ``sigmas[0]``. At each level the model jumps to
    an image ``x0 = D(x, sigmas[i])``, ``project`` (if given) replaces what
    is known of it (the zero-shot editing step), and it is re-noised to
    ``sigmas[i + 1]`` (clipped to [sigma_min, sigma_max]) with variance
    ``sigmas[i + 1]**2 - sigma_min**2``; at ``sigma_min`` nothing is added.
    The last level is only a target: ``len(sigmas) - 1`` evaluations.
    """
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'consistency'):
        t = sigmas[i]
        x0 = denoiser(x, t * s_in)
        if project is not None:
            x0 = project(x0)
        next_t = min(max(sigmas[i + 1], sigma_min), sigma_max)
        x = x0 + generator.randn_like(x) * math.sqrt(next_t**2 - sigma_min**2)
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': t, 'denoised': x0})
    return x


def ts_to_sigmas(ts: Sequence[int], steps: int = 40, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0) -> list:
    """Multistep grid indices -> noise levels (Python float64, as the original)."""
    return [karras_sigma(t, steps, sigma_min, sigma_max, rho) for t in ts]


@torch.no_grad()
def sample_multistep(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, generator,
                     ts: Sequence[int], steps: int = 40, sigma_min: float = 0.002,
                     sigma_max: float = 80.0, rho: float = 7.0, progress: bool = False,
                     callback=None) -> torch.Tensor:
    """Multistep consistency sampling (the paper's Algorithm 1).

    Denoise at grid point ``ts[i]`` of a ``steps``-point Karras grid, then
    re-noise to ``ts[i + 1]``; with ``ts[-1] == steps - 1`` the last
    re-noising adds nothing. ``sigmas`` is unused: the grid points are
    computed in float64 as the original does.
    """
    return sample_consistency(denoiser, x, ts_to_sigmas(ts, steps, sigma_min, sigma_max, rho),
                              generator, sigma_min, sigma_max, progress=progress,
                              callback=callback)


@torch.no_grad()
def sample_heun(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, generator,
                s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float('inf'),
                s_noise: float = 1.0, progress: bool = False, callback=None) -> torch.Tensor:
    """Karras et al. (2022) Algorithm 2: Heun steps with optional churn."""
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'heun'):
        x, sigma_hat = _churn(x, sigmas, i, generator, s_churn, s_tmin, s_tmax, s_noise)
        denoised = denoiser(x, sigma_hat * s_in)
        d = to_d(x, sigma_hat, denoised)
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': sigmas[i], 'sigma_hat': sigma_hat,
                      'denoised': denoised})
        dt = sigmas[i + 1] - sigma_hat
        if sigmas[i + 1] == 0:
            x = x + d * dt  # last step to sigma 0: Euler
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], denoiser(x_2, sigmas[i + 1] * s_in))
            x = x + (d + d_2) / 2 * dt
    return x


@torch.no_grad()
def sample_euler(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, generator=None,
                 progress: bool = False, callback=None) -> torch.Tensor:
    """Deterministic Euler steps along the probability-flow ODE."""
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'euler'):
        denoised = denoiser(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': sigmas[i], 'denoised': denoised})
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def get_ancestral_step(sigma_from, sigma_to):
    """``(sigma_down, sigma_up)`` of an ancestral step from ``sigma_from``."""
    sigma_up = (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2)**0.5
    sigma_down = (sigma_to**2 - sigma_up**2)**0.5
    return sigma_down, sigma_up


@torch.no_grad()
def sample_ancestral(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, generator,
                     progress: bool = False, callback=None) -> torch.Tensor:
    """Euler ancestral sampling: Euler step to sigma_down, add sigma_up noise."""
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'ancestral'):
        denoised = denoiser(x, sigmas[i] * s_in)
        sigma_down, sigma_up = get_ancestral_step(sigmas[i], sigmas[i + 1])
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': sigmas[i], 'denoised': denoised})
        x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        x = x + generator.randn_like(x) * sigma_up
    return x


@torch.no_grad()
def sample_dpm(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, generator,
               s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float('inf'),
               s_noise: float = 1.0, progress: bool = False, callback=None) -> torch.Tensor:
    """DPM-Solver-2-like midpoint steps (midpoint on a rho=3 schedule)."""
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'dpm'):
        x, sigma_hat = _churn(x, sigmas, i, generator, s_churn, s_tmin, s_tmax, s_noise)
        denoised = denoiser(x, sigma_hat * s_in)
        d = to_d(x, sigma_hat, denoised)
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': sigmas[i], 'sigma_hat': sigma_hat,
                      'denoised': denoised})
        sigma_mid = ((sigma_hat**(1 / 3) + sigmas[i + 1]**(1 / 3)) / 2)**3
        x_2 = x + d * (sigma_mid - sigma_hat)
        d_2 = to_d(x_2, sigma_mid, denoiser(x_2, sigma_mid * s_in))
        x = x + d_2 * (sigmas[i + 1] - sigma_hat)
    return x


@torch.no_grad()
def sample_progdist(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
                    generator=None, progress: bool = False, callback=None) -> torch.Tensor:
    """Euler steps over the schedule without its final 0 (progressive
    distillation's sampler; called with ``steps + 1`` noise levels)."""
    return sample_euler(denoiser, x, sigmas[:-1], generator, progress, callback)


SAMPLERS: Dict[str, Callable] = {
    'onestep': sample_onestep,
    'multistep': sample_multistep,
    'heun': sample_heun,
    'euler': sample_euler,
    'ancestral': sample_ancestral,
    'dpm': sample_dpm,
    'progdist': sample_progdist,
}

#: samplers that take Karras' churn parameters
CHURN_SAMPLERS = ('heun', 'dpm')


def check_ts(ts: Optional[Sequence[int]], steps: int) -> tuple:
    """Validate multistep grid indices; returns them as a tuple of ints.

    Raises:
        ValueError: unless ``ts`` has >= 2 strictly increasing integers in
        ``[0, steps - 1]``.
    """
    if steps < 2:
        raise ValueError(f'multistep needs steps >= 2, got steps={steps}')
    if ts is None or isinstance(ts, str) and not ts.strip():
        raise ValueError('multistep needs ts, e.g. ts="0,22,39" with steps=40')
    if isinstance(ts, str):
        try:
            ts = [int(t) for t in ts.split(',')]
        except ValueError:
            raise ValueError(f'ts={ts!r}: expected comma-separated integers, '
                             'e.g. "0,22,39"') from None
    ts = tuple(int(t) for t in ts)
    if len(ts) < 2:
        raise ValueError(f'ts={list(ts)}: multistep needs at least two indices; '
                         'use the onestep sampler for one step')
    if any(b <= a for a, b in zip(ts, ts[1:])):
        raise ValueError(f'ts={list(ts)} must be strictly increasing')
    if ts[0] < 0 or ts[-1] > steps - 1:
        raise ValueError(f'ts={list(ts)} must lie in [0, steps-1] = [0, {steps - 1}]')
    return ts


def karras_sample(denoiser: Denoiser, shape: Sequence[int], generator,
                  sampler: str = 'heun', steps: int = 40, sigma_min: float = 0.002,
                  sigma_max: float = 80.0, rho: float = 7.0, ts=None, s_churn: float = 0.0,
                  s_tmin: float = 0.0, s_tmax: float = float('inf'), s_noise: float = 1.0,
                  device='cpu', noise: Optional[torch.Tensor] = None, progress: bool = False,
                  callback=None) -> torch.Tensor:
    """Draw ``x_T ~ N(0, sigma_max^2)`` from ``generator`` and run a sampler.

    Args:
        denoiser: ``D(x, sigma)``, usually clipping to [-1, 1].
        shape: (N, C, H, W) of the batch.
        generator: noise generator (:func:`~mmagic_cm.models.noise.get_generator`).
        sampler: a key of :data:`SAMPLERS`.
        steps: schedule length (multistep: grid size for ``ts``).
        ts: multistep grid indices, e.g. ``(0, 22, 39)``.
        noise: (N, C, H, W) standard-normal starting noise to use instead of
            the generator's first draw (``x_T = noise * sigma_max``).

    Returns:
        (N, C, H, W) float32 images clamped to [-1, 1].
    """
    if sampler not in SAMPLERS:
        raise ValueError(f'unknown sampler {sampler!r}; choose one of {", ".join(SAMPLERS)}')
    if sampler == 'multistep':
        ts = check_ts(ts, steps)
    elif steps < 1:
        raise ValueError(f'steps must be >= 1, got {steps}')
    n_sigmas = steps + 1 if sampler == 'progdist' else steps
    sigmas = get_sigmas_karras(n_sigmas, sigma_min, sigma_max, rho, device=device)
    if noise is None:
        noise = generator.randn(*shape, device=device)
    elif tuple(noise.shape) != tuple(shape):
        raise ValueError(f'noise has shape {tuple(noise.shape)}, expected {tuple(shape)}')
    x_t = noise.to(device) * sigma_max
    kwargs = {}
    if sampler in CHURN_SAMPLERS:
        kwargs = dict(s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise)
    elif sampler == 'multistep':
        kwargs = dict(ts=ts, steps=steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    x_0 = SAMPLERS[sampler](denoiser, x_t, sigmas, generator, progress=progress,
                            callback=callback, **kwargs)
    return x_0.clamp(-1, 1)
