"""The web demo served on 127.0.0.1: its API through gradio_client, and the page
in a real headless Chromium (Playwright driving the system's chromium).

Set MMAGIC_CM_REQUIRE_BROWSER=1 to fail instead of skipping when Playwright
or Chromium is missing (.ci/run does), MMAGIC_CM_SCREENSHOTS=DIR to keep the
screenshots of the tabs (docs/web_demo/ holds the documentation's).
"""
import io
import os
import os.path as osp
import shutil
import socket
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip('gradio')
gradio_client = pytest.importorskip('gradio_client')

from mmagic_cm.apps import DemoApp, build_demo  # noqa: E402
from mmagic_cm.evaluation.digits import load_classifier, to_model_input  # noqa: E402
from mmagic_cm.testing import ROOT  # noqa: E402

CD = osp.join(ROOT, 'configs', 'consistency_models',
              'consistency_models_cd_digits-onestep-16x16.py')
DIGITS = osp.join(ROOT, 'demo', 'editing', 'digits')
TABS = ('Generate', 'Sketch', 'Inpaint', 'Colorize', 'Super-resolve', 'Denoise',
        'Interpolate', 'API')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def app():
    return DemoApp.from_config(CD, device='cpu', max_images=16)


@pytest.fixture(scope='module')
def url(app, tmp_path_factory):
    demo = build_demo(app, str(tmp_path_factory.mktemp('demo')))
    demo.queue(default_concurrency_limit=1, max_size=16)
    port = free_port()
    demo.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True,
                quiet=True, ssr_mode=False)
    yield f'http://127.0.0.1:{port}/'
    demo.close()


@pytest.fixture(scope='module')
def client(url):
    return gradio_client.Client(url, verbose=False)


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert('RGB'))


def generate(client, label='7', num=1, seed=0, sampler='onestep', steps=40, ts='0,22,39'):
    return client.predict(label, num, seed, sampler, steps, ts, api_name='/generate')


def edit(client, task, image=None, mask=None, mask_name='', label='7', sigma=None,
         patch_size=4, add_noise=True, num_points=8, seed=0, ts='', fit='resize'):
    handle = gradio_client.handle_file
    return client.predict(task, handle(image) if image else None,
                          handle(mask) if mask else None, mask_name, label, sigma,
                          patch_size, add_noise, num_points, seed, ts, fit,
                          api_name='/edit')


def test_named_endpoints(client):
    api = client.view_api(return_format='dict', print_info=False)
    assert set(api['named_endpoints']) == {'/generate', '/edit'}


def test_generate_endpoint_draws_sevens(client):
    classifier = load_classifier()
    confident = 0
    for seed in range(6):
        gallery, files, summary = generate(client, '7', 1, seed)
        image = read(gallery[0]['image'])
        assert image.shape == (16, 16, 3) and gallery[0]['caption'] == '7'
        with torch.no_grad():
            probs = torch.softmax(classifier(to_model_input(image[None])), 1)[0]
        confident += int(probs.argmax() == 7 and probs.max() >= 0.9)
        assert summary.startswith('1 image · NFE 1')
    assert confident >= 5
    npz = next(f for f in files if f.endswith('.npz'))
    with np.load(npz) as f:
        np.testing.assert_array_equal(f['arr_0'][0], image)
        assert f['arr_1'].tolist() == [7]


def test_edit_endpoint(client, tmp_path):
    mask = np.full((16, 16), 255, np.uint8)
    mask[8:] = 0  # white = keep
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    seven = osp.join(DIGITS, 'digit_7.png')
    observed, result, summary = edit(client, 'inpaint', seven, str(tmp_path / 'mask.png'))
    assert read(result).shape == (16, 16, 3) and 'NFE 4' in summary
    np.testing.assert_array_equal(read(result)[:8], read(seven)[:8])
    observed, result, summary = edit(client, 'denoise', seven, sigma=0.5)
    assert 'NFE 2' in summary
    # an image of another size is fitted
    Image.open(seven).resize((48, 32)).save(tmp_path / 'big.png')
    assert read(edit(client, 'colorize', str(tmp_path / 'big.png'), fit='center-crop')[1]
                ).shape == (16, 16, 3)
    strip = read(edit(client, 'interpolate', label='3,8', num_points=5)[1])
    assert strip.shape == (16, 80, 3)


def test_bad_input_comes_back_as_one_line(client, tmp_path):
    (tmp_path / 'notes.txt').write_text('hello')
    seven = osp.join(DIGITS, 'digit_7.png')
    Image.new('RGB', (20, 16)).save(tmp_path / 'wide.png')
    cases = [
        (lambda: edit(client, 'colorize', str(tmp_path / 'notes.txt')), 'not a readable image'),
        (lambda: edit(client, 'colorize', str(tmp_path / 'wide.png'), fit='none'),
         'center-crop'),
        (lambda: edit(client, 'inpaint', seven), 'brush the region'),
        (lambda: edit(client, 'colorize', seven, label='11'), 'out of range'),
        (lambda: generate(client, '42'), 'out of range'),
        (lambda: generate(client, '7', sampler='multistep', ts='9,3'), 'increasing'),
    ]
    for call, message in cases:
        with pytest.raises(gradio_client.exceptions.AppError) as info:
            call()
        assert message in str(info.value) and 'Traceback' not in str(info.value)


def test_requests_are_queued(app, url, monkeypatch):
    running, most = [0], [0]
    lock = threading.Lock()
    original = app.generate

    def slow_generate(*args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(app, 'generate', slow_generate)
    users = [gradio_client.Client(url, verbose=False) for _ in range(2)]
    jobs = [c.submit('7', 2, seed, 'onestep', 40, '', api_name='/generate')
            for seed in range(2) for c in users]
    results = [job.result(timeout=60) for job in jobs]
    assert all(len(r[0]) == 2 for r in results)
    assert most[0] == 1


def test_page_builds_for_other_models(tiny_cond_config, tiny_uncond_config, tmp_path):
    edm = osp.join(ROOT, 'configs', 'consistency_models',
                   'consistency_models_edm_digits-heun-16x16.py')
    for config in (tiny_cond_config, tiny_uncond_config, edm):
        demo = build_demo(DemoApp.from_config(config, device='cpu'), str(tmp_path))
        labels = [c for c in demo.blocks.values()
                  if isinstance(c, gr.Dropdown) and c.label == 'Class']
        assert labels and all(c.visible == (config != tiny_uncond_config) for c in labels)
        if config == tiny_cond_config:
            assert ('145: king penguin', '145: king penguin') in labels[0].choices


# ------------------------------------------------------------------ the page
def chromium_path():
    for name in (os.environ.get('CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome'):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope='module')
def page(url):
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = 'Playwright is not installed (pip install playwright)'
    if not missing and chromium_path() is None:
        missing = 'no chromium on PATH (apt-get install chromium)'
    if missing:
        if os.environ.get('MMAGIC_CM_REQUIRE_BROWSER'):
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True)
        pg = browser.new_page(viewport={'width': 1280, 'height': 900})
        pg.set_default_timeout(30000)
        pg.goto(url)
        pg.wait_for_selector('#generate-button')
        yield pg
        browser.close()


def result_image(page, selector) -> np.ndarray:
    """The image an output component shows, as the browser got it."""
    img = page.locator(f'{selector} img').first
    img.wait_for()
    return np.asarray(Image.open(io.BytesIO(page.request.get(img.get_attribute('src')).body())))


def brush(page, selector, points):
    """Drag the mouse over a canvas through ``points`` (fractions of its size)."""
    box = page.locator(f'{selector} canvas').first.bounding_box()

    def at(p):
        return box['x'] + box['width'] * p[0], box['y'] + box['height'] * p[1]

    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*at(p), steps=6)
    page.mouse.up()


def open_tab(page, name):
    page.get_by_role('tab', name=name, exact=True).click()


def run(page, tab, button, result):
    page.locator(f'#tab-{tab}').get_by_role('button', name=button, exact=True).click()
    return result_image(page, result)


def toasts(page):
    return [t.inner_text() for t in page.locator('.toast-body').all()]


def test_page_in_a_browser(page, tmp_path):
    shots = os.environ.get('MMAGIC_CM_SCREENSHOTS') or str(tmp_path)
    os.makedirs(shots, exist_ok=True)

    def shot(name):
        page.screenshot(path=osp.join(shots, f'{name}.png'), full_page=True)

    assert [t.inner_text() for t in page.get_by_role('tab').all()] == list(TABS)
    # Generate
    page.click('#generate-button')
    page.locator('#tab-generate .thumbnail-item img').nth(7).wait_for()
    shot('generate')
    # Sketch: an empty canvas is refused in the page, a drawn seven is finished
    open_tab(page, 'Sketch')
    page.click('#sketch-button')
    page.wait_for_selector('.toast-body')
    assert any('canvas is empty' in t for t in toasts(page))
    assert 'Traceback' not in page.content()
    page.locator('.toast-body .toast-close').first.click()
    brush(page, '#sketch-canvas', [(0.3, 0.2), (0.7, 0.2), (0.4, 0.85)])
    page.click('#sketch-button')
    out = result_image(page, '#sketch-result')
    assert out.shape[:2] == (16, 16) and out.std() > 10
    drawn = result_image(page, '#sketch-observed')
    assert drawn.shape[:2] == (16, 16) and drawn.max() == 255
    shot('sketch')
    # Inpaint: a sample, the lower part brushed
    open_tab(page, 'Inpaint')
    page.locator('#inpaint-samples button.gallery-item').nth(7).click()
    page.locator('#inpaint-editor canvas').first.wait_for()
    time.sleep(1)  # the editor takes the image
    brush(page, '#inpaint-editor', [(0.05, 0.7), (0.95, 0.7), (0.95, 0.85), (0.05, 0.85)])
    out = run(page, 'inpaint', 'Inpaint', '#inpaint-result')
    assert out.shape[:2] == (16, 16) and out.std() > 10
    shot('inpaint')
    # the image tasks on the sample seven
    for tab, name, button in (('colorize', 'Colorize', 'Colorize'),
                              ('superres', 'Super-resolve', 'Super-resolve'),
                              ('denoise', 'Denoise', 'Denoise')):
        open_tab(page, name)
        page.locator(f'#{tab}-samples button.gallery-item').nth(7).click()
        page.locator(f'#{tab}-input img').wait_for()
        out = run(page, tab, button, f'#{tab}-result')
        assert out.shape[:2] == (16, 16) and out.std() > 10, tab
        shot(tab)
    open_tab(page, 'Interpolate')
    page.locator('#tab-interpolate').get_by_role('button', name='Interpolate',
                                                 exact=True).click()
    strip = result_image(page, '#interpolate-strip')
    assert strip.shape[:2] == (16, 16 * 8)
    shot('interpolate')
    open_tab(page, 'API')
    page.get_by_text('gradio_client').first.wait_for()
    shot('api')
    assert not [t for t in toasts(page) if 'error' in t.lower()]
