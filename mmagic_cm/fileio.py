"""Writing files safely: the one atomic-write helper of the project.

Single-file outputs (sample ``.npz`` files, grids, shards, converted
checkpoints) go through :func:`atomic_write`, and outputs of several files
(a diffusers folder, an OpenVINO .xml/.bin pair) are staged in a folder and
moved in with :func:`replace_path`, so that a failure, Ctrl-C or a killed
process never leaves a half-written file under the final name and an
existing output is replaced only by a complete new one.
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
import tempfile
from typing import IO, Callable, Dict, Optional


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, write: Callable[[IO[bytes]], None], makedirs: bool = True) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it.

    Args:
        path: the final file; replaced only when ``write`` returns.
        write: writes the whole content to the binary file object it gets.
        makedirs: create ``path``'s folder when missing.
    """
    folder = osp.dirname(osp.abspath(path))
    if makedirs:
        os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
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
