"""Checks of image folders before a run, with one-line errors."""
from __future__ import annotations

import os
import os.path as osp
import sys
import time
from typing import List, Optional, Tuple

from ..files.images import IMAGE_EXTENSIONS

#: a check that takes longer says how long (seconds)
SLOW_CHECK_S = 10.0
#: bad files named in the error (the count says how many more)
NAMED_BAD_FILES = 3


def _ends_with_eoi(path: str) -> bool:
    """Whether a JPEG file ends with its end-of-image marker (a truncated one does not)."""
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64))
        return f.read().rstrip(b'\x00\r\n ').endswith(b'\xff\xd9')


def image_problem(path: str) -> Optional[str]:
    """None when ``path`` reads as a complete image, else why not (one phrase).

    Cheap where it can be: a PNG is verified (every chunk's CRC up to the end
    marker, no pixel decoding); a JPEG whose header parses and that ends with
    its end marker passes (truncation is what breaks JPEGs; a flipped bit only
    garbles pixels). Anything else is decoded in full (JPEGs at 1/8 scale:
    every byte is still read).
    """
    from PIL import Image
    try:
        with Image.open(path) as img:
            if img.format == 'PNG':
                img.verify()
                return None
            if img.format == 'JPEG':
                if _ends_with_eoi(path):
                    return None
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        text = str(exc).strip().replace(f' {path!r}', '')  # the error names the file
        return text.splitlines()[0] if text else type(exc).__name__
    return None


def find_bad_images(files: List[str], workers: Optional[int] = None
                    ) -> List[Tuple[str, str]]:
    """``(path, problem)`` of every file in ``files`` that is not a complete image
    (:func:`image_problem`), in the order given; threads overlap the reads."""
    if len(files) < 64:
        found = [(p, image_problem(p)) for p in files]
    else:
        from concurrent.futures import ThreadPoolExecutor
        workers = workers or min(16, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:  # file reads and decoding release the GIL
            found = list(zip(files, pool.map(image_problem, files, chunksize=64)))
    return [(p, why) for p, why in found if why is not None]


def check_image_folder(folder: str) -> int:
    """Raise unless ``folder`` holds images and every one of them reads completely.

    Each image is checked before training (:func:`image_problem`), so that a
    corrupt or truncated file fails now and not at the iteration that reaches
    it. A check over 10 s says how long it took on stderr.

    Returns:
        the number of image files found (recursively).

    Raises:
        FileNotFoundError: no such folder. ValueError: (one line) no images,
        or unreadable ones (the first few named, and how many).
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'dataset folder not found: {folder}')
    files = [osp.join(d, f) for d, _, names in sorted(os.walk(folder)) for f in sorted(names)
             if f.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise ValueError(f'dataset folder {folder} holds no images '
                         f'({", ".join(IMAGE_EXTENSIONS[:5])}, ...)')
    start = time.perf_counter()
    bad = find_bad_images(files)
    took = time.perf_counter() - start
    if took > SLOW_CHECK_S:
        print(f'checked the {len(files)} images of {folder} in {took:.0f}s', file=sys.stderr)
    if bad:
        named = ', '.join(f'{osp.relpath(p, folder)} ({why})'
                          for p, why in bad[:NAMED_BAD_FILES])
        more = f' and {len(bad) - NAMED_BAD_FILES} more' if len(bad) > NAMED_BAD_FILES else ''
        it = 'them' if len(bad) > 1 else 'it'
        raise ValueError(f'{len(bad)} unreadable image{"s" if len(bad) > 1 else ""} of '
                         f'{len(files)} in dataset folder {folder}: {named}{more}; remove or '
                         f'replace {it}')
    return len(files)
