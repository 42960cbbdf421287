from .consistency_model import ConsistencyModel, build_unet, resolve_dtype, to_uint8_nhwc
from .denoiser import KarrasDenoiser, get_sigmas_karras, karras_sigma
from .noise import GENERATORS, get_generator
from .samplers import SAMPLERS, check_ts, karras_sample
from .unet import ConsistencyUNetModel

__all__ = [
    'ConsistencyModel', 'ConsistencyUNetModel', 'KarrasDenoiser', 'SAMPLERS', 'GENERATORS',
    'build_unet', 'check_ts', 'get_generator', 'get_sigmas_karras', 'karras_sample',
    'karras_sigma', 'resolve_dtype', 'to_uint8_nhwc'
]
