"""The ``onnx`` export format: an ``.onnx`` file run by ONNX Runtime (CPU, CUDA, TensorRT)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..files.checkpoint import CheckpointError
from ..registry import EXPORT_FORMATS
from .formats import ExportFormat
from .runtime import (
    GPU_RUNTIME_HINT,
    METADATA_KEY,
    ORT_PROVIDERS,
    MissingBackendError,
    _numpy,
    bound_runner,
    onnx_providers,
    require,
)


@EXPORT_FORMATS.register_module(name='onnx')
class OnnxFormat(ExportFormat):
    name, label, suffix = 'onnx', 'ONNX', '.onnx'
    dtypes = ('fp32', 'fp16')
    dtype_hints = {
        'bf16': 'ONNX Runtime has no bf16 kernels on the CPU; use --format openvino --dtype '
                'bf16, or fp16/fp32',
        'int8': 'int8 is OpenVINO post-training quantisation: use --format openvino'}
    traced_dtypes = ('fp16', )
    backend = 'onnxruntime'
    cuda = True

    def read_metadata_text(self, path: str) -> Optional[str]:
        onnx = require('onnx', 'reading an ONNX file')
        props = {p.key: p.value for p in onnx.load(path, load_external_data=False)
                 .metadata_props}
        return props.get(METADATA_KEY)

    def open(self, exported, threads: Optional[int]):
        ort = require('onnxruntime', 'sampling through an ONNX file')
        providers = onnx_providers(ort, exported.provider, exported.device.index or 0,
                                   exported.meta.get('dtype'), exported.path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            sess = ort.InferenceSession(exported.path, opts, providers=providers)
        except Exception as exc:  # an opset or operator this runtime cannot run
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            if exported.provider != 'cpu':  # the GPU side, more likely than the file
                raise MissingBackendError(
                    f'onnxruntime {ort.__version__} could not open {exported.path} with '
                    f'provider {exported.provider!r} on {exported.device}: {first}; '
                    f'{GPU_RUNTIME_HINT}') from None
            raise CheckpointError(f'onnxruntime {ort.__version__} cannot load '
                                  f'{exported.path}: {first}') from None
        active = sess.get_providers()
        if active[0] != ORT_PROVIDERS[exported.provider]:  # onnxruntime fell back quietly
            raise MissingBackendError(
                f'onnxruntime {ort.__version__} opened {exported.path} with {active[0]}, not '
                f'{ORT_PROVIDERS[exported.provider]} (its libraries did not load on '
                f'{exported.device}); {GPU_RUNTIME_HINT}')
        if exported.device.type == 'cuda':
            return bound_runner(sess, exported.device)
        names = [i.name for i in sess.get_inputs()]
        return lambda feeds: torch.from_numpy(np.asarray(sess.run(
            None, {k: _numpy(feeds[k]) for k in names})[0], dtype=np.float32))
