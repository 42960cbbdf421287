"""The web demo's functions, without Gradio: one model, generation and editing.

:class:`DemoApp` holds one :class:`~mmagic_cm.models.ConsistencyModel` and
answers the demo's requests one at a time (a lock, besides Gradio's queue):

    app = DemoApp.from_config('configs/consistency_models/'
                              'consistency_models_cd_digits-onestep-16x16.py')
    res = app.generate(8, label='7', seed=0)      # DemoResult: uint8 images, NFE, seconds
    res = app.edit('inpaint', 'digit_7.png', mask='bottom', label='7')

Inputs are what a page or an API client sends: image files (or arrays),
labels as text ('7', 'king penguin', '145: king penguin'), ``ts`` as
'0,22,39' (the trigflow sampler: TrigFlow times, '1.3,1.1'), numbers as
numbers or text. Any input, of any type, either works or raises
``ValueError`` with a one-line message for the page; :mod:`.ui` shows it.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import os.path as osp
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..editing import edit, task_of
from ..editing.io import fit_image as io_fit_image
from ..editing.io import to_rgb
from ..files.zoo import default_config_root
from ..sampling.labels import imagenet_class_names, parse_labels
from ..sampling.samplers import sampler_names

#: the label choice that draws seeded random classes
RANDOM_LABEL = 'random'
#: the most steps (network calls per image) one request may ask for
MAX_STEPS = 1000
#: interpolation: the most points one request may ask for
MAX_POINTS = 64
#: seeds are integers in [0, MAX_SEED] (what every generator takes)
MAX_SEED = 2**32 - 1
#: the TrigFlow time of sCM's two-step sampling; n steps without given times
#: go from it down in even steps (:func:`trigflow_times`)
TRIGFLOW_START = 1.1
#: what the demo's image inputs may be
ImageInput = Union[None, str, np.ndarray, 'PIL.Image.Image']  # noqa: F821


@dataclass
class DemoResult:
    """One request's outputs: uint8 (N, H, W, 3) ``images``; ``observed``: the
    input as the task saw it (editing); ``nfe``: network calls per image."""
    images: np.ndarray
    observed: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    nfe: int = 0
    seconds: float = 0.0
    captions: List[str] = field(default_factory=list)

    def summary(self) -> str:
        """'8 images · NFE 1 · 0.21 s · class 7' (the classes, when three or fewer)."""
        n = len(self.images)
        text = f'{n} image{"s" if n != 1 else ""} · NFE {self.nfe} · {self.seconds:.2f} s'
        classes = list(dict.fromkeys(c for c in self.captions if c))
        if 1 <= len(classes) <= 3:
            text += f' · class{"es" if len(classes) > 1 else ""} {", ".join(classes)}'
        return text


# ---------------------------------------------------------------- plain inputs
def checked_int(value, name: str, low: Optional[int] = None, high: Optional[int] = None
                ) -> int:
    """An integer from a number or text (``'8'``, ``8.0``), within [low, high]."""
    number = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
    if isinstance(number, bool) or not isinstance(number, numbers.Real) or \
            not math.isfinite(number) or number != int(number):
        raise ValueError(f'{name} must be an integer, got {value!r}')
    number = int(number)
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = (f'in [{low}, {high}]' if low is not None and high is not None else
                  f'>= {low}' if low is not None else f'<= {high}')
        raise ValueError(f'{name} must be {bounds}, got {number}')
    return number


def checked_float(value, name: str, low: Optional[float] = None,
                  high: Optional[float] = None, open_low: bool = False) -> float:
    """A finite number from a number or text, within [low, high] (``open_low``: > low)."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, numbers.Real) or \
            not math.isfinite(number):
        raise ValueError(f'{name} must be a number, got {value!r}')
    number = float(number)
    if low is not None and (number <= low if open_low else number < low) or \
            high is not None and number > high:
        lo = '' if low is None else f'{"> " if open_low else ">= "}{low:g}'
        hi = '' if high is None else f'<= {high:g}'
        raise ValueError(f'{name} must be {" and ".join(x for x in (lo, hi) if x)}, '
                         f'got {number:g}')
    return number


def checked_bool(value, name: str) -> bool:
    """True/False (also 'true'/'false', 1/0)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ('true', 'false'):
        return value.strip().lower() == 'true'
    raise ValueError(f'{name} must be true or false, got {value!r}')


def checked_choice(value, name: str, choices: Sequence):
    """``value`` if it is one of ``choices`` (compared as text too)."""
    for choice in choices:
        if value == choice or isinstance(value, (str, numbers.Number)) and \
                str(value).strip() == str(choice):
            return choice
    raise ValueError(f'{name} {value!r}: choose one of {", ".join(map(str, choices))}')


def checked_seed(seed) -> int:
    """A seed in [0, :data:`MAX_SEED`]; an empty box (None, '') is seed 0."""
    if seed is None or isinstance(seed, str) and not seed.strip():
        return 0
    return checked_int(seed, 'seed', 0, MAX_SEED)


def checked_text(value, name: str) -> str:
    """Text (None: empty); numbers are written as text."""
    if value is None:
        return ''
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Number)):
        raise ValueError(f'{name} must be text, got {type(value).__name__}')
    return str(value)


def trigflow_times(steps: int) -> Tuple[float, ...]:
    """``steps - 1`` intermediate TrigFlow times for ``steps`` steps when none
    are given: from :data:`TRIGFLOW_START` down in even steps (sCM's 1.1 for
    two steps; 1.1, 0.55 for three; ...)."""
    return tuple(round(TRIGFLOW_START * (steps - i) / (steps - 1), 6)
                 for i in range(1, steps))


def parse_trigflow_times(text: str, steps: Optional[int]) -> Tuple[int, Tuple[float, ...]]:
    """``(steps, times)`` of the trigflow sampler from the page's ts box: given
    times (``'1.3,1.1'``: ``steps`` must be their number + 1, or empty), else
    :func:`trigflow_times` of ``steps`` (default 2)."""
    text = text.strip()
    if not text:
        steps = 2 if steps is None else steps
        return steps, trigflow_times(steps)
    try:
        times = tuple(float(t) for t in text.replace(' ', ',').split(',') if t)
    except ValueError:
        raise ValueError(f'ts {text!r}: the trigflow sampler takes TrigFlow times, numbers '
                         'in (0, π/2) that decrease, e.g. "1.3,1.1" (or leave it empty)'
                         ) from None
    if not times or any(not 0 < t < math.pi / 2 for t in times) or \
            any(b >= a for a, b in zip(times, times[1:])):
        raise ValueError(f'ts {text!r}: TrigFlow times must decrease strictly within '
                         '(0, π/2), e.g. "1.3,1.1" (or leave ts empty)')
    if steps is not None and steps != len(times) + 1:
        raise ValueError(f'{steps} trigflow steps take {steps - 1} TrigFlow time'
                         f'{"s" if steps != 2 else ""} in ts, got {len(times)} ({text}); '
                         f'set Steps to {len(times) + 1} or leave ts empty')
    return len(times) + 1, times


class _CountingDenoiser:
    """Calls a denoiser and counts the calls."""

    def __init__(self, denoiser, counter: list):
        self.denoiser, self.counter = denoiser, counter

    def __call__(self, *args, **kwargs):
        self.counter[0] += 1
        return self.denoiser(*args, **kwargs)


@contextlib.contextmanager
def count_network_calls(model):
    """Count the denoiser calls the model makes inside the block: yields a
    one-element list holding the count (all batches together)."""
    counter = [0]
    original = model.sampling_denoiser

    def counting(*args, **kwargs):
        return _CountingDenoiser(original(*args, **kwargs), counter)

    model.sampling_denoiser = counting  # an instance attribute shadows the method
    try:
        yield counter
    finally:
        del model.sampling_denoiser


def sample_images_folder() -> Optional[str]:
    """The shipped digits (``demo/editing/digits``), or None outside the repository."""
    root = default_config_root()
    folder = None if root is None else osp.join(str(root.parent), 'demo', 'editing', 'digits')
    return folder if folder and osp.isdir(folder) else None


# ---------------------------------------------------------------- image inputs
def open_image(value: ImageInput, what: str = 'image'):
    """A PIL RGB image from a file path, an array or a PIL image."""
    from PIL import Image, UnidentifiedImageError
    if isinstance(value, dict) and isinstance(value.get('path'), str):
        value = value['path']  # a file as Gradio describes it
    if value is None or isinstance(value, str) and not value.strip():
        raise ValueError(f'no {what}: upload one (PNG or JPEG) or pick a sample')
    if isinstance(value, (str, os.PathLike)):
        try:
            img = Image.open(value)
            img.load()
        except (FileNotFoundError, IsADirectoryError):
            raise ValueError(f'{what} {osp.basename(str(value))}: no such file') from None
        except Image.DecompressionBombError:
            raise ValueError(f'{what} {osp.basename(str(value))} is too large (over '
                             f'{Image.MAX_IMAGE_PIXELS:,} pixels)') from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            raise ValueError(f'{what} {osp.basename(str(value))} is not a readable image; '
                             'give a PNG or JPEG file') from None
    elif isinstance(value, np.ndarray):
        arr = value
        if arr.dtype.kind not in 'biuf':
            raise ValueError(f'{what} has {arr.dtype} values; expected numbers')
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or arr.ndim == 3 and arr.shape[-1] not in (3, 4):
            raise ValueError(f'{what} has shape {value.shape}; expected (H, W), (H, W, 3) '
                             'or (H, W, 4)')
        img = Image.fromarray(arr)
    elif isinstance(value, Image.Image):
        img = value
    else:
        raise ValueError(f'{what}: expected an image file, got {type(value).__name__}')
    return to_rgb(img)


def fit_image(img, size: int, fit: str = 'resize', what: str = 'image',
              resample: Optional[int] = None):
    """``img`` (PIL) as ``size`` x ``size`` (:func:`mmagic_cm.editing.io.fit_image`,
    with the page's own advice for a wrong size)."""
    return io_fit_image(img, size, fit, what, resample,
                        hint='choose "resize" or "center-crop"')


def read_image(value: ImageInput, size: int, fit: str = 'resize', what: str = 'image'
               ) -> np.ndarray:
    """uint8 (size, size, 3) from a file, array or PIL image, fitted."""
    return np.asarray(fit_image(open_image(value, what), size, fit, what), dtype=np.uint8)


def read_superres_input(value: ImageInput, size: int, patch_size: int, fit: str = 'resize'
                        ) -> np.ndarray:
    """A super-resolution input: a low-resolution image of ``size / patch_size``
    pixels (each pixel becomes a patch) or any other image, fitted to ``size``."""
    img = open_image(value)
    low = size // patch_size
    if img.size == (low, low) and low != size:
        arr = np.asarray(img, dtype=np.uint8)
        return arr.repeat(patch_size, 0).repeat(patch_size, 1)
    return np.asarray(fit_image(img, size, fit), dtype=np.uint8)


def downscale(arr: np.ndarray, size: int) -> np.ndarray:
    """A canvas (H, W[, C]) uint8 -> (size, size[, C]) by area averaging: a
    nearest-neighbour enlargement comes back exactly."""
    from PIL import Image
    if arr.shape[:2] == (size, size):
        return arr
    return np.asarray(Image.fromarray(arr).resize((size, size), Image.BOX))


def enlarge(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, C) -> nearest-neighbour enlargement to about ``size`` px
    (a whole factor; images already that large are kept)."""
    factor = max(1, size // max(images.shape[:2]))
    return images.repeat(factor, 0).repeat(factor, 1)


def mask_from_layers(layers: Sequence[np.ndarray], size: int, threshold: float = 0.25
                     ) -> Optional[np.ndarray]:
    """An inpainting mask (1 = keep) from the brush layers of an image editor:
    a model pixel is filled where the strokes cover at least ``threshold`` of
    it. None when nothing is painted."""
    painted = None
    for layer in layers or ():
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[-1] == 4:
            alpha = layer[..., 3]
        elif layer.ndim == 3:
            alpha = np.where(layer.max(-1) > 0, 255, 0).astype(np.uint8)
        else:
            alpha = layer
        painted = alpha if painted is None else np.maximum(painted, alpha)
    if painted is None or not painted.any():
        return None
    coverage = downscale(painted.astype(np.uint8), size).astype(np.float32) / 255
    return (coverage < threshold).astype(np.float32)


def read_mask(value, size: int, fit: str = 'resize') -> Union[str, np.ndarray]:
    """An inpainting mask: a built-in name, a black-and-white file (white = keep,
    grey thresholded) or a 0/1 array, as (size, size) 1 = keep."""
    from PIL import Image
    if isinstance(value, str) and not osp.exists(value):
        return value  # a built-in name; edit() checks it
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.max() <= 1:
        return value.astype(np.float32)
    img = open_image(value, 'mask').convert('L')
    img = fit_image(img, size, fit, 'mask', Image.NEAREST)
    return (np.asarray(img) >= 128).astype(np.float32)


def grid_strip(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) side by side: (H, N*W, C)."""
    return np.concatenate(list(images), axis=1)


def write_gif(images: np.ndarray, path: str, size: int = 128, ms: int = 150) -> str:
    """An animated GIF going through ``images`` and back, enlarged to ~``size`` px."""
    from PIL import Image
    frames = [Image.fromarray(enlarge(img, size)) for img in images]
    frames = frames + frames[-2:0:-1]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms, loop=0)
    return path


def write_downloads(result: DemoResult, folder: str, stem: str = 'samples'
                    ) -> Tuple[str, str]:
    """``<stem>.npz`` (``arr_0`` images, ``arr_1`` labels, as ``tools/sample.py``)
    and ``<stem>.png`` (a grid) in ``folder``; returns their paths."""
    from PIL import Image

    from ..files.images import make_grid
    os.makedirs(folder, exist_ok=True)
    npz = osp.join(folder, f'{stem}.npz')
    arrays = [result.images] + ([] if result.labels is None else [result.labels])
    np.savez(npz, *arrays)
    png = osp.join(folder, f'{stem}.png')
    Image.fromarray(make_grid(result.images)).save(png)
    return npz, png


# ---------------------------------------------------------------- the app
class DemoApp:
    """One model, shared by every request (one at a time).

    Args:
        model: a sampling :class:`~mmagic_cm.models.ConsistencyModel`.
        name: shown on the page (the config's name).
        max_images: the most images one request may ask for.
    """

    def __init__(self, model, name: str = '', max_images: int = 64):
        self.model = model
        self.name = name
        self.max_images = int(max_images)
        self.lock = threading.Lock()

    @classmethod
    def from_config(cls, config: str, checkpoint: Optional[str] = None,
                    device: Optional[str] = None, **kwargs) -> DemoApp:
        """Build the model and read its weights now (a bad checkpoint fails
        here, with :class:`~mmagic_cm.files.checkpoint.CheckpointError`)."""
        from ..apis import init_model
        model = init_model(config, checkpoint=checkpoint, device=device)
        model.materialize()
        name = osp.splitext(osp.basename(config))[0]
        return cls(model, name=name, **kwargs)

    # ------------------------------------------------------------ facts
    @property
    def size(self) -> int:
        return self.model.image_shape[-1]

    @property
    def num_classes(self) -> Optional[int]:
        return self.model.num_classes

    @property
    def is_consistency(self) -> bool:
        """Consistency models of any recipe (one- and multistep, editing); else
        an EDM teacher (sCT/sCD models keep EDM's scalings: ask the training mode)."""
        return self.model.is_consistency_model

    @property
    def samplers(self) -> Tuple[str, ...]:
        """The registered samplers of this model's kind (consistency or EDM)."""
        return sampler_names(consistency=self.is_consistency)

    @property
    def default_sampler(self) -> str:
        s = self.model.sample_settings.sampler
        return s if s in self.samplers else self.samplers[0]

    @property
    def default_steps(self) -> int:
        return int(self.model.sample_settings.steps)

    @property
    def default_ts(self) -> str:
        ts = self.model.sample_settings.ts
        if self.model.sample_settings.sampler == 'multistep' and ts:
            return ','.join(str(t) for t in ts)
        return '0,22,39'

    def patch_sizes(self) -> List[int]:
        """Super-resolution patch sides: divisors of the size, below it."""
        return [p for p in range(2, self.size) if self.size % p == 0]

    def class_choices(self) -> List[str]:
        """Label choices for the page: digits 0-9, ImageNet 'index: name', else indices."""
        if self.num_classes is None:
            return []
        if self.num_classes == 1000:
            return [f'{i}: {n}' for i, n in enumerate(imagenet_class_names())]
        return [str(i) for i in range(self.num_classes)]

    def describe(self) -> str:
        kind = 'consistency model' if self.is_consistency else 'EDM teacher'
        classes = (f'{self.num_classes} classes' if self.num_classes
                   else 'unconditional')
        return (f'**{self.name or "model"}**: {kind}, {self.size}x{self.size} px, {classes}, '
                f'on {self.model.device}')

    # ------------------------------------------------------------ inputs
    def parse_label(self, label, allow_random: bool = False) -> Optional[List[int]]:
        """Class indices from text ('7', '3,8', 'king penguin', '145: king penguin');
        None for unconditional models (and for 'random' or nothing when allowed)."""
        if isinstance(label, (bool, np.bool_)):
            raise ValueError(f'class must be text such as "7", got {label!r}')
        if isinstance(label, (int, np.integer)) or isinstance(label, float) and \
                label.is_integer():
            label = str(int(label))
        if label is not None and not isinstance(label, str):
            raise ValueError(f'class must be text such as "7", got {label!r}')
        empty = label is None or isinstance(label, str) and label.strip().lower() in (
            '', RANDOM_LABEL)
        if empty:
            if self.num_classes is None or allow_random:
                return None
            raise ValueError('choose a class: this model is class-conditional')
        if self.num_classes is None:
            raise ValueError(f'class {label!r} given, but this model is unconditional; leave '
                             'the class empty')
        if isinstance(label, str):
            items = [p.strip() for p in label.split(',')]
            # '145: king penguin' (the page's choices) -> 145
            label = ','.join(p.split(':', 1)[0].strip()
                             if p.split(':', 1)[0].strip().isdigit() else p for p in items)
        return parse_labels(label, self.num_classes)

    def caption(self, label: Optional[int]) -> str:
        if label is None:
            return ''
        if self.num_classes == 1000:
            return f'{label}: {imagenet_class_names()[label]}'
        return str(label)

    def _checked_count(self, num: int) -> int:
        return checked_int(num, 'number of images', 1, self.max_images)

    # ------------------------------------------------------------ requests
    def generate(self, num_images: int = 1, label=None, seed: int = 0,
                 sampler: Optional[str] = None, steps: Optional[int] = None,
                 ts: Optional[str] = None, progress: bool = False) -> DemoResult:
        """Sample ``num_images`` images of ``label`` (None/'random': seeded random
        classes); ``sampler`` of :attr:`samplers`; ``steps`` and ``ts``: multistep
        grid size and indices; trigflow: steps and ``steps - 1`` TrigFlow times
        (empty ts: :func:`trigflow_times`; no steps either: sCM's two steps at
        1.1); the other samplers: steps. ``seed``: None or '' is 0."""
        num = self._checked_count(num_images)
        labels = self.parse_label(label, allow_random=True)
        if sampler is None or isinstance(sampler, str) and not sampler.strip():
            sampler = self.default_sampler
        if not isinstance(sampler, str) or sampler.strip() not in self.samplers:
            raise ValueError(f'sampler {sampler!r} does not fit this model; choose one of '
                             f'{", ".join(self.samplers)}')
        sampler = sampler.strip()
        overrides = dict(sampler=sampler, seed=checked_seed(seed))
        steps = None if steps is None or isinstance(steps, str) and not steps.strip() \
            else checked_int(steps, 'steps', 1, MAX_STEPS)
        ts = checked_text(ts, 'ts')
        if steps is not None:
            overrides['steps'] = steps
        if sampler == 'multistep':
            overrides['ts'] = ts if ts.strip() else self.default_ts
        if sampler == 'trigflow':  # the ts box holds TrigFlow times (empty: from steps)
            overrides['steps'], overrides['trig_ts'] = parse_trigflow_times(ts, steps)
        with self.lock, count_network_calls(self.model) as calls:
            self.model.settings(**overrides)  # bad settings fail before any work
            start = time.perf_counter()
            images, out_labels = self.model.sample(num, labels=labels, progress=progress,
                                                   **overrides)
            seconds = time.perf_counter() - start
        batches = -(-num // self.model.settings(**overrides).batch_size)
        captions = ([self.caption(int(y)) for y in out_labels] if out_labels is not None
                    else [''] * num)
        return DemoResult(images, None, out_labels, calls[0] // batches, seconds, captions)

    def edit(self, task: str, image: ImageInput = None, mask=None, label=None,
             sigma: Optional[float] = None, patch_size: int = 4, add_noise: bool = True,
             num_points: int = 8, seed: int = 0, ts: Optional[str] = None,
             steps: Optional[int] = None, fit: str = 'resize', progress: bool = False
             ) -> DemoResult:
        """Edit one image (``task``: a registered one, :func:`~mmagic_cm.editing.task_names`).

        Args:
            image: file path, uint8 array or PIL image; another size is fitted
                with ``fit`` ('resize', 'center-crop', 'none' = error).
                Super-resolution also takes size/patch_size images.
            mask: inpainting: a built-in name ('bottom', 'box', ...), a black
                and white image (white = keep) or a 0/1 array (1 = keep).
            label: the class (interpolate: 'a,b' or one).
            ts: grid indices ('0,10,20,30,39'); empty: the library's default
                (interpolate: one step).
            seed: an integer in [0, 2**32); None or '': 0.
        """
        spec = task_of(task)
        if not self.is_consistency:
            raise ValueError('editing needs a consistency model (CD or CT); this one is an '
                             'EDM teacher: start the demo with a CD or CT config')
        # every setting checked before any image is read or the model runs
        fit = checked_choice('resize' if fit is None or fit == '' else fit, 'fit',
                             ('resize', 'center-crop', 'none'))
        seed = checked_seed(seed)
        ts = checked_text(ts, 'ts')
        steps = None if steps is None or isinstance(steps, str) and not steps.strip() \
            else checked_int(steps, 'steps', 2, MAX_STEPS)
        if 'patch_size' in spec.options:
            patch_size = checked_int(patch_size, 'patch size')
            if patch_size not in self.patch_sizes():
                raise ValueError(f'patch size {patch_size}: choose one of '
                                 f'{", ".join(map(str, self.patch_sizes()))} (divisors of '
                                 f'{self.size} below it)')
        if 'sigma' in spec.options:
            if sigma is None or isinstance(sigma, str) and not sigma.strip():
                raise ValueError(f'{task} needs a noise level sigma')
            sigma = checked_float(sigma, 'sigma', 0.0, self.model.precond.sigma_max,
                                  open_low=True)
        if 'add_noise' in spec.options:
            add_noise = checked_bool(add_noise, 'add_noise')
        if 'num_points' in spec.options:
            num_points = checked_int(num_points, 'number of points', 2, MAX_POINTS)
        labels = self.parse_label(label)
        if not spec.takes_images:
            if labels is not None and len(labels) not in (1, 2):
                raise ValueError('interpolation takes one class or two (start, end)')
            images = None
        else:
            if labels is not None and len(labels) != 1:
                raise ValueError('give one class for the image')
            if 'patch_size' in spec.options:  # patch-mean images of size/patch_size too
                images = read_superres_input(image, self.size, patch_size, fit)
            else:
                images = read_image(image, self.size, fit)
            images = images[None]
        if 'mask' in spec.options:
            if mask is None or isinstance(mask, str) and not mask.strip():
                raise ValueError('brush the region to fill (or pick a built-in mask) first')
            mask = read_mask(mask, self.size, fit)
            if isinstance(mask, np.ndarray) and not (mask == 0).any():
                raise ValueError('the mask is empty: brush the region to fill first')
        kwargs = dict(labels=labels, ts=ts if ts.strip() else None, seed=seed,
                      progress=progress)
        if steps is not None:
            kwargs['steps'] = steps
        given = dict(mask=mask, patch_size=patch_size, sigma=sigma, add_noise=add_noise,
                     num_points=num_points)
        kwargs.update({k: given[k] for k in spec.options})
        with self.lock, count_network_calls(self.model) as calls:
            start = time.perf_counter()
            res = edit(self.model, task, images, **kwargs)
            seconds = time.perf_counter() - start
        # one image (interpolation: all points) is one batch: calls = NFE
        captions = ([self.caption(int(y)) for y in res.labels] if res.labels is not None
                    else [''] * len(res.images))
        return DemoResult(res.images, res.observed, res.labels, calls[0], seconds, captions)

