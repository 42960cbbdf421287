"""The original code's stand-ins (:mod:`mmagic_cm.testing.reference`) and
tools/reference/original_sample.py's refusals."""
import os.path as osp
import subprocess
import sys

import pytest

from mmagic_cm.testing import ROOT

STANDING_IN = ('flash_attn', 'flash_attn.flash_attention', 'mpi4py', 'blobfile', 'piq')


@pytest.fixture
def stand_ins(monkeypatch):
    for name in STANDING_IN:  # put back whatever was there
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))
    from mmagic_cm.testing.reference import install_stand_ins
    install_stand_ins('sdpa')
    return {name: sys.modules[name] for name in STANDING_IN}


def test_stand_ins_run_one_process(stand_ins, tmp_path):
    """What cm.dist_util and the sampling script ask of MPI, blobfile and piq."""
    comm = stand_ins['mpi4py'].MPI.COMM_WORLD
    assert (comm.Get_rank(), comm.Get_size(), comm.rank, comm.size) == (0, 1, 0, 1)
    assert comm.bcast(b'chunk', root=0) == b'chunk'
    path = tmp_path / 'w.pt'
    path.write_bytes(b'abc')
    with stand_ins['blobfile'].BlobFile(str(path), 'rb') as f:
        assert f.read() == b'abc'
    lpips = stand_ins['piq'].LPIPS(replace_pooling=True, reduction='none')  # built, not used
    with pytest.raises(RuntimeError, match='loss_norm="l2"'):
        lpips(None, None)


def test_original_sample_refuses_a_missing_checkout(tmp_path):
    tool = osp.join(ROOT, 'tools', 'reference', 'original_sample.py')
    run = subprocess.run([sys.executable, tool, str(tmp_path), '--', '--num_samples', '4'],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and 'give a checkout of openai/consistency_models' in run.stderr
    run = subprocess.run([sys.executable, tool], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and run.stderr.startswith('usage:')
