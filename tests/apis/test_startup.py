"""Start-up: the sampling path imports neither MMagic nor mmcv, and MMagic
still finds every class (registered in its registries on its import)."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from mmagic_cm.testing import ROOT

DIGITS = osp.join(ROOT, 'configs', 'consistency_models',
                  'consistency_models_cd_digits-onestep-16x16.py')
HEAVY = ('mmagic', 'mmcv', 'diffusers', 'mmagic.models', 'mmagic.evaluation')


def run_python(code: str, tmp_path) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line last."""
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sample_command_imports_no_mmagic(tmp_path):
    out = tmp_path / 'digits.npz'
    # the command ends the process itself (exit_now runs the atexit handlers)
    code = f'''
import atexit, json, runpy, sys
sys.argv = ['sample.py', {DIGITS!r}, '--num-samples', '10', '--batch-size', '10',
            '--labels', '0,1,2,3,4,5,6,7,8,9', '--out', {str(out)!r}, '--no-progress']
atexit.register(lambda: print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules))))
runpy.run_path({osp.join(ROOT, 'tools', 'sample.py')!r}, run_name='__main__')
'''
    assert run_python(code, tmp_path) == []
    with np.load(out) as f:
        assert f['arr_0'].shape == (10, 16, 16, 3) and f['arr_1'].tolist() == list(range(10))


@pytest.mark.slow
def test_init_model_samples_without_mmagic_then_mmagic_finds_everything(tmp_path):
    code = f'''
import json, sys
from mmagic_cm.apis import init_model
model = init_model({DIGITS!r}, device='cpu')
images, _ = model.sample(2, labels=[3, 4])
before = sorted(m for m in {HEAVY!r} if m in sys.modules)
from mmagic.registry import MODELS, METRICS   # now MMagic: our classes are there
names = ['ConsistencyModel', 'ConsistencyUNetModel', 'KarrasPrecond']
found = [MODELS.get(n) is not None for n in names]
import mmagic_cm.evaluation.digits_metric  # registers after MMagic: mirrored at once
found.append(METRICS.get('DigitsMetric') is not None)
# MMagic's DataPreprocessor, built when first called, in the model's mode
pre = model.data_preprocessor
out = pre(dict(inputs=[__import__('torch').zeros(3, 16, 16)]), False)
print(json.dumps(dict(before=before, found=found, shape=list(images.shape),
                      pre=type(pre.resolve()).__name__, batch=list(out['inputs'].shape),
                      training=pre.resolve().training, device=str(pre.resolve().device))))
'''
    res = run_python(code, tmp_path)
    assert res['before'] == [] and all(res['found']) and res['shape'] == [2, 16, 16, 3]
    assert res['pre'] == 'DataPreprocessor' and res['batch'] == [1, 3, 16, 16]
    assert res['training'] is False and res['device'] == 'cpu'


def test_broken_mmagic_is_named_when_a_lookup_needs_it(tmp_path):
    code = '''
import json, sys
sys.modules['mmagic.registry'] = None  # as if MMagic's import failed
from mmagic_cm.registry import MODELS
try:
    MODELS.build(dict(type='DataPreprocessor'))
except ImportError as exc:
    print(json.dumps(str(exc)))
'''
    msg = run_python(code, tmp_path)
    assert "MMagic's model registry" in msg and 'MMagic cannot be imported' in msg


def test_a_name_mmagic_already_has_keeps_its_class():
    import pytest
    from mmengine.registry import Registry

    from mmagic_cm.registry import mirror

    class Theirs:
        pass

    class Ours:
        pass
    Ours.__module__ = 'mmagic_cm.models.x'
    twin = Registry('probe')
    twin.register_module(name='Same', module=Theirs)
    with pytest.warns(UserWarning, match="has its own 'Same'"):
        mirror(Ours, 'Same', twin)
    mirror(Ours, 'Other', twin)
    assert twin.get('Same') is Theirs and twin.get('Other') is Ours


@pytest.mark.slow
def test_mmagic_first_then_plugin(tmp_path):
    code = '''
import json
from mmagic.registry import MODELS
import mmagic_cm  # noqa: F401
from mmagic_cm.registry import MODELS as OURS
model = MODELS.build(dict(type='ConsistencyModel', unet=dict(
    type='ConsistencyUNetModel', image_size=16, in_channels=3, model_channels=32,
    num_res_blocks=1, attention_resolutions='8', channel_mult='1,2', num_heads=2,
    num_head_channels=16)))
import glob, os.path as osp, sys, mmcv
real_ops = bool(glob.glob(osp.join(osp.dirname(mmcv.__file__), '_ext*')))
print(json.dumps(dict(cls=type(model).__name__,
                      pre=OURS.get('DataPreprocessor') is not None,
                      standin=getattr(sys.modules['mmcv._ext'], 'is_standin', False),
                      real_ops=real_ops)))
'''
    res = run_python(code, tmp_path)
    assert res['cls'] == 'ConsistencyModel' and res['pre']
    assert res['standin'] is not res['real_ops']  # mmcv-lite: the stand-in, installed late
