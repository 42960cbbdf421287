"""atomic_write: the writers' lock, and killed writers' temporary files."""
import fcntl
import os
import subprocess
import sys

import pytest

from mmagic_cm.files.atomic import atomic_write, lock_path, remove_leftovers


def dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def hold(path):
    """Lock ``path`` as another writer would (flock: per open file, so it
    conflicts with a second open in this process too)."""
    fd = os.open(lock_path(str(path)), os.O_RDONLY | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_writes_and_leaves_nothing_else(tmp_path):
    out = tmp_path / 'out.bin'
    atomic_write(str(out), lambda f: f.write(b'new'))
    assert out.read_bytes() == b'new' and os.listdir(tmp_path) == ['out.bin']


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / 'out.bin'
    out.write_bytes(b'old')

    def fail(f):
        f.write(b'half')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError):
        atomic_write(str(out), fail)
    assert out.read_bytes() == b'old' and os.listdir(tmp_path) == ['out.bin']


def test_killed_writers_temporary_files_are_removed_by_the_next_write(tmp_path):
    pid = dead_pid()
    stale = tmp_path / f'.out.bin.{pid}.abcd1234.tmp'
    stale.write_bytes(b'half')
    (tmp_path / '.out.bin.lock').touch()  # a killed writer's lock file
    others = [f'.out.bin.x.{pid}.abcd1234.tmp',  # out.bin.x's, not out.bin's
              'tmpabcd1234.tmp']  # not ours to judge
    for name in others:
        (tmp_path / name).write_bytes(b'keep')
    atomic_write(str(tmp_path / 'out.bin'), lambda f: f.write(b'new'))
    assert sorted(os.listdir(tmp_path)) == sorted(['out.bin', *others])


def test_a_second_writer_is_refused_and_changes_nothing(tmp_path):
    out = tmp_path / 'out.bin'
    out.write_bytes(b'old')
    fd = hold(out)
    try:
        theirs = tmp_path / '.out.bin.1.abcd1234.tmp'  # the holder's, being written
        theirs.write_bytes(b'half')
        with pytest.raises(ValueError, match=r'another process is writing .*out\.bin \(lock '
                           r'.*\.out\.bin\.lock\); wait for it'):
            atomic_write(str(out), lambda f: f.write(b'new'))
        assert out.read_bytes() == b'old' and theirs.exists()
        assert remove_leftovers(str(tmp_path)) == []  # a running writer's files stay
        assert sorted(os.listdir(tmp_path)) == ['.out.bin.1.abcd1234.tmp', '.out.bin.lock',
                                                'out.bin']
    finally:
        os.close(fd)
    assert remove_leftovers(str(tmp_path)) == [str(out)]
    assert os.listdir(tmp_path) == ['out.bin']


def test_a_lock_file_removed_by_its_holder_does_not_block(tmp_path):
    out = tmp_path / 'out.bin'
    fd = hold(out)
    try:
        os.unlink(lock_path(str(out)))  # the holder finishing: its file goes first
        atomic_write(str(out), lambda f: f.write(b'new'))
    finally:
        os.close(fd)
    assert out.read_bytes() == b'new' and os.listdir(tmp_path) == ['out.bin']


def test_names_near_the_length_limit(tmp_path):
    name = 'n' * 250 + '.npz'
    atomic_write(str(tmp_path / name), lambda f: f.write(b'x'))
    assert os.listdir(tmp_path) == [name]
