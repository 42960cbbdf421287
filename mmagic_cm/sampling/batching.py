"""The one batching loop, shared by sampling and editing.

Images ``[start, stop)`` of a run of ``num`` are made in batches of a fixed
size; the noise generator is positioned at each batch's first index, so
that with 'determ' and 'determ-indiv' an image's noise depends only on its
index (not on the batch size or where a shard starts). A last, partial
batch is padded to the full size by repeating its last row (the padding
rows are dropped from the results).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np
import torch


def pad_rows(rows: torch.Tensor, size: int) -> torch.Tensor:
    """``rows`` (M, ...) padded to (size, ...) by repeating its last row."""
    if len(rows) >= size:
        return rows
    return torch.cat([rows, rows[-1:].expand(size - len(rows), *rows.shape[1:])])


def run_batches(make: Callable[[int, int], Sequence[torch.Tensor]], generator, stop: int,
                batch_size: int, start: int = 0, progress: bool = False,
                desc: str = 'sampling') -> List[np.ndarray]:
    """Call ``make(first, count)`` for every batch of ``[start, stop)``.

    Args:
        make: returns a tuple of (batch_size, ...) tensors for the batch that
            starts at index ``first`` and holds ``count`` real rows.
        generator: positioned with ``set_done_samples(first)`` before each call.

    Returns:
        one numpy array per output of ``make``: the real rows of every batch,
        concatenated (``stop - start`` rows).
    """
    if not 0 <= start < stop or batch_size < 1:
        raise ValueError(f'no batches in [{start}, {stop}) of size {batch_size}')
    batches = range(start, stop, batch_size)
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(batches, desc=desc, unit='batch')
    outputs: Optional[List[list]] = None
    for first in batches:
        generator.set_done_samples(first)
        count = min(batch_size, stop - first)
        results = make(first, count)
        if outputs is None:
            outputs = [[] for _ in results]
        for out, result in zip(outputs, results):
            out.append(result[:count].cpu().numpy())
    return [np.concatenate(out) for out in outputs]


def memory_bytes() -> int:
    """This machine's physical memory in bytes (0 where it cannot be told)."""
    import os
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (ValueError, OSError, AttributeError):
        return 0
