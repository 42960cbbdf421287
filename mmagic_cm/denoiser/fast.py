"""Fast inference paths for the UNet (see README "Speed").

Three options, each measured on the ImageNet-64 UNet before being kept:

* ``dtype`` bf16 (CPU, CUDA) or fp16 (CUDA): the trunk's convolutions are
  cast once into an inference copy, as the original's ``use_fp16`` does
  (norms, embeddings and the output layers stay float32); parameters other
  than those convolutions are shared with the float32 UNet, so the copy
  costs half the convolutions' float32 size. A UNet without
  ``convert_to_dtype`` runs under autocast instead.
* ``channels_last``: NHWC memory format for the convolutions (oneDNN on the
  CPU, tensor cores on CUDA). For float32 the UNet is converted in place
  (same values, another layout; images differ from the default layout by
  float rounding only, ~1e-7); for bf16/fp16 only the cast copy is NHWC.
  The layout also gives attention contiguous head dims, which PyTorch's CPU
  flash-attention kernel needs to run fast.
* ``norm`` (opt-in; default 'fp32', the original's GroupNorm: a float32
  copy of each activation, float32 GroupNorm, a cast back): 'fused' computes
  the trunk's GroupNorms (and the ResBlocks' FiLM) in float32 arithmetic
  without float32 copies of the activations and keeps their layout
  (:func:`~mmagic_cm.denoiser.unet.fused_group_norm`; equal to the default to
  float32 rounding, one rounding to the dtype instead of three); 'dtype' runs
  them in the compute dtype with bf16/fp16 affine parameters, as diffusers
  does. Both change the numbers a little, hence opt-in: PSNR against float32
  in docs/speed.md.
* ``compile``: ``torch.compile`` (inductor) of that UNet, True or a mode
  ('reduce-overhead': CUDA graphs, which pay for one-step sampling on a
  GPU, where a batch is one UNet call). On the CPU it
  needs a C++ compiler; without one, or when compilation fails, a
  :class:`CompileError` says so; there is no silent fallback to eager.

:class:`InferenceUNets` keeps the prepared modules and rebuilds them when
the float32 weights change (training, ``load_state_dict``, device moves).
"""
from __future__ import annotations

import copy
import os
from typing import Dict, Tuple, Union

import torch
from torch import nn

#: the one table of sampling dtypes by name (settings, CLI flags, export)
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class CompileError(ValueError, RuntimeError):
    """``torch.compile`` cannot work here (no C++ compiler, failed compile).

    A ``ValueError`` too, so that the command-line tools report it as a bad
    setting (``compile=False`` avoids it).
    """


def check_compile_available(device) -> None:
    """Raise :class:`CompileError` when ``torch.compile`` cannot work on ``device``."""
    if not hasattr(torch, 'compile'):
        raise CompileError('compile=True needs torch.compile (PyTorch >= 2.0)')
    if torch.device(device).type == 'cpu':
        try:
            from torch._inductor import cpp_builder
        except ImportError:  # older inductor: look for a compiler on PATH
            import shutil
            if not any(shutil.which(c) for c in (os.environ.get('CXX', ''), 'g++', 'c++',
                                                  'clang++') if c):
                raise CompileError('compile=True on the CPU needs a C++ compiler for '
                                   'torch.compile (inductor): none found; install g++ (or '
                                   'set CXX), or sample without --compile') from None
            return
        try:
            cpp_builder.get_cpp_compiler()
        except Exception as exc:  # InvalidCxxCompiler
            raise CompileError(
                'compile=True on the CPU needs a working C++ compiler for torch.compile '
                f'(inductor): {exc}. Install g++ (or set CXX), or sample with '
                'compile=False (without --compile)') from exc


def _trunk_norms(unet: nn.Module):
    """The GroupNorms of the trunk (input, middle and output blocks) that have
    a ``mode`` (:class:`~mmagic_cm.denoiser.unet.GroupNorm32`)."""
    return [m for part in (unet.input_blocks, unet.middle_block, unet.output_blocks)
            for m in part.modules() if isinstance(m, nn.GroupNorm) and hasattr(m, 'mode')]


def cast_trunk_copy(unet: nn.Module, dtype: torch.dtype, channels_last: bool = False,
                    norm: str = 'fp32') -> nn.Module:
    """A copy of ``unet`` whose trunk convolutions are in ``dtype``.

    Every other parameter and buffer is shared with ``unet`` (not copied).
    With ``channels_last`` the copied kernels are NHWC (``unet`` is left as
    it is: no second float32 copy). ``unet`` needs ``convert_to_dtype``
    (:class:`ConsistencyUNetModel`). ``norm`` (:data:`NORM_MODES`) is the
    ``mode`` of the copy's trunk GroupNorms; for 'dtype' their affine
    parameters are cast to ``dtype`` too. For float32 the convolutions are
    shared as well (only the modules are copied, for ``norm``).
    """
    from .unet import NORM_MODES
    if norm not in NORM_MODES:
        raise ValueError(f'norm={norm!r}: choose from {", ".join(NORM_MODES)}')
    cast = {id(p) for part in (unet.input_blocks, unet.middle_block, unet.output_blocks)
            for m in part.modules() if isinstance(m, nn.Conv2d)
            for p in m.parameters(recurse=False)} if dtype != torch.float32 else set()
    if norm == 'dtype':
        cast |= {id(p) for m in _trunk_norms(unet) for p in m.parameters(recurse=False)}
    memo: Dict[int, object] = {}
    # the layout asked for, whatever the float32 UNet's is now (an earlier float32
    # channels_last call converts it in place)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for p in unet.parameters():
        if id(p) in cast:
            value = p.detach().to(dtype, memory_format=layout if p.dim() == 4 else
                                  torch.preserve_format)
            memo[id(p)] = nn.Parameter(value, requires_grad=False)
        else:
            memo[id(p)] = p
    for b in unet.buffers():
        memo[id(b)] = b
    copied = copy.deepcopy(unet, memo).eval()
    if norm != 'fp32':
        norms = _trunk_norms(copied)
        if not norms:
            raise ValueError(f'norm={norm!r} needs a UNet whose GroupNorms have modes '
                             f'(ConsistencyUNetModel); {type(unet).__name__} has none')
        for m in norms:
            m.mode = norm
    return copied


def _is_channels_last(unet: nn.Module) -> bool:
    for p in unet.parameters():
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1:
            return p.is_contiguous(memory_format=torch.channels_last) and \
                not p.is_contiguous()
    return False


def set_channels_last(unet: nn.Module, enabled: bool) -> None:
    """Convert ``unet``'s 4-D parameters to channels_last (or back), in place."""
    if _is_channels_last(unet) != enabled:
        unet.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)


def _weights_token(unet: nn.Module) -> Tuple:
    return tuple((id(p), p._version, p.data_ptr(), p.dtype) for p in unet.parameters())


class InferenceUNets:
    """Prepared UNets for sampling, keyed by (dtype, channels_last, compile).

    ``get`` returns ``(module, autocast_dtype)``: run ``module`` under
    autocast in ``autocast_dtype`` when it is not None. Not an ``nn.Module``:
    the prepared copies never show up in state dicts or ``.to()`` calls.
    """

    def __init__(self):
        self._cache: Dict[Tuple, Tuple[nn.Module, object]] = {}
        self._token = None

    def clear(self) -> None:
        self._cache.clear()
        self._token = None

    def __deepcopy__(self, memo) -> InferenceUNets:
        return InferenceUNets()  # a copied model prepares its own

    def __getstate__(self) -> dict:
        return {'_cache': {}, '_token': None}

    def get(self, unet: nn.Module, dtype: torch.dtype = torch.float32,
            channels_last: bool = False, compile: Union[bool, str] = False,
            norm: str = 'fp32') -> Tuple[nn.Module, object]:
        cast = dtype != torch.float32 and hasattr(unet, 'convert_to_dtype')
        if norm != 'fp32' and not hasattr(unet, 'convert_to_dtype'):
            raise ValueError(f'norm={norm!r} needs the ADM UNet (ConsistencyUNetModel); '
                             f'{type(unet).__name__} runs its own norms')
        if not cast:  # float32 or autocast: the float32 UNet itself runs
            set_channels_last(unet, channels_last)
            if not channels_last and not compile and dtype == torch.float32 and \
                    norm == 'fp32':
                return unet, None
        token = (id(unet), _weights_token(unet))
        if token != self._token:
            self.clear()
            self._token = token
        key = (dtype, channels_last, compile, norm)
        if key not in self._cache:
            self._cache[key] = self._prepare(unet, dtype, channels_last, compile, norm)
        return self._cache[key]

    @staticmethod
    def _prepare(unet: nn.Module, dtype: torch.dtype, channels_last: bool,
                 compile: Union[bool, str], norm: str = 'fp32'):
        module, autocast = unet, None
        if hasattr(unet, 'convert_to_dtype') and (dtype != torch.float32 or norm != 'fp32'):
            module = cast_trunk_copy(unet, dtype, channels_last, norm)
        elif dtype != torch.float32:
            autocast = dtype
        if compile:
            check_compile_available(next(unet.parameters()).device)
            mode = compile if isinstance(compile, str) and compile != 'default' else None
            module = _CheckedCompile(torch.compile(module, mode=mode))
        return module, autocast


class _CheckedCompile:
    """Calls a compiled module; turns a failed compilation into a CompileError."""

    def __init__(self, compiled):
        self.compiled = compiled

    def __call__(self, *args, **kwargs):
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:
            from torch._dynamo.exc import BackendCompilerFailed, TorchRuntimeError
            if isinstance(exc, (BackendCompilerFailed, TorchRuntimeError)):
                raise CompileError(f'torch.compile failed: {exc}; sample with '
                                   'compile=False (without --compile)') from exc
            raise


class AutocastNet:
    """Calls ``module`` under ``torch.autocast(device_type, dtype)`` (UNets
    without ``convert_to_dtype``, in bf16/fp16)."""

    def __init__(self, module, dtype: torch.dtype, device_type: str):
        self.module, self.dtype, self.device_type = module, dtype, device_type

    def __call__(self, *args, **kwargs):
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.module(*args, **kwargs)
