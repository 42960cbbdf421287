"""Deterministic random weights, shared by the tests and the fixture maker.

Parity fixtures are made by running the original consistency-models code on
weights that both sides can regenerate from a seed and the list of parameter
names and shapes, so no weight file needs to be committed.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Iterable, Mapping, Sequence, Tuple

import torch


def seeded_state_dict(
    named_shapes: Iterable[Tuple[str, Sequence[int]]] | Mapping[str, Sequence[int]],
    seed: int = 0,
) -> OrderedDict[str, torch.Tensor]:
    """Build a float32 state dict of random values, reproducible from ``seed``.

    One ``torch.Generator`` seeded with ``seed`` draws ``randn`` for every
    entry in the given order. Tensors with two or more dims are scaled by
    ``1/sqrt(fan_in)`` (fan_in = product of all dims but the first) so that
    activations stay O(1) through a deep UNet; 1-D tensors (biases, norm
    weights) by 0.1. The order and this rule are the whole contract: layers
    the original initialises to zero get random values too, so every weight
    shows up in the outputs that parity tests compare.

    Args:
        named_shapes: ``(name, shape)`` pairs or a mapping, in state-dict order.
        seed: seed of the generator.

    Returns:
        OrderedDict name -> float32 CPU tensor.
    """
    items = named_shapes.items() if isinstance(named_shapes, Mapping) else named_shapes
    gen = torch.Generator().manual_seed(seed)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, shape in items:
        shape = tuple(int(s) for s in shape)
        value = torch.randn(shape, generator=gen, dtype=torch.float32)
        if len(shape) >= 2:
            value /= math.sqrt(max(1, math.prod(shape[1:])))
        else:
            value *= 0.1
        out[name] = value
    return out
