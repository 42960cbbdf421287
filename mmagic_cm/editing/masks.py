"""Built-in inpainting masks: (H, W) float tensors, 1 = keep, 0 = fill."""
from __future__ import annotations

from typing import Union

import numpy as np
import torch


def box_mask(size: int, fraction: float = 0.5) -> torch.Tensor:
    """Fill a centred square whose side is ``fraction`` of the image."""
    if not 0 < fraction < 1:
        raise ValueError(f'box fraction must be in (0, 1), got {fraction}')
    mask = torch.ones(size, size)
    side = max(1, round(size * fraction))
    lo = (size - side) // 2
    mask[lo:lo + side, lo:lo + side] = 0
    return mask


def half_mask(size: int, side: str = 'bottom') -> torch.Tensor:
    """Fill one half of the image: 'bottom', 'top', 'left' or 'right'."""
    mask = torch.ones(size, size)
    half = size // 2
    regions = {'bottom': (slice(half, None), slice(None)),
               'top': (slice(None, half), slice(None)),
               'left': (slice(None), slice(None, half)),
               'right': (slice(None), slice(half, None))}
    if side not in regions:
        raise ValueError(f'unknown half {side!r}; choose one of {", ".join(regions)}')
    mask[regions[side]] = 0
    return mask


def strokes_mask(size: int, seed: int = 0, num_strokes: int = 4,
                 width: Union[int, None] = None) -> torch.Tensor:
    """Fill a few random free-form strokes (seeded polylines of width ``width``,
    default ``size // 10``), like the free-form masks of inpainting benchmarks."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    width = max(1, size // 10) if width is None else int(width)
    canvas = Image.new('L', (size, size), 255)
    draw = ImageDraw.Draw(canvas)
    for _ in range(num_strokes):
        points = [tuple(rng.uniform(0, size, 2))]
        for _ in range(int(rng.integers(2, 5))):
            angle = rng.uniform(0, 2 * np.pi)
            step = rng.uniform(size / 8, size / 3)
            x, y = points[-1]
            points.append((float(np.clip(x + step * np.cos(angle), 0, size - 1)),
                           float(np.clip(y + step * np.sin(angle), 0, size - 1))))
        draw.line(points, fill=0, width=width, joint='curve')
    return torch.from_numpy((np.asarray(canvas) > 127).astype(np.float32))


#: names accepted by :func:`builtin_mask` (and ``tools/edit.py --mask``)
BUILTIN_MASKS = ('box', 'bottom', 'top', 'left', 'right', 'strokes')


def builtin_mask(name: str, size: int, seed: int = 0) -> torch.Tensor:
    """A built-in mask by name (``box``, a half: ``bottom``/``top``/``left``/
    ``right``, or ``strokes``), (size, size), 1 = keep."""
    if name == 'box':
        return box_mask(size)
    if name == 'strokes':
        return strokes_mask(size, seed)
    if name in ('bottom', 'top', 'left', 'right'):
        return half_mask(size, name)
    raise ValueError(f'unknown built-in mask {name!r}; choose one of '
                     f'{", ".join(BUILTIN_MASKS)} or give a mask image file')
