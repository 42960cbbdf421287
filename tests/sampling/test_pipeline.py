"""The sampling pipeline (``sampling/pipeline.py``): settings -> denoiser ->
sampler -> uint8, run by hand, equals ``ConsistencyModel.sample``."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmagic_cm.denoiser.fast import InferenceUNets
from mmagic_cm.registry import MODELS
from mmagic_cm.sampling import pipeline
from mmagic_cm.sampling.labels import batch_labels, labels_for
from mmagic_cm.testing import TINY_CONFIGS


@pytest.fixture(scope='module')
def model():
    cfg = Config.fromfile(osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.materialize()  # random weights
    return model.eval()


def test_the_pipeline_by_hand_is_what_the_model_samples(model):
    s = model.settings(batch_size=2, sampler='multistep', ts='0,5,9', steps=10)
    labels = labels_for(None, model.num_classes, 5, s.seed)  # settings
    denoiser = pipeline.denoiser_for(model.unet, model.precond, s, model.device,
                                     InferenceUNets())  # denoiser

    def draw(bs, gen, y):  # sampler
        return pipeline.draw_batch(denoiser, model.precond, s, (bs, *model.image_shape), gen, y)

    images, got = pipeline.draw_images(draw, 5, labels, s, start=1)  # uint8
    assert images.dtype == np.uint8 and images.shape == (4, 16, 16, 3)
    ref, ref_labels = model.sample(5, batch_size=2, start=1, sampler='multistep', ts='0,5,9',
                                   steps=10)
    assert np.array_equal(images, ref) and np.array_equal(got, ref_labels)


def test_run_and_label_checks():
    assert pipeline.check_run(4) == 4 and pipeline.check_run(4, 1, 3) == 3
    with pytest.raises(ValueError, match='num_samples must be >= 1'):
        pipeline.check_run(0)
    with pytest.raises(ValueError, match=r'samples \[3, 2\) are not a non-empty part'):
        pipeline.check_run(4, 3, 2)
    with pytest.raises(ValueError, match='labels are needed for a class-conditional model'):
        pipeline.check_labels(None, 10)
    with pytest.raises(ValueError, match='not allowed for an unconditional one'):
        pipeline.check_labels(torch.zeros(2, dtype=torch.long), None)


def test_labels_given_seeded_or_from_the_global_rng():
    assert labels_for('1,2', 10, 2) == [1, 2] and labels_for(7, 10, 3) == [7, 7, 7]
    assert labels_for(None, None, 3) is None
    assert labels_for(None, 10, 6, seed=1) == labels_for(None, 10, 6, seed=1)
    torch.manual_seed(5)
    a = batch_labels(None, 10, 4)
    torch.manual_seed(5)
    assert torch.equal(a, torch.randint(0, 10, (4, ))) and a.dtype == torch.long


def test_nan_images_are_refused_naming_the_weights(model):
    s = model.settings(batch_size=2)

    def draw(bs, gen, y):
        return torch.full((bs, 3, 16, 16), float('nan'))
    with pytest.raises(ValueError, match='NaN or infinite values .*weights w.pt'):
        pipeline.draw_images(draw, 2, [1, 2], s, source='w.pt')


def test_eval_mode_restores_the_modes():
    a, b = torch.nn.Dropout().train(), torch.nn.Dropout().eval()
    with pipeline.eval_mode(a, b, a):
        assert not a.training and not b.training
    assert a.training and not b.training
