"""Exporting D(x, σ[, y]) -> x0, preconditioning included, to ONNX or OpenVINO.

One graph serves onestep, multistep and the editing loops: it takes ``x``
(N, C, H, W) float32, ``sigma`` (N,) float32 and, for class-conditional
models, ``y`` (N,) int64, and returns ``x0`` (N, C, H, W) float32, clamped
to [-1, 1] when the config's ``clip_denoised`` says so. The trunk runs in
the chosen dtype; the scalings, inputs and output stay float32.

Every file is checked against PyTorch on random inputs before it appears
under its name (:data:`TOLERANCES`), carries its metadata
(:func:`~mmagic_cm.export.runtime.export_metadata`) and is written
atomically: the file (``.onnx``; OpenVINO's ``.xml`` + ``.bin``; ONNX
weights past 1 GiB in ``.onnx.data``) is made in a staging folder next to
the target, checked there, then moved in with
:func:`~mmagic_cm.files.atomic.replace_path` (weights first), so that a failure
leaves nothing behind and the old files untouched.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import tempfile
import warnings
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from ..denoiser.fast import DTYPES, cast_trunk_copy
from ..denoiser.precond import Denoiser, append_dims
from ..files.atomic import make_readable, replace_path
from .formats import format_named
from .runtime import METADATA_KEY, ExportedDenoiser, export_metadata, is_exported_file, require

#: every dtype a format may export (each takes some: :attr:`~.formats.ExportFormat.dtypes`)
EXPORT_DTYPES = ('fp32', 'fp16', 'bf16', 'int8')
#: |exported - PyTorch fp32| of D's output on random inputs, per dtype: the max,
#: for int8 the mean
TOLERANCES = {'fp32': 1e-4, 'fp16': 5e-2, 'bf16': 1e-1, 'int8': 2e-2}
#: weights past this size go to an external ``.data`` file beside the ``.onnx``
EXTERNAL_DATA_BYTES = 1 << 30
#: ONNX opset of the exported graphs (onnxruntime >= 1.14 runs it)
OPSET = 17
#: int8 calibration: batches of the model's own noisy inputs (see :func:`calibration_inputs`)
CALIBRATION_BATCHES = 16


class DenoiserGraph(Denoiser):
    """The :class:`~mmagic_cm.denoiser.precond.Denoiser` D(x, σ[, y]) with the
    class labels a positional input, for tracing (float32 scalings around the
    UNet, whose trunk may be cast, :func:`~mmagic_cm.denoiser.fast.cast_trunk_copy`)."""

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, y: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        return super().forward(x, sigma, **({} if y is None else {'y': y}))


def check_inputs(model, batch: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random inputs over the whole noise range: x = σ z, σ log-spaced."""
    gen = torch.Generator().manual_seed(seed)
    p = model.precond
    sigma = torch.logspace(np.log10(p.sigma_min), np.log10(p.sigma_max), batch)
    x = torch.randn(batch, *model.image_shape, generator=gen) * append_dims(sigma, 4)
    x = x + torch.rand(batch, *model.image_shape, generator=gen) * 2 - 1  # an image part
    inputs = dict(x=x, sigma=sigma)
    if model.num_classes:
        inputs['y'] = torch.randint(0, model.num_classes, (batch, ), generator=gen)
    return inputs


def export_denoiser(model, path: str, format: str = 'onnx', dtype: str = 'fp32',
                    batch_size: Optional[int] = None, dynamic_batch: bool = False,
                    config: Optional[str] = None, check: bool = True,
                    calibration_batches: int = CALIBRATION_BATCHES, log=print) -> Dict:
    """Export ``model``'s D(x, σ[, y]) to ``path`` and check it against PyTorch.

    Args:
        model: a ``ConsistencyModel`` (its weights are read if pending).
        path: ``.onnx`` (format 'onnx') or ``.xml`` (format 'openvino'; the
            ``.bin`` goes beside it).
        dtype: 'fp32', 'fp16' or 'bf16' (bf16: OpenVINO only; the weights stay
            float32 and OpenVINO runs in bf16 where the CPU has it).
        batch_size: static batch size (default the model's ``batch_size``);
            ``dynamic_batch`` makes it any.
        config: the config file's name, stored in the metadata.
        check: compare with PyTorch (always, unless a test turns it off).
        calibration_batches: int8: batches of calibration inputs
            (:func:`calibration_inputs`).

    Returns:
        the metadata written, with ``max_abs_diff`` and ``tolerance``.

    Raises:
        ValueError: bad arguments or a failed check (nothing written);
        MissingBackendError: onnx / onnxruntime / openvino absent.
    """
    fmt = format_named(format)
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f'dtype must be one of {", ".join(EXPORT_DTYPES)}, got {dtype!r}')
    if dtype not in fmt.dtypes:
        raise ValueError(f'{format} {dtype}: ' + fmt.dtype_hints.get(
            dtype, f'{format} exports {", ".join(fmt.dtypes)}'))
    if dtype == 'int8' and calibration_batches < 1:
        raise ValueError('int8 needs calibration samples (calibration_batches >= 1, '
                         f'got {calibration_batches})')
    if not path.endswith(fmt.suffix):
        raise ValueError(f'--out {path}: a {format} file must end in {fmt.suffix}')
    if dynamic_batch and batch_size is not None:
        raise ValueError('give --batch-size N or --dynamic-batch, not both')
    if not dynamic_batch:
        batch_size = int(batch_size or model.sample_settings.batch_size)
        if batch_size < 1:
            raise ValueError(f'batch size must be >= 1, got {batch_size}')
    require('onnx', 'exporting')
    require(fmt.backend, f'exporting to {format}')
    if dtype == 'int8':
        require('nncf', 'int8 export (post-training quantisation)')
    if is_exported_file(model.model_path):
        raise ValueError(f'{model.model_path} is already an exported graph: export from '
                         'a PyTorch checkpoint')

    model.materialize()
    unet = model.sampling_unet()
    clip = bool(model.sample_settings.clip_denoised)
    was_training = unet.training
    unet.eval()
    trunk = unet
    if dtype in fmt.traced_dtypes:  # else the format converts the fp32 graph
        trunk = cast_trunk_copy(unet, DTYPES[dtype])
    graph = DenoiserGraph(trunk, model.precond, clip).eval()
    reference = DenoiserGraph(unet, model.precond, clip).eval()
    meta = export_metadata(model, config, format, dtype, None if dynamic_batch else batch_size,
                           clip, opset=OPSET)
    n_trace = batch_size or 2
    inputs = check_inputs(model, n_trace)
    names = list(inputs)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    staged = tempfile.mkdtemp(dir=folder, prefix='.export-')
    try:
        files = _write_onnx(graph, inputs, names, dynamic_batch, meta, staged,
                            fmt.staged_onnx or osp.basename(path))
        calib = (calibration_inputs(model, n_trace, calibration_batches)
                 if dtype == 'int8' else None)
        files = fmt.convert(files, osp.basename(path), dtype, meta, calib)
        result = _check(files[-1], meta, reference, model, n_trace, dynamic_batch, dtype,
                        check, log)
        make_readable(staged)
        # each file replaces its target atomically; the weights first, so that
        # the file readers open (.onnx, .xml) appears last
        for staged_file in files:
            replace_path(staged_file, osp.join(folder, osp.basename(staged_file)))
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        unet.train(was_training)
    return result


@torch.no_grad()
def calibration_inputs(model, batch: int, batches: int, seed: int = 0
                       ) -> List[Dict[str, np.ndarray]]:
    """int8 calibration data from the model itself, no dataset: D's inputs along
    its sampling trajectories. Each batch starts from x_T = σ_max z (what
    one-step sampling feeds D); the model's own x0 from there is re-noised
    to the levels of a Karras grid (what multistep sampling and the editing
    loops feed D), σ taken round-robin over the grid; labels random."""
    from ..denoiser.sigmas import get_sigmas_karras
    gen = torch.Generator().manual_seed(seed)
    p = model.precond
    denoiser = model.sampling_denoiser(model.settings(dtype='fp32', channels_last=False,
                                                      compile=False))
    levels = get_sigmas_karras(max(2, batches), p.sigma_min, p.sigma_max, p.rho)[:-1]
    out = []
    for i in range(batches):
        cond = {}
        if model.num_classes:
            cond['y'] = torch.randint(0, model.num_classes, (batch, ), generator=gen)
        x_t = torch.randn(batch, *model.image_shape, generator=gen) * p.sigma_max
        sigma = torch.full((batch, ), float(p.sigma_max))
        if i % 2:  # every other batch: a re-noised point of the trajectory
            x0 = denoiser(x_t, sigma, **cond)
            sigma = torch.full((batch, ), float(levels[i % len(levels)]))
            x_t = x0 + torch.randn(x0.shape, generator=gen) * append_dims(sigma, 4)
        item = dict(x=x_t.float().numpy(), sigma=sigma.numpy())
        if cond:
            item['y'] = cond['y'].numpy()
        out.append(item)
    return out


def _write_onnx(graph: nn.Module, inputs: Dict[str, torch.Tensor], names, dynamic: bool,
                meta: Dict, staged: str, name: str) -> List[str]:
    """Trace ``graph`` into ``staged/name`` with the metadata; returns the files
    written, the ``.onnx`` last (weights past :data:`EXTERNAL_DATA_BYTES` go
    to ``name.data`` beside it: protobuf cannot hold 2 GiB)."""
    onnx = require('onnx', 'exporting')
    raw = osp.join(staged, 'raw')
    os.makedirs(raw)
    axes = {k: {0: 'batch'} for k in names + ['x0']} if dynamic else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(graph, tuple(inputs[k] for k in names), osp.join(raw, 'm.onnx'),
                          dynamo=False, input_names=names, output_names=['x0'],
                          opset_version=OPSET, dynamic_axes=axes, do_constant_folding=True)
    proto = onnx.load(osp.join(raw, 'm.onnx'))  # external data too, if torch wrote any
    shutil.rmtree(raw)
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(meta, sort_keys=True)
    proto.producer_name = 'mmagic_cm'
    out = osp.join(staged, name)
    size = sum(t.numel() * t.element_size()
               for t in list(graph.parameters()) + list(graph.buffers()))
    if size <= EXTERNAL_DATA_BYTES:
        onnx.save_model(proto, out)
        return [out]
    onnx.save_model(proto, out, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=name + '.data', size_threshold=1024)
    return [out + '.data', out]


def _check(staged: str, meta: Dict, reference: nn.Module, model, n: int, dynamic: bool,
           dtype: str, check: bool, log) -> Dict:
    """Run the staged file and PyTorch fp32 on random inputs; raise past the
    tolerance (int8: on the mean abs difference, a few outliers being normal)."""
    result = dict(meta, tolerance=TOLERANCES[dtype], max_abs_diff=None, mean_abs_diff=None)
    if not check:
        return result
    exported = ExportedDenoiser(staged, meta)
    worst, total, count = 0.0, 0.0, 0
    for batch, seed in ((n, 1), ) + (((1, 2), (3, 3)) if dynamic else ()):
        inputs = check_inputs(model, batch, seed)
        with torch.no_grad():
            expected = reference(**inputs)
        diff = (exported(inputs['x'], inputs['sigma'], inputs.get('y')) - expected).abs()
        worst = max(worst, float(diff.max()))
        total, count = total + float(diff.double().sum()), count + diff.numel()
    result.update(max_abs_diff=worst, mean_abs_diff=total / count)
    measure = 'mean' if dtype == 'int8' else 'max'
    value = result[f'{measure}_abs_diff']
    ok = value <= TOLERANCES[dtype]
    log(f'check against PyTorch fp32 on random inputs: max abs difference {worst:.3g}, mean '
        f'{total / count:.3g} (tolerance: {measure} <= {TOLERANCES[dtype]:g} for {dtype}): '
        f'{"ok" if ok else "FAILED"}')
    if not ok:
        raise ValueError(f'the exported graph differs from PyTorch by {value:.3g} ({measure} '
                         f'abs), more than the {dtype} tolerance {TOLERANCES[dtype]:g}; '
                         'nothing written')
    return result
