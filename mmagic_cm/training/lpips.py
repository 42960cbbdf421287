"""LPIPS distance as the original training uses it (piq's ``LPIPS(replace_pooling=True)``).

VGG16 features (max-pooling replaced by average pooling) at relu1_2,
relu2_2, relu3_3, relu4_3 and relu5_3, unit-normalised over channels; squared
differences weighted per channel by the LPIPS v0.1 linear weights, averaged
over space and summed. Inputs in [-1, 1] are mapped to [0, 1] and
ImageNet-normalised; images smaller than 256 px are first resized to 224 px
(bilinear), as the original ``consistency_losses`` does.

Weights: the VGG16 backbone is torchvision's ``IMAGENET1K_V1`` file (a
download into the torch hub cache, or ``vgg_path``); the linear weights come
from the ``lpips`` package (installed with mmagic) or ``lin_path``.
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..files.checkpoint import CheckpointError, read_checkpoint, resolve_checkpoint

VGG16_URL = 'https://download.pytorch.org/models/vgg16-397923af.pth'
LAYER_ENDS = (4, 9, 16, 23, 30)  # after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _lpips_package_weights() -> Optional[str]:
    try:
        import lpips
    except ImportError:
        return None
    path = osp.join(osp.dirname(lpips.__file__), 'weights', 'v0.1', 'vgg.pth')
    return path if osp.isfile(path) else None


class LPIPSLoss(nn.Module):
    """Per-sample LPIPS distance (N,) between image batches in [-1, 1].

    Args:
        vgg_path: local torchvision VGG16 weights (``vgg16-397923af.pth``);
            default: download once into the torch hub cache.
        lin_path: LPIPS v0.1 linear weights (``vgg.pth`` of the lpips
            package, the default).
        resize_below: images smaller than this are resized to 224 px.
    """

    def __init__(self, vgg_path: Optional[str] = None, lin_path: Optional[str] = None,
                 resize_below: int = 256):
        super().__init__()
        from torchvision.models import vgg16
        layers = list(vgg16(weights=None).features.children())[:LAYER_ENDS[-1]]
        layers = [nn.AvgPool2d(2, 2) if isinstance(m, nn.MaxPool2d) else m for m in layers]
        for m in layers:
            if isinstance(m, nn.ReLU):
                m.inplace = False
        self.features = nn.Sequential(*layers)
        self.lins = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, c, 1, 1)) for c in (64, 128, 256, 512, 512)])
        self.resize_below = resize_below
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        # weights are read on first use, so configs build offline
        self.vgg_path, self.lin_path, self.loaded = vgg_path, lin_path, False
        self.requires_grad_(False).eval()

    def ensure_weights(self) -> None:
        """Fetch and load the weights now (a clear error offline)."""
        if not self.loaded:
            self._load(self.vgg_path, self.lin_path)
            self.loaded = True

    def _load(self, vgg_path: Optional[str], lin_path: Optional[str]) -> None:
        path = resolve_checkpoint(vgg_path or VGG16_URL,
                                  local_hint='train_cfg.loss=dict(type="lpips", vgg_path=PATH)')
        state = read_checkpoint(path)
        feats = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
        self.features.load_state_dict(
            {k: v for k, v in feats.items() if int(k.split('.')[0]) < LAYER_ENDS[-1]})
        self.features.to(self.mean.device)
        lin_path = lin_path or _lpips_package_weights()
        if lin_path is None or not osp.isfile(lin_path):
            raise CheckpointError('LPIPS linear weights not found: install the lpips package '
                                  '(pip install lpips) or pass lin_path=PATH to its vgg.pth')
        lin = torch.load(lin_path, map_location='cpu', weights_only=True)
        for i, param in enumerate(self.lins):
            param.data.copy_(lin[f'lin{i}.model.1.weight'].to(param.device))

    def _taps(self, x: torch.Tensor) -> List[torch.Tensor]:
        out, start = [], 0
        for end in LAYER_ENDS:
            x = self.features[start:end](x)
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            start = end
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.ensure_weights()
        if x.shape[-1] < self.resize_below:
            x = F.interpolate(x, size=224, mode='bilinear')
            y = F.interpolate(y, size=224, mode='bilinear')
        x = ((x + 1) / 2 - self.mean) / self.std
        y = ((y + 1) / 2 - self.mean) / self.std
        total = 0
        for fx, fy, w in zip(self._taps(x), self._taps(y), self.lins):
            total = total + ((fx - fy)**2 * w).mean(dim=(2, 3)).sum(1)
        return total
