#!/usr/bin/env python
"""Check the wheels carried to the GPU machine for tools/gpu_check.py.

The machine has no network: a package is there only if its image has it
(``tools/gpu_check_device_packages.txt``) or it travels as a wheel
(``tools/gpu_check_wheels.txt``, downloaded by ``tools/gpu_check_wheels.sh``
and installed there with ``pip install --no-deps``, so nothing checks their
needs there). This tool reads each wheel's ``Requires-Dist`` (markers
evaluated for the machine's CPython 3.12 on Linux x86-64; extras ignored) and
reports every requirement that is neither carried nor installed there, or
whose known version there does not fit::

    python tools/gpu_check_wheels.py check              # the committed manifest
    python tools/gpu_check_wheels.py check --wheels .whl   # the real wheels too
    python tools/gpu_check_wheels.py manifest --wheels .whl  # rewrite the manifest

The manifest (``tools/gpu_check_wheels.json``) holds each carried wheel's
file name, version and ``Requires-Dist``, generated from the downloaded
wheels, so that the check runs where no wheel is (CI: no downloads).
Exit status 0 when nothing is missing, 1 if something is.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import re
import sys
import zipfile
from email.parser import Parser
from glob import glob
from typing import Dict, List, Optional, Sequence, Tuple

HERE = osp.dirname(osp.abspath(__file__))
DECLARED = osp.join(HERE, 'gpu_check_wheels.txt')
DEVICE = osp.join(HERE, 'gpu_check_device_packages.txt')
MANIFEST = osp.join(HERE, 'gpu_check_wheels.json')
#: the GPU machine's interpreter, for markers (python3 there is 3.12.3)
DEVICE_ENV = dict(python_version='3.12', python_full_version='3.12.3', os_name='posix',
                  sys_platform='linux', platform_system='Linux', platform_machine='x86_64',
                  platform_release='', platform_version='', implementation_name='cpython',
                  implementation_version='3.12.3', platform_python_implementation='CPython')
#: a distribution another one stands in for there, with the same import name:
#: mmengine requires opencv-python, the image has opencv-python-headless (cv2)
PROVIDED_BY = {'opencv-python': 'opencv-python-headless'}


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one '-'."""
    return re.sub(r'[-_.]+', '-', name).lower()


def _pinned_lines(path: str) -> Dict[str, Optional[str]]:
    """``name==version`` or ``name`` lines (comments after '#') -> {name: version}."""
    out: Dict[str, Optional[str]] = {}
    with open(path) as f:
        for raw in f:
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            name, _, version = line.partition('==')
            key = normalize(name.strip())
            if key in out:
                raise ValueError(f'{path}: {name.strip()} is listed twice')
            out[key] = version.strip() or None
    return out


def read_declared(path: str = DECLARED) -> Dict[str, str]:
    """The carried wheels: {normalized name: version}; each must be pinned."""
    declared = _pinned_lines(path)
    unpinned = [n for n, v in declared.items() if not v]
    if unpinned:
        raise ValueError(f'{path}: pin every wheel (name==version): {", ".join(unpinned)}')
    return declared  # type: ignore[return-value]


def read_device(path: str = DEVICE) -> Dict[str, Optional[str]]:
    """The machine's packages: {normalized name: version or None (not recorded)}."""
    return _pinned_lines(path)


def wheel_metadata(path: str) -> Dict:
    """Name, version and Requires-Dist lines of a wheel file (its METADATA)."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist()
                 if n.count('/') == 1 and n.endswith('.dist-info/METADATA')]
        if len(names) != 1:
            raise ValueError(f'{path}: expected one *.dist-info/METADATA, found {names}')
        meta = Parser().parsestr(zf.read(names[0]).decode('utf-8'), headersonly=True)
    return dict(name=meta['Name'], version=meta['Version'], file=osp.basename(path),
                requires_dist=[r.strip() for r in meta.get_all('Requires-Dist') or []])


def read_wheels(folder: str) -> Dict[str, Dict]:
    """{normalized name: wheel_metadata} of the ``*.whl`` files in ``folder``."""
    out: Dict[str, Dict] = {}
    for path in sorted(glob(osp.join(folder, '*.whl'))):
        meta = wheel_metadata(path)
        key = normalize(meta['name'])
        if key in out:
            raise ValueError(f'{folder}: two wheels of {meta["name"]} ({out[key]["file"]}, '
                             f'{meta["file"]}): pip installs neither; keep one')
        out[key] = meta
    return out


def needed(requires_dist: Sequence[str], env: Optional[dict] = None) -> List:
    """The ``packaging`` Requirements among ``requires_dist`` that apply on the
    machine: markers evaluated for ``env`` (default :data:`DEVICE_ENV`) with no
    extra chosen, so requirements of extras drop out."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # a bare interpreter: pip's copy
        from pip._vendor.packaging.requirements import Requirement
    env = dict(DEVICE_ENV if env is None else env, extra='')
    out = []
    for line in requires_dist:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            out.append(req)
    return out


def problems(wheels: Dict[str, Dict], device: Dict[str, Optional[str]],
             env: Optional[dict] = None) -> List[str]:
    """What the carried ``wheels`` need that the machine will not have, one
    line each (empty: all there). A need is met by a carried wheel whose version
    fits, or by a package of the image (whose version, where recorded, fits;
    where not recorded it is taken to fit)."""
    out = []
    for _, meta in sorted(wheels.items()):
        for req in needed(meta['requires_dist'], env):
            name = normalize(req.name)
            where = 'carried'
            if name in wheels:
                version: Optional[str] = wheels[name]['version']
            elif name in device or PROVIDED_BY.get(name) in device:
                where = 'on the machine'
                version = device.get(name, device.get(PROVIDED_BY.get(name, ''), None))
            else:
                out.append(f'{meta["name"]} {meta["version"]} requires {req}: {req.name} is '
                           'neither carried (tools/gpu_check_wheels.txt) nor on the GPU '
                           'machine (tools/gpu_check_device_packages.txt)')
                continue
            if version is not None and req.specifier and \
                    not req.specifier.contains(version, prereleases=True):
                out.append(f'{meta["name"]} {meta["version"]} requires {req}; {where}: '
                           f'{req.name} {version}')
    return out


def read_manifest(path: str = MANIFEST) -> Dict[str, Dict]:
    with open(path) as f:
        return {normalize(k): v for k, v in json.load(f)['wheels'].items()}


def write_manifest(wheels: Dict[str, Dict], path: str = MANIFEST) -> None:
    data = dict(note='Requires-Dist of each wheel of tools/gpu_check_wheels.txt, read from '
                'the downloaded wheels by `python tools/gpu_check_wheels.py manifest --wheels '
                '.whl`; tools/gpu_check_wheels.py check and tests/tools/test_gpu_check.py '
                'read it', wheels={meta['name']: dict(version=meta['version'], file=meta['file'],
                                                      requires_dist=meta['requires_dist'])
                                   for _, meta in sorted(wheels.items())})
    with open(path, 'w') as f:
        json.dump(data, f, indent=1)
        f.write('\n')


def declared_vs(wheels: Dict[str, Dict], declared: Dict[str, str], what: str) -> List[str]:
    """Lines for wheels that differ from the declared list (name or version)."""
    out = [f'{declared_name}=={v} is declared but not in {what}'
           for declared_name, v in sorted(declared.items()) if declared_name not in wheels]
    for key, meta in sorted(wheels.items()):
        if key not in declared:
            out.append(f'{meta["file"]} is in {what} but not declared in '
                       'tools/gpu_check_wheels.txt (remove it, or declare it)')
        elif meta['version'] != declared[key]:
            out.append(f'{meta["name"]}: {what} has {meta["version"]}, '
                       f'tools/gpu_check_wheels.txt declares {declared[key]}')
    return out


def check(wheels_dir: Optional[str] = None, manifest: str = MANIFEST,
          declared_path: str = DECLARED, device_path: str = DEVICE) -> List[str]:
    """Every problem found: the manifest against the declared list and the
    machine's packages; with ``wheels_dir``, the real wheels likewise and
    against the manifest."""
    declared = read_declared(declared_path)
    device = read_device(device_path)
    recorded = read_manifest(manifest)
    out = declared_vs(recorded, declared, 'the manifest (rerun its `manifest` command)')
    out += problems(recorded, device)
    if wheels_dir is not None:
        real = read_wheels(wheels_dir)
        out += declared_vs(real, declared, wheels_dir)
        out += [f'{meta["file"]}: its Requires-Dist differs from the manifest\'s (rerun '
                'the `manifest` command)' for key, meta in sorted(real.items())
                if key in recorded and meta['requires_dist'] != recorded[key]['requires_dist']]
        out += [p for p in problems(real, device) if p not in out]
    return out


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Check the wheels carried for tools/gpu_check.py')
    p.add_argument('command', choices=('check', 'manifest'))
    p.add_argument('--wheels', help='folder of the downloaded wheels (.whl)')
    p.add_argument('--manifest', default=MANIFEST, help='default %(default)s')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == 'manifest':
        if not args.wheels:
            print('error: manifest needs --wheels FOLDER', file=sys.stderr)
            return 2
        wheels = read_wheels(args.wheels)
        found: Tuple[str, ...] = tuple(declared_vs(wheels, read_declared(), args.wheels))
        if found:
            print('\n'.join(found), file=sys.stderr)
            return 1
        write_manifest(wheels, args.manifest)
        print(f'wrote {args.manifest} ({len(wheels)} wheels)')
    found = tuple(check(args.wheels, args.manifest))
    if found:
        print('\n'.join(found), file=sys.stderr)
        return 1
    print('every requirement of the carried wheels is carried or on the GPU machine')
    return 0


if __name__ == '__main__':
    sys.exit(main())
