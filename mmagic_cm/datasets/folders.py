"""Checks of image folders before a run, with one-line errors."""
from __future__ import annotations

import os
import os.path as osp

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff', '.JPEG')


def check_image_folder(folder: str, probe: int = 8) -> int:
    """Raise unless ``folder`` holds images and the first few open.

    Returns:
        the number of image files found (recursively).
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'dataset folder not found: {folder}')
    files = [osp.join(d, f) for d, _, names in os.walk(folder) for f in sorted(names)
             if f.endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise ValueError(f'dataset folder {folder} holds no images '
                         f'({", ".join(IMAGE_EXTENSIONS[:5])}, ...)')
    from PIL import Image
    for path in files[:probe]:
        try:
            with Image.open(path) as img:
                img.verify()
        except Exception as exc:
            raise ValueError(f'unreadable image {path} ({type(exc).__name__}: {exc}); '
                             'remove or replace it') from None
    return len(files)
