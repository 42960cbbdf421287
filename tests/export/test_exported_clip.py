"""An exported graph without clipping, sampled with clipping: the runner clamps."""
import os.path as osp

import pytest
import torch

from mmagic_cm.apis.build import build_from_config
from mmagic_cm.testing import TINY_CONFIGS, reference_weights

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from mmagic_cm.export import ExportedDenoiser, export_denoiser, read_metadata  # noqa: E402


def test_unclipped_graph_clamps_when_sampling_asks(tmp_path):
    weights = tmp_path / 'tiny_cond.pt'
    torch.save(reference_weights('tiny_cond', 0), weights)
    model, _ = build_from_config(osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'), str(weights),
                                 clip_denoised=False)
    path = str(tmp_path / 'tiny.onnx')
    export_denoiser(model, path, 'onnx', batch_size=2, log=lambda *a: None)
    assert read_metadata(path)['clip'] is False
    x = 3 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    sigma, y = torch.tensor([0.01, 0.5]), torch.tensor([1, 2])
    raw = ExportedDenoiser(path)(x, sigma, y)  # the file's setting: no clamp
    assert raw.abs().max() > 1.5
    clipped = ExportedDenoiser(path, clip=True)(x, sigma, y)
    torch.testing.assert_close(clipped, raw.clamp(-1, 1))
    settings = model.settings(clip_denoised=True)
    torch.testing.assert_close(ExportedDenoiser(path).for_settings(settings)(x, sigma, y),
                               raw.clamp(-1, 1))
