"""Sampling loops: plain functions of ``(denoiser, x, sigmas, randn_like, ...)``.

The one contract (k-diffusion's):

- ``denoiser(x, sigma)``: D(x, σ), noisy images (N, C, H, W) at noise levels
  ``sigma`` (N,) -> denoised images (a :class:`~mmagic_cm.denoiser.precond.Denoiser`, usually
  clipping to [-1, 1]);
- ``x``: the starting images at noise level ``sigmas[0]``;
- ``sigmas``: the noise levels to walk, descending, from
  :func:`sampling_sigmas`;
- ``randn_like(x)``: standard-normal noise shaped like ``x`` (a noise
  generator's, :mod:`mmagic_cm.sampling.noise`); samplers that add no noise
  ignore it.

Each returns the final ``x`` (float, unclamped). A sampler is registered in
:data:`~mmagic_cm.registry.SAMPLERS` with :func:`register_sampler`, which
says the rest: its noise levels, the settings it checks and takes, and
whether it is for consistency models; every list of sampler names (settings,
``tools/sample.py``, the web demo, the docs) is the registry's. A new sampler
is one such function (here or in a module of its own imported by
:mod:`mmagic_cm.sampling`), its test and a line in docs/sampling.md. The arithmetic order
follows the original code so that, given the same denoiser outputs, float32
results match it bit for bit on the CPU.

- ``onestep``, ``multistep``: consistency models (one call at sigma_max;
  :func:`sample_consistency`, the loop the editing tasks also use);
  ``trigflow``: sCM's one- and two-step sampling in TrigFlow times;
- ``heun``, ``euler``, ``ancestral``, ``dpm``, ``progdist``: the EDM teachers
  (``heun`` and ``dpm`` take Karras' ``s_churn``, ``s_tmin``, ``s_tmax``,
  ``s_noise``).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import torch

from ..denoiser.precond import append_dims
from ..denoiser.sigmas import check_trig_ts, check_ts, get_sigmas_karras, ts_to_sigmas
from ..registry import SAMPLERS

#: Karras' churn settings (heun, dpm)
CHURN = ('s_churn', 's_tmin', 's_tmax', 's_noise')
DenoiserFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
RandnLike = Callable[[torch.Tensor], torch.Tensor]


def as_randn_like(noise) -> Optional[RandnLike]:
    """``randn_like`` itself, or a noise generator's (samplers took generator
    objects before; both work)."""
    return getattr(noise, 'randn_like', noise)


# ---------------------------------------------------------------- registration
def check_steps(steps: int, ts=None, trig_ts=None) -> dict:
    """The settings check of a sampler over ``steps`` Karras levels: steps >= 1."""
    if steps < 1:
        raise ValueError(f'steps must be >= 1, got {steps}')
    return {} if ts is None or isinstance(ts, str) else dict(ts=tuple(int(t) for t in ts))


def karras_levels(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0, ts=None, trig_ts=None, sigma_data: float = 0.5,
                  device='cpu') -> torch.Tensor:
    """``steps`` Karras levels and a final 0 (float32)."""
    check_steps(steps)
    return get_sigmas_karras(steps, sigma_min, sigma_max, rho, device)


def register_sampler(name: str, *, consistency: bool = False, takes: Tuple[str, ...] = (),
                     levels: Callable = karras_levels, check: Callable = check_steps,
                     keeps: Tuple[str, ...] = ()):
    """Register a sampler loop in :data:`~mmagic_cm.registry.SAMPLERS` as ``name``.

    Args:
        consistency: a sampler of consistency models (else of EDM teachers;
            the web demo offers each model its kind).
        takes: keyword arguments the loop takes beyond ``(denoiser, x,
            sigmas, randn_like, progress, callback)``, from the settings
            (``s_churn``, ``s_tmin``, ``s_tmax``, ``s_noise``) or the
            preconditioning (``sigma_min``, ``sigma_max``).
        levels: ``levels(steps, sigma_min, sigma_max, rho, ts=, trig_ts=,
            sigma_data=, device=)``, the noise levels it walks.
        check: ``check(steps, ts, trig_ts)``: raise on bad settings, return
            the checked values that change (``{'ts': (0, 22, 39)}``).
        keeps: the grid settings ('ts', 'trig_ts') it reads; switching to a
            sampler resets the grid settings it does not keep.
    """
    def wrap(fn: Callable) -> Callable:
        fn.sampler_name, fn.consistency, fn.takes = name, consistency, tuple(takes)
        fn.levels, fn.check, fn.keeps = levels, check, tuple(keeps)
        SAMPLERS.register_module(name=name, module=fn)
        return fn
    return wrap


def sampler_names(consistency: Optional[bool] = None) -> Tuple[str, ...]:
    """Every registered sampler's name (registration order); ``consistency``:
    only those of consistency models (True) or of EDM teachers (False)."""
    return tuple(n for n, fn in SAMPLERS.module_dict.items()
                 if consistency is None or fn.consistency == consistency)


def sampler_of(name: str) -> Callable:
    """The registered sampler ``name``; ValueError naming the others."""
    fn = SAMPLERS.module_dict.get(name) if isinstance(name, str) else None
    if fn is None:
        raise ValueError(f'unknown sampler {name!r}; choose one of {", ".join(sampler_names())}')
    return fn


def sampling_sigmas(sampler: str, steps: int, sigma_min: float = 0.002,
                    sigma_max: float = 80.0, rho: float = 7.0,
                    ts: Optional[Sequence[int]] = None, device='cpu',
                    trig_ts: Optional[Sequence[float]] = None,
                    sigma_data: float = 0.5) -> torch.Tensor:
    """The ``sigmas`` the registered ``sampler`` walks (its ``levels``)."""
    return sampler_of(sampler).levels(steps, sigma_min, sigma_max, rho, ts=ts, trig_ts=trig_ts,
                                      sigma_data=sigma_data, device=device)


def _multistep_levels(steps, sigma_min=0.002, sigma_max=80.0, rho=7.0, ts=None, trig_ts=None,
                      sigma_data=0.5, device='cpu'):
    """The grid points ``ts`` of a ``steps``-point grid (float64)."""
    return ts_to_sigmas(check_ts(ts, steps), steps, sigma_min, sigma_max, rho)


def _trigflow_levels(steps, sigma_min=0.002, sigma_max=80.0, rho=7.0, ts=None, trig_ts=None,
                     sigma_data=0.5, device='cpu'):
    """sigma_max (TrigFlow's t = π/2 within the model's range), the levels
    σ_d tan t of ``trig_ts``, and a final 0 (float64)."""
    mid = [sigma_data * math.tan(t) for t in check_trig_ts(trig_ts, steps)]
    return torch.tensor([sigma_max, *mid, 0.0], dtype=torch.float64)


def _progdist_levels(steps, sigma_min=0.002, sigma_max=80.0, rho=7.0, ts=None, trig_ts=None,
                     sigma_data=0.5, device='cpu'):
    """``steps + 1`` levels and a final 0 (progdist stops before the 0)."""
    check_steps(steps)
    return get_sigmas_karras(steps + 1, sigma_min, sigma_max, rho, device)


def _check_multistep(steps, ts=None, trig_ts=None) -> dict:
    return dict(ts=check_ts(ts, steps))


def _check_trigflow(steps, ts=None, trig_ts=None) -> dict:
    return dict(trig_ts=check_trig_ts(trig_ts, steps))


# ---------------------------------------------------------------- the samplers
def _steps(n: int, progress: bool, desc: str):
    if not progress:
        return range(n)
    from tqdm.auto import tqdm
    return tqdm(range(n), desc=desc, leave=False)


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """Karras ODE derivative ``(x - D(x)) / sigma``."""
    return (x - denoised) / append_dims(sigma, x.ndim)


def _churn(x, sigmas, i, randn_like, s_churn, s_tmin, s_tmax, s_noise):
    """Karras' churn: raise the noise level of step ``i`` to sigma_hat.

    Returns ``(x, sigma_hat)``. The noise is drawn at every step, churn or
    not, as the original does (it keeps the generator's stream aligned).
    """
    gamma = 0.0
    if s_tmin <= sigmas[i] <= s_tmax:
        gamma = min(s_churn / (len(sigmas) - 1), 2**0.5 - 1)
    eps = randn_like(x) * s_noise
    sigma_hat = sigmas[i] * (gamma + 1)
    if gamma > 0:
        x = x + eps * (sigma_hat**2 - sigmas[i]**2)**0.5
    return x, sigma_hat


@torch.no_grad()
def sample_consistency(denoiser: DenoiserFn, x: torch.Tensor, sigmas: Sequence[float],
                       randn_like: RandnLike, sigma_min: float = 0.002,
                       sigma_max: float = 80.0,
                       project: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                       progress: bool = False, callback=None) -> torch.Tensor:
    """Consistency sampling through the noise levels ``sigmas`` (the paper's Algorithm 1).

    ``x`` is at noise level ``sigmas[0]``. At each level the model jumps to
    an image ``x0 = D(x, sigmas[i])``, ``project`` (if given) replaces what
    is known of it (the zero-shot editing step, Algorithm 4), and it is
    re-noised to ``sigmas[i + 1]`` (clipped to [sigma_min, sigma_max]) with
    variance ``sigmas[i + 1]**2 - sigma_min**2``; at ``sigma_min`` nothing
    is added. The last level is only a target: ``len(sigmas) - 1``
    evaluations. The levels are used as Python floats (float64), as the
    original computes them.
    """
    randn_like = as_randn_like(randn_like)
    sigmas = [float(s) for s in sigmas]
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'consistency'):
        t = sigmas[i]
        x0 = denoiser(x, t * s_in)
        if project is not None:
            x0 = project(x0)
        next_t = min(max(sigmas[i + 1], sigma_min), sigma_max)
        x = x0 + randn_like(x) * math.sqrt(next_t**2 - sigma_min**2)
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': t, 'denoised': x0})
    return x


@register_sampler('onestep', consistency=True)
@torch.no_grad()
def sample_onestep(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor,
                   randn_like: Optional[RandnLike] = None, progress: bool = False,
                   callback=None) -> torch.Tensor:
    """One evaluation at ``sigmas[0]`` (sigma_max): noise -> image."""
    return denoiser(x, sigmas[0] * x.new_ones([x.shape[0]]))


@register_sampler('multistep', consistency=True, takes=('sigma_min', 'sigma_max'),
                  levels=_multistep_levels, check=_check_multistep, keeps=('ts', ))
@torch.no_grad()
def sample_multistep(denoiser: DenoiserFn, x: torch.Tensor, sigmas: Sequence[float],
                     randn_like: RandnLike, sigma_min: float = 0.002,
                     sigma_max: float = 80.0, progress: bool = False,
                     callback=None) -> torch.Tensor:
    """Multistep consistency sampling through the grid points ``sigmas``
    (:func:`~mmagic_cm.denoiser.sigmas.ts_to_sigmas`); with the last at sigma_min, the last
    re-noising adds nothing."""
    return sample_consistency(denoiser, x, sigmas, randn_like, sigma_min, sigma_max,
                              progress=progress, callback=callback)


@register_sampler('trigflow', consistency=True, levels=_trigflow_levels,
                  check=_check_trigflow, keeps=('trig_ts', ))
@torch.no_grad()
def sample_trigflow(denoiser: DenoiserFn, x: torch.Tensor, sigmas: Sequence[float],
                    randn_like: RandnLike, progress: bool = False,
                    callback=None) -> torch.Tensor:
    """sCM's TrigFlow sampling (Lu & Song 2025) in EDM coordinates: x0 = f(x_t, t),
    then x_t' = cos t' x0 + sin t' σ_d z, i.e. ``x0 + σ' z`` (no σ_min shift), at
    the levels ``sigmas`` (:func:`sampling_sigmas`
    'trigflow'; the last, 0, is only a target)."""
    return sample_consistency(denoiser, x, sigmas, randn_like, sigma_min=0.0,
                              sigma_max=float('inf'), progress=progress, callback=callback)


@register_sampler('heun', takes=CHURN)
@torch.no_grad()
def sample_heun(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor,
                randn_like: RandnLike,
                s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float('inf'),
                s_noise: float = 1.0, progress: bool = False, callback=None) -> torch.Tensor:
    """Karras et al. (2022) Algorithm 2: Heun steps with optional churn."""
    randn_like = as_randn_like(randn_like)
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'heun'):
        x, sigma_hat = _churn(x, sigmas, i, randn_like, s_churn, s_tmin, s_tmax, s_noise)
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


@register_sampler('euler')
@torch.no_grad()
def sample_euler(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, randn_like=None,
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


@register_sampler('ancestral')
@torch.no_grad()
def sample_ancestral(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor,
                     randn_like: RandnLike, progress: bool = False, callback=None) -> torch.Tensor:
    """Euler ancestral sampling: Euler step to sigma_down, add sigma_up noise."""
    randn_like = as_randn_like(randn_like)
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'ancestral'):
        denoised = denoiser(x, sigmas[i] * s_in)
        sigma_down, sigma_up = get_ancestral_step(sigmas[i], sigmas[i + 1])
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': sigmas[i], 'denoised': denoised})
        x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        x = x + randn_like(x) * sigma_up
    return x


@register_sampler('dpm', takes=CHURN)
@torch.no_grad()
def sample_dpm(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor,
               randn_like: RandnLike,
               s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float('inf'),
               s_noise: float = 1.0, progress: bool = False, callback=None) -> torch.Tensor:
    """DPM-Solver-2-like midpoint steps (midpoint on a rho=3 schedule)."""
    randn_like = as_randn_like(randn_like)
    s_in = x.new_ones([x.shape[0]])
    for i in _steps(len(sigmas) - 1, progress, 'dpm'):
        x, sigma_hat = _churn(x, sigmas, i, randn_like, s_churn, s_tmin, s_tmax, s_noise)
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


@register_sampler('progdist', levels=_progdist_levels)
@torch.no_grad()
def sample_progdist(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor,
                    randn_like=None, progress: bool = False, callback=None) -> torch.Tensor:
    """Euler steps over the schedule without its final 0 (progressive
    distillation's sampler; called with ``steps + 1`` noise levels)."""
    return sample_euler(denoiser, x, sigmas[:-1], randn_like, progress, callback)


def karras_sample(denoiser: DenoiserFn, shape: Sequence[int], generator,
                  sampler: str = 'heun', steps: int = 40, sigma_min: float = 0.002,
                  sigma_max: float = 80.0, rho: float = 7.0, ts=None, s_churn: float = 0.0,
                  s_tmin: float = 0.0, s_tmax: float = float('inf'), s_noise: float = 1.0,
                  device='cpu', noise: Optional[torch.Tensor] = None, progress: bool = False,
                  callback=None, trig_ts=None, sigma_data: float = 0.5) -> torch.Tensor:
    """Draw ``x_T ~ N(0, sigma_max^2)`` from ``generator`` and run a sampler
    (the original's ``karras_sample``).

    Args:
        denoiser: ``D(x, sigma)``, usually clipping to [-1, 1].
        shape: (N, C, H, W) of the batch.
        generator: noise generator (:func:`~mmagic_cm.sampling.noise.get_generator`).
        sampler: a registered sampler's name (:func:`sampler_names`).
        steps: schedule length (multistep: grid size for ``ts``).
        ts: multistep grid indices, e.g. ``(0, 22, 39)``.
        trig_ts, sigma_data: the trigflow sampler's intermediate TrigFlow times.
        noise: (N, C, H, W) standard-normal starting noise to use instead of
            the generator's first draw (``x_T = noise * sigma_max``).

    Returns:
        (N, C, H, W) float32 images clamped to [-1, 1].
    """
    run = sampler_of(sampler)
    sigmas = run.levels(steps, sigma_min, sigma_max, rho, ts=ts, trig_ts=trig_ts,
                        sigma_data=sigma_data, device=device)
    if noise is None:
        noise = generator.randn(*shape, device=device)
    elif tuple(noise.shape) != tuple(shape):
        raise ValueError(f'noise has shape {tuple(noise.shape)}, expected {tuple(shape)}')
    x_t = noise.to(device) * sigma_max
    given = dict(s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise,
                 sigma_min=sigma_min, sigma_max=sigma_max)
    x_0 = run(denoiser, x_t, sigmas, generator.randn_like, progress=progress,
              callback=callback, **{k: given[k] for k in run.takes})
    return x_0.clamp(-1, 1)
