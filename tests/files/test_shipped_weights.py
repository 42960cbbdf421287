"""The shipped weights' SHA256SUMS: complete, matching, checked on reading,
refusing a damaged copy in one line, never applied to a user's own files."""
import os
import os.path as osp
import shutil

import pytest

import mmagic_cm.files.checkpoint as ckpt
from mmagic_cm.files.atomic import file_sha256
from mmagic_cm.files.checkpoint import (
    WEIGHT_SUMS_NAME,
    CheckpointError,
    read_checkpoint,
    read_weight_sums,
    update_weight_sums,
)
from mmagic_cm.testing import ROOT, run_tool

SHIPPED = osp.join(ROOT, 'mmagic_cm', 'weights', 'digits')
NAME = 'classifier.pt'  # the smallest shipped file


def test_every_shipped_file_is_listed_and_matches():
    assert osp.realpath(ckpt.SHIPPED_WEIGHTS_DIR) == osp.realpath(SHIPPED)
    sums = read_weight_sums(SHIPPED)
    files = sorted(n for n in os.listdir(SHIPPED)
                   if n != WEIGHT_SUMS_NAME and not n.startswith('.'))
    assert sorted(sums) == files, 'run python tools/update_weight_sums.py'
    for name in files:
        assert file_sha256(osp.join(SHIPPED, name)) == sums[name], name


def test_sums_are_installed_with_the_weights():
    setup = open(osp.join(ROOT, 'setup.py')).read()
    assert "'weights/digits/*.pt', 'weights/digits/SHA256SUMS'" in setup


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A stand-in shipped folder: a copy of one file and its line of SHA256SUMS."""
    folder = tmp_path / 'shipped'
    folder.mkdir()
    shutil.copy(osp.join(SHIPPED, NAME), folder / NAME)
    digest = read_weight_sums(SHIPPED)[NAME]
    (folder / WEIGHT_SUMS_NAME).write_text(f'{digest}  {NAME}\n')
    monkeypatch.setattr(ckpt, 'SHIPPED_WEIGHTS_DIR', str(folder))
    monkeypatch.setattr(ckpt, '_SHIPPED_DIGESTS', {})
    return folder


def flip_a_byte(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    stat = os.stat(path)
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same size and time


def test_intact_copy_reads_and_is_hashed_once(shipped, monkeypatch):
    import mmagic_cm.files.atomic as fileio
    hashed = []
    sha = fileio.file_sha256
    monkeypatch.setattr(fileio, 'file_sha256', lambda p, *a: hashed.append(p) or sha(p, *a))
    for _ in range(3):
        assert read_checkpoint(str(shipped / NAME))
    assert hashed == [str(shipped / NAME)]


def test_a_flipped_byte_is_refused_in_one_line(shipped):
    flip_a_byte(shipped / NAME)
    expected = read_weight_sums(str(shipped))[NAME]
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(str(shipped / NAME))
    text = str(info.value)
    assert '\n' not in text
    assert text.startswith(f'{shipped / NAME} is damaged: its SHA-256 is ')
    assert f'expects {expected[:12]}...' in text
    assert text.endswith('restore the file (from git, or reinstall the package: pip install -e . '
                         'again)')


def test_a_file_changed_after_reading_is_hashed_again(shipped):
    assert read_checkpoint(str(shipped / NAME))
    raw = (shipped / NAME).read_bytes()
    (shipped / NAME).write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    os.utime(shipped / NAME, ns=(1, 1))  # another mtime: the cached digest is stale
    with pytest.raises(CheckpointError, match='is damaged'):
        read_checkpoint(str(shipped / NAME))


def test_an_unlisted_shipped_file_is_refused(shipped):
    shutil.copy(shipped / NAME, shipped / 'new.pt')
    with pytest.raises(CheckpointError, match=r'has no digest for it; .*update_weight_sums'):
        read_checkpoint(str(shipped / 'new.pt'))


def test_users_own_checkpoint_is_not_checked(shipped, tmp_path):
    own = tmp_path / 'own' / NAME  # the same name, outside the shipped folder
    own.parent.mkdir()
    shutil.copy(shipped / NAME, own)
    flip_a_byte(shipped / NAME)
    flip_a_byte(own)  # damaged too, but not ours to judge: only torch.load does
    try:
        read_checkpoint(str(own))
    except CheckpointError as exc:
        assert 'SHA-256' not in str(exc)
    assert not ckpt._SHIPPED_DIGESTS


def test_update_tool_rewrites_the_sums(shipped, capsys):
    shutil.copy(shipped / NAME, shipped / 'new.pt')
    flip_a_byte(shipped / NAME)
    (shipped / '.hidden').write_text('x')
    assert run_tool('update_weight_sums', [str(shipped)]) == 0
    assert capsys.readouterr().out.strip().endswith(f'added new.pt; changed {NAME}')
    sums = read_weight_sums(str(shipped))
    assert sorted(sums) == [NAME, 'new.pt']
    assert sums[NAME] == file_sha256(str(shipped / NAME))
    line = (shipped / WEIGHT_SUMS_NAME).read_text().splitlines()[0]
    assert line == f'{sums[NAME]}  {NAME}'  # sha256sum's format
    assert read_checkpoint(str(shipped / NAME))  # now accepted
    os.remove(shipped / 'new.pt')
    assert run_tool('update_weight_sums', [str(shipped)]) == 0
    assert capsys.readouterr().out.strip().endswith('removed new.pt')
    assert sorted(os.listdir(shipped)) == sorted(['.hidden', NAME, WEIGHT_SUMS_NAME])  # no temp


def test_a_malformed_sums_file_is_one_line(shipped):
    (shipped / WEIGHT_SUMS_NAME).write_text('abc classifier.pt\n')
    with pytest.raises(CheckpointError, match=r'SHA256SUMS:1: expected "<sha256 hex>  <name>"'):
        read_checkpoint(str(shipped / NAME))
    with pytest.raises(NotADirectoryError, match='no such folder'):
        update_weight_sums(str(shipped / 'none'))
