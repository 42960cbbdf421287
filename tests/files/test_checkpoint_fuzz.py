"""Unreadable checkpoint files: a few hundred truncated, bit-flipped, random and
text files, each refused as a user error in one line (none escapes as another
exception), and the UNet left as it was."""
import io
import os.path as osp
import pickle
import random
import zipfile

import pytest
import torch
from mmengine.config import Config

from mmagic_cm.cli import first_line, user_errors
from mmagic_cm.models.weights import build_unet, load_unet_from
from mmagic_cm.testing import ROOT

CD = osp.join(ROOT, 'mmagic_cm', 'weights', 'digits', 'cd_digits16_ema.pt')
CFG = osp.join(ROOT, 'configs', 'consistency_models',
               'consistency_models_cd_digits-onestep-16x16.py')


def damaged_files(raw: bytes, rng: random.Random):
    """(name, bytes): truncations, flipped bytes, random bytes, text, odd zips, pickles."""
    for k in range(80):
        yield f'truncated_{k}', raw[:rng.randrange(0, len(raw))]
    for k in range(100):
        data = bytearray(raw)
        for _ in range(rng.choice([1, 8, 2000])):
            i = rng.randrange(len(data))
            data[i] ^= 1 + rng.randrange(255)
        yield f'flipped_{k}', bytes(data)
    for k in range(60):
        yield f'random_{k}', rng.randbytes(rng.choice([0, 1, 2, 10, 1000, 100000]))
    for k in range(30):
        yield f'text_{k}', ('weights = ' + 'x' * rng.randrange(200) + '\n').encode()
    for k in range(20):  # zip archives that are not torch files
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, 'w') as z:
            z.writestr(f'archive/data{k}.pkl', rng.randbytes(rng.randrange(1, 500)))
        yield f'zip_{k}', buf.getvalue()
    for k, obj in enumerate([None, 3, 'unet', [1, 2], {'a': 1}, {'state_dict': 5},
                             {'time_embed.0.weight': 'x'}, {'state_dict': {'unet.a': 1}}]):
        for proto in (2, 4):
            yield f'pickle_{k}_{proto}', pickle.dumps(obj, protocol=proto)
    for k, obj in enumerate([{}, {'x': torch.zeros(2)}, {'state_dict': {}},
                             {'time_embed.0.weight': torch.zeros(3, 3)}]):
        buf = io.BytesIO()
        torch.save(obj, buf)
        yield f'torch_{k}', buf.getvalue()


@pytest.mark.filterwarnings('ignore')
def test_no_damaged_checkpoint_escapes(tmp_path):
    raw = open(CD, 'rb').read()
    unet = build_unet(Config.fromfile(CFG).model.unet)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    errors, count = user_errors(), 0
    for name, data in damaged_files(raw, random.Random(0)):
        path = tmp_path / f'{name}.pt'
        path.write_bytes(data)
        try:
            load_unet_from(unet, str(path))
        except errors as exc:
            line = first_line(exc)
            assert line and str(exc).strip() == line, (name, str(exc))  # one line
            now = unet.state_dict()
            assert all(torch.equal(now[k], v) for k, v in before.items()), name  # untouched
        except Exception as exc:  # noqa: BLE001  (the point: nothing else may escape)
            pytest.fail(f'{name}: {type(exc).__name__}: {exc}')
        else:  # a flip inside weight values reads as other finite weights: only a
            # checksum tells (SHA256SUMS, for the shipped files)
            assert name.startswith('flipped'), name
            before = {k: v.clone() for k, v in unet.state_dict().items()}
        count += 1
    assert count >= 300
