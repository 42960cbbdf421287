"""Zero-shot editing with a consistency model: plain functions.

Each takes a denoiser ``D(x, sigma)`` that clamps to [-1, 1] (as
``ConsistencyModel.sampling_denoiser`` gives it), images (N, C, H, W) in [-1, 1],
grid indices ``ts`` of a ``steps``-point Karras grid (as the multistep
sampler) and a noise generator of :mod:`mmagic_cm.sampling.noise`. They run
:func:`~mmagic_cm.sampling.samplers.sample_consistency` with a replacement
step, the paper's Algorithm 4, and return ``(edited, observed)``: the
result, unclamped like the samplers' output, and the input as the task saw
it (masked, grey, patch means, noised).

``inpaint``, ``colorize`` and ``superres`` compute what the original's
``iterative_inpainting``, ``iterative_colorization`` and
``iterative_superres`` compute, for any mask and patch size.
"""
from __future__ import annotations

from functools import partial
from typing import Optional, Sequence, Tuple

import torch

from ..denoiser.sigmas import ts_to_sigmas
from ..sampling.samplers import DenoiserFn, sample_consistency
from .operators import Colorize, Inpaint, Operator, SuperResolution


def edit_with_operator(denoiser: DenoiserFn, images: torch.Tensor, x: torch.Tensor,
                       ts: Sequence[int], generator, operator: Operator, steps: int = 40,
                       sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                       progress: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Multistep sampling from ``x`` (noise at ``sigma_max``) that keeps
    ``operator``'s part of ``images`` at every step."""
    known = operator.observe(images)
    sigmas = ts_to_sigmas(ts, steps, sigma_min, sigma_max, rho)
    out = sample_consistency(denoiser, x, sigmas, generator.randn_like, sigma_min, sigma_max,
                             project=partial(operator.replace, known), progress=progress)
    return out, known


def inpaint(denoiser: DenoiserFn, images: torch.Tensor, mask: torch.Tensor, x: torch.Tensor,
            ts: Sequence[int], generator, **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fill where ``mask`` is 0 (mask: (H, W) or (N|1, C|1, H, W), 1 = keep)."""
    return edit_with_operator(denoiser, images, x, ts, generator, Inpaint(mask), **kwargs)


def colorize(denoiser: DenoiserFn, images: torch.Tensor, x: torch.Tensor, ts: Sequence[int],
             generator, **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """Colour ``images`` (RGB, or grey as R = G = B), keeping their luminance."""
    return edit_with_operator(denoiser, images, x, ts, generator, Colorize(), **kwargs)


def superres(denoiser: DenoiserFn, images: torch.Tensor, x: torch.Tensor, ts: Sequence[int],
             generator, patch_size: int = 8, **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """Add detail keeping every ``patch_size``-square patch mean of ``images``
    (full-size images, or low-resolution ones upscaled by
    :meth:`SuperResolution.upscale`)."""
    return edit_with_operator(denoiser, images, x, ts, generator,
                              SuperResolution(patch_size), **kwargs)


def denoising_sigmas(sigma: float, ts: Optional[Sequence[int]] = None, steps: int = 40,
                     sigma_min: float = 0.002, sigma_max: float = 80.0,
                     rho: float = 7.0) -> list:
    """Noise levels to visit from ``sigma``: it, then the grid points of ``ts``
    below it, ending at ``sigma_min`` (one step when ``ts`` is None)."""
    sigma = float(sigma)
    if not sigma_min < sigma <= sigma_max:
        raise ValueError(f'sigma={sigma} must lie in ({sigma_min}, {sigma_max}] (images '
                         'in [-1, 1]: noise of std 0.1 is sigma=0.1)')
    below = [] if ts is None else [
        s for s in ts_to_sigmas(ts, steps, sigma_min, sigma_max, rho).tolist() if s < sigma]
    # the grid's last point is sigma_min up to float rounding: no second step there
    if not below or below[-1] > sigma_min * (1 + 1e-9):
        below.append(sigma_min)
    return [sigma] + below


def denoise(denoiser: DenoiserFn, noisy: torch.Tensor, sigma: float, generator,
            ts: Optional[Sequence[int]] = None, steps: int = 40, sigma_min: float = 0.002,
            sigma_max: float = 80.0, rho: float = 7.0, progress: bool = False
            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Remove Gaussian noise of std ``sigma`` from ``noisy`` (= image + sigma * n).

    One consistency step at ``sigma``, then multistep refinement through the
    grid points of ``ts`` below ``sigma`` if given.
    """
    sigmas = denoising_sigmas(sigma, ts, steps, sigma_min, sigma_max, rho)
    out = sample_consistency(denoiser, noisy, sigmas, generator.randn_like, sigma_min,
                             sigma_max, progress=progress)
    return out, noisy


def stroke(denoiser: DenoiserFn, strokes: torch.Tensor, sigma: float, generator,
           ts: Optional[Sequence[int]] = None, noise: Optional[torch.Tensor] = None,
           **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stroke-guided generation (SDEdit-like): noise a rough painting to
    ``sigma`` (large: more freedom, less faithful) and sample from there.

    ``noise``: (N, C, H, W) standard normal; default ``generator``'s draw.
    """
    if noise is None:
        noise = generator.randn_like(strokes)
    return denoise(denoiser, strokes + noise * float(sigma), sigma, generator, ts, **kwargs)


def slerp(a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between noises ``a`` and ``b`` (each (1, ...)) at
    ``alpha`` (K,) in [0, 1] -> (K, ...)."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    cos = torch.dot(a64, b64) / (a64.norm() * b64.norm())
    theta = torch.arccos(cos.clamp(-1, 1))
    alpha = alpha.double().view(-1, *([1] * (a.ndim - 1)))
    if theta < 1e-6:  # (anti)parallel: the linear mix is the limit
        return ((1 - alpha) * a + alpha * b).to(a.dtype)
    sin = torch.sin(theta)
    return ((torch.sin((1 - alpha) * theta) / sin) * a.double()
            + (torch.sin(alpha * theta) / sin) * b.double()).to(a.dtype)


def shared_randn_like(generator):
    """``randn_like`` with one draw for every row: interpolation points share
    their re-noising, so the images change only through the starting noise."""

    def randn_like(x: torch.Tensor) -> torch.Tensor:
        one = generator.randn(1, *x.shape[1:], dtype=x.dtype, device=x.device)
        return one.expand_as(x).contiguous()

    return randn_like


def interpolate(denoiser: DenoiserFn, noise_a: torch.Tensor, noise_b: torch.Tensor,
                alphas: torch.Tensor, generator, ts: Optional[Sequence[int]] = None,
                steps: int = 40, sigma_min: float = 0.002, sigma_max: float = 80.0,
                rho: float = 7.0, progress: bool = False
                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images along the great circle between two standard-normal noises.

    Args:
        noise_a, noise_b: (1, C, H, W).
        alphas: (K,) points in [0, 1].
        ts: multistep grid indices; None: one step.

    Returns:
        ``(images, noises)``: (K, C, H, W) each. For class-conditional
        models interpolate labels in ``denoiser`` (see :func:`class_weights`).
    """
    x = slerp(noise_a, noise_b, alphas) * sigma_max
    sigmas = ([sigma_max, sigma_min] if ts is None else
              ts_to_sigmas(ts, steps, sigma_min, sigma_max, rho))
    out = sample_consistency(denoiser, x, sigmas, shared_randn_like(generator), sigma_min,
                             sigma_max, progress=progress)
    return out, x / sigma_max


def class_weights(label_a: int, label_b: int, alphas: torch.Tensor, num_classes: int
                  ) -> torch.Tensor:
    """(K, num_classes) float weights ``(1 - alpha) * onehot(a) + alpha * onehot(b)``,
    which the UNet takes as ``y`` (a mix of the two class embeddings)."""
    weights = torch.zeros(len(alphas), num_classes)
    weights[:, label_a] += 1 - alphas.float()
    weights[:, label_b] += alphas.float()
    return weights


__all__ = ['edit_with_operator', 'inpaint', 'colorize', 'superres', 'denoise', 'stroke',
           'interpolate', 'slerp', 'class_weights', 'denoising_sigmas']
