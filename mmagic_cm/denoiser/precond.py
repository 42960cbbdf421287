"""Preconditioning: EDM's scalings, and :class:`Denoiser`, the module that *is* D(x, σ).

    D(x, σ) = c_skip(σ) · x + c_out(σ) · F(c_in(σ) · x, t(σ)),  t(σ) = time_scale · ln σ

with the network ``F`` (the UNet) and ``time_scale`` 250 (OpenAI's networks;
NVlabs EDM's ADM uses 1/4, a low-frequency time input whose derivative
sCM's tangent can follow). Consistency models use the
boundary-condition scalings, whose ``c_skip(σ_min) = 1`` and
``c_out(σ_min) = 0`` make ``D(x, σ_min) = x`` exactly; their EDM teachers
use plain EDM's. Samplers, editing, the training objectives (online,
target and teacher networks), the fast paths and the diffusers converter
all call a :class:`Denoiser`.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import nn

from ..registry import MODELS
from .sigmas import get_sigmas_karras


def append_dims(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append trailing singleton dims to ``x`` until it has ``ndim`` dims."""
    if x.ndim > ndim:
        raise ValueError(f'input has {x.ndim} dims, more than the target {ndim}')
    return x[(..., ) + (None, ) * (ndim - x.ndim)]


@MODELS.register_module()
class KarrasPrecond:
    """EDM preconditioning and noise range (no network inside).

    Args:
        sigma_data: data standard deviation (0.5 for images in [-1, 1]).
        sigma_min, sigma_max: the noise range; sigma_min is also the
            consistency model's boundary.
        rho: Karras schedule curvature.
        boundary_condition: the consistency-model scalings (CD and CT
            models); False: plain EDM's (teachers). ``ConsistencyModel`` sets
            it from ``training_mode``.
        weight_schedule: default loss weighting of the training objectives
            ('karras', 'snr', 'snr+1', 'truncated-snr', 'uniform');
            ``train_cfg.weighting`` overrides it.
        time_scale: the network's time input is ``time_scale · ln σ``: 250
            for the original's networks (``1000 · 0.25 ln σ``), 0.25 for
            NVlabs EDM's ADM and the digits teachers of the sCM recipes.
    """

    def __init__(self, sigma_data: float = 0.5, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0, boundary_condition: bool = False,
                 weight_schedule: str = 'karras', time_scale: float = 250.0):
        for name, value in (('sigma_data', sigma_data), ('sigma_min', sigma_min),
                            ('sigma_max', sigma_max), ('rho', rho)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not value > 0 or value == float('inf'):
                raise ValueError(f'precond {name} must be a positive number, got {value!r}')
        if not sigma_min < sigma_max:
            raise ValueError(f'need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}')
        self.sigma_data = sigma_data
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.rho = rho
        self.boundary_condition = bool(boundary_condition)
        self.weight_schedule = weight_schedule
        if isinstance(time_scale, bool) or not isinstance(time_scale, (int, float)) \
                or not 0 < time_scale < float('inf'):
            raise ValueError(f'precond time_scale must be a positive number, got {time_scale!r}')
        self.time_scale = float(time_scale)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sigma_data={self.sigma_data}, '
                f'sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, rho={self.rho}, '
                f'boundary_condition={self.boundary_condition}, time_scale={self.time_scale:g})')

    def with_boundary_condition(self, enabled: bool) -> KarrasPrecond:
        """The same noise range with the other scalings (CD: the teacher's)."""
        return KarrasPrecond(self.sigma_data, self.sigma_min, self.sigma_max, self.rho,
                             enabled, self.weight_schedule, self.time_scale)

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
        """The scalings in use (boundary-condition or EDM)."""
        if self.boundary_condition:
            return self.get_scalings_for_boundary_condition(sigma)
        return self.get_scalings(sigma)

    def time_input(self, sigma: torch.Tensor) -> torch.Tensor:
        """Network time input ``time_scale * ln(sigma)`` (tiny offset keeps 0 finite)."""
        return self.time_scale * torch.log(sigma + 1e-44)

    def get_sigmas(self, n: int, device='cpu') -> torch.Tensor:
        """``n`` Karras noise levels of this range, plus a final 0."""
        return get_sigmas_karras(n, self.sigma_min, self.sigma_max, self.rho, device)

    def denoise(self, model: Callable, x_t: torch.Tensor, sigmas: torch.Tensor,
                **model_kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(F output, D(x_t, sigmas))`` for a network ``model`` (the
        original's ``KarrasDenoiser.denoise``); :class:`Denoiser` is the module."""
        return Denoiser(model, self).forward_with_output(x_t, sigmas, **model_kwargs)


class Denoiser(nn.Module):
    """D(x, σ): a network ``F(x, t, **cond)`` inside :class:`KarrasPrecond`.

    Args:
        net: the network (the UNet, an inference copy of it, or any callable).
        precond: scalings and time input.
        clip: clamp D's output to [-1, 1] (the original's ``clip_denoised``).

    ``forward(x, sigma, **cond)``: x (N, C, H, W), sigma (N,) -> (N, C, H, W)
    float32; ``cond`` goes to the network (``y``: class labels).
    """

    def __init__(self, net: Callable, precond: KarrasPrecond, clip: bool = False):
        super().__init__()
        self.net = net
        self.precond = precond
        self.clip = clip

    def forward_with_output(self, x: torch.Tensor, sigma: torch.Tensor, **cond
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(F output, D(x, sigma))``; the output before ``clip``."""
        c_skip, c_out, c_in = (append_dims(s, x.ndim) for s in self.precond.scalings(sigma))
        output = self.net(c_in * x, self.precond.time_input(sigma), **cond)
        return output, c_out * output + c_skip * x

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, **cond) -> torch.Tensor:
        denoised = self.forward_with_output(x, sigma, **cond)[1].float()
        return denoised.clamp(-1, 1) if self.clip else denoised


#: training modes whose networks keep plain EDM scalings (no boundary shift):
#: the teacher, and sCM's TrigFlow models (f(x, 0) = x holds at σ = 0)
EDM_SCALINGS = ('edm', 'sct', 'scd')


def uses_boundary_condition(training_mode: str) -> bool:
    """Whether a model of ``training_mode`` uses the boundary-condition scalings
    (CD, CT, ECT) or plain EDM's (``EDM_SCALINGS``)."""
    return training_mode not in EDM_SCALINGS


#: config words of old releases, refused with the word that replaced them
RENAMED_CONFIG_WORDS = {'denoiser': 'precond', 'distillation': 'boundary_condition',
                        'KarrasDenoiser': 'KarrasPrecond'}


def refuse_renamed(words, where: str) -> None:
    """Raise, naming the new word, for the first of ``words`` (config keys or a
    ``type``) that :data:`RENAMED_CONFIG_WORDS` lists."""
    for word in words:
        if isinstance(word, str) and word in RENAMED_CONFIG_WORDS:
            raise ValueError(f'{where}{word}: an old name, now {RENAMED_CONFIG_WORDS[word]!r}')


def precond_config(model_cfg):
    """``model_cfg['precond']`` (None when absent); the old key ``denoiser`` is refused."""
    refuse_renamed([k for k in model_cfg if k == 'denoiser'], 'model.')
    return model_cfg.get('precond')


def build_precond(cfg, boundary_condition: Optional[bool] = None) -> KarrasPrecond:
    """A :class:`KarrasPrecond` from a config dict (``type`` defaults to it;
    ``boundary_condition`` set when given), or an object, as it is."""
    if cfg is None or isinstance(cfg, dict):
        cfg = dict(cfg or {})
        cfg.setdefault('type', 'KarrasPrecond')
        refuse_renamed(cfg, 'precond.')
        refuse_renamed([cfg['type']], 'precond.type=')
        if boundary_condition is not None:
            cfg['boundary_condition'] = boundary_condition
        return MODELS.build(cfg)
    return cfg  # an object is used as it is (it may be shared: never changed here)
