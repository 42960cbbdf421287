"""The ``openvino`` export format: OpenVINO's ``.xml`` + ``.bin``, run on the CPU
(fp32, fp16 weights, bf16 inference, int8 quantised with NNCF)."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Optional
from xml.etree import ElementTree

import numpy as np
import torch

from ..files.checkpoint import CheckpointError
from ..registry import EXPORT_FORMATS
from .early import (
    METADATA_KEY,
    compile_openvino,
    openvino_cache,
    openvino_config,
    take_openvino,
    xml_metadata_text,
)
from .formats import ExportFormat
from .runtime import _numpy, require

#: the names of D's inputs (a port has several tensor names after conversion)
INPUTS = ('x', 'sigma', 'y')


def _input_names(ports) -> List[str]:
    return [next(n for n in sorted(p.get_names()) if n in INPUTS) for p in ports]


@EXPORT_FORMATS.register_module(name='openvino')
class OpenVINOFormat(ExportFormat):
    name, label, suffix = 'openvino', 'OpenVINO', '.xml'
    dtypes = ('fp32', 'fp16', 'bf16', 'int8')
    backend = 'openvino'
    staged_onnx = 'model.onnx'

    def read_metadata_text(self, path: str) -> Optional[str]:
        # from the .xml itself: OpenVINO's read_model would load the weights too
        # (a second or more of every command for a large model)
        try:
            return xml_metadata_text(path)
        except ElementTree.ParseError as exc:
            raise CheckpointError(f'{path} is not an OpenVINO .xml file ({exc})') from None

    def open(self, exported, threads: Optional[int]):
        ov = require('openvino', 'sampling through an OpenVINO file')
        config = openvino_config(exported.meta.get('dtype'), threads)
        cache = openvino_cache(exported.path)
        # compiled on a thread since the command started (tools/sample.py), or now
        compiled = take_openvino(exported.path, config, cache) or \
            compile_openvino(ov, exported.path, config, cache)
        names = _input_names(compiled.inputs)
        request = compiled.create_infer_request()

        def run(feeds):
            request.infer([_numpy(feeds[k]) for k in names])
            return torch.from_numpy(np.array(request.get_output_tensor(0).data,
                                             dtype=np.float32))
        return run

    def convert(self, files: List[str], name: str, dtype: str, meta: Dict,
                calibration: Optional[List[Dict[str, np.ndarray]]] = None) -> List[str]:
        """The staged ONNX file as ``name`` (.xml) + .bin beside it; returns
        ``[bin, xml]`` (fp16: weights stored in fp16; int8: quantised with NNCF on
        ``calibration``)."""
        onnx_path = files[-1]
        ov = require('openvino', 'exporting to OpenVINO')
        folder = osp.dirname(onnx_path)
        ov_model = ov.convert_model(onnx_path)
        if dtype == 'int8':
            nncf = require('nncf', 'int8 export (post-training quantisation)')
            names = _input_names(ov_model.inputs)
            data = nncf.Dataset(calibration, lambda item: [item[k] for k in names])
            ov_model = nncf.quantize(ov_model, data, subset_size=len(calibration),
                                     model_type=nncf.ModelType.TRANSFORMER)
        for f in os.listdir(folder):  # the ONNX file (and its external data)
            if f.startswith(osp.basename(onnx_path)):
                os.unlink(osp.join(folder, f))
        ov_model.set_rt_info(json.dumps(meta, sort_keys=True), [METADATA_KEY])
        xml = osp.join(folder, name)
        ov.save_model(ov_model, xml, compress_to_fp16=dtype == 'fp16')
        return [osp.splitext(xml)[0] + '.bin', xml]
