"""Noise generators: bit-identical to the original for one batch, and
batch-size independent across batches (where the original is not)."""
import numpy as np
import pytest
import torch

from mmagic_cm.sampling import get_generator
from mmagic_cm.testing import load_ref


@pytest.mark.parametrize('name', ['dummy', 'determ', 'determ-indiv'])
def test_draw_sequence_matches_original(name):
    ref, _ = load_ref('generators.npz')
    if name == 'dummy':
        torch.manual_seed(5)
    gen = get_generator(name, 4, 5)
    draws = {
        'randn_0': gen.randn(2, 3, 4, 4),
        'randn_1': gen.randn(2, 3, 4, 4),
        'randint': gen.randint(0, 10, (2, )),
        'randn_like': gen.randn_like(torch.zeros(2, 3, 4, 4)),
    }
    for key, value in draws.items():
        np.testing.assert_array_equal(value.numpy(), ref[f'{name}/{key}'], err_msg=key)


@pytest.mark.parametrize('name', ['determ', 'determ-indiv'])
def test_second_batch_matches_original(name):
    ref, _ = load_ref('generators.npz')
    gen = get_generator(name, 4, 5)
    gen.set_done_samples(2)
    np.testing.assert_array_equal(gen.randn(2, 3, 4, 4).numpy(), ref[f'{name}/done2_randn'])


def test_indiv_seeds():
    ref, _ = load_ref('generators.npz')
    gen = get_generator('determ-indiv', 3, 42)
    np.testing.assert_array_equal(gen.randn(3, 3, 2, 2).numpy(),
                                  ref['determ-indiv_n3_s42/randn'])


@pytest.mark.parametrize('name', ['determ', 'determ-indiv'])
def test_noise_per_sample_independent_of_batch_size(name):
    """Two draws per batch (x_T and one step's noise), positioned per batch."""

    def run(batch):
        gen = get_generator(name, 6, 3)
        firsts, seconds = [], []
        for start in range(0, 6, batch):
            gen.set_done_samples(start)
            firsts.append(gen.randn(batch, 2, 2, 2))
            seconds.append(gen.randn(batch, 2, 2, 2))
        return torch.cat(firsts)[:6], torch.cat(seconds)[:6]

    a1, a2 = run(6)
    for batch in (1, 2, 4):  # 4 leaves a partial last batch
        b1, b2 = run(batch)
        assert torch.equal(a1, b1) and torch.equal(a2, b2)


def test_unknown_generator():
    with pytest.raises(ValueError, match="unknown generator 'determ2'"):
        get_generator('determ2', 4, 0)
    with pytest.raises(ValueError, match='num_samples'):
        get_generator('determ', 0, 0)
