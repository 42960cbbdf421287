"""Editing API, tools/edit.py, MMagicInferencer/demo editing, and bad inputs.

Runs on the shipped digits CD model (16 x 16, offline, fast)."""
import os
import os.path as osp
import subprocess
import sys
from functools import partial

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmagic_cm.editing import Colorize, SuperResolution, algorithms, edit
from mmagic_cm.editing.io import load_image, load_mask
from mmagic_cm.editing.masks import BUILTIN_MASKS, builtin_mask
from mmagic_cm.evaluation import psnr
from mmagic_cm.registry import MODELS
from mmagic_cm.sampling import get_generator
from mmagic_cm.testing import ROOT, run_tool

CD = osp.join(ROOT, 'configs', 'consistency_models',
              'consistency_models_cd_digits-onestep-16x16.py')
DIGITS = osp.join(ROOT, 'demo', 'editing', 'digits')
EDM = osp.join(ROOT, 'configs', 'consistency_models', 'consistency_models_edm_digits-heun-16x16.py')


def build(config=CD):
    cfg = Config.fromfile(config)
    cfg.model.model_path = osp.join(ROOT, cfg.model.model_path)
    return MODELS.build(cfg.model).eval()


@pytest.fixture(scope='module')
def model():
    return build()


@pytest.fixture(scope='module')
def digits():
    files = sorted(os.listdir(DIGITS))
    images = np.stack([np.asarray(Image.open(osp.join(DIGITS, f)).convert('RGB'))
                       for f in files])
    return images, list(range(10))


def to_float(arr):
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_inpaint_keeps_the_known_pixels_and_fills_the_rest(model, digits):
    images, labels = digits
    res = edit(model, 'inpaint', images[:4], mask='bottom', labels=labels[:4])
    keep = builtin_mask('bottom', 16).bool().numpy()
    assert res.images.shape == (4, 16, 16, 3) and res.images.dtype == np.uint8
    # the last step adds no noise, so the kept half is the input exactly
    assert np.array_equal(res.images[:, keep], images[:4, keep])
    assert np.all(res.observed[:, ~keep] == 0)  # shown as black (-1), as the original
    assert np.abs(res.images[:, ~keep].astype(int) - 0).max() > 100  # something was drawn


def test_colorize_keeps_luminance_and_superres_keeps_patch_means(model, digits):
    """Exactly, before the final clamp to [-1, 1] (which clips a few pixels of
    the black background)."""
    images, labels = digits
    x = to_float(images[:4])
    den = partial(model.sampling_denoiser(model.settings(clip_denoised=True, dtype='fp32')),
                  y=torch.tensor(labels[:4]))
    for op, fn, kw in ((Colorize(), algorithms.colorize, {}),
                       (SuperResolution(4), algorithms.superres, dict(patch_size=4))):
        gen = get_generator('determ-indiv', 4, 0)
        out, known = fn(den, x, gen.randn(4, 3, 16, 16) * 80, (0, 20, 39), gen, **kw)
        torch.testing.assert_close(op.observe(out), known, atol=1e-5, rtol=0)
        torch.testing.assert_close(known, op.observe(x), atol=1e-6, rtol=0)
    res = edit(model, 'superres', images[:4], labels=labels[:4], patch_size=4)
    assert np.array_equal(res.observed, res.observed[:, ::4, ::4].repeat(4, 1).repeat(4, 2))
    pool = torch.nn.functional.avg_pool2d
    diff = (pool(to_float(res.images), 4) - pool(x, 4)).abs() * 127.5
    assert diff.mean() < 2


def test_denoise_improves_psnr_and_stroke_runs(model, digits):
    images, labels = digits
    res = edit(model, 'denoise', images, labels=labels, sigma=0.5, add_noise=True)
    clean = to_float(images)
    assert psnr(to_float(res.images), clean).mean() > psnr(to_float(res.observed),
                                                           clean).mean() + 6
    # strokes: a little noise keeps the painting, a lot follows the model
    paint = to_float(images[:4])
    near = edit(model, 'stroke', images[:4], labels=labels[:4], sigma=0.05)
    far = edit(model, 'stroke', images[:4], labels=labels[:4], sigma=20.0)
    assert psnr(to_float(near.images), paint).mean() > 25
    assert psnr(to_float(far.images), paint).mean() < psnr(to_float(near.images), paint).mean() - 5


def test_results_do_not_depend_on_the_batch_size(model, digits):
    images, labels = digits
    a = edit(model, 'inpaint', images[:5], mask='strokes', labels=labels[:5], batch_size=2)
    b = edit(model, 'inpaint', images[:5], mask='strokes', labels=labels[:5], batch_size=5)
    assert np.array_equal(a.images, b.images)


def test_interpolation_end_points_are_plain_samples(model):
    res = edit(model, 'interpolate', labels=[3, 8], num_points=5, seed=1)
    assert res.images.shape == (5, 16, 16, 3)
    assert res.labels.tolist() == [3, 3, 8, 8, 8]
    ends = get_generator('determ-indiv', 2, 1).randn(2, 3, 16, 16)
    for noise, label, image in ((ends[:1], 3, res.images[0]), (ends[1:], 8, res.images[-1])):
        x = model.sample_batch(1, get_generator('dummy'), torch.tensor([label]), noise=noise)
        ref = ((x + 1) * 127.5).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
        assert np.abs(ref.astype(int) - image.astype(int)).max() <= 1


def test_float_class_weights_equal_integer_labels(model):
    unet = model.unet
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([1.0, 2.0])
    one_hot = torch.nn.functional.one_hot(torch.tensor([3, 8]), 10).float()
    with torch.no_grad():
        torch.testing.assert_close(unet(x, t, y=one_hot), unet(x, t, y=torch.tensor([3, 8])))


@pytest.mark.parametrize('kwargs,message', [
    (dict(task='inpaint'), 'needs a mask'),
    (dict(task='inpaint', mask='circle'), 'unknown built-in mask'),
    (dict(task='inpaint', mask=np.ones((16, 16))), 'nothing to inpaint'),
    (dict(task='inpaint', mask=np.full((16, 16), 0.5)), 'only 0 (fill) and 1'),
    (dict(task='inpaint', mask=np.zeros((8, 8))), 'expected (16, 16)'),
    (dict(task='denoise'), 'needs sigma'),
    (dict(task='denoise', sigma=100.0), 'must lie in'),
    (dict(task='superres', patch_size=3), 'not a multiple of patch_size=3'),
    (dict(task='colorize', labels=None), 'class-conditional'),
    (dict(task='blur'), 'unknown task'),
    (dict(task='colorize', images=np.zeros((1, 8, 8, 3), np.uint8)), 'resize them first'),
])
def test_api_bad_input(model, digits, kwargs, message):
    kwargs = dict(kwargs)
    images = kwargs.pop('images', digits[0][:1])
    kwargs.setdefault('labels', [1])
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
        edit(model, kwargs.pop('task'), images, **kwargs)


def test_edm_teacher_is_refused():
    with pytest.raises(ValueError, match='EDM teacher'):
        edit(build(EDM), 'colorize', np.zeros((1, 16, 16, 3), np.uint8), labels=[0])


def test_image_and_mask_files(tmp_path):
    grey = tmp_path / 'grey.png'
    Image.fromarray(np.full((16, 16), 200, np.uint8), 'L').save(grey)
    x = load_image(str(grey), 16)
    assert x.shape == (3, 16, 16) and torch.all(x == x[0])
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent: white after compositing
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'a.png')
    assert torch.all(load_image(str(tmp_path / 'a.png'), 16) == 1)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / 'big.jpg')
    with pytest.raises(ValueError, match=r'big.jpg is 30x20 .* --fit'):
        load_image(str(tmp_path / 'big.jpg'), 16)
    assert load_image(str(tmp_path / 'big.jpg'), 16, 'center-crop').shape == (3, 16, 16)
    (tmp_path / 'bad.png').write_bytes(b'not an image')
    with pytest.raises(ValueError, match='bad.png: not a readable image'):
        load_image(str(tmp_path / 'bad.png'), 16)
    m = np.zeros((16, 16), np.uint8)
    m[:8] = 255
    Image.fromarray(m).save(tmp_path / 'm.png')
    assert load_mask(str(tmp_path / 'm.png'), 16)[:8].eq(1).all()
    assert load_mask(str(tmp_path / 'm.png'), 16, invert=True)[:8].eq(0).all()
    m[0, 0] = 100
    Image.fromarray(m).save(tmp_path / 'grey_mask.png')
    with pytest.raises(ValueError, match='grey_mask.png is not black and white.*--binarize'):
        load_mask(str(tmp_path / 'grey_mask.png'), 16)
    assert load_mask(str(tmp_path / 'grey_mask.png'), 16, binarize=True)[0, 0] == 0


def test_builtin_masks_keep_and_fill():
    for name in BUILTIN_MASKS:
        m = builtin_mask(name, 16, seed=3)
        assert m.shape == (16, 16) and 0 < m.mean() < 1, name


@pytest.mark.parametrize('task,extra', [
    ('inpaint', ['--mask', 'bottom']),
    ('colorize', []),
    ('superres', ['--patch-size', '4']),
    ('denoise', ['--sigma', '0.3', '--add-noise']),
    ('stroke', ['--sigma', '2']),
])
def test_cli_each_task(task, extra, tmp_path):
    out = tmp_path / task
    rc = run_tool('edit', [CD, '--task', task, '--input', DIGITS, '--labels',
                         ','.join(map(str, range(10))), '--out-dir', str(out),
                         '--no-progress', *extra])
    assert rc == 0
    names = sorted(os.listdir(out))
    assert len(names) == 21 and 'grid.png' in names  # 10 results, 10 inputs, a grid
    assert Image.open(out / 'digit_3.png').size == (16, 16)
    assert Image.open(out / 'grid.png').size == (10 * 64, 2 * 64)  # 16-pixel tiles shown 4x


@pytest.mark.slow
def test_cli_subprocess_interpolate_with_progress(tmp_path):
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'edit.py'), CD, '--task', 'interpolate',
         '--labels', '3,8', '--num-points', '6', '--ts', '0,20,39', '--out-dir',
         str(tmp_path / 'i')], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'consistency' in proc.stderr  # the progress bar over consistency steps
    assert sorted(os.listdir(tmp_path / 'i'))[:2] == ['grid.png', 'interp_00.png']


@pytest.mark.parametrize('extra,message', [
    (['--task', 'inpaint'], '--task inpaint needs --mask'),
    (['--task', 'colorize', '--mask', 'bottom'], '--mask is for --task inpaint'),
    (['--task', 'interpolate', '--input', DIGITS], 'takes no --input'),
    (['--task', 'denoise'], 'needs sigma'),
    (['--task', 'sharpen'], 'unknown --task'),
    (['--task', 'colorize', '--input', osp.join(DIGITS, 'digit_1.png'),
      osp.join(DIGITS, 'digit_1.png')], 'two would share a name'),
])
def test_cli_bad_input_writes_nothing(extra, message, tmp_path, capsys):
    out = tmp_path / 'out'
    args = [CD, '--out-dir', str(out), '--labels', '1', '--no-progress', *extra]
    if '--input' not in extra and 'interpolate' not in extra:
        args += ['--input', osp.join(DIGITS, 'digit_1.png')]
    assert run_tool('edit', args) == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []  # no output folder, no staging folder


def test_mmagic_inferencer_inpainting_and_superres(tmp_path):
    from mmagic.apis import MMagicInferencer
    mask = np.zeros((16, 16), np.uint8)
    mask[8:] = 255  # MMagic's convention: white = fill
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    editor = MMagicInferencer(model_name='consistency_models',
                              config_name='consistency_models_cd_digits-inpainting-16x16',
                              device='cpu')
    result, image = editor.infer(img=osp.join(DIGITS, 'digit_3.png'),
                                 mask=str(tmp_path / 'mask.png'), label=3,
                                 result_out_dir=str(tmp_path / 'out.png'))
    original = np.asarray(Image.open(osp.join(DIGITS, 'digit_3.png')).convert('RGB'))
    assert np.array_equal(image[:8], original[:8])  # the kept (black-in-mask) half
    assert np.all(result['input'][8:] == 0)
    assert Image.open(tmp_path / 'out.png').size == (32, 16)  # input | result
    with pytest.raises(ValueError, match='inpainting needs mask'):
        editor.infer(img=osp.join(DIGITS, 'digit_3.png'), label=3)
    editor = MMagicInferencer(model_name='consistency_models',
                              config_name='consistency_models_cd_digits-superres-16x16',
                              device='cpu')
    Image.fromarray(original[::4, ::4]).save(tmp_path / 'low.png')  # a 4x4 input
    _, image = editor.infer(img=str(tmp_path / 'low.png'), label=3)
    assert image.shape == (16, 16, 3)


@pytest.mark.slow
def test_demo_inpainting_subprocess(tmp_path):
    mask = np.zeros((16, 16), np.uint8)
    mask[8:] = 255
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'demo', 'mmagic_inference_demo.py'), '--model-name',
         'consistency_models', '--config-name', 'consistency_models_cd_digits-inpainting-16x16',
         '--img', osp.join(DIGITS, 'digit_7.png'), '--mask', str(tmp_path / 'mask.png'),
         '--label', '7', '--device', 'cpu', '--result-out-dir', str(tmp_path / 'd.png')],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(tmp_path / 'd.png').size == (32, 16)


def test_cli_fit_lowres_superres_and_mask_size(tmp_path, capsys):
    big = np.asarray(Image.open(osp.join(DIGITS, 'digit_2.png')).convert('RGB').resize(
        (40, 32), Image.BICUBIC))
    Image.fromarray(big).save(tmp_path / 'big.png')
    out = tmp_path / 'crop'
    assert run_tool('edit', [CD, '--task', 'colorize', '--input', str(tmp_path / 'big.png'),
                           '--fit', 'center-crop', '--labels', '2', '--out-dir', str(out),
                           '--no-progress']) == 0
    assert Image.open(out / 'big.png').size == (16, 16)
    low = tmp_path / 'low'
    low.mkdir()
    Image.fromarray(big[::8, ::10][:4, :4]).save(low / 'l.png')  # a 4x4 input
    assert run_tool('edit', [CD, '--task', 'superres', '--patch-size', '4', '--input',
                           str(low), '--labels', '2', '--out-dir', str(tmp_path / 'sr'),
                           '--no-progress']) == 0
    assert Image.open(tmp_path / 'sr' / 'l.png').size == (16, 16)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / 'small_mask.png')
    assert run_tool('edit', [CD, '--task', 'inpaint', '--input', osp.join(DIGITS, 'digit_2.png'),
                           '--mask', str(tmp_path / 'small_mask.png'), '--labels', '2',
                           '--out-dir', str(tmp_path / 'x'), '--no-progress']) == 2
    err = capsys.readouterr().err
    assert 'small_mask.png is 8x8 but the model takes 16x16' in err
    assert not (tmp_path / 'x').exists()


def test_fit_resize_keeps_masks_binary_and_uint8_tensors_work(model, digits, tmp_path):
    m = np.zeros((32, 32), np.uint8)
    m[:16] = 255
    Image.fromarray(m).save(tmp_path / 'm32.png')
    mask = load_mask(str(tmp_path / 'm32.png'), 16, 'resize')  # nearest, no grey edges
    assert mask[:8].eq(1).all() and mask[8:].eq(0).all()
    images, labels = digits
    a = edit(model, 'colorize', images[:2], labels=labels[:2])
    b = edit(model, 'colorize', torch.from_numpy(images[:2]), labels=labels[:2])
    assert np.array_equal(a.images, b.images)


def test_edit_ignores_torch_distributed_ranks(model, digits, monkeypatch):
    """Inside a torchrun job each process edits its own images in full."""
    from mmagic_cm.sampling import noise
    images, labels = digits
    alone = edit(model, 'inpaint', images[:6], mask='box', labels=labels[:6], batch_size=6)
    monkeypatch.setattr(noise, '_dist_rank_world', lambda: (1, 2))
    in_job = edit(model, 'inpaint', images[:6], mask='box', labels=labels[:6], batch_size=6)
    assert np.array_equal(alone.images, in_job.images)
    interp = edit(model, 'interpolate', labels=[3, 8], num_points=3)
    assert not np.array_equal(interp.images[0], interp.images[-1])


def test_slerp_known_numbers():
    """a = (2, 0), b = (2, 2) are π/4 apart (whatever their lengths): the
    midpoint is sin(π/8) / sin(π/4) · (a + b) = (2.16478, 1.08239)."""
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[2.0, 2.0]])
    mid = algorithms.slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(mid, torch.tensor([[2.0, 0.0], [2.1647844, 1.0823922],
                                                  [2.0, 2.0]]), rtol=1e-6, atol=1e-6)
