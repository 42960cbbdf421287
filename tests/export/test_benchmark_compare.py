"""tools/benchmark.py --compare onnxruntime,openvino on a tiny config (structure, not speed)."""
import json
import os.path as osp

import pytest

from mmagic_cm.testing import TINY_CONFIGS, run_tool

pytest.importorskip('onnxruntime')
pytest.importorskip('openvino')


@pytest.mark.slow
def test_benchmark_exported_rows(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    argv = [osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'), '--batch-sizes', '2', '--reps', '1',
            '--warmup', '1', '--matmul-size', '64', '--dtypes', 'fp32,bf16', '--quality',
            '--compare', 'onnxruntime,openvino', '--json', str(out)]
    assert run_tool('benchmark', argv) == 0
    rows = json.loads(out.read_text())['rows']
    got = {(r['impl'], r['dtype']) for r in rows}
    assert {('onnxruntime', 'fp32'), ('openvino', 'fp32'), ('openvino', 'bf16')} <= got
    assert ('onnxruntime', 'bf16') not in got  # no bf16 kernels in ONNX Runtime's CPU EP
    for r in rows:
        assert r['images_per_s'] > 0
        assert r['psnr_db'] >= (35 if r['dtype'] == 'fp32' else 25)
    assert '| onnxruntime | fp32 | 2 | static batch |' in capsys.readouterr().out


@pytest.mark.slow
def test_int8_rows_are_openvino_only(tmp_path, capsys):
    pytest.importorskip('nncf')
    out = tmp_path / 'bench.json'
    argv = [osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'), '--batch-sizes', '2', '--reps', '1',
            '--matmul-size', '64', '--dtypes', 'fp32,int8', '--quality', '--compare',
            'openvino', '--json', str(out)]
    assert run_tool('benchmark', argv) == 0
    got = {(r['impl'], r['dtype']): r for r in json.loads(out.read_text())['rows']}
    assert set(got) == {('mmagic_cm', 'fp32'), ('openvino', 'fp32'), ('openvino', 'int8')}
    assert got[('openvino', 'int8')]['psnr_db'] >= 25
    capsys.readouterr()
    assert run_tool('benchmark', argv[:-4] + ['--compare', 'diffusers']) == 2
    assert 'only OpenVINO files run it' in capsys.readouterr().err
    assert run_tool('benchmark', argv[:-4] + ['--compare', 'onnxruntime']) == 2


def test_gpu_only_rows_are_refused_on_the_cpu(capsys):
    argv = [osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'), '--batch-sizes', '2', '--reps', '1',
            '--matmul-size', '0', '--compare', 'onnxruntime-tensorrt']
    assert run_tool('benchmark', argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'error: --compare onnxruntime-tensorrt: runs on a GPU (--device cuda)'
