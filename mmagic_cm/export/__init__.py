"""Deployment: D(x, σ[, y]) written to ONNX or OpenVINO, and run from such a file.

- :mod:`.writer`: :func:`export_denoiser` (``tools/export.py``): the graph,
  preconditioning included, checked against PyTorch and written atomically;
- :mod:`.formats`: :class:`ExportFormat`, registered in ``EXPORT_FORMATS``
  (:mod:`.onnx_file`, :mod:`.openvino_file`): a format's suffix, dtypes,
  reading, running and converting;
- :mod:`.runtime`: :class:`ExportedDenoiser`, the file run by ONNX Runtime or
  OpenVINO with :class:`~mmagic_cm.denoiser.Denoiser`'s call contract (used
  by ``ConsistencyModel`` when its ``model_path`` is an exported file);
- :mod:`.early`: the standard-library-only part (cache folders, an ``.xml``'s
  metadata, OpenVINO's compile on a thread), which ``tools/sample.py``
  starts before its own imports.

Needs the ``deploy`` extra: ``pip install -e ".[deploy]" -c requirements/constraints.txt``.
"""
from .runtime import (
    ExportedDenoiser,
    MissingBackendError,
    check_fits,
    is_exported_file,
    read_metadata,
)
from .writer import EXPORT_DTYPES, TOLERANCES, export_denoiser

# the formats, registered in EXPORT_FORMATS: one module each
from . import onnx_file, openvino_file  # noqa: F401,E402  isort: skip
from .formats import ExportFormat, format_named, format_names, format_of  # noqa: E402

__all__ = ['EXPORT_DTYPES', 'TOLERANCES', 'ExportFormat', 'ExportedDenoiser',
           'MissingBackendError', 'check_fits', 'export_denoiser', 'format_named',
           'format_names', 'format_of', 'is_exported_file', 'read_metadata']
