"""Reading the images and masks of editing tasks.

Images come back as float (3, S, S) in [-1, 1]; masks as float (S, S) of
0/1 with 1 = keep. Errors name the file and what to do about it.
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
import tempfile
from typing import List, Sequence, Union

import numpy as np
import torch

from ..files.images import IMAGE_EXTENSIONS, from_uint8

#: how an image of another size is made to fit the model
FIT_MODES = ('none', 'resize', 'center-crop')


def list_images(inputs: Union[str, Sequence[str]]) -> List[str]:
    """Image files from files and folders (a folder's images sorted by name)."""
    if isinstance(inputs, str):
        inputs = [inputs]
    files: List[str] = []
    for path in inputs:
        if osp.isdir(path):
            found = sorted(osp.join(path, f) for f in os.listdir(path)
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise FileNotFoundError(f'{path}: no images ({", ".join(IMAGE_EXTENSIONS)}) '
                                        'in this folder')
            files.extend(found)
        elif osp.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f'{path}: no such file or folder')
    return files


def _open(path: str, what: str):
    from PIL import Image, UnidentifiedImageError
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise FileNotFoundError(f'{what} {path}: no such file') from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f'{what} {path}: not a readable image ({exc}); give a PNG or '
                         'JPEG file') from None
    return img


#: how the command line and the API fix a wrong size (the web app says its own)
FIT_HINT = ("resize it, or pass --fit resize (stretch) or --fit center-crop (API: "
            "fit='resize' or 'center-crop')")


def fit_image(img, size: int, fit: str = 'none', what: str = 'image', resample=None,
              source: str = '', hint: str = FIT_HINT):
    """``img`` (PIL) as ``size`` x ``size``: 'resize' (stretch, ``resample``,
    default bicubic), 'center-crop' (scale the short side, crop the middle)
    or 'none' (another size is an error naming ``what``, ``source`` and
    ``hint``)."""
    from PIL import Image
    if fit not in FIT_MODES:
        raise ValueError(f'fit={fit!r}: choose one of {", ".join(FIT_MODES)}')
    # Image.NEAREST is 0: test for None, not falsiness
    resample = Image.BICUBIC if resample is None else resample
    w, h = img.size
    if (w, h) == (size, size):
        return img
    if fit == 'none':
        name = f'{what} {source}' if source else f'the {what}'
        raise ValueError(f'{name} is {w}x{h} but the model takes {size}x{size} images; '
                         f'{hint}')
    if fit == 'center-crop':
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                         resample)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        return img.crop((left, top, left + size, top + size))
    return img.resize((size, size), resample)


def to_rgb(img):
    """PIL image -> RGB: grey replicated, transparency composited on white."""
    from PIL import Image
    if img.mode in ('RGBA', 'LA', 'PA') or (img.mode == 'P' and 'transparency' in img.info):
        rgba = img.convert('RGBA')
        white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert('RGB')
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.round(arr / peak * 255).astype(np.uint8), mode='L')
    return img.convert('RGB')


def load_image(path: str, size: int, fit: str = 'none') -> torch.Tensor:
    """Read an image as float (3, size, size) in [-1, 1].

    Grey images become R = G = B; RGBA/LA/transparent palettes are
    composited on white; 16-bit grey is scaled to 8 bits. ``fit``: 'none'
    (another size is an error), 'resize' (stretch) or 'center-crop' (scale
    the short side to ``size``, crop the middle).
    """
    from PIL import Image
    img = to_rgb(_open(path, 'image'))
    img = fit_image(img, size, fit, 'image', Image.BICUBIC, path)
    return from_uint8(np.asarray(img, dtype=np.uint8))[0]


def load_mask(path: str, size: int, fit: str = 'none', binarize: bool = False,
              invert: bool = False) -> torch.Tensor:
    """Read an inpainting mask as float (size, size): 1 (white) = keep, 0 = fill.

    The mask must be black and white (0 and 255, or 0 and 1); with
    ``binarize`` grey levels are thresholded at the middle. ``invert`` swaps
    the convention (white = fill, as MMagic's inpainting masks).
    """
    from PIL import Image
    img = _open(path, 'mask')
    if img.mode in ('RGBA', 'LA'):
        img = to_rgb(img)
    img = fit_image(img.convert('L'), size, fit, 'mask', Image.NEAREST, path)
    arr = np.asarray(img)
    values = np.unique(arr)
    if set(values.tolist()) <= {0, 1}:
        keep = arr == 1
    elif set(values.tolist()) <= {0, 255}:
        keep = arr == 255
    elif binarize:
        keep = arr >= 128
    else:
        raise ValueError(f'mask {path} is not black and white: it has {len(values)} grey '
                         'levels; save it with only 0 and 255, or threshold it at 128 with '
                         '--binarize-mask (API: binarize=True; MMagicInferencer: '
                         'extra_parameters=dict(binarize_mask=True))')
    if invert:
        keep = ~keep
    return torch.from_numpy(keep.astype(np.float32))


def check_mask(mask: torch.Tensor, size: int, name: str = 'mask') -> torch.Tensor:
    """Validate a mask tensor/array: (S, S) or (N, S, S) or (N, 1|3, S, S), 0/1."""
    mask = torch.as_tensor(mask).float()
    if mask.shape[-2:] != (size, size) or mask.ndim not in (2, 3, 4):
        raise ValueError(f'{name} has shape {tuple(mask.shape)}; expected ({size}, {size}), '
                         f'(N, {size}, {size}) or (N, 1, {size}, {size})')
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError(f'{name} must hold only 0 (fill) and 1 (keep); threshold it first')
    if torch.all(mask == 1):
        raise ValueError(f'{name} keeps every pixel: there is nothing to inpaint '
                         '(1 = keep, 0 = fill)')
    if mask.ndim == 3:
        mask = mask[:, None]
    elif mask.ndim == 2:
        mask = mask[None, None]
    return mask


def load_superres_input(path: str, size: int, patch_size: int, fit: str = 'none'
                        ) -> torch.Tensor:
    """A super-resolution input: a low-resolution image of ``size / patch_size``
    pixels (upscaled to patch means) or a full-size one (3, size, size)."""
    if not 1 <= patch_size <= size or size % patch_size:
        raise ValueError(f'--patch-size {patch_size}: must divide the image size {size} '
                         '(e.g. 4 or 8)')
    low = size // patch_size
    img = _open(path, 'image')
    if img.size == (low, low) and low != size:
        x = from_uint8(np.asarray(to_rgb(img), dtype=np.uint8))[0]
        return x.repeat_interleave(patch_size, 1).repeat_interleave(patch_size, 2)
    if img.size != (size, size) and fit == 'none':
        w, h = img.size
        raise ValueError(f'image {path} is {w}x{h}; super-resolution takes {low}x{low} '
                         f'(low resolution) or {size}x{size} images (their {patch_size}x'
                         f'{patch_size} patch means are kept); resize it or pass --fit')
    return load_image(path, size, fit)


def check_out_dir(out_dir: str) -> str:
    """Refuse an ``--out-dir`` that cannot be replaced as a whole, before any work.

    Returns:
        the folder results go to (a link to a folder resolved to the folder).

    Raises:
        ValueError: (one line naming the path) a file, the current folder or
        one holding it, or a folder whose parent is not writable.
    """
    path = osp.realpath(out_dir) if osp.isdir(out_dir) else osp.abspath(out_dir)
    if osp.lexists(path) and not osp.isdir(path):
        raise ValueError(f'--out-dir {out_dir} is a file; give a folder (new, or one of '
                         'earlier results)')
    # the results replace the folder by a rename: the working folder cannot move
    cwd = osp.realpath(os.getcwd())
    if osp.isdir(path) and (cwd == path or cwd.startswith(path.rstrip(os.sep) + os.sep)):
        raise ValueError(f'--out-dir {out_dir} is the current folder or holds it; give a '
                         'subfolder for the results, e.g. --out-dir edits')
    existing = osp.dirname(path)
    while not osp.exists(existing):  # the first folder that exists will hold it
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise ValueError(f'--out-dir {out_dir}: {existing} is a file, not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f'--out-dir {out_dir}: cannot write in {existing} (permissions); '
                         'give a folder elsewhere')
    return path


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)  # no bytes copied, and the file is the same one
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _stage_kept_entries(out_dir: str, stage: str) -> None:
    """Link (or copy) what ``out_dir`` holds besides the new results into ``stage``."""
    for name in os.listdir(out_dir):
        src, dst = osp.join(out_dir, name), osp.join(stage, name)
        if osp.lexists(dst):
            continue  # replaced by a result of this run
        if osp.islink(src):
            os.symlink(os.readlink(src), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(src, dst)


def write_edit_results(out_dir: str, names: List[str], result) -> None:
    """Write an :class:`~.api.EditResult` as PNGs: ``<name>.png``, ``<name>_input.png``
    and ``grid.png`` (inputs above results).

    All or nothing: the PNGs are written into a staging folder beside
    ``out_dir``, with links to (or copies of) the other files already in
    ``out_dir``, and that complete folder then takes its place
    (:func:`~mmagic_cm.files.atomic.replace_path`). Files of the same names are
    replaced, others kept; a failure anywhere leaves ``out_dir`` exactly as
    it was.
    """
    from PIL import Image

    from ..files.atomic import _umask, replace_path
    from ..files.images import save_grid
    path = check_out_dir(out_dir)
    os.makedirs(osp.dirname(path), exist_ok=True)
    stage = tempfile.mkdtemp(dir=osp.dirname(path), prefix=f'.{osp.basename(path)[:100]}.edit-')
    try:
        for name, out, obs in zip(names, result.images, result.observed):
            Image.fromarray(out).save(osp.join(stage, f'{name}.png'))
            Image.fromarray(obs).save(osp.join(stage, f'{name}_input.png'))
        save_grid(_grid_rows(result.observed, result.images), osp.join(stage, 'grid.png'),
                  cols=min(10, len(result.images)))
        if osp.isdir(path):
            _stage_kept_entries(path, stage)
            shutil.copymode(path, stage)
        else:
            os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
        replace_path(stage, path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _grid_rows(observed: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Rows of at most 10 inputs, each above a row of their results."""
    cols = min(10, len(images))
    rows = []
    for start in range(0, len(images), cols):
        obs, out = observed[start:start + cols], images[start:start + cols]
        pad = cols - len(out)
        if pad:
            blank = np.zeros((pad, *out.shape[1:]), dtype=out.dtype)
            obs, out = np.concatenate([obs, blank]), np.concatenate([out, blank])
        rows += [obs, out]
    return np.concatenate(rows)
