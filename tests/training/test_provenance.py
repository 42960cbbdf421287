"""Evidence trail: training checkpoints record their config and commit, exported
weights carry config, iteration, EMA rate and commit, and the learning-curve
tool reads the run back."""
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmagic_cm.files.provenance import git_commit, read_provenance
from mmagic_cm.registry import MODELS
from mmagic_cm.testing import ROOT, TINY_CONFIGS, run_tool

CT = osp.join(TINY_CONFIGS, 'cm_tiny_train_ct.py')


@pytest.mark.slow
def test_training_to_exported_weights_keeps_the_provenance(tmp_path):
    assert run_tool('train', [CT, '--work-dir', str(tmp_path)]) == 0
    ckpt = torch.load(tmp_path / 'iter_6.pth', map_location='cpu', weights_only=True)
    commit = git_commit(ROOT)
    assert ckpt['meta']['commit'] == commit
    assert ckpt['meta']['config_name'] == 'cm_tiny_train_ct.py'

    out = tmp_path / 'w.pt'
    assert run_tool('export_weights', [str(tmp_path / 'iter_6.pth'), str(out),
                                       '--ema', '0.999', '--fp16']) == 0
    found = read_provenance(str(out))
    assert found == dict(config='cm_tiny_train_ct.py', experiment=found['experiment'],
                         iteration=6, ema=0.999, commit=commit)
    assert found['experiment'].startswith('cm_tiny_train_ct_')
    # still the released format: a strict load into the UNet
    unet = MODELS.build(dict(Config.fromfile(CT).model.unet))
    unet.load_state_dict(torch.load(out, map_location='cpu', weights_only=True))
    # what the checkpoint does not say can be given
    assert run_tool('export_weights', [str(tmp_path / 'iter_6.pth'), str(out), '--force',
                                       '--commit', 'abc123']) == 0
    assert read_provenance(str(out))['commit'] == 'abc123'
    assert read_provenance(str(out))['ema'] is None  # the online weights

    # the curve tool: every checkpoint evaluated, the log kept, a PNG drawn
    log_dir = tmp_path / 'logs' / 'ct'
    assert run_tool('digits_curves', ['evaluate', CT, str(tmp_path), '--log-dir', str(log_dir),
                                      '--num-samples', '20']) == 0
    evals = json.loads((log_dir / 'evals.json').read_text())['evals']
    assert [e['iter'] for e in evals] == [3, 6]
    assert all(e['onestep']['frechet'] > 0 and e['twostep']['frechet'] > 0 for e in evals)
    assert (log_dir / 'scalars.json').read_text().count('"loss"') == 6
    # a diffusion model's curve: Heun (here over 3 levels) instead of 1 and 2 steps
    heun_dir = tmp_path / 'logs' / 'heun'
    assert run_tool('digits_curves', ['evaluate', CT, str(tmp_path), '--log-dir', str(heun_dir),
                                      '--num-samples', '20', '--heun', '3', '--every', '2']) == 0
    evals = json.loads((heun_dir / 'evals.json').read_text())['evals']
    assert [sorted(e) for e in evals] == [['heun', 'iter']] * 2 and evals[0]['iter'] == 3
    png = tmp_path / 'curves.png'
    assert run_tool('digits_curves', ['plot', str(log_dir), str(heun_dir), '--out', str(png),
                                      '--reference', 'CD, 2 steps=73.8']) == 0
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_shipped_digits_weights_carry_their_provenance():
    """Every shipped digits model names the config, iteration, EMA rate and
    commit that made it (the classifier is not a generative model)."""
    folder = osp.join(ROOT, 'mmagic_cm', 'weights', 'digits')
    names = sorted(f[:-len('_digits16_ema.pt')] for f in os.listdir(folder)
                   if f.endswith('_digits16_ema.pt'))
    assert {'edm', 'edm-lowfreq', 'cd', 'ct', 'ect', 'sct', 'scd'} <= set(names)
    for name in names:
        found = read_provenance(osp.join(folder, f'{name}_digits16_ema.pt'))
        assert found is not None, name
        assert found['config'].startswith(f'consistency_models_{name}_digits'), found
        assert osp.isfile(osp.join(ROOT, 'configs', 'consistency_models', found['config']))
        assert found['iteration'] > 0 and found['ema'] in (0.995, 0.999), found
        assert found['commit'], found


def test_learning_curve_reads_a_resumed_run_whole(tmp_path):
    """A resumed run logs into a new timestamped folder: the curve keeps both
    parts, in step order, the later run winning where they overlap."""
    from mmagic_cm.evaluation.curves import read_scalars
    for stamp, steps in (('20260101_000000', (1, 2, 3)), ('20260101_010000', (3, 4))):
        folder = tmp_path / stamp / 'vis_data'
        folder.mkdir(parents=True)
        rows = [dict(step=s, loss=float(s), run=stamp) for s in steps]
        rows.append(dict(step=4, frechet=1.0))  # not a training row
        (folder / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    rows = read_scalars(str(tmp_path))
    assert [r['step'] for r in rows] == [1, 2, 3, 4]
    assert [r['run'] for r in rows] == ['20260101_000000'] * 2 + ['20260101_010000'] * 2
