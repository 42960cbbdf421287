"""Export formats: what a file format of D(x, σ) says about itself.

Each format is a subclass of :class:`ExportFormat` registered in
:data:`~mmagic_cm.registry.EXPORT_FORMATS` under its ``--format`` name
(``onnx`` in :mod:`.onnx_file`, ``openvino`` in :mod:`.openvino_file`); the
writer, the runtime, ``tools/export.py``'s choices, the benchmark and the
docs take the formats and their suffixes from there. A new format is one
such class (in a module :mod:`mmagic_cm.export` imports), its test and a
line in docs/deploy.md.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from ..registry import EXPORT_FORMATS


class ExportFormat:
    """A file format of D(x, σ[, y]) -> x0: how it is written, read and run.

    Every format is first traced to ONNX by torch (:mod:`.writer`), then
    :meth:`convert`\\ ed; the file carries the metadata under
    :data:`~.runtime.METADATA_KEY`.
    """
    #: the ``--format`` name (the registry key)
    name: str = ''
    #: how messages name it ('ONNX', 'OpenVINO')
    label: str = ''
    #: the suffix of the file readers open (``--out``, ``model_path``)
    suffix: str = ''
    #: the dtypes it exports (of :data:`~.writer.EXPORT_DTYPES`)
    dtypes: Tuple[str, ...] = ('fp32', )
    #: why a dtype of :data:`~.writer.EXPORT_DTYPES` it does not take is refused
    dtype_hints: Dict[str, str] = {}
    #: dtypes whose UNet trunk torch casts before tracing (others convert later)
    traced_dtypes: Tuple[str, ...] = ()
    #: the package that runs the file (required when exporting)
    backend: str = ''
    #: runs on CUDA GPUs too (through ONNX Runtime); else on the CPU only
    cuda: bool = False
    #: the name torch's ONNX file gets while staged (None: the target's)
    staged_onnx: Optional[str] = None

    def read_metadata_text(self, path: str) -> Optional[str]:
        """The JSON text stored under the metadata key, or None."""
        raise NotImplementedError

    def open(self, exported, threads: Optional[int]) -> Callable:
        """A function of the named input tensors returning x0 on
        ``exported.device`` (an :class:`~.runtime.ExportedDenoiser`)."""
        raise NotImplementedError

    def convert(self, files: List[str], name: str, dtype: str, meta: Dict,
                calibration=None) -> List[str]:
        """The staged ONNX ``files`` (the ``.onnx`` last) as this format's files
        named ``name`` (the readable file last)."""
        return files


def format_names() -> Tuple[str, ...]:
    """Every registered export format's name."""
    return tuple(EXPORT_FORMATS.module_dict)


def format_named(name: str) -> ExportFormat:
    """The registered format ``name``; ValueError naming the others."""
    cls = EXPORT_FORMATS.module_dict.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f'format must be one of {", ".join(format_names())}, got {name!r}')
    return cls()


def export_suffixes() -> Tuple[str, ...]:
    """The suffixes of every registered format's files."""
    return tuple(cls.suffix for cls in EXPORT_FORMATS.module_dict.values())


def format_of(path: str) -> ExportFormat:
    """The format of an exported file, by its suffix; ValueError for another file."""
    for cls in EXPORT_FORMATS.module_dict.values():
        if path.lower().endswith(cls.suffix):
            return cls()
    raise ValueError(f'{path}: not an exported file (suffixes: {", ".join(export_suffixes())})')
