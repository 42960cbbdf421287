"""Checkpoint I/O: released raw ``.pt`` files, URLs and this project's files.

A released checkpoint (``cd_imagenet64_lpips.pt``, ...) is a bare UNet state
dict. Checkpoints saved by mmengine hold ``{'state_dict': {'unet.…': …}}``.
Both load strictly into :class:`~mmagic_cm.models.ConsistencyModel`.
Failures raise :class:`CheckpointError` with one plain sentence: no
network, a corrupt file, no UNet inside, a shipped weight file whose
SHA-256 is not the recorded one. This module is a leaf of the package (it
imports only :mod:`mmagic_cm.files.atomic`, itself a leaf); matching a file to a
model's architecture is :mod:`mmagic_cm.models.weights`.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
import urllib.error
import zipfile
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import urlparse

import torch

#: key every ADM UNet state dict has; used to recognise a raw UNet file
UNET_MARKER_KEY = 'time_embed.0.weight'
#: prefixes of the UNet inside checkpoints saved by this project / mmengine
UNET_PREFIXES = ('unet.', 'module.unet.', 'model.')
#: the weights shipped in the package; their digests are in WEIGHT_SUMS_NAME beside them
SHIPPED_WEIGHTS_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'weights',
                               'digits')
WEIGHT_SUMS_NAME = 'SHA256SUMS'
#: realpath -> (size, mtime_ns, hex SHA-256): each shipped file is hashed once per process
_SHIPPED_DIGESTS: Dict[str, Tuple[int, int, str]] = {}


class CheckpointError(RuntimeError):
    """A checkpoint could not be fetched, read or matched to the model."""


def weight_files(folder: str) -> List[str]:
    """Names of the files whose digests ``folder``'s SHA256SUMS records: every
    file but SHA256SUMS itself, hidden files and temporary ``*.tmp`` files."""
    return sorted(n for n in os.listdir(folder)
                  if osp.isfile(osp.join(folder, n)) and n != WEIGHT_SUMS_NAME
                  and not n.startswith('.') and not n.endswith('.tmp'))


def read_weight_sums(folder: str) -> Dict[str, str]:
    """``name -> hex SHA-256`` from ``folder``/SHA256SUMS (``sha256sum`` format:
    ``<hex>  <name>`` per line); {} when there is no such file."""
    path = osp.join(folder, WEIGHT_SUMS_NAME)
    if not osp.isfile(path):
        return {}
    sums = {}
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            parts = line.rstrip('\n').split(None, 1)
            if not parts:
                continue
            if len(parts) != 2 or len(parts[0]) != 64:
                raise CheckpointError(f'{path}:{number}: expected "<sha256 hex>  <name>"; '
                                      'rewrite it with python tools/update_weight_sums.py')
            sums[parts[1].lstrip('*')] = parts[0].lower()  # '*': sha256sum's binary mode
    return sums


def update_weight_sums(folder: Optional[str] = None) -> Dict[str, List[str]]:
    """Rewrite ``folder``/SHA256SUMS (default: the shipped weights) from its
    files (atomically); returns the names ``added``, ``changed`` and ``removed``."""
    from .atomic import atomic_write, file_sha256
    folder = folder or SHIPPED_WEIGHTS_DIR
    if not osp.isdir(folder):
        raise NotADirectoryError(f'{folder}: no such folder; give the folder of the weights')
    old = read_weight_sums(folder)
    new = {name: file_sha256(osp.join(folder, name)) for name in weight_files(folder)}
    text = ''.join(f'{digest}  {name}\n' for name, digest in new.items())
    atomic_write(osp.join(folder, WEIGHT_SUMS_NAME), lambda f: f.write(text.encode()))
    return dict(added=[n for n in new if n not in old],
                changed=[n for n in new if n in old and old[n] != new[n]],
                removed=[n for n in old if n not in new])


def _digest_once(path: str) -> str:
    from .atomic import file_sha256
    real, st = osp.realpath(path), os.stat(path)
    cached = _SHIPPED_DIGESTS.get(real)
    if cached is None or cached[:2] != (st.st_size, st.st_mtime_ns):  # rehash a changed file
        cached = (st.st_size, st.st_mtime_ns, file_sha256(path))
        _SHIPPED_DIGESTS[real] = cached
    return cached[2]


def check_shipped_file(path: str) -> None:
    """Raise :class:`CheckpointError` (one line) when ``path`` is one of the
    shipped weights (a file in :data:`SHIPPED_WEIGHTS_DIR`) and its SHA-256 is
    not the one recorded in SHA256SUMS there; other files are not checked."""
    folder = SHIPPED_WEIGHTS_DIR
    if osp.realpath(osp.dirname(osp.abspath(path))) != osp.realpath(folder):
        return
    name = osp.basename(path)
    record = osp.join(folder, WEIGHT_SUMS_NAME)
    expected = read_weight_sums(folder).get(name)
    if expected is None:
        raise CheckpointError(
            f'{path} is a shipped weight file but {record} has no digest for it; reinstall '
            'the package (pip install -e . again), or record a new file with python '
            'tools/update_weight_sums.py')
    actual = _digest_once(path)
    if actual != expected:
        raise CheckpointError(
            f'{path} is damaged: its SHA-256 is {actual[:12]}..., {record} expects '
            f'{expected[:12]}...; restore the file (from git, or reinstall the package: '
            'pip install -e . again)')


def ema_key(rate: float) -> str:
    """Key of the EMA copy at ``rate`` in a training checkpoint: its weights
    are ``ema_unets.<key>.module.*`` (a ModuleDict key: no dots allowed)."""
    return 'ema_' + repr(float(rate)).replace('.', 'p')


def is_url(path: str) -> bool:
    return urlparse(str(path)).scheme in ('http', 'https')


def cached_path_for_url(url: str) -> str:
    """Where a URL checkpoint lives in the torch hub cache."""
    filename = osp.basename(urlparse(url).path) or 'checkpoint.pt'
    return osp.join(torch.hub.get_dir(), 'checkpoints', filename)


def find_local_file(path: str) -> Optional[str]:
    """``path`` if it exists, else the same path under the repository root
    (configs name the shipped weights relative to it), else None."""
    path = osp.expanduser(str(path))
    if osp.isfile(path):
        return path
    if not osp.isabs(path):
        shipped = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), path)
        if osp.isfile(shipped):
            return shipped
    return None


def resolve_checkpoint(path_or_url: str, local_hint: str = '--checkpoint PATH',
                       progress: bool = True) -> str:
    """Return a local file for a path or an http(s) URL.

    URLs download once into ``$TORCH_HOME/hub/checkpoints`` (a progress bar;
    a partial download never takes the final name).

    Args:
        path_or_url: local path or http(s) URL.
        local_hint: how the caller takes a local file, named in errors.

    Raises:
        CheckpointError: the file does not exist, or the download failed.
    """
    path_or_url = str(path_or_url)
    if not is_url(path_or_url):
        path = find_local_file(path_or_url)
        if path is None:
            raise CheckpointError(f'checkpoint file not found: {path_or_url}')
        return path
    cached = cached_path_for_url(path_or_url)
    if osp.isfile(cached):
        return cached
    os.makedirs(osp.dirname(cached), exist_ok=True)
    try:
        # writes to a temporary file and renames it when complete
        torch.hub.download_url_to_file(path_or_url, cached, progress=progress)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, 'reason', exc)
        raise CheckpointError(
            f'could not download {path_or_url} ({reason}). Without network access, '
            f'fetch it elsewhere, then pass the local file with {local_hint} (or put it '
            f'at {cached}).') from None
    return cached


def read_checkpoint(path: str) -> Mapping:
    """``torch.load`` a local file with ``weights_only=True`` on the CPU; a
    shipped weight file is checked against its recorded SHA-256 first.

    Raises:
        FileNotFoundError: no such file. CheckpointError: a damaged shipped
        file, or anything else that is not a readable PyTorch checkpoint, in
        one line.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    check_shipped_file(path)
    with open(path, 'rb') as f:
        head = f.read(2)
    # torch.save writes a zip archive ('PK'); legacy files are pickles (protocol >= 2: 0x80)
    if head[:2] != b'PK' and head[:1] != b'\x80':
        raise CheckpointError(f'{path} is not a PyTorch checkpoint (neither a zip archive nor '
                              'a pickle: a text file, an image, or another format?)')
    try:
        try:
            return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        except RuntimeError as exc:
            if 'mmap' not in str(exc):
                raise
            # legacy (non-zip) pickles cannot be memory-mapped
            return torch.load(path, map_location='cpu', weights_only=True)
    except (EOFError, OSError, zipfile.BadZipFile, RuntimeError, ValueError,
            pickle.UnpicklingError) as exc:
        if 'Weights only load failed' in str(exc):
            raise CheckpointError(
                f'{path} holds objects other than tensors and plain containers; '
                'refusing to unpickle it (weights_only=True). Re-save its state dict '
                'with torch.save(model.state_dict(), path).') from None
        size = osp.getsize(path)
        raise CheckpointError(
            f'{path} ({size} bytes) is truncated or corrupt ({type(exc).__name__}: '
            f'{str(exc).splitlines()[0] if str(exc) else "no detail"}); '
            'download it again.') from None


def extract_unet_state_dict(checkpoint: Mapping, ema: Optional[float] = None
                            ) -> OrderedDict[str, torch.Tensor]:
    """The bare UNet state dict inside a raw or mmengine checkpoint.

    Accepts a raw UNet state dict, ``{'state_dict': {...}}``, and keys under
    ``unet.`` / ``module.unet.`` (DDP) / ``model.`` (MMagic's port).

    Args:
        ema: for checkpoints saved by training, take the EMA copy at this
            rate instead of the online weights. Raw files (the released ones
            are EMA weights already) are returned as they are.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) \
        else None
    if not isinstance(state, Mapping):
        raise CheckpointError('checkpoint holds no state dict '
                              f'(found {type(checkpoint).__name__})')
    if ema is not None:
        rates = sorted({k.split('ema_unets.', 1)[1].split('.', 1)[0]
                        for k in state if 'ema_unets.' in k})
        wanted = ema_key(ema)
        if rates and wanted not in rates:
            raise CheckpointError(
                f'the checkpoint has no EMA at rate {ema}; it has '
                f'{", ".join(r[4:].replace("p", ".") for r in rates)} (sample_ema=...)')
        if rates:
            marker = f'ema_unets.{wanted}.module.'
            return OrderedDict((k.split(marker, 1)[1], v) for k, v in state.items()
                               if marker in k and torch.is_tensor(v))
    if UNET_MARKER_KEY in state:
        return OrderedDict((k, v) for k, v in state.items() if torch.is_tensor(v))
    for prefix in UNET_PREFIXES:
        if prefix + UNET_MARKER_KEY in state:
            return OrderedDict((k[len(prefix):], v) for k, v in state.items()
                               if k.startswith(prefix) and torch.is_tensor(v))
    some = ', '.join(list(state)[:5])
    raise CheckpointError('checkpoint holds no ADM UNet weights (no '
                          f'"{UNET_MARKER_KEY}" key; first keys: {some})')


def shape_signature(named: Iterable[Tuple[str, torch.Tensor]]) -> Dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in named}


def describe_mismatch(expected: Mapping[str, tuple], found: Mapping[str, tuple],
                      limit: int = 3) -> str:
    """'missing a, b; unexpected c; shape x: (1,) in file vs (2,) in model'."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [k for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing keys (e.g. {", ".join(missing[:limit])})')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected keys (e.g. '
                     f'{", ".join(unexpected[:limit])})')
    for k in shapes[:limit]:
        parts.append(f'{k}: {tuple(found[k])} in file vs {tuple(expected[k])} in model')
    if len(shapes) > limit:
        parts.append(f'{len(shapes) - limit} more shape mismatches')
    return '; '.join(parts)


def load_unet_state_dict(path_or_url: str, local_hint: str = '--checkpoint PATH',
                         ema: Optional[float] = None) -> OrderedDict[str, torch.Tensor]:
    """Fetch (if a URL), read and unwrap a checkpoint into a UNet state dict."""
    path = resolve_checkpoint(path_or_url, local_hint)
    return extract_unet_state_dict(read_checkpoint(path), ema=ema)
