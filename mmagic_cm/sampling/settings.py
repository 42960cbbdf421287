"""Sampling settings: one validated object, from config keys or CLI flags.

:class:`SamplingSettings` holds what a :class:`ConsistencyModel` samples
with (sampler, grid, noise generator, batch size, precision and fast-path
switches). It is checked once when made; :meth:`SamplingSettings.replace`
gives a checked copy with overrides (``None`` values mean "keep").
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import torch

from ..denoiser.fast import DTYPES
from ..export.runtime import is_exported_file
from .noise import GENERATORS
from .samplers import sampler_of

#: torch.compile modes; 'reduce-overhead' replays CUDA graphs on GPUs
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


def grid_resets(sampler: Optional[str], given: Dict[str, Any]) -> Tuple[str, ...]:
    """The one rule of switching samplers: the grid settings (``ts``) a newly
    chosen ``sampler`` does not keep are reset unless ``given`` sets them
    (a config's multistep ts do not apply to onestep)."""
    if not sampler:
        return ()
    return tuple(k for k in ('ts', ) if k not in sampler_of(sampler).keeps and given.get(k) is None)


def as_bool(value, name: str) -> bool:
    """true/false from a bool, 0/1 or 'on'/'off'/'true'/'false'/'yes'/'no'."""
    if isinstance(value, str) and value.lower() in ('1', 'true', 'on', 'yes', '0', 'false',
                                                    'off', 'no'):
        return value.lower() in ('1', 'true', 'on', 'yes')
    if isinstance(value, (bool, int)) and value in (0, 1):
        return bool(value)
    raise ValueError(f'{name} must be true or false, got {value!r}')


def as_compile(value) -> Union[bool, str]:
    """False, True or a torch.compile mode."""
    if isinstance(value, str) and value in COMPILE_MODES:
        return value
    try:
        return as_bool(value, 'compile')
    except ValueError:
        raise ValueError(f'compile must be true, false or a torch.compile mode '
                         f'({", ".join(COMPILE_MODES)}), got {value!r}') from None


def _as_int(value, name: str, minimum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f'{name} must be an integer, got {value!r}') from None
    if minimum is not None and value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')
    return value


def _as_float(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be a number, got {value!r}') from None


def resolve_dtype(dtype: Union[str, torch.dtype, None], device) -> torch.dtype:
    """Check that ``device`` can run ``dtype`` ('fp32', 'bf16', 'fp16')."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        name = {v: k for k, v in DTYPES.items()}.get(dtype)
    else:
        name = str(dtype).lower()
    if name not in DTYPES:
        raise ValueError(f'unknown dtype {dtype!r}; choose one of {", ".join(DTYPES)}')
    device = torch.device(device)
    if name == 'fp16' and device.type == 'cpu':
        raise ValueError('dtype fp16 needs a CUDA device; on the CPU use bf16 (or fp32)')
    if name == 'bf16' and device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        raise ValueError(f'{torch.cuda.get_device_name(device)} cannot run bf16; use fp16')
    return DTYPES[name]


def default_device(device: Optional[str] = None, model_path: Optional[str] = None) -> str:
    """``device``, checked; default CUDA when available, else the CPU, and
    the CPU for an exported ``model_path`` (ONNX Runtime on a GPU needs
    onnxruntime-gpu, which a CUDA machine need not have: ask with cuda)."""
    if not device and is_exported_file(model_path):
        device = 'cpu'
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        torch.device(device)
    except RuntimeError:
        raise ValueError(f'--device {device}: not a device; use cpu, cuda or cuda:N') from None
    if torch.device(device).type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; use --device cpu')
    return device


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """How a model samples; checked when made.

    Args:
        sampler: a registered sampler (:func:`~.samplers.sampler_names`):
            'onestep', 'multistep', 'trigflow' (consistency models), 'heun',
            'euler', 'ancestral', 'dpm', 'progdist' (EDM teachers).
        steps: schedule length; for multistep the grid that ``ts`` indexes.
        ts: multistep grid indices ("0,22,39" or a sequence); other samplers
            ignore it.
        trig_ts: the 'trigflow' sampler's intermediate TrigFlow times (steps - 1
            of them in (0, π/2); default none for one step, 1.1 for two).
        generator: 'dummy', 'determ' or 'determ-indiv' (:mod:`.noise`).
        seed: seed of the generator (and of random labels).
        batch_size: default batch size of :meth:`ConsistencyModel.sample`.
        clip_denoised: clamp every denoiser output to [-1, 1].
        s_churn, s_tmin, s_tmax, s_noise: churn of heun/dpm.
        dtype: 'fp32', 'bf16' (CPU/CUDA) or 'fp16' (CUDA).
        channels_last: NHWC memory format; None: on (the default path).
        compile: ``torch.compile`` the sampling UNet: False, True or a mode.
    """
    sampler: str = 'onestep'
    steps: int = 40
    ts: Optional[Tuple[int, ...]] = None
    trig_ts: Optional[Tuple[float, ...]] = None
    generator: str = 'determ'
    seed: int = 42
    batch_size: int = 4
    clip_denoised: bool = True
    s_churn: float = 0.0
    s_tmin: float = 0.0
    s_tmax: float = float('inf')
    s_noise: float = 1.0
    dtype: str = 'fp32'
    channels_last: Optional[bool] = None
    compile: Union[bool, str] = False

    def __post_init__(self):
        fix = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        run = sampler_of(self.sampler)
        if self.generator not in GENERATORS:
            raise ValueError(f'unknown generator {self.generator!r}; choose one of '
                             f'{", ".join(GENERATORS)}')
        fix('steps', _as_int(self.steps, 'steps'))
        for name, value in run.check(self.steps, self.ts, self.trig_ts).items():
            fix(name, value)
        fix('seed', _as_int(self.seed, 'seed'))
        if not 0 <= self.seed < 2**63:
            raise ValueError(f'seed must be in [0, 2**63), got {self.seed}')
        fix('batch_size', _as_int(self.batch_size, 'batch size', minimum=1))
        fix('clip_denoised', as_bool(self.clip_denoised, 'clip_denoised'))
        for name in ('s_churn', 's_tmin', 's_tmax', 's_noise'):
            fix(name, _as_float(getattr(self, name), name))
        if str(self.dtype).lower() not in DTYPES:
            raise ValueError(f'unknown dtype {self.dtype!r}; choose one of '
                             f'{", ".join(DTYPES)}')
        fix('dtype', str(self.dtype).lower())
        if self.channels_last is not None:
            fix('channels_last', as_bool(self.channels_last, 'channels_last'))
        fix('compile', as_compile(self.compile))

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **overrides) -> SamplingSettings:
        """A checked copy with ``overrides`` (None values are ignored).

        Raises:
            ValueError: an unknown setting name or a bad value.
        """
        unknown = set(overrides) - set(self.names())
        if unknown:
            raise ValueError(f'unknown sampling setting(s) {sorted(unknown)}; known: '
                             f'{sorted(self.names())}')
        changes = {k: v for k, v in overrides.items() if v is not None}
        changes.update(dict.fromkeys(grid_resets(changes.get('sampler'), changes)))
        if ('sampler' in changes or 'steps' in changes) and 'trig_ts' not in changes:
            changes['trig_ts'] = None  # trig_ts belongs to trigflow (default per steps)
        return dataclasses.replace(self, **changes) if changes else self

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    # read like the dict it used to be: settings['sampler']
    def __getitem__(self, name: str):
        if name not in self.names():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name) -> bool:
        return name in self.names()

    def get(self, name: str, default=None):
        return getattr(self, name, default)

    def keys(self):
        return self.names()
