"""D(x, σ): the ADM UNet, the preconditioning around it, TrigFlow time, noise levels, fast paths.

- :mod:`.unet`: the network F (the released checkpoints' parameter names);
- :mod:`.precond`: the EDM / consistency-model scalings and :class:`Denoiser`,
  ``c_skip x + c_out F(c_in x, c_noise)``;
- :mod:`.trigflow`: the same network in TrigFlow time (sCT, sCD);
- :mod:`.sigmas`: the Karras et al. (2022) noise levels that training and
  every sampler walk;
- :mod:`.fast`: bf16/fp16 copies, channels_last, ``torch.compile``.
"""
from .precond import Denoiser, KarrasPrecond
from .sigmas import check_ts, get_sigmas_karras, karras_sigma
from .trigflow import TrigFlowPrecond, sigma_to_trig, trig_to_sigma, trigflow_network
from .unet import ConsistencyUNetModel

__all__ = [
    'ConsistencyUNetModel', 'Denoiser', 'KarrasPrecond', 'TrigFlowPrecond',
    'check_ts', 'get_sigmas_karras', 'karras_sigma', 'sigma_to_trig',
    'trig_to_sigma', 'trigflow_network'
]
