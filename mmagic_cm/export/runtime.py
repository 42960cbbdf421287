"""D(x, σ) run by ONNX Runtime or OpenVINO from a file ``tools/export.py`` wrote.

:class:`ExportedDenoiser` has :class:`~mmagic_cm.denoiser.precond.Denoiser`'s call contract,
``(x, sigma, y=None) -> x0`` as a float32 tensor, so the samplers, noise
generators, batching and editing loops run unchanged around it. A
``ConsistencyModel`` whose ``model_path`` is an exported file (``.onnx``, or
OpenVINO's ``.xml`` with its ``.bin``) samples through it and reads no UNet
weights (:mod:`mmagic_cm.models.weights`).

The file carries what it was exported from (:func:`export_metadata`): ONNX
in its ``metadata_props``, OpenVINO in the model's ``rt_info``, both under
the key ``mmagic_cm`` as one JSON object. A file without it, or made for
another architecture, preconditioning or batch size, is refused with one
line. The writing side is :mod:`mmagic_cm.export`.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import warnings
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from ..files.checkpoint import CheckpointError, shape_signature
from .early import METADATA_KEY, engine_cache_dir  # noqa: F401  (re-exported)
from .formats import export_suffixes, format_of

#: version of the metadata layout
METADATA_VERSION = 1
DEPLOY_HINT = 'pip install -e ".[deploy]" -c requirements/constraints.txt'


class MissingBackendError(ImportError, ValueError):
    """An optional deployment package (onnx, onnxruntime, openvino) is absent
    (a ValueError too: every entry point reports it as one line)."""


def require(module: str, purpose: str):
    """Import an optional package, or raise one line naming the install command."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingBackendError(
            f'{purpose} needs the package {module.split(".")[0]!r}, which is not installed '
            f'({exc.__class__.__name__}: {exc}); install it with: {DEPLOY_HINT}') from None


def is_exported_file(path) -> bool:
    """True for a path (not a URL) ending in a registered format's suffix
    (``.onnx``, ``.xml``; :mod:`.formats`)."""
    return isinstance(path, str) and '://' not in path and \
        path.lower().endswith(export_suffixes())


def unet_signature(unet: torch.nn.Module) -> str:
    """A short hash of the UNet's parameter names and shapes (meta UNets too)."""
    sig = shape_signature(unet.state_dict().items())
    text = ';'.join(f'{k}:{",".join(map(str, v))}' for k, v in sorted(sig.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_facts(model) -> Dict:
    """What an exported file must match in a ``ConsistencyModel``."""
    p = model.precond
    return dict(unet_signature=unet_signature(model.unet), image_shape=list(model.image_shape),
                num_classes=model.num_classes, sigma_min=float(p.sigma_min),
                sigma_max=float(p.sigma_max), sigma_data=float(p.sigma_data),
                boundary_condition=bool(p.boundary_condition))


def export_metadata(model, config: Optional[str], fmt: str, dtype: str,
                    batch_size: Optional[int], clip: bool, **extra) -> Dict:
    """The metadata an exported file carries (``batch_size`` None: dynamic)."""
    return dict(version=METADATA_VERSION, config=config, format=fmt, dtype=dtype,
                batch_size=batch_size, dynamic_batch=batch_size is None, clip=bool(clip),
                rho=float(model.precond.rho), training_mode=model.training_mode,
                torch=torch.__version__, **model_facts(model), **extra)


def describe(meta: Dict) -> str:
    """'16x16x3, 1000 classes, UNet 0123abcd..., boundary condition, batch 2'."""
    c, h, w = meta.get('image_shape') or (0, 0, 0)
    classes = (f'{meta["num_classes"]} classes' if meta.get('num_classes')
               else 'unconditional')
    kind = 'boundary condition' if meta.get('boundary_condition') else 'EDM scalings'
    return (f'{h}x{w}x{c}, {classes}, UNet {meta.get("unet_signature")}, {kind}, '
            f'sigma [{meta.get("sigma_min")}, {meta.get("sigma_max")}], sigma_data '
            f'{meta.get("sigma_data")}')


def read_metadata(path: str) -> Dict:
    """The metadata of an exported file (CheckpointError if it has none)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'exported model not found: {path}')
    return parse_metadata(format_of(path).read_metadata_text(path), path)


def parse_metadata(text: Optional[str], path: str) -> Dict:
    if not text:
        raise CheckpointError(f'{path} has no mmagic_cm metadata (config, sigma range, '
                              'parameterisation): export it with tools/export.py')
    try:
        meta = json.loads(text)
    except ValueError:
        raise CheckpointError(f'{path}: its mmagic_cm metadata is not valid JSON') from None
    if not isinstance(meta, dict) or meta.get('version') != METADATA_VERSION:
        raise CheckpointError(f'{path}: mmagic_cm metadata version '
                              f'{meta.get("version") if isinstance(meta, dict) else "?"} is '
                              f'not {METADATA_VERSION}; export it again')
    return meta


def check_fits(meta: Dict, model, path: str) -> None:
    """Raise CheckpointError (one line naming both) unless the file fits
    ``model`` (the batch size is checked at each call)."""
    ours = model_facts(model)
    differ = [k for k in ours if meta.get(k) != ours[k]]
    if differ:
        raise CheckpointError(
            f'{path} was exported for {meta.get("config") or "another model"} '
            f'({describe(meta)}), not for this model ({describe(ours)}); they differ in '
            f'{", ".join(differ)}')


#: ONNX Runtime execution providers by our name
ORT_PROVIDERS = {'cpu': 'CPUExecutionProvider', 'cuda': 'CUDAExecutionProvider',
                 'tensorrt': 'TensorrtExecutionProvider'}
GPU_RUNTIME_HINT = ('replace onnxruntime by the onnxruntime-gpu build for your CUDA '
                    '(pip uninstall -y onnxruntime && pip install onnxruntime-gpu; TensorRT '
                    'also needs its own libraries): see docs/deploy.md, "GPU"')


def require_provider(ort, provider: str) -> None:
    """MissingBackendError (one line, naming the fix) unless this onnxruntime
    has ``provider`` ('cpu', 'cuda' or 'tensorrt')."""
    name = ORT_PROVIDERS[provider]
    available = ort.get_available_providers()
    if name not in available:
        raise MissingBackendError(
            f'provider {provider!r} needs {name}, which onnxruntime {ort.__version__} here '
            f'does not have (it has {", ".join(available)}); {GPU_RUNTIME_HINT}')


def onnx_providers(ort, provider: str, device_index: int, dtype: str,
                   path: Optional[str] = None) -> List:
    """ONNX Runtime's provider list for ``provider`` ('cpu', 'cuda' or
    'tensorrt'); MissingBackendError when this onnxruntime lacks it.
    TensorRT may use fp16 kernels for files exported with ``--dtype fp16``
    (its fp16 flag), keeps its engines in :func:`engine_cache_dir` of
    ``path`` and falls back to CUDA for what it cannot take."""
    require_provider(ort, provider)
    cuda = ('CUDAExecutionProvider', {'device_id': device_index})
    if provider == 'cpu':
        return ['CPUExecutionProvider']
    if provider == 'cuda':
        return [cuda]
    cache = engine_cache_dir('tensorrt', path)
    if path is not None:
        os.makedirs(cache, exist_ok=True)  # TensorRT creates one level only
    return [('TensorrtExecutionProvider', {
        'device_id': device_index, 'trt_fp16_enable': dtype == 'fp16',
        'trt_engine_cache_enable': True, 'trt_engine_cache_path': cache}), cuda]


class ExportedDenoiser:
    """D(x, σ[, y]) -> x0 through ONNX Runtime or OpenVINO.

    Args:
        path: the ``.onnx`` or ``.xml`` file.
        meta: its metadata, when already read.
        threads: intra-op threads (default: the runtime's).
        clip: clamp outputs to [-1, 1] (a graph exported with clipping
            always clamps; asking for no clipping then is an error).
        device: where D runs and its outputs live: 'cpu' (default), or
            'cuda[:N]' for ONNX files (ONNX Runtime's CUDA or TensorRT
            provider; inputs and outputs stay on the GPU through I/O binding).
        provider: ONNX Runtime provider, 'cpu', 'cuda' or 'tensorrt'
            (default: 'cuda' on a CUDA device, else 'cpu').

    Calls take torch tensors on any device and return them on ``device``:
    x (N, C, H, W) float, sigma (N,), y (N,) long labels for
    class-conditional files.
    """

    def __init__(self, path: str, meta: Optional[Dict] = None, threads: Optional[int] = None,
                 clip: Optional[bool] = None, device='cpu', provider: Optional[str] = None):
        self.path = path
        self.kind = format_of(path)
        self.format = self.kind.name
        self.meta = meta if meta is not None else read_metadata(path)
        self.clip = self.meta['clip'] if clip is None else bool(clip)
        if self.meta['clip'] and not self.clip:
            raise ValueError(f'{path} clips D to [-1, 1] in its graph; it cannot sample with '
                             'clip_denoised=False (export it from a config without clipping)')
        self.batch_size = self.meta.get('batch_size')
        self.conditional = bool(self.meta.get('num_classes'))
        self.device = torch.device(device)
        if self.device.type == 'cuda' and self.device.index is None and \
                torch.cuda.is_available():  # 'cuda' means the current GPU, for torch too
            self.device = torch.device('cuda', torch.cuda.current_device())
        self.provider = provider or ('cuda' if self.device.type == 'cuda' else 'cpu')
        if self.provider not in ORT_PROVIDERS:
            raise ValueError(f'provider {self.provider!r}: choose from '
                             f'{", ".join(ORT_PROVIDERS)}')
        if (self.provider != 'cpu') != (self.device.type == 'cuda') or \
                self.device.type not in ('cpu', 'cuda'):
            raise ValueError(f'provider {self.provider!r} does not run on device '
                             f'{self.device}: use cpu on the CPU, cuda or tensorrt on a GPU')
        if not self.kind.cuda and self.device.type != 'cpu':
            raise ValueError(f'{path}: {self.kind.label} files run on the CPU here; for an NVIDIA '
                             'GPU export with --format onnx and sample through ONNX Runtime')
        self._run = self._load(threads)

    def for_settings(self, settings) -> ExportedDenoiser:
        """This denoiser for sampling settings: their ``clip_denoised`` (no
        reloading); a ``dtype`` other than fp32 or the file's is refused (the
        file's dtype is fixed at export)."""
        dtype = settings.dtype if isinstance(settings.dtype, (str, type(None))) else None
        if dtype not in (None, 'fp32', self.meta.get('dtype')):
            raise ValueError(f'{self.path} runs in {self.meta.get("dtype")} (fixed at export); '
                             f'dtype {dtype} applies to PyTorch weights: export with --dtype '
                             f'{dtype} instead')
        clip = bool(settings.clip_denoised)
        if clip == self.clip:
            return self
        if self.meta['clip'] and not clip:
            raise ValueError(f'{self.path} clips D to [-1, 1] in its graph; it cannot sample '
                             'with clip_denoised=False')
        other = object.__new__(ExportedDenoiser)
        other.__dict__.update(self.__dict__, clip=clip)
        return other

    def _load(self, threads: Optional[int]) -> Callable[[Dict[str, torch.Tensor]], torch.Tensor]:
        """A function of the named input tensors returning x0 on ``self.device``."""
        return self.kind.open(self, threads)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor,
                 y: Optional[torch.Tensor] = None) -> torch.Tensor:
        n = x.shape[0]
        if self.batch_size is not None and n != self.batch_size:
            raise ValueError(f'{self.path} was exported for batch size {self.batch_size}, '
                             f'called with batch size {n}: sample with --batch-size '
                             f'{self.batch_size}, or export with --batch-size {n} or '
                             '--dynamic-batch')
        if (y is None) == self.conditional:
            raise ValueError(f'{self.path}: class labels are '
                             f'{"needed" if self.conditional else "not allowed"}')
        if y is not None and y.is_floating_point():
            raise ValueError(f'{self.path} takes integer class labels; class-weight mixing '
                             'needs the PyTorch weights')
        dev = self.device
        feeds = dict(x=x.detach().to(dev, torch.float32).contiguous(),
                     sigma=torch.as_tensor(sigma, dtype=torch.float32, device=dev)
                     .reshape(-1).expand(n).contiguous())
        if y is not None:
            feeds['y'] = y.detach().to(dev, torch.int64).contiguous()
        out = self._run(feeds)
        return out.clamp(-1, 1) if self.clip else out


def bound_runner(sess, device: torch.device) -> Callable[[Dict[str, torch.Tensor]], torch.Tensor]:
    """Run ``sess`` on torch tensors in place through ONNX Runtime's I/O binding
    (no copies through the host on a GPU); x0 comes back on ``device``."""
    kind, index = device.type, device.index or 0
    names = [i.name for i in sess.get_inputs()]
    out_name = sess.get_outputs()[0].name
    np_types = {torch.float32: np.float32, torch.int64: np.int64}

    def run(feeds: Dict[str, torch.Tensor]) -> torch.Tensor:
        binding = sess.io_binding()
        for k in names:
            t = feeds[k]
            binding.bind_input(k, kind, index, np_types[t.dtype], tuple(t.shape), t.data_ptr())
        out = torch.empty(feeds['x'].shape, dtype=torch.float32, device=device)
        binding.bind_output(out_name, kind, index, np.float32, tuple(out.shape), out.data_ptr())
        if kind == 'cuda':  # the inputs were written on torch's stream
            torch.cuda.current_stream(device).synchronize()
        sess.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return out
    return run


def _numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def runnable_device(path: str, device, provider: Optional[str] = None) -> torch.device:
    """``device``, or the CPU (with a warning naming why) where a GPU was not
    asked for by provider and cannot run the file: an OpenVINO file, an
    onnxruntime without the CUDA provider, a device other than CUDA. A model
    that MMagic's inferencer moves to a GPU by default still samples then."""
    device = torch.device(device)
    if device.type == 'cpu' or (device.type == 'cuda' and provider is not None):
        return device
    if device.type != 'cuda':
        why = 'exported files run on the CPU or, through ONNX Runtime, on CUDA GPUs'
    elif not format_of(path).cuda:
        why = f'{format_of(path).label} files run on the CPU'
    else:
        ort = require('onnxruntime', 'sampling through an ONNX file')
        if ORT_PROVIDERS['cuda'] in ort.get_available_providers():
            return device
        why = f'onnxruntime {ort.__version__} here has no CUDA provider ({GPU_RUNTIME_HINT})'
    warnings.warn(f'{path}: D runs on the CPU, not {device}: {why}', stacklevel=3)
    return torch.device('cpu')


def load_exported(path: str, model, threads: Optional[int] = None, device='cpu',
                  provider: Optional[str] = None) -> ExportedDenoiser:
    """The exported D of ``model_path`` after checking it fits ``model``."""
    meta = read_metadata(path)
    check_fits(meta, model, path)
    return ExportedDenoiser(path, meta, threads=threads, device=device, provider=provider)
