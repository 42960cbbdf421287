"""tools/whole_process.py and the interleaved timing under it."""
import json
import os.path as osp
import sys

import pytest
import torch

from mmagic_cm.evaluation.benchmark import whole_process_times
from mmagic_cm.testing import TINY_CONFIGS, reference_weights, run_tool


def test_commands_are_timed_interleaved_with_their_environment():
    code = 'import os, sys; sys.exit(0 if os.environ.get("X", "") == "{}" else 3)'
    res = whole_process_times({'a': [sys.executable, '-c', code.format('1')],
                               'b': [sys.executable, '-c', code.format('')]},
                              reps=2, env={'a': {'X': '1'}})
    assert set(res) == {'a', 'b'}
    for r in res.values():
        assert len(r['all_s']) == 2 and 0 < r['median_s'] < 60
    with pytest.raises(RuntimeError, match=r'b failed \(exit 3\)'):
        whole_process_times({'b': [sys.executable, '-c', code.format('1')]}, reps=1)


@pytest.mark.slow
def test_whole_process_tool_on_a_tiny_model(tmp_path, capsys):
    ckpt = tmp_path / 'w.pt'
    torch.save(reference_weights('tiny_cond', 0), ckpt)
    out = tmp_path / 'r.json'
    assert run_tool('whole_process', [osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'),
                                      '--checkpoint', str(ckpt), '--num-samples', '4',
                                      '--batch-size', '2', '--reps', '1', '--json',
                                      str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res) == {'python -c "import torch"', 'ours fp32', 'ours bf16'}
    assert '| ours bf16 |' in capsys.readouterr().out
