"""The torch-free part of opening an exported file, startable before the imports.

Importing the package costs seconds (torch, mmengine); so does OpenVINO
compiling, or importing from its cache, a large model. This module imports
the standard library only, so that ``tools/sample.py`` can load it from its
file (as ``mmagic_cm.export.early``, the name the package finds it under
later) and start OpenVINO on a thread (:func:`start_openvino`)
before its own imports; ``OpenVINOFormat.open`` then takes that compiled
model (:func:`take_openvino`) instead of compiling again, when it was made
from the same file with the same settings. It also holds what both sides
need: the runtimes' cache folders and reading the metadata from the end of
an OpenVINO ``.xml`` (not the whole file).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import os.path as osp
import threading
from typing import Dict, Optional, Tuple
from xml.etree import ElementTree

#: metadata key (ONNX metadata_props, OpenVINO rt_info)
METADATA_KEY = 'mmagic_cm'
#: bytes read from the end of an .xml for its model-level rt_info
XML_TAIL = 1 << 20


def engine_cache_dir(runtime: str, path: Optional[str] = None) -> str:
    """Where a runtime keeps what it compiles from exported files (TensorRT
    engines take minutes to build; OpenVINO's compiled CPU models seconds):
    ``$XDG_CACHE_HOME/mmagic_cm/<runtime>`` (``~/.cache/...``), and for
    ``path`` a folder of its own, named from the file's absolute path, size and
    modification time (and its ``.bin``'s for OpenVINO): the runtimes name
    what they cache after the graph, not always the weights, so a file
    exported again (or another one of the same name) must not find the old
    one."""
    root = os.environ.get('XDG_CACHE_HOME') or osp.join(osp.expanduser('~'), '.cache')
    folder = osp.join(root, 'mmagic_cm', runtime)
    if path is None:
        return folder
    parts = [osp.abspath(path)]
    for f in (path, osp.splitext(path)[0] + '.bin'):
        if osp.isfile(f):
            st = os.stat(f)
            parts.append(f'{st.st_size}:{st.st_mtime_ns}')
    return osp.join(folder, hashlib.sha256(':'.join(parts).encode()).hexdigest()[:16])


def xml_metadata_text(path: str) -> Optional[str]:
    """The ``mmagic_cm`` entry of an OpenVINO ``.xml``'s model-level rt_info
    (None if absent). Read from the file's last MiB, where OpenVINO writes
    the model's rt_info after every layer (parsing a large model's whole
    .xml takes a third of a second); the whole file where that fails.

    Raises:
        ElementTree.ParseError: not an XML file.
    """
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - XML_TAIL))
        tail = f.read()
    start = tail.rfind(b'<rt_info')
    end = tail.rfind(b'</rt_info>')
    if 0 <= start < end and tail[end + len(b'</rt_info>'):].strip() == b'</net>':
        found = ElementTree.fromstring(tail[start:end + len(b'</rt_info>')]).find(METADATA_KEY)
        return None if found is None else found.get('value')
    root = ElementTree.parse(path).getroot()
    node = root.find(f'rt_info/{METADATA_KEY}') if root.tag == 'net' else None
    return None if node is None else node.get('value')


def openvino_config(dtype: Optional[str], threads: Optional[int] = None) -> Dict:
    """OpenVINO's CPU compile settings for a file exported in ``dtype``:
    bf16 files infer in bf16, the others in f32 (OpenVINO would pick bf16 on
    CPUs that have it, losing the file's precision)."""
    config = {}
    if dtype == 'bf16':
        config['INFERENCE_PRECISION_HINT'] = 'bf16'
    elif dtype in ('fp32', 'fp16', 'int8'):
        config['INFERENCE_PRECISION_HINT'] = 'f32'
    if threads:
        config['INFERENCE_NUM_THREADS'] = threads
    return config


def openvino_cache(path: str) -> Optional[str]:
    """The folder OpenVINO keeps ``path``'s compiled model in (created), or
    None: caching off (``MMAGIC_CM_OPENVINO_CACHE=0``) or a read-only home."""
    if os.environ.get('MMAGIC_CM_OPENVINO_CACHE', '1') == '0':
        return None
    cache = engine_cache_dir('openvino', path)
    try:
        os.makedirs(cache, exist_ok=True)
    except OSError:
        return None
    return cache


def compile_openvino(ov, path: str, config: Dict, cache: Optional[str]):
    """``path`` compiled for the CPU by OpenVINO (module ``ov``), through
    ``cache`` (a later process imports the compiled model instead of
    compiling again: seconds for large int8 models)."""
    core = ov.Core()
    if cache is not None:
        core.set_property({'CACHE_DIR': cache})
    return core.compile_model(path, 'CPU', config)


# (key) -> (thread, result dict); a key is what the compiled model depends on
_started: Dict[Tuple, Tuple[threading.Thread, Dict]] = {}


def _key(path: str, config: Dict, cache: Optional[str]) -> Tuple:
    return osp.abspath(path), json.dumps(config, sort_keys=True), cache


def start_openvino(path: str, threads: Optional[int] = None) -> bool:
    """Start compiling the OpenVINO file ``path`` on a daemon thread, with the
    settings its metadata asks for; True if started. Anything wrong (no such
    file, no metadata, no openvino, a failed compile) is left for the
    regular path to report: this only saves time."""
    try:
        text = xml_metadata_text(path) if path.lower().endswith('.xml') else None
        dtype = json.loads(text).get('dtype') if text else None
    except (OSError, ValueError, ElementTree.ParseError, AttributeError):
        return False
    if dtype is None:
        return False
    config = openvino_config(dtype, threads)
    cache = openvino_cache(path)
    key = _key(path, config, cache)
    if key in _started:
        return True
    result: Dict = {}

    def run():
        try:
            import openvino as ov
            result['compiled'] = compile_openvino(ov, path, config, cache)
        except Exception:  # noqa: BLE001 (reported by the regular path)
            pass

    thread = threading.Thread(target=run, name='mmagic_cm-openvino', daemon=True)
    _started[key] = (thread, result)
    thread.start()
    return True


def take_openvino(path: str, config: Dict, cache: Optional[str]):
    """The model :func:`start_openvino` compiled from ``path`` with ``config``
    and ``cache`` (waiting for it), or None: none started, or it failed."""
    entry = _started.pop(_key(path, config, cache), None)
    if entry is None:
        return None
    thread, result = entry
    thread.join()
    return result.get('compiled')


@atexit.register  # a thread still in OpenVINO at teardown could crash it
def _join_all() -> None:
    for thread, _ in list(_started.values()):
        thread.join()

