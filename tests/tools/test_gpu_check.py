"""tools/gpu_check.py: its CPU dry run, without MMagic (core-only mode), as the
GPU machine runs it."""
import json
import os
import os.path as osp
import subprocess
import sys

from mmagic_cm.testing import ROOT

# the GPU machine has torch and mmengine but no MMagic: make it unimportable
RUN = ("import runpy, sys; sys.modules['mmagic'] = None; "
       "sys.argv = ['gpu_check.py'] + sys.argv[1:]; "
       "runpy.run_path({tool!r}, run_name='__main__')")


def test_dry_run_without_mmagic(tmp_path):
    tool = osp.join(ROOT, 'tools', 'gpu_check.py')
    proc = subprocess.run(
        [sys.executable, '-c', RUN.format(tool=tool), '--dry-run', '--out', str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=dict(os.environ, MMAGIC_CM_CORE_ONLY='1', OMP_NUM_THREADS='2'))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    sections = report['sections']
    assert set(sections) == {'parity', 'throughput', 'lsun', 'training', 'deploy'}
    assert not [name for name, s in sections.items() if 'error' in s]
    assert len(sections['parity']['result']) == 4
    assert all(r['passed'] for r in sections['parity']['result'].values())
    rows = sections['throughput']['result']['rows']
    assert {r['impl'] for r in rows} == {'mmagic_cm eager', 'mmagic_cm channels_last',
                                         'diffusers'}
    assert all(r['images_per_s'] > 0 for r in rows)
    train = sections['training']['result']['bf16']
    assert train['finite'] and train['reloaded'] and train['backend'] == 'gloo'
    deploy = {(r['impl'], r['dtype']): r for r in sections['deploy']['result']['rows']}
    for dtype, db, diff in (('fp32', 60, 1e-4), ('fp16', 35, 5e-2)):  # CPU stands in for CUDA
        assert deploy[('onnxruntime cpu', dtype)]['psnr_db'] >= db
        assert 0 < deploy[('onnxruntime cpu', dtype)]['max_abs_diff'] <= diff
        assert deploy[('onnxruntime cpu', dtype)]['images_per_s'] > 0
    assert deploy[('onnxruntime tensorrt', 'fp16')]['skipped'] == 'needs a GPU'
    table = (tmp_path / 'gpu_check.md').read_text()
    assert '| onnxruntime cpu | fp16 | 2 |' in table
    assert '## parity' in table and '## throughput' in table and '## training' in table
    assert '| imagenet64_multistep |' in proc.stdout


def test_bad_section_and_no_cuda(tmp_path, capsys):
    from mmagic_cm.testing import run_tool
    assert run_tool('gpu_check', ['--dry-run', '--out', str(tmp_path), '--sections',
                                  'parity,warp']) == 2
    assert "unknown section(s) ['warp']" in capsys.readouterr().err
    import torch
    if not torch.cuda.is_available():
        assert run_tool('gpu_check', ['--out', str(tmp_path)]) == 2
        assert 'CUDA is not available' in capsys.readouterr().err
