"""Checkpoints: raw released files, project files, URLs and plain failures."""
import glob
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import save_checkpoint

from mmagic_cm.files.checkpoint import CheckpointError, cached_path_for_url
from mmagic_cm.files.zoo import configs_fitting
from mmagic_cm.models.weights import check_unet_state_dict
from mmagic_cm.registry import MODELS
from mmagic_cm.testing import ROOT, TINY_CONFIGS, arch_keys

URL = 'http://127.0.0.1:9/consistency/cd_tiny.pt'  # nothing listens on port 9


def build(config, **model_overrides):
    cfg = Config.fromfile(osp.join(TINY_CONFIGS, config))
    cfg.model.update(model_overrides)
    return MODELS.build(cfg.model)


@pytest.fixture
def raw_file(tmp_path):
    """A bare UNet state dict, the released checkpoints' format."""
    torch.manual_seed(0)
    model = build('cm_tiny_cond.py')
    path = tmp_path / 'cd_tiny.pt'
    torch.save(model.unet.state_dict(), path)
    return str(path), model.unet.state_dict()


def same_weights(model, state):
    ours = model.unet.state_dict()
    return list(ours) == list(state) and all(torch.equal(ours[k], state[k]) for k in state)


def test_model_path_is_read_lazily_and_strictly(raw_file):
    path, state = raw_file
    model = build('cm_tiny_cond.py', model_path=path)
    assert model.weights_pending  # built on the meta device: nothing allocated
    model.to('cpu').double()  # remembered, not read yet
    assert model.weights_pending
    model.materialize()
    assert not model.weights_pending and model.unet.out[2].weight.dtype == torch.float64
    model.float()
    assert same_weights(model, state)


def test_moves_before_mmengine_load_are_replayed(raw_file):
    path, state = raw_file
    model = build('cm_tiny_cond.py', model_path='/nonexistent/never-read.pt')
    model.to('cpu').half()
    load_checkpoint(model, path, map_location='cpu')
    assert model.unet.out[2].weight.dtype == torch.float16


def test_raw_file_through_mmengine_load_checkpoint(raw_file):
    path, state = raw_file
    model = build('cm_tiny_cond.py', model_path='/nonexistent/never-read.pt')
    load_checkpoint(model, path, map_location='cpu')  # mmengine's default strict=False
    assert same_weights(model, state)
    model.materialize()  # model_path is not touched once weights are in


def test_raw_file_through_torch_load_state_dict(raw_file):
    path, state = raw_file
    model = build('cm_tiny_cond.py')
    model.load_state_dict(torch.load(path, weights_only=True))
    assert same_weights(model, state)


@pytest.mark.parametrize('prefix', ['unet.', 'module.unet.', 'model.'])
def test_project_and_wrapped_checkpoints(raw_file, tmp_path, prefix):
    path, state = raw_file
    out = str(tmp_path / 'project.pth')
    save_checkpoint({'state_dict': {prefix + k: v for k, v in state.items()}, 'meta': {}}, out)
    model = build('cm_tiny_cond.py', model_path=out)
    model.materialize()
    assert same_weights(model, state)


def test_mmengine_saved_model_checkpoint_round_trip(raw_file, tmp_path):
    path, state = raw_file
    model = build('cm_tiny_cond.py', model_path=path)
    model.materialize()
    out = str(tmp_path / 'iter_1.pth')
    save_checkpoint({'state_dict': model.state_dict()}, out)
    again = build('cm_tiny_cond.py')
    load_checkpoint(again, out, strict=True)
    assert same_weights(again, state)


def test_offline_url_names_url_and_local_flag(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    model = build('cm_tiny_cond.py', model_path=URL)
    with pytest.raises(CheckpointError) as err:
        model.materialize()
    msg = str(err.value)
    assert URL in msg and 'model_path=PATH' in msg and '\n' not in msg
    assert model.weights_pending  # nothing half-loaded
    assert not os.listdir(tmp_path / 'torch' / 'hub' / 'checkpoints')  # nothing half-written


def test_url_served_from_hub_cache(raw_file, tmp_path, monkeypatch):
    path, state = raw_file
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    cached = cached_path_for_url(URL)
    os.makedirs(osp.dirname(cached))
    os.replace(path, cached)
    model = build('cm_tiny_cond.py', model_path=URL)
    model.materialize()
    assert same_weights(model, state)


def test_truncated_file_says_so_and_changes_nothing(raw_file, tmp_path):
    path, _ = raw_file
    bad = tmp_path / 'truncated.pt'
    bad.write_bytes(open(path, 'rb').read()[:5000])
    model = build('cm_tiny_cond.py')
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        model.load_unet_weights(str(bad))
    assert same_weights(model, before)


def test_pickled_objects_are_refused(tmp_path):
    bad = tmp_path / 'pickle.pt'
    torch.save({'state_dict': {'x': torch.zeros(1)}, 'obj': Config()}, bad)
    model = build('cm_tiny_cond.py', model_path=str(bad))
    with pytest.raises(CheckpointError, match='weights_only'):
        model.materialize()


def test_other_architecture_names_the_configs_it_fits(tmp_path):
    torch.manual_seed(0)
    other = build('cm_tiny_uncond.py').unet.state_dict()
    model = build('cm_tiny_cond.py')
    with pytest.raises(CheckpointError) as err:
        check_unet_state_dict(model.unet, other, 'uncond.pt', config_root=TINY_CONFIGS)
    msg = str(err.value)
    assert 'missing keys (e.g. label_emb.weight' in msg
    assert 'in file vs' in msg  # first shape mismatches
    assert 'cm_tiny_uncond.py' in msg and 'cm_tiny_cond.py' not in msg
    # end to end, through mmengine's non-strict loader: still refused
    path = tmp_path / 'uncond.pt'
    torch.save(other, path)
    with pytest.raises(CheckpointError, match='does not fit'):
        load_checkpoint(model, str(path))


@pytest.mark.parametrize('arch,marker', [('imagenet64', 'imagenet1k'), ('lsun256', 'LSUN')])
def test_released_architectures_fit_their_configs(arch, marker):
    shapes = {k: tuple(s) for k, s in arch_keys()[arch]['state_dict']}
    fits = {osp.basename(p) for p in configs_fitting(shapes)}
    configs = {osp.basename(p) for p in glob.glob(
        osp.join(ROOT, 'configs', 'consistency_models', '*.py'))}
    assert fits == {c for c in configs if marker in c}
    # ImageNet: 6 released + 3 recipes (ECT, sCT, sCD) + the ln σ / 4 EDM teacher that
    # sCD distils from; LSUN: 12 sampling configs and the 3 Bedroom editing configs
    assert len(fits) == (10 if arch == 'imagenet64' else 15)


def test_released_model_builds_without_allocating():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/consistency_models/'
                                   'consistency_models_8xb32-LSUN-bedroom-onestep-256x256.py'))
    model = MODELS.build(cfg.model)
    assert model.weights_pending
    assert sum(p.numel() for p in model.unet.parameters()) == 526_304_771
