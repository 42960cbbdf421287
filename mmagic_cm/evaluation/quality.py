"""PSNR of images in [-1, 1], the one definition the editing measurements,
the benchmark and the fast-path tests share."""
from __future__ import annotations

from typing import Optional

import torch


def psnr(a: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-image PSNR in dB between (N, ...) images in [-1, 1] (peak-to-peak
    2), over ``mask`` (broadcastable, 1 = counted) if given. Returns (N,);
    inf where the images are equal. For one PSNR over a whole batch pass
    ``a.reshape(1, -1)`` and ``b.reshape(1, -1)``."""
    err = (a.float() - b.float())**2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        m = torch.broadcast_to(mask.to(err), err.shape)
        mse = (err * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)
    return 10 * torch.log10(4.0 / mse)
