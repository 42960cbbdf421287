"""Noise generators with the original code's semantics.

Three kinds, by name:

- ``dummy``: the global torch RNG (``torch.randn``); reproducible only
  through ``torch.manual_seed``.
- ``determ``: one generator per device. Every draw makes the noise of *all*
  ``num_samples`` samples and keeps the rows of the current batch, so each
  sample's noise does not depend on the batch size. Costs
  ``num_samples``-sized draws: meant for small images (ImageNet-64).
- ``determ-indiv``: one generator per sample, seeded ``i + num_samples *
  seed``; each draw takes one row from each batch member's own generator.

Both deterministic kinds select the batch through ``set_done_samples(n)``:
the rows ``n, n+1, ...`` (strided by the world size in distributed runs).
The original ``image_sample.py`` never calls it between batches, so there
the second batch re-uses rows ``0..B-1``; :func:`mmagic_cm.sampling.batching.run_batches`
and ``tools/sample.py`` call it before every batch.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

GENERATORS = ('dummy', 'determ', 'determ-indiv')


def _dist_rank_world() -> tuple:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class DummyGenerator:
    """Draws from the global torch RNG."""

    name = 'dummy'

    def randn(self, *size, dtype=torch.float32, device='cpu') -> torch.Tensor:
        return torch.randn(*size, dtype=dtype, device=device)

    def randint(self, low, high, size, dtype=torch.long, device='cpu') -> torch.Tensor:
        return torch.randint(low, high, size, dtype=dtype, device=device)

    def randn_like(self, tensor: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(tensor)

    def set_done_samples(self, done_samples: int) -> None:
        """No-op: the global RNG has no notion of samples."""


class _IndexedGenerator:
    """Shared bookkeeping: which of the ``num_samples`` rows a batch takes."""

    def __init__(self, num_samples: int, seed: int = 0,
                 rank: Optional[int] = None, world_size: Optional[int] = None):
        if num_samples < 1:
            raise ValueError(f'num_samples must be >= 1, got {num_samples}')
        dist_rank, dist_world = _dist_rank_world()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        self.num_samples = num_samples
        self.seed = seed
        self.done_samples = 0
        self._generators = {}

    def indices(self, batch_size: int) -> torch.Tensor:
        """Rows of the current batch, clamped to the last sample."""
        idx = torch.arange(self.done_samples + self.rank,
                           self.done_samples + self.world_size * int(batch_size),
                           self.world_size)
        return idx.clamp(0, self.num_samples - 1)

    def randn_like(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.randn(*tensor.shape, dtype=tensor.dtype, device=tensor.device)

    def _device_key(self, device) -> str:
        device = torch.device(device)
        return 'cpu' if device.type == 'cpu' else str(device)


class DeterministicGenerator(_IndexedGenerator):
    """One generator per device; draws all samples' noise, keeps the batch's."""

    name = 'determ'

    def _generator(self, device) -> torch.Generator:
        key = self._device_key(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(key).manual_seed(self.seed)
        return self._generators[key]

    def randn(self, *size, dtype=torch.float32, device='cpu') -> torch.Tensor:
        full = torch.randn(self.num_samples, *size[1:], generator=self._generator(device),
                           dtype=dtype, device=device)
        return full[self.indices(size[0]).to(full.device)]

    def randint(self, low, high, size, dtype=torch.long, device='cpu') -> torch.Tensor:
        full = torch.randint(low, high, (self.num_samples, *size[1:]),
                             generator=self._generator(device), dtype=dtype, device=device)
        return full[self.indices(size[0]).to(full.device)]

    def set_done_samples(self, done_samples: int) -> None:
        """Move to the batch that starts at ``done_samples``; reseeds."""
        self.done_samples = done_samples
        for gen in self._generators.values():
            gen.manual_seed(self.seed)


class DeterministicIndividualGenerator(_IndexedGenerator):
    """One generator per sample, seeded ``i + num_samples * seed``."""

    name = 'determ-indiv'

    def _draw(self, size: Sequence[int], device, draw) -> torch.Tensor:
        """One row per batch member from its own generator.

        Padding rows of a last, partial batch (indices clamped to the last
        sample) copy that sample's row instead of drawing again: drawing
        again, as the original does, would advance the last sample's
        generator and change its noise at the next step.
        """
        # generators are made on first use: the same seeds as making all
        # num_samples up front, without 50k generators for one batch
        device_key = self._device_key(device)
        gens = self._generators.setdefault(device_key, {})
        rows = {}
        for i in self.indices(size[0]).tolist():
            if i not in rows:
                if i not in gens:
                    gens[i] = torch.Generator(device_key).manual_seed(
                        i + self.num_samples * self.seed)
                rows[i] = draw(gens[i])
        return torch.cat([rows[i] for i in self.indices(size[0]).tolist()])

    def randn(self, *size, dtype=torch.float32, device='cpu') -> torch.Tensor:
        return self._draw(size, device, lambda g: torch.randn(
            1, *size[1:], generator=g, dtype=dtype, device=device))

    def randint(self, low, high, size, dtype=torch.long, device='cpu') -> torch.Tensor:
        return self._draw(size, device, lambda g: torch.randint(
            low, high, (1, *size[1:]), generator=g, dtype=dtype, device=device))

    def set_done_samples(self, done_samples: int) -> None:
        """Move to the batch that starts at ``done_samples`` (no reseed)."""
        self.done_samples = done_samples


def get_generator(name: str, num_samples: int = 0, seed: int = 0, **kwargs):
    """Build a noise generator by name.

    Args:
        name: 'dummy', 'determ' or 'determ-indiv'.
        num_samples: total samples the run will draw (deterministic kinds).
        seed: seed of the deterministic kinds.
        **kwargs: ``rank``/``world_size`` to override torch.distributed's.
    """
    if name == 'dummy':
        return DummyGenerator()
    if name == 'determ':
        return DeterministicGenerator(num_samples, seed, **kwargs)
    if name == 'determ-indiv':
        return DeterministicIndividualGenerator(num_samples, seed, **kwargs)
    raise ValueError(f'unknown generator {name!r}; choose one of {", ".join(GENERATORS)}')
