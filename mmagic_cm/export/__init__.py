"""Deployment: D(x, σ[, y]) exported to ONNX or OpenVINO (:mod:`.core`), and
sampling through such a file (:class:`~mmagic_cm.models.exported.ExportedDenoiser`,
used by ``ConsistencyModel`` when its ``model_path`` is an exported file).

Needs the ``deploy`` extra: ``pip install -e ".[deploy]" -c requirements/constraints.txt``.
"""
from ..models.exported import (
    ExportedDenoiser,
    MissingBackendError,
    check_fits,
    is_exported_file,
    read_metadata,
)
from .core import DTYPES, FORMATS, TOLERANCES, export_denoiser

__all__ = ['DTYPES', 'FORMATS', 'TOLERANCES', 'ExportedDenoiser', 'MissingBackendError',
           'check_fits', 'export_denoiser', 'is_exported_file', 'read_metadata']
