"""``write_edit_results`` (tools/edit.py --out-dir): an existing folder is
replaced all or nothing, other files in it are kept."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmagic_cm.editing.api import EditResult
from mmagic_cm.editing.io import check_out_dir, write_edit_results

NAMES = ['a', 'b', 'c']


def result(value: int) -> EditResult:
    images = np.full((3, 4, 4, 3), value, np.uint8)
    return EditResult(images=images, observed=images // 2)


def snapshot(folder):
    """relative path -> bytes (files) or 'link -> target' (symlinks)."""
    out = {}
    for d, dirs, files in os.walk(folder):
        for name in files + [n for n in dirs if osp.islink(osp.join(d, n))]:
            path = osp.join(d, name)
            rel = osp.relpath(path, folder)
            out[rel] = (f'link -> {os.readlink(path)}' if osp.islink(path)
                        else open(path, 'rb').read())
    return out


@pytest.fixture
def out(tmp_path):
    """An out-dir holding earlier results and files of the user's."""
    folder = tmp_path / 'out'
    write_edit_results(str(folder), NAMES, result(10))
    (folder / 'notes.txt').write_bytes(b'mine')
    (folder / 'sub').mkdir()
    (folder / 'sub' / 'x.txt').write_bytes(b'x')
    os.symlink('notes.txt', folder / 'link')
    return folder


def test_success_replaces_results_and_keeps_other_files(out, tmp_path):
    before = snapshot(out)
    write_edit_results(str(out), NAMES, result(200))
    after = snapshot(out)
    assert set(after) == set(before)
    for name in NAMES:
        assert np.asarray(Image.open(out / f'{name}.png')).max() == 200
        assert np.asarray(Image.open(out / f'{name}_input.png')).max() == 100
    assert after['grid.png'] != before['grid.png']
    for kept in ('notes.txt', osp.join('sub', 'x.txt'), 'link'):
        assert after[kept] == before[kept]
    assert os.listdir(tmp_path) == ['out']  # no staging or moved-aside folder left


@pytest.mark.parametrize('fail_at', [1, 2], ids=['moving-old-aside', 'moving-new-in'])
def test_failure_mid_move_leaves_out_dir_as_it_was(out, tmp_path, monkeypatch, fail_at):
    """The n-th move of a file or folder into (or of) the out-dir fails."""
    before = snapshot(out)
    replace, calls = os.replace, []

    def failing_replace(src, dst, *args, **kwargs):
        if str(out) in (str(src), str(dst)) or str(dst).startswith(f'{out}{os.sep}'):
            calls.append((src, dst))
            if len(calls) == fail_at:
                raise OSError('disk gone')
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, 'replace', failing_replace)
    with pytest.raises(OSError, match='disk gone'):
        write_edit_results(str(out), NAMES, result(200))
    assert snapshot(out) == before
    assert os.listdir(tmp_path) == ['out']


def test_failure_while_writing_leaves_out_dir_as_it_was(out, tmp_path, monkeypatch):
    before = snapshot(out)
    save, saved = Image.Image.save, []

    def failing_save(self, fp, *args, **kwargs):
        saved.append(fp)
        if len(saved) == 2:
            raise OSError('no space left')
        return save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, 'save', failing_save)
    with pytest.raises(OSError, match='no space left'):
        write_edit_results(str(out), NAMES, result(200))
    assert snapshot(out) == before
    assert os.listdir(tmp_path) == ['out']


def test_new_folder_and_a_link_to_a_folder(tmp_path):
    write_edit_results(str(tmp_path / 'new' / 'deep'), NAMES, result(5))
    assert sorted(os.listdir(tmp_path / 'new' / 'deep'))[:3] == ['a.png', 'a_input.png', 'b.png']
    os.symlink(tmp_path / 'new' / 'deep', tmp_path / 'alias')
    write_edit_results(str(tmp_path / 'alias'), NAMES, result(7))
    assert osp.islink(tmp_path / 'alias')  # the link still points at the replaced folder
    assert np.asarray(Image.open(tmp_path / 'new' / 'deep' / 'a.png')).max() == 7


def test_out_dirs_that_cannot_be_replaced_are_refused(tmp_path, monkeypatch):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ValueError, match='--out-dir .*file is a file; give a folder'):
        check_out_dir(str(tmp_path / 'file'))
    with pytest.raises(ValueError, match='file is a file, not a folder'):
        check_out_dir(str(tmp_path / 'file' / 'out'))
    (tmp_path / 'work' / 'inner').mkdir(parents=True)
    monkeypatch.chdir(tmp_path / 'work' / 'inner')
    for path in ('.', str(tmp_path / 'work')):
        with pytest.raises(ValueError, match='is the current folder or holds it'):
            write_edit_results(path, NAMES, result(1))
    assert os.listdir(tmp_path / 'work') == ['inner']
    assert check_out_dir('edits') == str(tmp_path / 'work' / 'inner' / 'edits')
