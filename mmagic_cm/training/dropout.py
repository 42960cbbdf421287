"""Shared dropout masks: one network pass draws them, later passes reuse them.

ECT compares the online network at t with the same network at r under
no-grad, and sCM differentiates the stop-gradient network along t: both need
the passes to see the same dropout mask, or the difference measures dropout
noise. ``locuslab/ect`` restores the CUDA RNG state for that (GPU only, and
only while no other op draws in between); here the masks themselves are
recorded and replayed, on any device, also inside ``torch.func.jvp``.

    shared = SharedDropout(net)
    with shared.record():
        out_t = net(x_t, ...)       # draws and keeps each nn.Dropout's mask
    with shared.replay(), torch.no_grad():
        out_r = net(x_r, ...)       # the same masks, in the same order

Recording draws exactly as CPU ``nn.Dropout`` does (``bernoulli_(1 - p)``
scaled by ``1 / (1 - p)``), so a seeded run gives the masks plain dropout
would have given.
"""
from __future__ import annotations

import contextlib
from typing import Dict, List

import torch
from torch import nn


class SharedDropout:
    """Record the dropout masks of a network's ``nn.Dropout`` modules and replay them.

    Args:
        net: the network; its ``nn.Dropout`` modules are patched only inside
            :meth:`record` / :meth:`replay`, and only while it is training
            with ``p > 0``.
    """

    def __init__(self, net: nn.Module):
        self.modules = [m for m in net.modules() if type(m) is nn.Dropout]
        self.masks: Dict[int, List[torch.Tensor]] = {}

    @contextlib.contextmanager
    def _patched(self, forward_of):
        patched = [m for m in self.modules if m.training and m.p > 0]
        for m in patched:
            m.forward = forward_of(m)
        try:
            yield self
        finally:
            for m in patched:
                del m.forward  # back to the class's forward

    def record(self):
        """Context: dropout draws masks as usual and keeps them (cleared first)."""
        self.masks = {id(m): [] for m in self.modules}

        def forward_of(module):
            def forward(x):
                keep = 1 - module.p
                mask = torch.empty_like(x).bernoulli_(keep).div_(keep)
                self.masks[id(module)].append(mask)
                return x * mask
            return forward

        return self._patched(forward_of)

    def replay(self):
        """Context: dropout multiplies by the recorded masks, call by call; a
        layer's masks start over once used up, so several passes (a finite
        difference's two) each see the recorded pass's masks."""
        calls = {key: 0 for key in self.masks}

        def forward_of(module):
            def forward(x):
                masks = self.masks.get(id(module))
                if not masks:
                    raise RuntimeError('SharedDropout.replay: nothing recorded for this '
                                       'dropout layer; run the network under record() first')
                mask = masks[calls[id(module)] % len(masks)]
                calls[id(module)] += 1
                if mask.shape != x.shape:
                    raise RuntimeError(
                        f'SharedDropout.replay: a dropout layer got shape {tuple(x.shape)}, '
                        f'recorded {tuple(mask.shape)}')
                return x * mask.to(x.dtype)
            return forward

        return self._patched(forward_of)
