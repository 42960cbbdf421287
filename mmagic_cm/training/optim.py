"""An optimizer wrapper for bf16 autocast on any device, the CPU included.

mmengine's ``AmpOptimWrapper`` refuses to run without a GPU. bf16 keeps
fp32's exponent range, so no loss scaling is needed: autocast in the forward
pass is all there is to it.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward pass runs under bf16 autocast."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device, dtype=torch.bfloat16):
            yield
