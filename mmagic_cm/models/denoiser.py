"""Deprecated module: its contents moved to :mod:`.precond` (preconditioning,
``KarrasPrecond``, ``Denoiser``) and :mod:`.sigmas` (Karras sigmas)."""
import warnings

from .precond import KarrasDenoiser, KarrasPrecond, append_dims  # noqa: F401
from .sigmas import get_sigmas_karras, karras_sigma  # noqa: F401

warnings.warn('mmagic_cm.models.denoiser is deprecated: use mmagic_cm.models.precond and '
              'mmagic_cm.models.sigmas', DeprecationWarning, stacklevel=2)
