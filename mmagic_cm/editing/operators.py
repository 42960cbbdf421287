"""What each zero-shot editing task keeps of the input image.

Every task of the paper (Song et al., 2023, section 5 and appendix D) is a
linear "keep this part of the image" constraint: an operator ``A`` with a
known part ``A(y)`` of the input ``y``. At each consistency step the model's
image ``x0`` gets its ``A``-part replaced by the input's:

    replace(known, x0) = x0 - P(x0) + P(known)

with ``P`` the orthogonal projection onto what ``A`` keeps. The original
code computes it by rotating into an orthonormal basis whose first axes
span the kept part (``torch.linalg.qr``-style), swapping coordinates and
rotating back; the projection written directly is the same map (it does
not depend on how the rest of the basis is chosen) and costs less.

All images are float (N, C, H, W) in [-1, 1].
"""
from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F

#: ITU-R BT.601 luma weights, as the original's colorization uses them
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)


class Inpaint:
    """Keep the pixels where ``mask`` is 1; the model fills the rest.

    Args:
        mask: (H, W), (1|N, 1|C, H, W) tensor of 0/1 (1 = keep), broadcast
            against the images.
        fill: value shown in the unknown region of :meth:`observe` (the
            original uses -1, black).
    """

    name = 'inpaint'

    def __init__(self, mask: torch.Tensor, fill: float = -1.0):
        mask = torch.as_tensor(mask, dtype=torch.float32)
        if mask.ndim == 2:
            mask = mask[None, None]
        if mask.ndim != 4:
            raise ValueError(f'mask must be (H, W) or (N, C, H, W), got shape '
                             f'{tuple(mask.shape)}')
        if not torch.all((mask == 0) | (mask == 1)):
            raise ValueError('mask values must be 0 (fill) or 1 (keep)')
        self.mask = mask
        self.fill = fill

    def observe(self, images: torch.Tensor) -> torch.Tensor:
        """The input as the task sees it: unknown pixels set to ``fill``."""
        mask = self.mask.to(images)
        return images * mask + torch.full_like(images, self.fill) * (1 - mask)

    def replace(self, known: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        mask = self.mask.to(x0)
        return known * mask + x0 * (1 - mask)


class Colorize:
    """Keep the luminance (the projection of RGB on the luma direction).

    The kept axis is the unit vector along (0.2989, 0.5870, 0.1140), as in the
    original; the two chroma axes orthogonal to it are the model's.
    """

    name = 'colorize'

    def __init__(self, weights=LUMA_WEIGHTS):
        v = torch.tensor(weights, dtype=torch.float64)
        self.axis = (v / v.norm()).float()

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.axis.to(x).view(1, -1, 1, 1)
        return axis * (x * axis).sum(dim=1, keepdim=True)

    def observe(self, images: torch.Tensor) -> torch.Tensor:
        """The luminance part of ``images`` (a grey image, slightly tinted)."""
        return self._project(images)

    def replace(self, known: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return x0 + self._project(known - x0)

    @staticmethod
    def from_gray(gray: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) grey levels in [-1, 1] -> (N, 3, H, W) with R = G = B."""
        return gray.expand(-1, 3, -1, -1)


class SuperResolution:
    """Keep the mean of every ``patch_size`` x ``patch_size`` patch.

    A low-resolution image of ``H / patch_size`` pixels is exactly these
    means; the model adds the detail inside each patch.
    """

    name = 'superres'

    def __init__(self, patch_size: int = 8):
        if int(patch_size) < 1:
            raise ValueError(f'patch_size must be >= 1, got {patch_size}')
        self.patch_size = int(patch_size)

    def check_size(self, images: torch.Tensor) -> None:
        h, w = images.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f'image size {h}x{w} is not a multiple of patch_size='
                             f'{self.patch_size}')

    def _means(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(x)
        p = self.patch_size
        means = F.avg_pool2d(x, p)
        return F.interpolate(means, scale_factor=p, mode='nearest')

    def observe(self, images: torch.Tensor) -> torch.Tensor:
        """Every patch replaced by its mean (the low-resolution image, upscaled)."""
        return self._means(images)

    def replace(self, known: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return x0 + self._means(known - x0)

    def upscale(self, low_res: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) low-resolution images -> (N, C, h * p, w * p) patch means."""
        return F.interpolate(low_res, scale_factor=self.patch_size, mode='nearest')


Operator = Union[Inpaint, Colorize, SuperResolution]
