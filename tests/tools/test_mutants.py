"""tools/mutants.py: the list still applies to the sources, mutants are valid
Python, and (slow) the tool kills and reports bugs in a copy of the repository."""
import ast
import os.path as osp
import runpy
from types import SimpleNamespace

import pytest

from mmagic_cm.testing import ROOT, run_tool

MUTANTS = runpy.run_path(osp.join(ROOT, 'tools', 'mutants.py'), run_name='mutants_test')


def test_every_mutant_applies_and_is_valid_python():
    """Each entry's line is in its file (exactly once, or its occurrence), and the
    file with the bug still parses: a mutant breaks the math, not the syntax."""
    entries = MUTANTS['load_mutants']()
    assert len(entries) >= 30
    assert {e['area'] for e in entries} == set(MUTANTS['AREAS'])
    for entry in entries:
        with open(osp.join(ROOT, entry['file']), encoding='utf-8') as f:
            source = f.read()
        mutated = MUTANTS['mutate'](source, entry)
        assert mutated != source
        ast.parse(mutated, entry['file'])


def test_mutate_picks_the_occurrence():
    entry = dict(name='x', original='a = 1', mutant='a = 2', occurrence=2)
    assert MUTANTS['mutate']('a = 1\na = 1\n', entry) == 'a = 1\na = 2\n'


def test_a_mutant_is_restored_and_a_timeout_named(tmp_path, monkeypatch, capsys):
    """The file is put back whatever the tests did; a run past --timeout is its
    own status (counted as killed, listed), not a silent kill."""
    (tmp_path / 'f.py').write_text('a = 1\n')
    entry = dict(name='x', area='editing', file='f.py', original='a = 1', mutant='a = 2',
                 tests=['t'])
    seen = []

    def fake_run_tests(copy, tests, timeout, every=False):
        seen.append((tmp_path / 'f.py').read_text())
        return dict(rc='timeout', seconds=timeout, failed=None, all_failed=[], output='')

    monkeypatch.setitem(MUTANTS['run_one'].__globals__, 'run_tests', fake_run_tests)
    args = SimpleNamespace(timeout=5.0, count_guards=False, verbose=False)
    assert MUTANTS['run_one'](1, 1, entry, str(tmp_path), args) == 'timeout'
    assert seen == ['a = 2\n'] and (tmp_path / 'f.py').read_text() == 'a = 1\n'
    assert 'timeout after 5 s' in capsys.readouterr().out


def test_bad_lists_are_refused(tmp_path, capsys):
    bad = tmp_path / 'bad.yml'
    bad.write_text('- name: gone\n  area: training\n  file: mmagic_cm/training/losses.py\n'
                   '  original: "this line is not there"\n  mutant: "x"\n'
                   '  tests: [tests/training/test_ect.py]\n  description: stale\n')
    assert run_tool('mutants', ['--mutants', str(bad), '--list']) == 1
    assert 'no longer in' in capsys.readouterr().err
    assert run_tool('mutants', ['--only', 'no-such-mutant', '--list']) == 2


@pytest.mark.slow
def test_kills_and_reports_a_survivor(tmp_path, capsys):
    """End to end, in a temporary copy (without the unchanged run, for time):
    slerp's unnormalised dot product is killed; a change to a docstring
    survives (exit status 1, named)."""
    small = tmp_path / 'small.yml'
    small.write_text(
        '- name: slerp-unnormalised-dot\n  area: editing\n'
        '  file: mmagic_cm/editing/algorithms.py\n'
        '  original: "cos = torch.dot(a64, b64) / (a64.norm() * b64.norm())"\n'
        '  mutant: "cos = torch.dot(a64, b64)"\n'
        '  tests: [tests/editing/test_editing_math.py]\n  description: issue 25\n'
        '- name: docstring-only\n  area: editing\n'
        '  file: mmagic_cm/editing/algorithms.py\n'
        '  original: "Spherical interpolation between noises"\n'
        '  mutant: "Spherical interpolation of noises"\n'
        '  tests: [tests/editing/test_editing_math.py]\n  description: harmless\n')
    assert run_tool('mutants', ['--mutants', str(small), '--no-baseline']) == 1
    out = capsys.readouterr().out
    assert 'the tests import mmagic_cm/__init__.py there' in out
    assert 'slerp-unnormalised-dot' in out and 'killed by tests/editing/test_editing_math' in out
    assert '1 survived' in out and 'survivors: docstring-only' in out
    with open(osp.join(ROOT, 'mmagic_cm', 'editing', 'algorithms.py')) as f:
        assert 'a64.norm() * b64.norm()' in f.read()  # the checkout is untouched


def test_a_python_without_the_project_is_one_line(monkeypatch, capsys):
    """Run with a Python that cannot import the package (the system one, say),
    the copy's import check is one line naming the missing module, and no
    temporary copy is left behind."""
    made = []
    real_mkdtemp = MUTANTS['main'].__globals__['tempfile'].mkdtemp

    def mkdtemp(**kw):
        made.append(real_mkdtemp(**kw))
        return made[-1]

    class NoNumpy:  # what the copy's Python says
        returncode, stdout = 1, ''
        stderr = 'Traceback (most recent call last):\n  File "x"\nModuleNotFoundError: ' \
            "No module named 'numpy'\n"

    monkeypatch.setattr(MUTANTS['main'].__globals__['subprocess'], 'run',
                        lambda *a, **kw: NoNumpy)
    monkeypatch.setitem(MUTANTS['main'].__globals__, 'copy_repo', lambda root, copy: 0)
    monkeypatch.setattr(MUTANTS['main'].__globals__['tempfile'], 'mkdtemp', mkdtemp)
    assert MUTANTS['main'](['--only', 'ema-rate-swapped']) == 2
    err = capsys.readouterr().err.strip()
    assert '\n' not in err and "No module named 'numpy'" in err
    assert 'the Python that has the project installed' in err
    assert made and not osp.exists(made[0])
