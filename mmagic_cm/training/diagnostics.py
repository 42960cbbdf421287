"""How far sCM's tangent from finite differences is from the exact one (the JVP).

sCT/sCD need ``cos t sin t · dF/dt`` of the network along the trajectory.
The JVP (``tangent='jvp'``) is exact; a central difference over t ± h
(``tangent='finite-difference'``) is what a network without forward-mode
rules, or one whose time input moves too fast for the JVP to be useful, can
use instead. :func:`tangent_agreement` measures the two against each other
on given images: the cosine similarity of the normalised tangent g each
gives (what sCM's gradient follows) and the relative L2 error of the time
derivative itself, per noise level. ``tools/tangent_error.py`` is its
command line.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from ..denoiser.precond import KarrasPrecond, append_dims
from ..denoiser.trigflow import trigflow_network
from .scm import scm_tangent, time_derivative

#: TrigFlow times of the report (σ = σ_d tan t: 0.05, 0.15, 0.34, 0.63, 1.29, 7.05 at σ_d 0.5)
DEFAULT_TIMES = (0.1, 0.3, 0.6, 0.9, 1.2, 1.5)
#: finite-difference steps in t: the old digits configs' and FastGen's order of magnitude
DEFAULT_STEPS = (0.02, 1e-3)


@torch.no_grad()
def tangent_agreement(net: nn.Module, precond: KarrasPrecond, images: torch.Tensor,
                      labels: Optional[torch.Tensor] = None,
                      times: Sequence[float] = DEFAULT_TIMES,
                      steps: Sequence[float] = DEFAULT_STEPS, seed: int = 0,
                      dtype: torch.dtype = torch.float64) -> List[Dict[str, float]]:
    """Finite differences against the JVP, per TrigFlow time t.

    At each t, every image gets its own noise z ~ N(0, σ_d²) (seeded), x_t =
    cos t x_0 + sin t z and sCT's dx_t/dt = cos t z − sin t x_0; the network
    (in eval mode, in ``dtype``) is differentiated both ways, and the full
    tangent g (warm-up 1, RMS normalisation, c = 0.1) is formed from each.

    Args:
        net: the UNet (EDM-parameterised: ``precond`` without the boundary condition).
        precond: its preconditioning (``time_scale`` is the time input's).
        images: (N, C, H, W) clean images in [-1, 1]; labels (N,) or None.
        times: TrigFlow times in (0, π/2).
        steps: finite-difference steps in t.

    Returns:
        one dict per t: ``t``, ``sigma``, and per step h ``cos_g@h`` (mean over
        images of the cosine similarity of g from the difference with g from
        the JVP), ``min_cos_g@h`` and ``rel_err_dF@h`` (‖dF_fd − dF_jvp‖ /
        ‖dF_jvp‖ over the batch).
    """
    was_training = net.training
    net = net.eval()
    original_dtype = next(net.parameters()).dtype
    net.to(dtype)
    try:
        sd = precond.sigma_data
        x0 = images.to(dtype)
        cond = {} if labels is None else {'y': labels}
        fn = trigflow_network(precond, net, **cond)
        gen = torch.Generator().manual_seed(seed)
        rows = []
        for tv in times:
            t = torch.full((len(x0), ), float(tv), dtype=dtype)
            z = torch.randn(x0.shape, generator=gen).to(dtype) * sd
            cos, sin = (append_dims(f(t), x0.ndim) for f in (torch.cos, torch.sin))
            x_t = cos * x0 + sin * z
            dxdt = cos * z - sin * x0
            F = fn(x_t / sd, t)
            exact = time_derivative(fn, x_t / sd, t, dxdt, sd, 'jvp', fp32=False)
            g_exact = scm_tangent(F, exact, x_t, dxdt, t, sd, 1.0).flatten(1)
            row = dict(t=float(tv), sigma=sd * math.tan(float(tv)))
            for h in steps:
                approx = time_derivative(fn, x_t / sd, t, dxdt, sd, 'finite-difference', h,
                                         fp32=False)
                g = scm_tangent(F, approx, x_t, dxdt, t, sd, 1.0).flatten(1)
                cos_g = torch.nn.functional.cosine_similarity(g, g_exact, dim=1)
                row[f'cos_g@{h:g}'] = float(cos_g.mean())
                row[f'min_cos_g@{h:g}'] = float(cos_g.min())
                row[f'rel_err_dF@{h:g}'] = float((approx - exact).norm() / exact.norm())
            rows.append(row)
        return rows
    finally:
        net.to(original_dtype).train(was_training)


def summarize(rows: List[Dict[str, float]], steps: Sequence[float] = DEFAULT_STEPS
              ) -> Dict[str, float]:
    """Means over the times of :func:`tangent_agreement`'s ``cos_g`` and ``rel_err_dF``."""
    out = {}
    for h in steps:
        for key in (f'cos_g@{h:g}', f'rel_err_dF@{h:g}'):
            out[key] = sum(r[key] for r in rows) / len(rows)
    return out
