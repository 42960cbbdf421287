"""Writing files safely: the one atomic-write helper of the project.

Single-file outputs (sample ``.npz`` files, grids, shards, converted
checkpoints) go through :func:`atomic_write`, and outputs of several files
(a diffusers folder, an OpenVINO .xml/.bin pair) are staged in a folder and
moved in with :func:`replace_path`, so that a failure, Ctrl-C or a killed
process never leaves a half-written file under the final name and an
existing output is replaced only by a complete new one.

A writer of ``OUT`` holds an ``fcntl.flock`` on ``.OUT.lock`` next to it for
as long as its temporary file ``.OUT.PID.XXXXXXXX.tmp`` exists, and removes
both when done. So a second writer of the same file is refused in one line
instead of the two racing, and a temporary file of ``OUT`` found while
holding the lock is a killed writer's leftover (whatever its age or PID: the
kernel releases a dead process's lock) and is removed. Without ``fcntl``
(Windows) or on a filesystem without locks, files are written unlocked and
leftovers stay.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import os.path as osp
import re
import tempfile
from typing import IO, Callable, Dict, Iterator, List, Optional

try:
    import fcntl
except ImportError:  # Windows: no locks (see the module docstring)
    fcntl = None

#: what follows ``.OUT.`` in a temporary file's name: writer's PID, mkstemp's letters
_TMP_TAIL = re.compile(r'\d+\.[^.]+\.tmp')
_LEFTOVER = re.compile(r'\.(.+)\.(?:lock|\d+\.[^.]+\.tmp)')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tag(name: str) -> str:
    """``name``, or a short unique stand-in where ``.NAME.PID.XXXXXXXX.tmp``
    would pass the 255-byte limit of file names."""
    raw = name.encode()
    if len(raw) <= 200:
        return name
    return raw[:100].decode(errors='ignore') + '~' + hashlib.sha256(raw).hexdigest()[:16]


def lock_path(path: str) -> str:
    """The lock file of writers of ``path``: ``.NAME.lock`` next to it."""
    return osp.join(osp.dirname(osp.abspath(path)), f'.{_tag(osp.basename(path))}.lock')


@contextlib.contextmanager
def output_lock(path: str) -> Iterator[bool]:
    """Hold the lock of writers of ``path``; yields whether it is locked
    (False without ``fcntl`` or on a filesystem without locks).

    Raises:
        ValueError: another process holds it (one line naming both files).
    """
    fd = _lock(path) if fcntl is not None else None
    try:
        yield fd is not None
    finally:
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path(path))  # before unlocking: a waiter sees it go, retries
            os.close(fd)


def _lock(path: str) -> Optional[int]:
    lock = lock_path(path)
    while True:
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValueError(f'another process is writing {path} (lock {lock}); wait for '
                                 'it to finish, or write to another path') from None
            return None  # a filesystem without locks: write unlocked
        try:
            st, mine = os.stat(lock), os.fstat(fd)
            if (st.st_ino, st.st_dev) == (mine.st_ino, mine.st_dev):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed that file as we opened it: lock the new one


def _temp_files(folder: str, name: str) -> List[str]:
    """Temporary files of writers of ``folder/name`` (and none of other outputs)."""
    prefix = f'.{_tag(name)}.'
    return [osp.join(folder, f) for f in os.listdir(folder)
            if f.startswith(prefix) and _TMP_TAIL.fullmatch(f[len(prefix):])]


def remove_leftovers(folder: str) -> List[str]:
    """Remove killed writers' temporary and lock files in ``folder`` (not
    those of writers still running); returns the outputs they were for."""
    names = sorted({m.group(1) for m in map(_LEFTOVER.fullmatch, os.listdir(folder)) if m})
    cleaned = []
    for name in names:
        path = osp.join(folder, name)
        try:
            with output_lock(path) as locked:
                if locked:
                    for tmp in _temp_files(folder, name):
                        os.unlink(tmp)
                    cleaned.append(path)
        except ValueError:  # being written now
            continue
    return cleaned


def atomic_write(path: str, write: Callable[[IO[bytes]], None], makedirs: bool = True) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it.

    Under the writers' lock of ``path``; killed writers' temporary files of
    ``path`` are removed first (see the module docstring).

    Args:
        path: the final file; replaced only when ``write`` returns.
        write: writes the whole content to the binary file object it gets.
        makedirs: create ``path``'s folder when missing.

    Raises:
        ValueError: another process is writing ``path`` now.
    """
    folder = osp.dirname(osp.abspath(path))
    name = osp.basename(path)
    if makedirs:
        os.makedirs(folder, exist_ok=True)
    with output_lock(path) as locked:
        if locked:
            for old in _temp_files(folder, name):
                os.unlink(old)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{_tag(name)}.{os.getpid()}.',
                                   suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                write(f)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
            os.replace(tmp, path)
        except BaseException:
            if osp.exists(tmp):
                os.unlink(tmp)
            raise


def file_sha256(path: str, chunk: int = 1 << 24) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def replace_path(staged: str, dst: str) -> None:
    """Move a finished file or folder ``staged`` to ``dst`` (same filesystem).

    A file replaces ``dst`` atomically; for folders an existing ``dst`` is
    moved aside first and put back if the move fails, so that ``dst`` is
    the old or the new one, never a mix.
    """
    import shutil
    if not osp.lexists(dst) or not (osp.isdir(staged) or osp.isdir(dst)) or osp.islink(dst):
        os.replace(staged, dst)  # atomic
        return
    fd, old = tempfile.mkstemp(dir=osp.dirname(osp.abspath(dst)),
                               prefix=f'.{osp.basename(dst)}.old')
    os.close(fd)
    os.unlink(old)
    os.replace(dst, old)
    try:
        os.replace(staged, dst)
    except BaseException:
        os.replace(old, dst)
        raise
    if osp.isdir(old):
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.unlink(old)


def make_readable(folder: str) -> None:
    """Give a staged folder and its files the umask's permissions (mkdtemp
    makes 0700 folders, mkstemp and safetensors 0600 files)."""
    mask = _umask()
    for path, _, files in os.walk(folder):
        os.chmod(path, 0o777 & ~mask)
        for name in files:
            os.chmod(osp.join(path, name), 0o666 & ~mask)


def check_outputs(outputs: Dict[str, Optional[str]],
                  inputs: Optional[Dict[str, Optional[str]]] = None) -> None:
    """Refuse output paths that would fail or destroy something, before any work.

    Args:
        outputs: option name -> file path (None: not asked for).
        inputs: option name -> path the run reads; an output may not be one.

    Raises:
        ValueError: (one line naming the option and the path) an output that
        is a folder, whose parent is a file or not writable, two outputs on
        one path, or an output that is an input.
    """
    seen: Dict[str, str] = {}
    for name, path in outputs.items():
        if not path:
            continue
        real = osp.realpath(path)
        if osp.isdir(path):
            raise ValueError(f'{name} {path} is a folder; give a file name in it')
        parent = osp.dirname(osp.abspath(path))
        existing = parent
        while not osp.exists(existing):  # the first folder that exists will hold it
            existing = osp.dirname(existing)
        if not osp.isdir(existing):
            raise ValueError(f'{name} {path}: {existing} is a file, not a folder')
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f'{name} {path}: cannot write in {existing} (permissions)')
        if real in seen:
            raise ValueError(f'{name} and {seen[real]} are the same file {path}; give two '
                             'paths')
        seen[real] = name
        for in_name, in_path in (inputs or {}).items():
            if in_path and osp.exists(in_path) and osp.realpath(in_path) == real:
                raise ValueError(f'{name} {path} is the {in_name} this run reads; write '
                                 'somewhere else')
