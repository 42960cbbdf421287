"""``tools/sample.py`` end to end: outputs, parity on a tiny model, bad input."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mmagic_cm.testing import ROOT, assert_images_close, load_ref, reference_weights, run_tool


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    """The fixtures' seeded tiny_cond weights as a raw released-format file."""
    path = tmp_path_factory.mktemp('ckpt') / 'tiny_cond.pt'
    torch.save(reference_weights('tiny_cond', 0), path)
    return str(path)


@pytest.mark.slow
def test_cli_subprocess_writes_npz_grid_and_progress(tiny_cond_config, tiny_ckpt, tmp_path):
    out, grid = tmp_path / 'samples.npz', tmp_path / 'grid.png'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'sample.py'), tiny_cond_config,
         '--checkpoint', tiny_ckpt, '--num-samples', '5', '--batch-size', '2',
         '--labels', 'king penguin', '--out', str(out), '--grid', str(grid)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'sampling' in proc.stderr and '3/3' in proc.stderr  # tqdm bar over batches
    assert 'wrote 5 images' in proc.stdout
    with np.load(out) as data:
        assert data['arr_0'].shape == (5, 16, 16, 3) and data['arr_0'].dtype == np.uint8
        assert data['arr_1'].tolist() == [145] * 5
    assert Image.open(grid).size == (3 * 64, 2 * 64)  # 16-pixel tiles shown 4x (--grid-native: 1x)
    assert sorted(os.listdir(tmp_path)) == ['grid.png', 'samples.npz']  # no temp files left


@pytest.mark.parametrize('case,args', [
    ('tiny_cond/onestep/determ', []),
    ('tiny_cond/multistep_0-22-39_steps40/determ',
     ['--sampler', 'multistep', '--ts', '0,22,39', '--steps', '40']),
    ('tiny_cond/multistep_0-5-9_steps10/determ-indiv',
     ['--sampler', 'multistep', '--ts', '0,5,9', '--steps', '10', '--generator',
      'determ-indiv']),
])
def test_cli_matches_original(case, args, tiny_cond_config, tiny_ckpt, tmp_path):
    ref, meta = load_ref('samplers.npz')
    labels = ','.join(map(str, meta['cases'][case]['labels']))
    out = str(tmp_path / 's.npz')
    assert run_tool('sample', [tiny_cond_config, '--checkpoint', tiny_ckpt, '--out', out,
                             '--num-samples', '2', '--seed', '42', '--labels', labels,
                             '--no-progress', *args]) == 0
    with np.load(out) as data:
        assert_images_close(data['arr_0'], ref[f'{case}/img'])


@pytest.mark.parametrize('generator', ['determ', 'determ-indiv'])
def test_batch_size_does_not_change_images(generator, tiny_uncond_config, tmp_path):
    """Unlike the original script, later batches get their own noise."""
    arrays = []
    for batch in (5, 2, 1):
        out = str(tmp_path / f'b{batch}.npz')
        assert run_tool('sample', [tiny_uncond_config, '--num-samples', '5', '--batch-size',
                                 str(batch), '--generator', generator, '--sampler',
                                 'multistep', '--ts', '0,5,9', '--steps', '10', '--out', out,
                                 '--no-progress']) == 0
        with np.load(out) as data:
            arrays.append(data['arr_0'])
    assert len({a.tobytes() for a in arrays}) == 1
    assert len({a.tobytes() for a in arrays[0]}) == 5  # five different images


BAD = [
    (['--labels', '1000'], 'class label 1000 is out of range [0, 999]'),
    (['--labels', ''], "labels '' is empty; give class labels (e.g. 3 or 1,145), or omit "
     '--labels'),
    (['--labels', ' , '], "labels ' , ' is empty"),
    (['--labels', 'king pengin'], "did you mean 'king penguin'"),
    (['--sampler', 'multistep', '--ts', '0,30,22', '--steps', '40'], 'strictly increasing'),
    (['--sampler', 'multistep', '--ts', '0,22,40', '--steps', '40'], '[0, 39]'),
    (['--sampler', 'multistep', '--steps', '40'], 'multistep needs ts'),
    (['--batch-size', '0'], 'batch size must be >= 1'),
    (['--num-samples', '0'], '--num-samples must be >= 1'),
    (['--sampler', 'lcm'], "unknown sampler 'lcm'"),
    (['--generator', 'random'], "unknown generator 'random'"),
    (['--dtype', 'fp16', '--device', 'cpu'], 'fp16 needs a CUDA device'),
    (['--dtype', 'int8'], "unknown dtype 'int8'"),
    (['--labels', '1,2,3', '--num-samples', '2'], '3 labels for 2 samples'),
    (['--checkpoint', '/nonexistent/cd.pt'], 'checkpoint file not found: /nonexistent/cd.pt'),
]
if not torch.cuda.is_available():
    BAD.append((['--device', 'cuda'], 'CUDA is not available'))


@pytest.mark.parametrize('args,message', BAD)
def test_bad_input_one_line_and_no_output(args, message, tiny_cond_config, tmp_path, capsys):
    out = tmp_path / 'never.npz'
    rc = run_tool('sample', [tiny_cond_config, '--out', str(out), '--no-progress', *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and err.startswith('error: ') and '\n' not in err
    assert not out.exists()


def test_blank_labels_are_an_error_and_none_means_random():
    from mmagic_cm.sampling.labels import parse_labels
    for blank in ('', '  ', ',', ' ,, '):
        with pytest.raises(ValueError, match='is empty.*omit --labels'):
            parse_labels(blank, 10)
        with pytest.raises(ValueError, match='is empty'):  # also for unconditional models
            parse_labels(blank, None)
    assert parse_labels(None, 10) is None and parse_labels(' 3, 4 ', 10) == [3, 4]


def test_unconditional_model_rejects_labels(tiny_uncond_config, tmp_path, capsys):
    out = tmp_path / 'never.npz'
    assert run_tool('sample', [tiny_uncond_config, '--labels', '3', '--out', str(out)]) == 2
    assert 'unconditional' in capsys.readouterr().err
    assert not out.exists()


def test_missing_config(tmp_path, capsys):
    assert run_tool('sample', [str(tmp_path / 'nope.py')]) == 2
    assert 'config file not found' in capsys.readouterr().err
