"""tools/benchmark.py runs end to end on a tiny config (structure, not speed)."""
import json
import os
import os.path as osp

import pytest

from mmagic_cm.testing import TINY_CONFIGS, run_tool

CM_REPO = os.environ.get('CM_REPO', '/tmp/ref/cm')


def run_benchmark(tmp_path, *extra):
    out = tmp_path / 'bench.json'
    argv = [osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'), '--batch-sizes', '1,2', '--reps', '1',
            '--warmup', '1', '--matmul-size', '64', '--json', str(out), *extra]
    assert run_tool('benchmark', argv) == 0
    return json.loads(out.read_text())


def test_benchmark_table_and_json(tmp_path, capsys):
    compare = ['diffusers']
    if osp.isdir(osp.join(CM_REPO, 'cm')):
        compare.append('original')
    report = run_benchmark(tmp_path, '--dtypes', 'fp32,bf16', '--channels-last', 'both',
                           '--quality', '--compare', ','.join(compare), '--cm-repo', CM_REPO)
    rows = report['rows']
    ours = [r for r in rows if r['impl'] == 'mmagic_cm']
    assert len(ours) == 2 * 2 * 2  # batch x dtype x channels_last
    assert {r['impl'] for r in rows} == {'mmagic_cm', *compare}
    for r in rows:
        assert r['images_per_s'] > 0 and r['s_per_batch'] > 0 and r['peak_mem_bytes'] > 0
        assert len(r['s_per_batch_all']) == 1
        assert r['gflops'] > 0 and r['pct_matmul'] > 0
        assert r['psnr_db'] >= 35  # every implementation draws the same images
        if r['impl'] == 'original':
            assert r['dtype'] == 'fp32'
    assert all(r['x_diffusers_same_dtype'] is not None for r in ours)
    if 'original' in compare:
        assert all(r['x_original_fp32'] is not None for r in ours)
    assert report['unet_gflop_per_image'] > 0 and report['nfe'] == 1
    assert set(report['matmul_gflops']) == {'fp32', 'bf16'}
    text = capsys.readouterr().out
    assert '| impl | dtype | batch | options | images/s |' in text
    assert 'GFLOP per image' in text and 'machine:' in text


def test_benchmark_multistep(tmp_path):
    report = run_benchmark(tmp_path, '--dtypes', 'fp32', '--sampler', 'multistep',
                           '--ts', '0,22,39', '--steps', '40', '--compare', 'diffusers')
    assert report['nfe'] == 2 and report['sampler'] == 'multistep'
    assert {r['impl'] for r in report['rows']} == {'mmagic_cm', 'diffusers'}


@pytest.mark.slow
def test_benchmark_first_image(tmp_path, capsys):
    report = run_benchmark(tmp_path, '--dtypes', 'fp32', '--first-image', '--num-samples', '3')
    first = report['first_image']
    assert first['images'] == 3 and first['batch'] == 1  # three batches of the first size
    assert first['checkpoint'] == 'a temporary file of seeded weights'
    res = first['results']['fp32']
    for key in ('build_s', 'load_s', 'sample_s'):
        assert 0 <= res[key] < res['wall_s']
    assert res['import_torch_s'] > 0 and res['peak_mem_bytes'] > 0
    assert res['x_import_torch'] > 1  # the command imports torch too
    assert 'python -c "import torch" (s)' in capsys.readouterr().out


def test_benchmark_bad_arguments(tmp_path, capsys):
    cfg = osp.join(TINY_CONFIGS, 'cm_tiny_cond.py')
    assert run_tool('benchmark', [cfg, '--dtypes', 'fp16', '--device', 'cpu']) == 2
    assert 'fp16 needs a CUDA device' in capsys.readouterr().err
    assert run_tool('benchmark', [cfg, '--compare', 'tensorflow']) == 2
    assert run_tool('benchmark', [cfg, '--num-samples', '4']) == 2
    assert '--num-samples 4: give a positive number of images, with --first-image' in \
        capsys.readouterr().err
    assert run_tool('benchmark', [cfg, '--first-image', '--num-samples', '0']) == 2
    with pytest.raises(SystemExit):
        run_tool('benchmark', [cfg, '--channels-last', 'sometimes'])
