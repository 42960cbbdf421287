"""Models: the network (``unet``), preconditioning and D(x, σ) (``precond``),
sigma schedules (``sigmas``), TrigFlow time (``trigflow``), samplers, noise
generators, sampling settings, lazy weights, fast paths, and the mmengine model
(``consistency_model``)."""
from .consistency_model import ConsistencyModel, to_uint8_nhwc
from .noise import GENERATORS, get_generator
from .precond import Denoiser, KarrasDenoiser, KarrasPrecond
from .samplers import SAMPLERS, karras_sample
from .settings import SamplingSettings, resolve_dtype
from .sigmas import check_ts, get_sigmas_karras, karras_sigma, sampling_sigmas
from .trigflow import TrigFlowPrecond, sigma_to_trig, trig_to_sigma, trigflow_network
from .unet import ConsistencyUNetModel
from .weights import build_unet

__all__ = [
    'ConsistencyModel', 'ConsistencyUNetModel', 'Denoiser', 'KarrasDenoiser', 'KarrasPrecond',
    'SAMPLERS', 'GENERATORS', 'SamplingSettings', 'build_unet', 'check_ts', 'get_generator',
    'get_sigmas_karras', 'karras_sample', 'karras_sigma', 'resolve_dtype', 'sampling_sigmas',
    'to_uint8_nhwc', 'TrigFlowPrecond', 'sigma_to_trig', 'trig_to_sigma', 'trigflow_network'
]
