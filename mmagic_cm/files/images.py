"""Images at the edges: float NCHW in [-1, 1] <-> uint8 NHWC, and grids.

One conversion rule for the whole project (sampling, editing, the demo):
**truncate, as the original's scripts do** (``((x + 1) * 127.5).clamp(0,
255).to(uint8)``), so that ``.npz`` files equal the original's bit for bit
and FID numbers compare with the published ones. Its inverse
:func:`from_uint8` gives, for each level ``v``, the float nearest to
``v / 127.5 - 1`` that truncates back to ``v`` (at most a few float32 ulps
above it): an edit's kept pixels come out exactly as they went in, where
``v / 127.5 - 1`` itself can come back as ``v - 1``.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float in [-1, 1] -> (N, H, W, C) uint8, truncating (module docstring)."""
    levels = ((images.float() + 1) * 127.5).clamp(0, 255)
    return levels.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def from_uint8(images) -> torch.Tensor:
    """(N, H, W, C) or (H, W, C) uint8 (numpy or torch) -> (N, C, H, W) float32 in
    [-1, 1] that :func:`to_uint8` maps back to the same values."""
    if not torch.is_tensor(images):
        images = np.asarray(images)
        images = torch.from_numpy(images if images.flags.writeable else images.copy())
    if images.dtype != torch.uint8:
        raise ValueError(f'expected uint8 images, got {images.dtype}')
    if images.ndim == 3:
        images = images[None]
    levels = images.permute(0, 3, 1, 2)
    x = levels.float() / 127.5 - 1
    up = torch.tensor(2.0)
    for _ in range(64):  # float rounding: a few ulps at most
        low = to_uint8(x).permute(0, 3, 1, 2) < levels
        if not low.any():
            break
        x = torch.where(low, torch.nextafter(x, up), x)
    return x


def make_grid(images: np.ndarray, cols: Optional[int] = None) -> np.ndarray:
    """uint8 (N, H, W, C) -> one (rows*H, cols*W, C) canvas, ``cols`` wide
    (default: about square); empty cells stay black."""
    n, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        canvas[r * h:(r + 1) * h, q * w:(q + 1) * w] = img
    return canvas


#: image files read as inputs (editing) and data (image folders), matched
#: case-insensitively: the one list
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')
#: grid file extensions -> PIL format (a grid is written in the format its name says)
GRID_FORMATS = {'.png': 'PNG', '.jpg': 'JPEG', '.jpeg': 'JPEG', '.webp': 'WEBP',
                '.bmp': 'BMP', '.tif': 'TIFF', '.tiff': 'TIFF'}
#: grids of smaller images are upscaled (nearest neighbour) to tiles this wide
MIN_TILE = 64


def grid_format(path: str, option: str = '--grid') -> str:
    """The PIL format a grid file name asks for; ValueError for other extensions."""
    import os.path as osp
    ext = osp.splitext(path)[1].lower()
    if ext not in GRID_FORMATS:
        raise ValueError(f'{option} {path}: unknown image extension {ext or "(none)"}; use '
                         f'{", ".join(GRID_FORMATS)}')
    return GRID_FORMATS[ext]


def save_grid(images: np.ndarray, path: str, cols: Optional[int] = None,
              min_tile: int = MIN_TILE) -> None:
    """Write :func:`make_grid` of uint8 (N, H, W, C) images, atomically, in the
    format of ``path``'s extension; tiles narrower than ``min_tile`` pixels are
    upscaled by a whole factor (nearest neighbour; 0 or 1: native size)."""
    from PIL import Image

    from .atomic import atomic_write
    fmt = grid_format(path)
    factor = max(1, math.ceil(min_tile / images.shape[2])) if min_tile else 1
    canvas = make_grid(images, cols)
    if factor > 1:
        canvas = canvas.repeat(factor, axis=0).repeat(factor, axis=1)
    if fmt == 'JPEG':
        canvas = canvas[..., :3]
    atomic_write(path, lambda f: Image.fromarray(canvas).save(f, format=fmt))


def zoom_image_file(path: str, tile: int, min_tile: int = MIN_TILE) -> None:
    """Enlarge an image file written by someone else (MMagic's demo grid) by the
    whole factor that makes ``tile``-pixel tiles at least ``min_tile`` wide
    (nearest neighbour), rewritten atomically in its own format; no-op when
    the tiles are wide enough."""
    from PIL import Image

    from .atomic import atomic_write
    factor = math.ceil(min_tile / tile)
    if factor <= 1:
        return
    with Image.open(path) as img:
        fmt = img.format
        big = img.resize((img.width * factor, img.height * factor), Image.NEAREST)
    atomic_write(path, lambda f: big.save(f, format=fmt))
