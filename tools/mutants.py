#!/usr/bin/env python
"""Mutation check: do the tests fail when the math is wrong?

    python tools/mutants.py                 # every mutant of tools/mutants.yml
    python tools/mutants.py --list          # what is in the list
    python tools/mutants.py --only ema-rate-swapped --only ict-weights-negative
    python tools/mutants.py --area training # the mutants of one area
    python tools/mutants.py --count-guards  # every failing test per mutant (slower)

Each mutant of the list (``tools/mutants.yml``) is a single-line bug a
developer could write: in ``file``, the exact text ``original`` becomes
``mutant``. The tool copies the repository (the files git tracks plus the
new ones it does not ignore, as they are in the working tree) to a
temporary folder, checks that Python imports the *copy's* ``mmagic_cm``
there, runs the listed tests once unchanged (they must pass), then applies
each mutant alone, runs its ``tests`` (``pytest -x -q``, ``OMP_NUM_THREADS=1``)
and puts the file back. A mutant the tests do not fail on *survives*.

Exit status: 0 when every mutant is killed; 1 when one survives, when a
mutant's ``original`` text is no longer in its file (the source moved on:
update the entry), or when a mutant breaks the import instead of the math
(pytest's collection error: not a kill, fix the entry); 2 on bad usage.
See docs/testing.md.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_LIST = osp.join(ROOT, 'tools', 'mutants.yml')
AREAS = ('sampling', 'training', 'editing', 'export', 'conversion')
KEYS = {'name', 'area', 'file', 'original', 'mutant', 'tests', 'description', 'occurrence'}
REQUIRED = KEYS - {'occurrence'}
#: folders never copied (caches, training outputs, virtualenvs)
SKIP_DIRS = {'__pycache__', '.git', 'work_dirs', '.pytest_cache', '.ruff_cache', 'venv', '.venv',
             'build', 'dist'}


class MutantListError(ValueError):
    """The list is malformed, or an entry no longer fits its file."""


def load_mutants(path: str = DEFAULT_LIST, root: str = ROOT) -> List[Dict]:
    """The list's entries, checked against the sources under ``root``: every key
    known, names unique, areas known, the file present, ``original`` found
    (exactly once, or at least ``occurrence`` times), the mutant different, the
    test paths present."""
    import yaml
    with open(path) as f:
        entries = yaml.safe_load(f)
    if not isinstance(entries, list) or not entries:
        raise MutantListError(f'{path}: expected a list of mutants')
    seen = set()
    for i, entry in enumerate(entries):
        where = f'{path}: entry {i + 1}'
        if not isinstance(entry, dict):
            raise MutantListError(f'{where}: expected a mapping')
        missing, unknown = REQUIRED - set(entry), set(entry) - KEYS
        if missing or unknown:
            raise MutantListError(f'{where} ({entry.get("name")}): missing {sorted(missing)}, '
                                  f'unknown {sorted(unknown)}')
        name = entry['name']
        if name in seen:
            raise MutantListError(f'{where}: name {name!r} used twice')
        seen.add(name)
        if entry['area'] not in AREAS:
            raise MutantListError(f'{name}: area {entry["area"]!r}; choose {", ".join(AREAS)}')
        if isinstance(entry['tests'], str):
            entry['tests'] = [entry['tests']]
        for test in entry['tests']:
            if not osp.exists(osp.join(root, test.split('::')[0])):
                raise MutantListError(f'{name}: test path {test} does not exist')
        if entry['original'] == entry['mutant']:
            raise MutantListError(f'{name}: the mutant is the original')
        check_applies(entry, root)
    return entries


def check_applies(entry: Dict, root: str) -> None:
    """Raise MutantListError unless ``original`` is where the entry says."""
    path = osp.join(root, entry['file'])
    if not osp.isfile(path):
        raise MutantListError(f'{entry["name"]}: {entry["file"]} does not exist')
    with open(path, encoding='utf-8') as f:
        source = f.read()
    count = source.count(entry['original'])
    occurrence = entry.get('occurrence')
    if count == 0:
        raise MutantListError(f'{entry["name"]}: {entry["original"]!r} is no longer in '
                              f'{entry["file"]} (the source changed: update the entry)')
    if occurrence is None and count > 1:
        raise MutantListError(f'{entry["name"]}: {entry["original"]!r} occurs {count} times in '
                              f'{entry["file"]}; give occurrence: N (1-based)')
    if occurrence is not None and not 1 <= int(occurrence) <= count:
        raise MutantListError(f'{entry["name"]}: occurrence {occurrence} of {count}')


def mutate(source: str, entry: Dict) -> str:
    """``source`` with the entry's ``original`` (its ``occurrence``-th) replaced."""
    n = int(entry.get('occurrence') or 1)
    start = -1
    for _ in range(n):
        start = source.index(entry['original'], start + 1)
    return source[:start] + entry['mutant'] + source[start + len(entry['original']):]


def repo_files(root: str) -> List[str]:
    """Files to copy: git's tracked and untracked-but-not-ignored files (the
    working tree's content), or, without git, everything but caches."""
    try:
        out = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=root,
                             capture_output=True, check=True).stdout.decode()
        files = [f for f in out.split('\0') if f]
        return [f for f in files if osp.isfile(osp.join(root, f))
                and not set(f.split('/')[:-1]) & SKIP_DIRS]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith('.egg-info')]
            files += [osp.relpath(osp.join(folder, n), root) for n in names
                      if not n.endswith('.pyc')]
        return files


def copy_repo(root: str, dest: str) -> int:
    files = repo_files(root)
    for rel in files:
        target = osp.join(dest, rel)
        os.makedirs(osp.dirname(target), exist_ok=True)
        shutil.copy2(osp.join(root, rel), target)
    return len(files)


def child_env(copy: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONDONTWRITEBYTECODE='1',
               PYTHONPATH=copy + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH')
                                  else ''))
    return env


def check_import(copy: str) -> str:
    """Path of the ``mmagic_cm`` Python imports in the copy; raises unless it is the copy's."""
    out = subprocess.run([sys.executable, '-c', 'import mmagic_cm; print(mmagic_cm.__file__)'],
                         cwd=copy, env=child_env(copy), capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    path = lines[-1] if lines else ''
    real = osp.realpath(copy)
    if out.returncode or not osp.realpath(path).startswith(real + os.sep):
        errors = out.stderr.strip().splitlines()
        raise RuntimeError(f'in the copy, Python imports mmagic_cm from {path or "nowhere"} '
                           f'(expected under {real})' + (f'; {errors[-1]}' if errors else ''))
    return path


def run_tests(copy: str, tests: List[str], timeout: float, every: bool = False) -> Dict:
    """``pytest -x -q`` on ``tests`` in the copy (``every``: without ``-x``, to
    count the failing tests): dict(rc, seconds, failed, all_failed, output)."""
    cmd = [sys.executable, '-m', 'pytest', *([] if every else ['-x']), '-q', '-rfE', '-p',
           'no:cacheprovider', *tests]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=copy, env=child_env(copy), capture_output=True,
                             text=True, timeout=timeout)
        rc, text = out.returncode, out.stdout + out.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 'timeout'
        text = exc.stdout.decode(errors='replace') if isinstance(exc.stdout, bytes) \
            else (exc.stdout or '')
    failed = re.findall(r'^(?:FAILED|ERROR) (\S+)', text, flags=re.M)
    return dict(rc=rc, seconds=time.perf_counter() - t0, failed=failed[0] if failed else None,
                all_failed=failed, output=text)


def classify(result: Dict) -> str:
    """'killed' (a test failed, or timed out), 'survived' (all passed), 'error'
    (pytest could not collect or run: the mutant broke an import, not the math)."""
    if result['rc'] in ('timeout', 1):
        return 'killed'
    if result['rc'] == 0:
        return 'survived'
    return 'error'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--list', action='store_true', help='print the mutants and exit')
    p.add_argument('--only', action='append', metavar='NAME',
                   help='run this mutant (repeat for several)')
    p.add_argument('--area', action='append', choices=AREAS,
                   help='run the mutants of this area (repeatable)')
    p.add_argument('--mutants', default=DEFAULT_LIST, help='the list (default %(default)s)')
    p.add_argument('--timeout', type=float, default=900,
                   help='seconds per pytest run (a mutant that hangs the tests counts as '
                   'killed, and is listed; default %(default)s)')
    p.add_argument('--no-baseline', action='store_true',
                   help='skip the run of the unchanged tests (they must pass for a failure '
                   'to mean anything)')
    p.add_argument('--count-guards', action='store_true',
                   help='run every test of a mutant (no -x) and name all that fail: how many '
                   'independent guards each bug has (slower)')
    p.add_argument('--keep', action='store_true', help='keep the temporary copy')
    p.add_argument('-v', '--verbose', action='store_true',
                   help="print the tests' output of survivors and errors")
    return p.parse_args(argv)


def select(entries: List[Dict], args) -> List[Dict]:
    if args.only:
        known = {e['name'] for e in entries}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            raise SystemExit(f'error: no mutant named {", ".join(unknown)} (see --list)')
        entries = [e for e in entries if e['name'] in args.only]
    if args.area:
        entries = [e for e in entries if e['area'] in args.area]
    return entries


def run_one(i: int, total: int, entry: Dict, copy: str, args) -> str:
    """Apply one mutant in the copy, run its tests, restore; print and return its status."""
    path = osp.join(copy, entry['file'])
    with open(path, encoding='utf-8') as f:
        source = f.read()
    head = f'[{i:>2}/{total}] {entry["name"]:<34}'
    try:
        check_applies(entry, copy)
    except MutantListError as exc:
        print(f'{head} stale: {exc}', flush=True)
        return 'stale'
    try:
        with open(path, 'w', encoding='utf-8') as f:
            f.write(mutate(source, entry))
        result = run_tests(copy, entry['tests'], args.timeout, args.count_guards)
    finally:
        with open(path, 'w', encoding='utf-8') as f:
            f.write(source)
    status = classify(result)
    by = ''
    if result['rc'] == 'timeout':
        status, by = 'timeout', f' after {args.timeout:.0f} s'
    elif status == 'killed' and args.count_guards:
        by = f' by {len(result["all_failed"])} test(s): {", ".join(result["all_failed"])}'
    elif status == 'killed' and result['failed']:
        by = f' by {result["failed"]}'
    print(f'{head} {status}{by} ({result["seconds"]:.0f} s)', flush=True)
    if status not in ('killed', 'timeout') and args.verbose:
        print(result['output'][-3000:])
    return status


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        entries = select(load_mutants(args.mutants), args)
    except MutantListError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.list:
        for e in entries:
            print(f'{e["name"]:<34} {e["area"]:<11} {e["file"]}\n    {e["description"]}')
        print(f'{len(entries)} mutants')
        return 0
    if not entries:
        print('error: no mutant selected', file=sys.stderr)
        return 2

    t_start = time.perf_counter()
    copy = tempfile.mkdtemp(prefix='mmagic_cm_mutants_')
    results = {}
    try:
        n = copy_repo(ROOT, copy)
        try:
            where = check_import(copy)
        except RuntimeError as exc:
            print(f'error: {exc} (run it with the Python that has the project installed)',
                  file=sys.stderr)
            return 2
        print(f'copied {n} files to {copy}; the tests import {osp.relpath(where, copy)} there')
        if not args.no_baseline:
            tests = sorted({t for e in entries for t in e['tests']})
            base = run_tests(copy, tests, args.timeout)
            print(f'unchanged: {len(tests)} test paths in {base["seconds"]:.0f} s: '
                  f'{"pass" if base["rc"] == 0 else "FAIL"}', flush=True)
            if base['rc'] != 0:
                print(base['output'][-3000:])
                print('error: the tests fail without any mutant; fix them first',
                      file=sys.stderr)
                return 1
        for i, entry in enumerate(entries, 1):
            results[entry['name']] = run_one(i, len(entries), entry, copy, args)
    finally:
        if args.keep:
            print(f'kept the copy: {copy}')
        else:
            shutil.rmtree(copy, ignore_errors=True)
    survivors = [n for n, s in results.items() if s == 'survived']
    errors = [n for n, s in results.items() if s in ('error', 'stale')]
    timeouts = [n for n, s in results.items() if s == 'timeout']
    minutes = (time.perf_counter() - t_start) / 60
    print(f'{len(results)} mutants: {len(results) - len(survivors) - len(errors)} killed'
          f'{f" ({len(timeouts)} by timeout)" if timeouts else ""}, '
          f'{len(survivors)} survived, {len(errors)} errors in {minutes:.1f} min')
    if timeouts:
        print('timed out (killed if the bug hangs the tests; on a busy machine rerun them '
              'with a larger --timeout): ' + ', '.join(timeouts))
    if survivors:
        print('survivors: ' + ', '.join(survivors))
    if errors:
        print('errors (the original text moved, or the mutant broke collection or import; '
              'fix the entry): ' + ', '.join(errors))
    return 1 if survivors or errors else 0


if __name__ == '__main__':
    sys.exit(main())
