"""Sharded, resumable sampling across processes (``tools/sample.py``).

The ``num_samples`` images of a run are indexed ``0 .. N-1`` and cut into
shards of ``shard_size`` consecutive indices; shard ``k`` covers
``[k * S, min((k + 1) * S, N))``. The shard size is a multiple of the batch
size, so every shard is drawn in exactly the batches of the single-process
run, and with the 'determ' and 'determ-indiv' generators (positioned at each
batch's global index) its images equal the single-process rows bit for bit.
'dummy' draws from the global torch RNG, one stream through the whole run,
which cannot be split: sharding refuses it.

Each finished shard is written atomically to ``<out>.shards/shard_KKKKK.npz``
(``images``, ``labels``, ``meta``); ``run.json`` there describes the run.
A later start with the same settings skips the shards already present (so an
interrupted run resumes without redrawing them); one with other settings is
refused. When all shards exist they are concatenated into ``--out``.

A shard file that fails its check on a later start (truncated, a zip CRC
error, arrays of the wrong shape or type) is named in a one-line warning and
drawn again; a malformed ``run.json`` is refused in one line.
"""
from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import os.path as osp
import sys
import zipfile
from datetime import timedelta
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..files.atomic import atomic_write, file_sha256, remove_leftovers  # noqa: F401  (re-exported)

SHARD_FORMAT = 1
DEFAULT_SHARD_SAMPLES = 1000
#: smaller runs are cut into about this many shards by default
DEFAULT_MIN_SHARDS = 64
#: barriers wait for the slowest process's last shard
PROCESS_GROUP_TIMEOUT = timedelta(hours=24)


# ------------------------------------------------------------------ planning
def default_shard_size(num_samples: int, batch_size: int) -> int:
    """Whole batches of about 1000 samples, or N/64 for smaller runs.

    It does not depend on the number of processes, so that a run can resume
    on any number of them.
    """
    target = min(DEFAULT_SHARD_SAMPLES, math.ceil(num_samples / DEFAULT_MIN_SHARDS))
    return batch_size * max(1, math.ceil(target / batch_size))


def check_shard_size(shard_size: int, batch_size: int) -> None:
    if shard_size < 1:
        raise ValueError(f'--shard-size must be >= 1, got {shard_size}')
    if shard_size % batch_size:
        raise ValueError(
            f'--shard-size {shard_size} is not a multiple of the batch size {batch_size}: '
            'shards must hold whole batches to equal the single-process images (e.g. '
            f'--shard-size {batch_size * max(1, round(shard_size / batch_size))})')


def shard_ranges(num_samples: int, shard_size: int) -> List[Tuple[int, int]]:
    """``[(start, stop), ...]`` of every shard, in order."""
    return [(a, min(a + shard_size, num_samples)) for a in range(0, num_samples, shard_size)]


def shard_folder(out: str) -> str:
    return out + '.shards'


# ------------------------------------------------------------------ processes
def dist_env(launcher: str = 'auto') -> Tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment.

    ``launcher``: 'auto' (torchrun's variables when set), 'pytorch' (they
    must be set), 'slurm' (an srun task: torch's variables set from Slurm's,
    :func:`mmagic_cm.distributed.launch.slurm_env`) or 'none' (one process, whatever the
    environment says).
    """
    if launcher == 'slurm':
        from .launch import slurm_env
        slurm_env()
    keys = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')
    present = all(k in os.environ for k in keys)
    if launcher == 'pytorch' and not present:
        raise ValueError('--launcher pytorch: start the processes with torchrun (e.g. '
                         'tools/dist_sample.sh CONFIG NPROC ...); its variables '
                         f'{", ".join(keys)} are not set')
    if launcher == 'none' or not present:
        return 0, 1, 0
    return int(os.environ['RANK']), int(os.environ['WORLD_SIZE']), int(os.environ['LOCAL_RANK'])


class Group:
    """A gloo process group for the run's few messages (no tensors travel:
    every process writes its own shards), or a stand-in for one process."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size
        self._dist, self._owned = None, False
        if world_size > 1:
            import torch.distributed as dist
            if not dist.is_initialized():
                dist.init_process_group('gloo', timeout=PROCESS_GROUP_TIMEOUT)
                self._owned = True
            self._dist = dist

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if self._dist is None:
            return obj
        box = [obj]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self._dist is not None:
            self._dist.barrier()

    def close(self) -> None:
        if self._owned and self._dist.is_initialized():
            self._dist.destroy_process_group()
        self._dist, self._owned = None, False


# ------------------------------------------------------------------ files
def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f'{type(exc).__name__}: {text.splitlines()[0]}' if text else type(exc).__name__


def _npy_header(f) -> Tuple[tuple, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f'.npy format {version} (written: 1.0)')
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, _, dtype = read(f)
    return shape, dtype


def check_shard_data(path: str, count: int) -> Optional[str]:
    """What is wrong with the arrays of a shard file of ``count`` samples, or None.

    Every byte is read, in blocks (zip checks a member's CRC at its end), but
    no array is built: the images' memory is never needed.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if not {'images.npy', 'meta.npy'} <= names <= {'images.npy', 'labels.npy',
                                                            'meta.npy'}:
                return f'holds {", ".join(sorted(names)) or "nothing"}'
            for name in sorted(names):
                with zf.open(name) as f:
                    shape, dtype = _npy_header(f)
                    if name == 'images.npy' and (dtype != np.uint8 or len(shape) != 4
                                                 or shape[0] != count):
                        return f'images {dtype} {shape}, not uint8 ({count}, H, W, C)'
                    if name == 'labels.npy' and (dtype.kind not in 'iu' or shape != (count, )):
                        return f'labels {dtype} {shape}, not integers ({count},)'
                    if name == 'meta.npy' and (dtype.kind != 'U' or shape != ()):
                        return f'meta {dtype} {shape}, not a string'
                    size, got = math.prod(shape) * dtype.itemsize, 0
                    while True:
                        block = f.read(1 << 20)
                        if not block:
                            break
                        got += len(block)
                    if got != size:
                        return f'{name} holds {got} bytes of data, not {size}'
    except Exception as exc:  # noqa: BLE001 (whatever the damage, the shard is drawn again)
        return _why(exc)
    return None


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=repr, separators=(',', ':'))


def _plain(obj):
    """JSON-able copy (tuples -> lists, others -> repr), as run.json stores it."""
    return json.loads(_canonical(obj))


def _differences(then: Dict, now: Dict, prefix: str = '') -> List[str]:
    out = []
    for key in sorted(set(then) | set(now)):
        a, b = then.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f'{prefix}{key}.')
        elif a != b and key in ('labels', 'sha256'):  # digests: not worth printing
            out.append(f'{prefix}{key} differ')
        elif a != b:
            out.append(f'{prefix}{key}: {a!r} there, {b!r} here')
    return out


class ShardStore:
    """The shard folder of one run.

    Args:
        folder: ``<out>.shards``.
        ranges: :func:`shard_ranges`.
        run_meta: everything that decides the images (settings, weights,
            labels, num_samples, shard size, device type); JSON-able. Needed
            by :meth:`prepare`; the other processes pass its ``key`` instead.
    """

    def __init__(self, folder: str, ranges: Sequence[Tuple[int, int]],
                 run_meta: Optional[Dict] = None, key: Optional[str] = None):
        self.folder = folder
        self.ranges = list(ranges)
        self.run_meta = None if run_meta is None else _plain(run_meta)
        if key is None:
            key = hashlib.sha256(_canonical(self.run_meta).encode()).hexdigest()
        self.key = key

    def path(self, k: int) -> str:
        return osp.join(self.folder, f'shard_{k:05d}.npz')

    @property
    def run_file(self) -> str:
        return osp.join(self.folder, 'run.json')

    def _mismatch(self, what: str) -> ValueError:
        return ValueError(f'{self.folder} holds shards of another run ({what}); delete '
                          'that folder to start over, or write to another --out')

    def _fix(self) -> str:
        return f'delete {self.folder} to start over, or write to another --out'

    def _read_meta(self, k: int) -> Dict:
        """A shard file's meta (only that member is read)."""
        with np.load(self.path(k)) as data:
            meta = json.loads(str(data['meta']))
        if not isinstance(meta, dict):
            raise ValueError(f'meta is a {type(meta).__name__}, not an object')
        return meta

    def _read_run(self) -> Dict:
        """run.json's content, checked.

        Raises:
            ValueError: (one line naming the file and the fix) it is not JSON,
            or not the ``{"key": ..., "run": {...}}`` that :meth:`prepare` writes.
        """
        try:
            with open(self.run_file, 'rb') as f:
                then = json.loads(f.read().decode())
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ValueError(f'{self.run_file} is not valid JSON ({_why(exc)}); '
                             f'{self._fix()}') from None
        if not (isinstance(then, dict) and isinstance(then.get('key'), str)
                and isinstance(then.get('run'), dict)):
            got = (f'keys {", ".join(map(repr, sorted(then)))}' if isinstance(then, dict)
                   else f'a JSON {type(then).__name__}')
            raise ValueError(f'{self.run_file} is not a sharded run\'s description (found '
                             f'{got}; expected "key": a string, "run": an object); '
                             f'{self._fix()}')
        return then

    def _redraw(self, k: int, why: str) -> None:
        print(f'warning: {self.path(k)} is truncated or corrupt ({why}); drawing it again',
              file=sys.stderr)
        os.unlink(self.path(k))

    def prepare(self) -> List[int]:
        """Make or check the folder (one process); returns the finished shards.

        Shard files that fail :func:`check_shard_data` are named in a warning
        and removed, to be drawn again.

        Raises:
            ValueError: the folder holds shards of other settings, or a
            malformed run.json.
        """
        os.makedirs(self.folder, exist_ok=True)
        remove_leftovers(self.folder)  # killed writers' temporary files
        for tmp in glob.glob(osp.join(glob.escape(self.folder), 'tmp*.tmp')):
            os.unlink(tmp)  # named so by earlier versions, which did not lock
        if osp.exists(self.run_file):
            then = self._read_run()
            if then['key'] != self.key:
                diffs = _differences(then.get('run', {}), self.run_meta)
                raise self._mismatch('; '.join(diffs[:4]) or 'other settings')
        done = []
        for k, (start, stop) in enumerate(self.ranges):
            if not osp.exists(self.path(k)):
                continue
            try:
                meta = self._read_meta(k)
            except Exception as exc:  # noqa: BLE001 (truncated or foreign file)
                self._redraw(k, _why(exc))
                continue
            if meta.get('run') != self.key or (meta.get('start'), meta.get('stop')) != (
                    start, stop):
                raise self._mismatch(f'{osp.basename(self.path(k))} was drawn with other '
                                     'settings')
            problem = check_shard_data(self.path(k), stop - start)
            if problem:
                self._redraw(k, problem)
                continue
            done.append(k)
        if not osp.exists(self.run_file):
            text = json.dumps(dict(key=self.key, run=self.run_meta), indent=1, sort_keys=True)
            atomic_write(self.run_file, lambda f: f.write(text.encode()))
        return done

    def write(self, k: int, images: np.ndarray, labels: Optional[np.ndarray]) -> None:
        start, stop = self.ranges[k]
        if len(images) != stop - start:
            raise RuntimeError(f'shard {k}: {len(images)} images for [{start}, {stop})')
        meta = json.dumps(dict(format=SHARD_FORMAT, run=self.key, index=k, start=start,
                               stop=stop))
        arrays = dict(images=images, meta=np.array(meta))
        if labels is not None:
            arrays['labels'] = labels
        atomic_write(self.path(k), lambda f: np.savez(f, **arrays))

    def missing(self) -> List[int]:
        return [k for k in range(len(self.ranges)) if not osp.exists(self.path(k))]

    def gather(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """All shards' images (and labels) in index order."""
        images, labels = [], []
        for k, (start, stop) in enumerate(self.ranges):
            try:  # checked by prepare(): damaged since, say by a full disk
                with np.load(self.path(k)) as data:
                    meta = json.loads(str(data['meta']))
                    images.append(data['images'])
                    labels.append(data['labels'] if 'labels' in data.files else None)
            except Exception as exc:  # noqa: BLE001
                raise ValueError(f'{self.path(k)} is truncated or corrupt ({_why(exc)}); run '
                                 'the same command again to draw it again') from None
            if not isinstance(meta, dict) or meta.get('run') != self.key or (
                    meta.get('start'), meta.get('stop')) != (start, stop):
                raise self._mismatch(f'{osp.basename(self.path(k))} was drawn with '
                                     'other settings')
            if len(images[-1]) != stop - start or images[-1].shape[1:] != images[0].shape[1:]:
                raise ValueError(f'{self.path(k)} holds images {images[-1].shape}, not '
                                 f'{(stop - start, *images[0].shape[1:])}; delete it and run '
                                 'again')
            if (labels[-1] is None) != (labels[0] is None):
                raise ValueError(f'{self.path(k)} and {self.path(0)} disagree on having '
                                 f'labels; {self._fix()}')
        label_arr = None if labels[0] is None else np.concatenate(labels)
        return np.concatenate(images), label_arr

    def remove(self) -> bool:
        """Delete the shards and run.json, then the folder if nothing else is there."""
        for k in range(len(self.ranges)):
            if osp.exists(self.path(k)):
                os.unlink(self.path(k))
        if osp.exists(self.run_file):
            os.unlink(self.run_file)
        try:
            os.rmdir(self.folder)
        except OSError:
            return False
        return True
