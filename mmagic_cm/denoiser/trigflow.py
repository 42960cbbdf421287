"""TrigFlow (Lu & Song 2025): the time variable of continuous-time consistency models.

TrigFlow writes a noisy image as ``x_t = cos t · x_0 + sin t · z`` with
``z ~ N(0, σ_d² I)`` and ``t ∈ [0, π/2]``, and the consistency function as

    f(x_t, t) = cos t · x_t − sin t · σ_d · F(x_t / σ_d, t).

It is EDM in other coordinates, exactly: ``σ = σ_d tan t`` and
``x_σ = x_t / cos t`` (the EDM noisy image x_0 + σ n), and then

    f = c_skip(σ) x_σ − c_out(σ) F(c_in(σ) x_σ, ·)

with EDM's own c_skip = cos² t, c_out = σ_d sin t, c_in = cos t / σ_d. So an
EDM-parameterised network (the shipped teachers) *is* a TrigFlow network with
``F_trig(x, t) = −F_edm(x, 250 ln(σ_d tan t))``, and a model trained in
TrigFlow keeps sampling and editing through :class:`~.precond.Denoiser` like
any other. :class:`TrigFlowPrecond` is the preconditioning of networks that
take TrigFlow's own time input (``time_scale · t``).
"""
from __future__ import annotations

import math
from typing import Callable, Tuple

import torch

from ..registry import MODELS
from .precond import KarrasPrecond


def sigma_to_trig(sigma, sigma_data: float):
    """EDM noise level σ ≥ 0 -> TrigFlow time t = arctan(σ / σ_d) in [0, π/2)."""
    return torch.atan(sigma / sigma_data) if torch.is_tensor(sigma) \
        else math.atan(sigma / sigma_data)


def trig_to_sigma(t, sigma_data: float):
    """TrigFlow time t in [0, π/2) -> EDM noise level σ_d tan t."""
    return sigma_data * (torch.tan(t) if torch.is_tensor(t) else math.tan(t))


@MODELS.register_module()
class TrigFlowPrecond(KarrasPrecond):
    """Preconditioning of a network with TrigFlow's time input.

    ``D(x, σ) = cos² t · x − σ_d sin t · F(cos t · x / σ_d, time_scale · t)``
    with ``t = arctan(σ / σ_d)``: the TrigFlow consistency function in EDM
    coordinates, so the samplers and editing use it unchanged. ``f(x, 0) = x``
    holds at σ = 0 (no boundary shift).

    Args:
        time_scale: the network's time input is ``time_scale · t`` (sCM's
            positional embedding of a scaled t; 1000 by default, the range
            of ADM's timesteps).
        (the rest as :class:`KarrasPrecond`; ``boundary_condition`` must be False)
    """

    def __init__(self, sigma_data: float = 0.5, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0, boundary_condition: bool = False,
                 weight_schedule: str = 'uniform', time_scale: float = 1000.0):
        if boundary_condition:
            raise ValueError('TrigFlowPrecond has no boundary-condition scalings (f(x, 0) = x '
                             'holds already); use training_mode sct or scd')
        super().__init__(sigma_data, sigma_min, sigma_max, rho, False, weight_schedule)
        if not time_scale > 0:
            raise ValueError(f'TrigFlowPrecond time_scale must be > 0, got {time_scale!r}')
        self.time_scale = float(time_scale)

    def with_boundary_condition(self, enabled: bool) -> KarrasPrecond:
        if enabled:
            raise ValueError('TrigFlowPrecond has no boundary-condition scalings')
        return self

    def scalings(self, sigma: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        c_skip, c_out, c_in = self.get_scalings(sigma)
        return c_skip, -c_out, c_in  # F points from the data to the noise

    def time_input(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.time_scale * sigma_to_trig(sigma, self.sigma_data)


def trigflow_network(precond: KarrasPrecond, net: Callable, **cond) -> Callable:
    """TrigFlow's ``F(x_t / σ_d, t)`` of a network inside ``precond``.

    Exact for :class:`TrigFlowPrecond` and for EDM scalings (a teacher,
    an sCT/sCD model): ``F = −net(x, 250 ln(σ_d tan t))``. A network trained
    with the boundary-condition scalings (CD, CT, ECT) is not a TrigFlow
    network; that raises ValueError.

    Returns ``F(x_in, t)``: x_in (N, C, H, W), t (N,) in (0, π/2) -> (N, C, H, W).
    """
    if isinstance(precond, TrigFlowPrecond):
        def trig(x_in, t):
            return net(x_in, precond.time_scale * t, **cond)
        return trig
    if precond.boundary_condition:
        raise ValueError(
            'this network was trained with the consistency boundary-condition scalings '
            '(c_skip(σ_min) = 1), which TrigFlow cannot express; sCM needs an EDM-'
            "parameterised network (training_mode='edm', 'sct' or 'scd')")
    sigma_data = precond.sigma_data

    def edm(x_in, t):
        return -net(x_in, precond.time_input(trig_to_sigma(t, sigma_data)), **cond)
    return edm
