"""The training state (``training/state.py``): built through the registry, the
objective found there by ``training_mode``, the checkpoint keys of earlier releases."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmagic_cm.models import ConsistencyModel
from mmagic_cm.registry import MODELS
from mmagic_cm.testing import TINY_CONFIGS
from mmagic_cm.training import Objective, TrainingState
from mmagic_cm.training.state import objective_type, step_seed, training_modes

UNET = dict(image_size=8, in_channels=1, out_channels=1, model_channels=32, num_res_blocks=1,
            attention_resolutions='', channel_mult='1', dropout=0.0)


def test_every_training_mode_is_an_objective_declaring_it():
    assert training_modes() == {
        'edm': 'EDMObjective', 'consistency_training': 'ConsistencyTraining',
        'consistency_distillation': 'ConsistencyDistillation',
        'ect': 'EasyConsistencyTuning', 'sct': 'ContinuousConsistencyTraining',
        'scd': 'ContinuousConsistencyDistillation'}
    assert objective_type('edm', dict(type='ConsistencyTraining')) == 'ConsistencyTraining'
    with pytest.raises(ValueError, match="training_mode 'nope' cannot train; choose one of "
                       'edm, .*scd'):
        ConsistencyModel(unet=UNET, training_mode='nope', train_cfg=dict(seed=1),
                         data_preprocessor=nn.Identity())


@pytest.fixture
def toy_objective():
    @MODELS.register_module()
    class ToyObjective(Objective):
        training_mode = 'toy'

        def __init__(self, precond, scale: float = 1.0, **base):
            super().__init__(precond, **base)
            self.scale = scale

        def forward(self, online, x_start, labels, step):
            sigma = torch.full((len(x_start), ), 1.0)
            loss = (self.d_of(online, labels)(x_start, sigma) - x_start).pow(2).mean((1, 2, 3))
            return dict(loss=loss * self.scale)
    try:
        yield ToyObjective
    finally:
        MODELS.module_dict.pop('ToyObjective')
        twin = MODELS.twin()
        if twin is not None:
            twin.module_dict.pop('ToyObjective', None)


def test_a_registered_objective_is_found_by_its_training_mode(toy_objective):
    """A new recipe is one registered class: the model, which never names
    objectives, trains with it by ``training_mode``."""
    torch.manual_seed(0)
    model = ConsistencyModel(unet=UNET, training_mode='toy',
                             train_cfg=dict(scale=2.0, ema_rates=(0.5, )),
                             data_preprocessor=nn.Identity())
    assert isinstance(model.training_state, TrainingState)
    assert type(model.objective) is toy_objective and model.objective.scale == 2.0
    model.init_weights()
    out = model.training_loss(torch.rand(2, 1, 8, 8) * 2 - 1, None)
    assert torch.isfinite(out['loss'])
    model.after_optimizer_step()
    assert int(model.train_step_count) == 1
    assert set(k.split('.')[0] for k in model.state_dict()) == {
        'unet', 'train_step_count', 'ema_unets'}
    with pytest.raises(ValueError, match=r"train_cfg\.scal: not a setting of ToyObjective "
                       r".*did you mean 'scale'"):
        ConsistencyModel(unet=UNET, training_mode='toy', train_cfg=dict(scal=2.0),
                         data_preprocessor=nn.Identity())


@pytest.mark.parametrize('name,top', [
    ('cm_tiny_train_ct.py', {'unet', 'train_step_count', 'target_unet', 'ema_unets'}),
    ('cm_tiny_train_sct.py', {'unet', 'train_step_count', 'weight_net', 'ema_unets'}),
])
def test_the_state_keeps_the_checkpoint_keys_of_earlier_releases(name, top):
    """The state's tensors are the model's own attributes: ``train_step_count``,
    ``ema_unets.*`` and the objective's modules at the top level, nothing
    under ``training_state.`` or ``objective.``."""
    cfg = Config.fromfile(osp.join(TINY_CONFIGS, name)).model
    cfg.train_cfg.init_from = None
    if name == 'cm_tiny_train_ct.py':  # the original schedule keeps a target network
        cfg.train_cfg.schedule = dict(type='original')
    model = MODELS.build(dict(cfg, data_preprocessor=nn.Identity()))
    model.ensure_training_copies()
    keys = set(model.state_dict())
    assert {k.split('.')[0] for k in keys} == top
    assert model.training_copy_prefixes()[0] == 'ema_unets.'
    fresh = MODELS.build(dict(cfg, data_preprocessor=nn.Identity()))
    fresh.load_state_dict(model.state_dict())  # makes room for the copies, strictly
    assert set(fresh.state_dict()) == keys


def test_step_seeds_depend_on_seed_step_and_rank_only():
    seeds = {step_seed(s, k, r) for s in (0, 1) for k in (0, 1) for r in (0, 1)}
    assert len(seeds) == 8 and all(0 <= s < 2**62 for s in seeds)
    assert step_seed(3, 5, 1) == step_seed(3, 5, 1)


def test_a_sampling_model_has_no_training_state():
    cfg = Config.fromfile(osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'))
    model = MODELS.build(cfg.model)
    assert model.training_state is None and not model.trainable
    assert model.training_copy_prefixes() == ()
    model.ensure_training_copies()
    model.after_optimizer_step()  # nothing to do
    assert set(k.split('.')[0] for k in model.state_dict()) == {'unet'}
    with pytest.raises(ValueError, match='cannot train: its config has no train_cfg'):
        model.training_loss(torch.zeros(1, 3, 16, 16), torch.zeros(1, dtype=torch.long))


def test_an_exported_model_path_cannot_train():
    with pytest.raises(ValueError, match='model_path d.onnx is an exported graph: it samples only'):
        ConsistencyModel(unet=UNET, model_path='d.onnx', training_mode='edm',
                         train_cfg=dict(seed=0), data_preprocessor=nn.Identity())
