"""The web demo's functions, called directly (no server): mmagic_cm.apps."""
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from mmagic_cm.apps import DemoApp
from mmagic_cm.apps.core import (
    checked_bool,
    checked_choice,
    checked_float,
    checked_int,
    checked_seed,
    count_network_calls,
    downscale,
    enlarge,
    mask_from_layers,
    parse_trigflow_times,
    read_image,
    read_superres_input,
    sample_images_folder,
    trigflow_times,
    write_downloads,
    write_gif,
)
from mmagic_cm.apps.ui import class_of_sample
from mmagic_cm.evaluation.digits import load_classifier, to_model_input
from mmagic_cm.testing import ROOT, run_tool

CONFIGS = osp.join(ROOT, 'configs', 'consistency_models')
CD = osp.join(CONFIGS, 'consistency_models_cd_digits-onestep-16x16.py')
EDM = osp.join(CONFIGS, 'consistency_models_edm_digits-heun-16x16.py')
DIGITS = osp.join(ROOT, 'demo', 'editing', 'digits')


@pytest.fixture(scope='module')
def app():
    return DemoApp.from_config(CD, device='cpu', max_images=16)


@pytest.fixture(scope='module')
def classifier():
    return load_classifier()


def predict(classifier, images):
    with torch.no_grad():
        probs = torch.softmax(classifier(to_model_input(images)), 1)
    return probs.argmax(1).numpy(), probs.max(1).values.numpy()


def test_facts(app):
    assert app.size == 16 and app.num_classes == 10 and app.is_consistency
    assert app.samplers == ('onestep', 'multistep', 'trigflow')
    assert app.default_sampler == 'onestep'
    assert app.class_choices() == [str(i) for i in range(10)]
    assert app.patch_sizes() == [2, 4, 8]
    assert 'consistency_models_cd_digits-onestep-16x16' in app.describe()
    assert sample_images_folder() == DIGITS


def test_generate_sevens(app, classifier):
    res = app.generate(8, '7', seed=0)
    assert res.images.shape == (8, 16, 16, 3) and res.images.dtype == np.uint8
    assert res.nfe == 1 and res.captions == ['7'] * 8 and list(res.labels) == [7] * 8
    pred, conf = predict(classifier, res.images)
    assert ((pred == 7) & (conf >= 0.9)).mean() >= 0.75
    assert res.summary().startswith('8 images · NFE 1 · ')
    # same seed, same images
    np.testing.assert_array_equal(app.generate(2, 7, seed=0).images, res.images[:2])


def test_generate_with_the_trigflow_sampler(app):
    res = app.generate(2, '3', seed=0, sampler='trigflow')  # sCM's two steps, t = 1.1
    assert res.images.shape == (2, 16, 16, 3) and res.nfe == 2


def test_generate_multistep_and_random_labels(app):
    res = app.generate(5, 'random', seed=3, sampler='multistep', ts='0,22,39')
    assert res.nfe == 2 and len(set(res.labels.tolist())) > 1
    again = app.generate(5, '', seed=3, sampler='multistep', ts='0,22,39')
    np.testing.assert_array_equal(res.labels, again.labels)
    assert app.generate(2, '3', seed=0, sampler='multistep', ts='0,10,20,39').nfe == 3


@pytest.mark.parametrize('kwargs, message', [
    (dict(label='12'), 'out of range'),
    (dict(label='cat'), 'only known for ImageNet'),
    (dict(num_images=0), r'in \[1, 16\]'),
    (dict(num_images=17), r'in \[1, 16\]'),
    (dict(sampler='heun'), 'does not fit this model'),
    (dict(sampler='multistep', ts='5,3'), 'strictly increasing'),
    (dict(sampler='multistep', ts='0,x'), 'comma-separated integers'),
    # whatever an API client sends: one line
    (dict(num_images='many'), 'must be an integer'),
    (dict(num_images=None), 'must be an integer'),
    (dict(num_images=2.5), 'must be an integer'),
    (dict(label=['7']), 'class must be text'),
    (dict(label=True), 'class must be text'),
    (dict(seed=-1), r'seed must be in \[0, 4294967295\]'),
    (dict(seed=2**70), 'seed must be in'),
    (dict(seed='x'), 'seed must be an integer'),
    (dict(sampler=3), 'does not fit this model'),
    (dict(sampler='multistep', steps='x'), 'steps must be an integer'),
    (dict(sampler='multistep', steps=10**9), r'steps must be in \[1, 1000\]'),
    (dict(sampler='multistep', ts=['0']), 'ts must be text'),
    # trigflow: the ts box holds TrigFlow times, in the page's words
    (dict(sampler='trigflow', ts='0,22,39'), r'TrigFlow times must decrease strictly'),
    (dict(sampler='trigflow', ts='1.1,1.3'), 'decrease strictly'),
    (dict(sampler='trigflow', ts='x'), 'the trigflow sampler takes TrigFlow times'),
    (dict(sampler='trigflow', steps=40, ts='1.3,1.1'), 'set Steps to 3 or leave ts empty'),
])
def test_generate_bad_input(app, kwargs, message):
    args = dict(num_images=1, label='7', seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        app.generate(**args)


@pytest.mark.parametrize('task, kwargs, nfe', [
    ('inpaint', dict(mask='bottom'), 4),
    ('colorize', {}, 4),
    ('superres', dict(patch_size=4), 4),
    ('denoise', dict(sigma=0.5), 2),
    ('stroke', dict(sigma=2.0), 2),
])
def test_edit_tasks(app, task, kwargs, nfe):
    res = app.edit(task, osp.join(DIGITS, 'digit_7.png'), label='7', seed=0, **kwargs)
    assert res.images.shape == res.observed.shape == (1, 16, 16, 3)
    assert res.nfe == nfe and res.captions == ['7']


def test_inpaint_keeps_the_kept_pixels(app):
    image = np.asarray(Image.open(osp.join(DIGITS, 'digit_3.png')).convert('RGB'))
    mask = np.ones((16, 16), np.float32)
    mask[4:12, 4:12] = 0
    res = app.edit('inpaint', image, mask=mask, label='3')
    keep = mask.astype(bool)
    np.testing.assert_array_equal(res.images[0][keep], image[keep])


def test_interpolate(app):
    res = app.edit('interpolate', label='3,8', num_points=6, seed=1)
    assert res.images.shape == (6, 16, 16, 3) and res.nfe == 1
    assert list(res.labels) == [3, 3, 3, 8, 8, 8]
    assert app.edit('interpolate', label='3,8', num_points=3, ts='0,20,39').nfe == 2


def test_generate_trigflow_from_steps_and_times(app):
    """trigflow: no steps, sCM's two; Steps alone, times from 1.1 down; times
    alone, steps from them; both when they agree. An empty Seed is seed 0."""
    assert trigflow_times(2) == (1.1, ) and trigflow_times(3) == (1.1, 0.55)
    assert len(trigflow_times(40)) == 39 and min(trigflow_times(40)) > 0
    assert parse_trigflow_times('', None) == (2, (1.1, ))
    assert parse_trigflow_times(' 1.3, 1.1 ', None) == (3, (1.3, 1.1))
    for steps, ts, nfe in ((None, '', 2), (5, '', 5), (3, '1.3,1.1', 3), ('', '1.2', 2)):
        assert app.generate(1, '3', seed=0, sampler='trigflow', steps=steps, ts=ts).nfe == nfe
    a = app.generate(2, '3', seed=None, sampler='trigflow', steps=3, ts='1.3,1.1')
    b = app.generate(2, '3', seed='', sampler='trigflow', steps='3', ts='1.3,1.1')
    np.testing.assert_array_equal(a.images, b.images)
    assert a.summary().endswith(' · class 3')


def test_checked_values():
    assert checked_int('8', 'n') == checked_int(8.0, 'n') == checked_int(' 8 ', 'n') == 8
    for bad in ('8.5', True, None, float('nan'), [8], '1e999'):
        with pytest.raises(ValueError, match='n must be an integer'):
            checked_int(bad, 'n')
    assert checked_float('0.5', 's', 0, 1, open_low=True) == 0.5
    with pytest.raises(ValueError, match=r's must be > 0 and <= 1, got 0'):
        checked_float(0, 's', 0, 1, open_low=True)
    with pytest.raises(ValueError, match='s must be a number'):
        checked_float('inf', 's')
    assert checked_bool('false', 'b') is False and checked_bool(1, 'b') is True
    with pytest.raises(ValueError, match='b must be true or false'):
        checked_bool('no', 'b')
    assert checked_seed(None) == checked_seed('') == 0 and checked_seed('7') == 7
    assert checked_choice(' resize', 'fit', ('resize', 'none')) == 'resize'
    assert class_of_sample('/tmp/gradio/ab12/digit_7.png') == '7'
    assert class_of_sample('mine.png') is None and class_of_sample(None) is None


def test_edit_bad_input(app, tmp_path):
    seven = osp.join(DIGITS, 'digit_7.png')
    text = tmp_path / 'notes.png'
    text.write_text('not an image')
    Image.new('RGB', (40, 24), 'white').save(tmp_path / 'wide.png')
    cases = [
        (dict(task='inpaint', image=str(text), mask='bottom'), 'not a readable image'),
        (dict(task='inpaint', image=None, mask='bottom'), 'no image'),
        (dict(task='colorize', image=str(tmp_path / 'wide.png'), fit='none'),
         '40x24 .*"resize" or "center-crop"'),
        (dict(task='inpaint', image=seven, mask=None), 'brush the region'),
        (dict(task='inpaint', image=seven, mask=np.ones((16, 16))), 'mask is empty'),
        (dict(task='inpaint', image=seven, mask='middle'), 'unknown built-in mask'),
        (dict(task='colorize', image=seven, label='10'), 'out of range'),
        (dict(task='colorize', image=seven, label=''), 'choose a class'),
        (dict(task='colorize', image=seven, label='3,4'), 'one class'),
        (dict(task='superres', image=seven, patch_size=5), 'patch'),
        (dict(task='denoise', image=seven, sigma=None), 'sigma'),
        (dict(task='sharpen', image=seven), 'unknown task'),
        # whatever an API client sends: one line
        (dict(task=None, image=seven), 'unknown task'),
        (dict(task='colorize', image=seven, fit='bogus'), "fit 'bogus'"),
        (dict(task='colorize', image=seven, seed=-3), 'seed must be in'),
        (dict(task='colorize', image=seven, ts=3.5), 'comma-separated integers'),
        (dict(task='colorize', image=dict(path=str(text))), 'not a readable image'),
        (dict(task='colorize', image=dict(url='x')), 'expected an image file, got dict'),
        (dict(task='colorize', image=12), 'expected an image file, got int'),
        (dict(task='colorize', image=np.array([['a']])), 'expected numbers'),
        (dict(task='colorize', image=str(tmp_path)), 'no such file'),
        (dict(task='superres', image=seven, patch_size='x'), 'patch size must be an integer'),
        (dict(task='denoise', image=seven, sigma='x'), 'sigma must be a number'),
        (dict(task='denoise', image=seven, sigma=-1), 'sigma must be > 0'),
        (dict(task='denoise', image=seven, sigma=1e6), 'sigma must be > 0 and <= 80'),
        (dict(task='denoise', image=seven, sigma=0.5, add_noise='no'), 'add_noise must'),
        (dict(task='interpolate', label='3,8', num_points='x'), 'points must be an integer'),
        (dict(task='interpolate', label='3,8', num_points=1000), r'points must be in \[2, 64\]'),
        (dict(task='colorize', image=seven, steps=1), r'steps must be in \[2, 1000\]'),
    ]
    for kwargs, message in cases:
        kwargs.setdefault('label', '7')
        with pytest.raises(ValueError, match=message):
            app.edit(**kwargs)


def test_other_sizes_are_fitted(tmp_path):
    img = np.zeros((24, 40, 3), np.uint8)
    img[:, 4:36] = 255  # a white middle: cropped fully white, stretched not
    Image.fromarray(img).save(tmp_path / 'wide.png')
    crop = read_image(str(tmp_path / 'wide.png'), 16, 'center-crop')
    stretch = read_image(img, 16, 'resize')
    assert crop.shape == stretch.shape == (16, 16, 3)
    assert crop.min() == 255 and stretch.min() < 255
    # grey and RGBA inputs become RGB
    assert read_image(np.zeros((16, 16), np.uint8), 16).shape == (16, 16, 3)
    assert read_image(np.zeros((16, 16, 4), np.uint8), 16).max() == 255  # white backdrop
    # super-resolution: a 4x4 image is the patch means of a 16x16 one
    low = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    up = read_superres_input(low, 16, 4)
    assert up.shape == (16, 16, 3) and (up[:4, :4] == low[0, 0]).all()


def test_editor_layers_to_mask():
    assert mask_from_layers([], 16) is None
    layer = np.zeros((256, 256, 4), np.uint8)
    assert mask_from_layers([layer], 16) is None
    layer[128:, :, 3] = 255  # the lower half painted
    layer[:128, :8, 3] = 255  # half a model pixel's width: 50% >= the 25% threshold
    mask = mask_from_layers([layer], 16)
    assert mask.shape == (16, 16) and (mask[8:] == 0).all() and (mask[:8, 1:] == 1).all()
    assert (mask[:8, 0] == 0).all()
    # an enlarged image comes back exactly
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    big = enlarge(img, 256)
    assert big.shape == (256, 256, 3)
    np.testing.assert_array_equal(downscale(big, 16), img)


def test_canvas_helpers():
    from mmagic_cm.apps.ui import canvas_drawing, editor_image
    black = np.zeros((256, 256, 3), np.uint8)
    with pytest.raises(ValueError, match='canvas is empty'):
        canvas_drawing({'background': black, 'layers': [], 'composite': black}, 16)
    with pytest.raises(ValueError, match='draw something'):
        canvas_drawing(None, 16)
    drawn = black.copy()
    drawn[:, 96:160] = 255
    out = canvas_drawing({'background': black, 'layers': [], 'composite': drawn}, 16)
    assert out.shape == (16, 16, 3) and out[:, 6:10].min() == 255 and out[:, :6].max() == 0
    img = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(editor_image({'background': enlarge(img, 256)}, 16), img)
    with pytest.raises(ValueError, match='no image'):
        editor_image({'background': None, 'layers': []}, 16)


def test_network_calls_are_counted(app):
    with count_network_calls(app.model) as calls:
        app.model.sample(4, labels=[1], batch_size=2, sampler='multistep', ts='0,22,39')
    assert calls[0] == 4  # two batches of two steps
    assert 'sampling_denoiser' not in vars(app.model)


def test_downloads(app, tmp_path):
    res = app.generate(3, '2', seed=0)
    npz, png = write_downloads(res, str(tmp_path))
    with np.load(npz) as f:
        np.testing.assert_array_equal(f['arr_0'], res.images)
        assert f['arr_1'].tolist() == [2, 2, 2]
    assert Image.open(png).size == (32, 32)
    gif = write_gif(res.images, str(tmp_path / 'a.gif'))
    im = Image.open(gif)
    assert im.n_frames == 4 and im.size == (128, 128)


def test_edm_teacher_generates_but_does_not_edit():
    teacher = DemoApp.from_config(EDM, device='cpu')
    assert not teacher.is_consistency and teacher.default_sampler == 'heun'
    assert 'heun' in teacher.samplers and 'onestep' not in teacher.samplers
    res = teacher.generate(1, '1', seed=0, sampler='euler', steps=4)
    assert res.images.shape == (1, 16, 16, 3) and res.nfe == 4
    with pytest.raises(ValueError, match='EDM teacher'):
        teacher.edit('colorize', osp.join(DIGITS, 'digit_1.png'), label='1')


def test_demo_exits_on_a_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / 'broken.pt'
    bad.write_bytes(b'not a checkpoint')
    assert run_tool('gradio_consistency_models', ['--checkpoint', str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ') and 'broken.pt' in err[0]
    assert run_tool('gradio_consistency_models', ['--model-setting', '999']) == 2
    assert 'error: --model-setting 999' in capsys.readouterr().err


def test_imagenet_and_unconditional_models(tiny_cond_config, tiny_uncond_config):
    cond = DemoApp.from_config(tiny_cond_config, device='cpu')  # 1000 classes, random init
    assert cond.class_choices()[145] == '145: king penguin'
    assert cond.parse_label('king penguin') == cond.parse_label('145: king penguin') == [145]
    assert cond.generate(2, '145: king penguin', seed=0).captions == ['145: king penguin'] * 2
    with pytest.raises(ValueError, match='did you mean'):
        cond.parse_label('king pengiun')
    uncond = DemoApp.from_config(tiny_uncond_config, device='cpu')
    assert uncond.class_choices() == [] and uncond.parse_label('') is None
    assert uncond.edit('inpaint', osp.join(DIGITS, 'digit_1.png'), mask='box').labels is None
    assert uncond.generate(1, 'random').labels is None
    with pytest.raises(ValueError, match='unconditional'):
        uncond.generate(1, '3')
