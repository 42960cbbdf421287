"""The install works as the README says: mmagic imports on mmcv-lite."""
import subprocess
import sys

import pytest
import torch


@pytest.mark.slow
def test_fresh_interpreter_registers_everything():
    code = (
        'import mmagic_cm\n'
        'from mmagic.utils import register_all_modules\n'
        'register_all_modules()\n'
        'from mmagic.apis import MMagicInferencer\n'
        'from mmagic.registry import MODELS\n'
        "for name in ('ConsistencyModel', 'ConsistencyUNetModel', 'KarrasPrecond'):\n"
        '    assert MODELS.get(name) is not None, name\n'
        "print('ok')\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith('ok')


def test_mmcv_standin_fails_only_when_a_kernel_is_called():
    import mmcv.ops
    from mmcv.ops import fused_bias_leakyrelu, upfirdn2d

    from mmagic_cm.registry.mmcv_compat import MissingMMCVOpError
    if not getattr(sys.modules['mmcv._ext'], 'is_standin', False):
        pytest.skip('full mmcv with compiled ops is installed')
    x = torch.randn(1, 2, 8, 8)
    # mmcv's pure-PyTorch CPU paths still run
    assert upfirdn2d(x, torch.ones(2, 2) / 4, up=1, down=2).shape == (1, 2, 4, 4)
    assert fused_bias_leakyrelu(x, torch.zeros(2)).shape == x.shape
    with pytest.raises(MissingMMCVOpError, match='mmcv op `nms` needs mmcv built'):
        mmcv.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
