"""The package's shape: layers without import cycles, thin tools, tests that
import the package only. Checked from the source (ast), imports inside
functions included."""
import ast
import glob
import os.path as osp

import pytest

from mmagic_cm.testing import ROOT

PACKAGE = osp.join(ROOT, 'mmagic_cm')
SYS_PATH = 'sys.' + 'path'  # spelled so that this file does not contain it
#: the layers, lowest first (docs/architecture.md): each module may import
#: modules of its own rank or lower ranks only
RANKS = [
    ('mmagic_cm.version', 'mmagic_cm.registry'),  # the registries, MMagic/mmcv hooks
    ('mmagic_cm.files', ),  # checkpoints, atomic writes, uint8 images, provenance, zoo
    ('mmagic_cm.distributed', ),  # srun tasks, sharded sampling
    ('mmagic_cm.denoiser', ),  # D(x, sigma): UNet, preconditioning, sigmas, fast paths
    ('mmagic_cm.export', ),  # D written to ONNX/OpenVINO and run from the file
    ('mmagic_cm.sampling', ),  # samplers, noise, settings, batching, labels
    ('mmagic_cm.models', 'mmagic_cm.datasets'),  # the mmengine model; data
    ('mmagic_cm.training', ),
    ('mmagic_cm.editing', 'mmagic_cm.conversion'),
    ('mmagic_cm.apis', 'mmagic_cm.testing'),  # entry points; test support
    ('mmagic_cm.evaluation', ),  # metrics, benchmarks, the GPU check
    ('mmagic_cm.apps', ),
    # the package's own __init__ and what the tools share
    ('mmagic_cm', 'mmagic_cm.cli'),
]


def module_name(path: str) -> str:
    rel = osp.relpath(path, ROOT)[:-3].replace(osp.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


MODULES = {module_name(p) for p in glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True)}


def imports_of(path: str):
    """Names of mmagic_cm modules that ``path`` imports (anywhere in the file)."""
    name = module_name(path)
    package = name if path.endswith('__init__.py') else name.rsplit('.', 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                parts = parts[:len(parts) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            subs = {f'{base}.{a.name}' for a in node.names} & MODULES
            found.update(subs if len(subs) == len(node.names) else subs | {base})
    return {m for m in found if m in MODULES and m != name}


def graph():
    return {module_name(p): imports_of(p)
            for p in glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True)}


def rank(module: str) -> int:
    best = None
    for r, prefixes in enumerate(RANKS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + '.') and prefix != 'mmagic_cm':
                if best is None or len(prefix) > best[1]:
                    best = (r, len(prefix))
    assert best is not None, f'{module} is in no layer of tests/test_layout.py'
    return best[0]


def test_no_import_cycles():
    g = graph()
    # a package's __init__ re-exports its modules: an edge from a module to its
    # own package's __init__ is a cycle; test every edge
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)
    assert not cycles, ' ; '.join(' -> '.join(c) for c in cycles)


def test_layers_import_downwards_only():
    bad = [f'{m} -> {i}' for m, deps in graph().items() for i in deps if rank(i) > rank(m)]
    assert not bad, bad


def test_checkpoint_is_a_leaf():
    # files.atomic (stdlib only) hashes the shipped weights
    assert imports_of(osp.join(PACKAGE, 'files', 'checkpoint.py')) <= {'mmagic_cm.files.atomic'}
    assert imports_of(osp.join(PACKAGE, 'files', 'atomic.py')) == set()


@pytest.mark.parametrize('folder', ['tools', 'demo'])
def test_no_tool_imports_another_tool(folder):
    tools = {osp.splitext(osp.basename(p))[0]
             for p in glob.glob(osp.join(ROOT, 'tools', '**', '*.py'), recursive=True)}
    tools |= {osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(ROOT, 'demo',
                                                                            '*.py'))}
    for path in glob.glob(osp.join(ROOT, folder, '**', '*.py'), recursive=True):
        text = open(path).read()
        for node in ast.walk(ast.parse(text)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split('.')[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [(node.module or '').split('.')[0]]
            assert not set(names) & tools, f'{path} imports the tool {set(names) & tools}'
        assert SYS_PATH not in text, f'{path} changes {SYS_PATH}'


def test_tests_import_the_package_only():
    for path in glob.glob(osp.join(ROOT, 'tests', '**', '*.py'), recursive=True):
        assert SYS_PATH not in open(path).read(), f'{path} touches {SYS_PATH}'


def test_tests_mirror_the_package():
    for sub in ('files', 'distributed', 'denoiser', 'export', 'sampling', 'models', 'training',
                'editing', 'conversion', 'evaluation', 'apis', 'apps', 'tools', 'parity'):
        assert glob.glob(osp.join(ROOT, 'tests', sub, 'test_*.py')), sub


def test_every_folder_is_a_layer():
    """Each folder of the package is in RANKS and says its purpose in one line;
    nothing of substance is loose at the package root."""
    layers = {p for rank in RANKS for p in rank}
    for init in glob.glob(osp.join(PACKAGE, '*', '__init__.py')):
        name = module_name(init)
        assert name in layers, f'{name} is in no layer of RANKS'
        doc = ast.get_docstring(ast.parse(open(init).read()))
        assert doc and doc.splitlines()[0].strip(), f'{init} does not say its purpose'
    for path in glob.glob(osp.join(PACKAGE, '*.py')):
        if osp.basename(path) != '__init__.py':
            lines = len(open(path).read().splitlines())
            assert lines <= 100, f'{path}: {lines} lines loose at the package root'


def test_consistency_model_is_a_thin_adapter():
    """``ConsistencyModel`` fits on about a screen (issue 23): MMagic's adapter
    over the sampling pipeline (``sampling/pipeline.py``) and the training state
    (``training/state.py``); ``models/`` names no objective class (objectives
    are found through the registry)."""
    path = osp.join(PACKAGE, 'models', 'consistency_model.py')
    lines = len(open(path).read().splitlines())
    assert lines <= 155, f'{path}: {lines} lines'
    objectives = set()
    for source in glob.glob(osp.join(PACKAGE, 'training', '*.py')):
        for node in ast.walk(ast.parse(open(source).read())):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(n, ast.Assign) and any(getattr(t, 'id', None) == 'training_mode'
                                                      for t in n.targets) for n in node.body):
                objectives.add(node.name)
    assert {'EDMObjective', 'ConsistencyDistillation', 'EasyConsistencyTuning'} <= objectives
    for source in glob.glob(osp.join(PACKAGE, 'models', '*.py')):
        text = open(source).read()
        named = sorted(name for name in objectives if name in text)
        assert not named, f'{source} names objective classes {named}'
