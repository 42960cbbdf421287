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


def serve(app, work_dir):
    """The demo for ``app`` served on a free local port: (Blocks, its URL)."""
    demo = build_demo(app, str(work_dir))
    demo.queue(default_concurrency_limit=1, max_size=16)
    port = free_port()
    demo.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True,
                quiet=True, ssr_mode=False)
    return demo, f'http://127.0.0.1:{port}/'


@pytest.fixture(scope='module')
def url(app, tmp_path_factory):
    demo, address = serve(app, tmp_path_factory.mktemp('demo'))
    yield address
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


def test_named_endpoints(client, url):
    api = client.view_api(return_format='dict', print_info=False)
    assert set(api['named_endpoints']) == {'/generate', '/edit'}
    outputs = {name: [r['label'] for r in e['returns']]
               for name, e in api['named_endpoints'].items()}
    assert outputs['/generate'][::2] == ['Samples', 'summary']
    assert outputs['/edit'] == ['observed', 'result', 'summary']
    # the page's own client finds every event's parameters by its number
    # (else it warns 'Too many arguments provided for the endpoint.'); Python
    # clients drop the page's events (show_api False)
    import httpx
    info = httpx.get(url + 'gradio_api/info').json()
    assert len(info['unnamed_endpoints']) >= 20
    assert len(api['unnamed_endpoints']) == 2


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


@pytest.mark.slow
def test_hostile_api_input_is_one_line_and_no_traceback(client, tmp_path, capfd):
    """Whatever a client sends: a result, or one line (no traceback in the
    server's log); Gradio's own checks (choices, numbers) included."""
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'text.png').write_text('hello')
    seven = osp.join(DIGITS, 'digit_7.png')
    ok = [
        lambda: generate(client, '7', seed=None),  # an empty Seed box: seed 0
        lambda: generate(client, '7', sampler='multistep', steps=''),
        lambda: generate(client, '7', sampler='trigflow', steps=40, ts=''),  # the default
        lambda: generate(client, '7', sampler='trigflow', steps=3, ts='1.3,1.1'),
        lambda: edit(client, 'colorize', seven, seed=None),
        lambda: edit(client, 'denoise', seven, sigma='0.5', add_noise='false'),
    ]
    for call in ok:
        assert call()[-1]
    refused = [
        (lambda: generate(client, '7', sampler='bogus'), "sampler 'bogus'"),
        (lambda: generate(client, '7', sampler='trigflow', steps=40, ts='0,22,39'),
         'TrigFlow times'),
        (lambda: generate(client, '7', sampler='trigflow', steps=40, ts='1.3,1.1'),
         'set Steps to 3'),
        (lambda: generate(client, ['7']), 'class must be text'),
        (lambda: generate(client, '7', num='many'), 'number of images'),
        (lambda: generate(client, '7', seed=2**70), 'seed must be in'),
        (lambda: generate(client, '7', sampler='multistep', steps='x'), 'steps must be'),
        (lambda: generate(client, '7', sampler='euler', steps=10**9), "sampler 'euler'"),
        (lambda: edit(client, 'bogus', seven), "unknown task 'bogus'"),
        (lambda: edit(client, 'colorize', seven, fit='bogus'), "fit 'bogus'"),
        (lambda: edit(client, 'colorize', str(tmp_path / 'text.png')), 'not a readable image'),
        (lambda: edit(client, 'superres', seven, patch_size='x'), 'patch size'),
        (lambda: edit(client, 'superres', seven, patch_size=3), 'choose one of 2, 4, 8'),
        (lambda: edit(client, 'denoise', seven, sigma='x'), 'sigma must be a number'),
        (lambda: edit(client, 'denoise', seven, sigma=0.5, add_noise='no'), 'add_noise'),
        (lambda: edit(client, 'interpolate', label='3,8', num_points=1000), 'points'),
        (lambda: edit(client, 'inpaint', seven, str(tmp_path / 'notes.txt')),
         'not a readable image'),
        # a path sent as text, a number, a file description outside the uploads
        (lambda: client.predict('colorize', '/etc/hostname', None, '', '7', None, 4, True, 8,
                                0, '', 'resize', api_name='/edit'),
         'image: not a file this app can read; upload one, or from Python send '
         'handle_file(PATH)'),
        (lambda: client.predict('colorize', 42, None, '', '7', None, 4, True, 8, 0,
                                '', 'resize', api_name='/edit'), 'image: not a file'),
        (lambda: client.predict('colorize', {'path': '/etc/hostname',
                                             'meta': {'_type': 'gradio.FileData'}},
                                None, '', '7', None, 4, True, 8, 0, '', 'resize',
                                api_name='/edit'), 'image: not a file'),
    ]
    for call, message in refused:
        with pytest.raises(gradio_client.exceptions.AppError) as info:
            call()
        text = str(info.value)
        assert message in text and len(text.splitlines()) == 1, text
    out, err = capfd.readouterr()
    assert 'Traceback' not in out + err


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
#: what the browser's console said (every page of the module)
CONSOLE = []


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
        pg.on('console', lambda m: CONSOLE.append(f'{m.type}: {m.text}'))
        pg.set_default_timeout(180000)  # a busy 2-core machine is slow to draw
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


def close_toasts(page):
    """Close every toast and wait until none is left. A toast that is already
    closing is inert (Playwright's click waits on it until its timeout), so the
    buttons are clicked from the page and the wait is on the toasts going."""
    page.evaluate("document.querySelectorAll('.toast-body .toast-close')"
                  ".forEach(b => b.click())")
    page.wait_for_function('!document.querySelector(".toast-body")')


def wait_for_toast(page, text):
    """The message of the toast that says ``text`` (its title line dropped)."""
    page.locator('.toast-body', has_text=text).first.wait_for()
    found = [t for t in toasts(page) if text in t]
    lines = [line for line in found[0].splitlines() if line.strip() not in ('', '×')]
    assert lines[0] in ('Error', 'Warning') and len(lines) == 2, found
    return lines[1]


def summary(page, key):
    """The summary line of a tab (the Markdown's text, not its status marks)."""
    return page.locator(f'#{key}-info [data-testid=markdown]').inner_text().strip()


def colorize_sample_3(page):
    """Pick the shipped sample '3' in Colorize (the class box follows it) and run."""
    open_tab(page, 'Colorize')
    page.locator('#colorize-samples button.gallery-item').nth(3).click()
    page.locator('#colorize-input img').wait_for()
    page.wait_for_function('() => [...document.querySelectorAll("#tab-colorize input")]'
                           '.some(e => e.value === "3")')
    run(page, 'colorize', 'Colorize', '#colorize-result')
    page.wait_for_function('() => document.querySelector("#colorize-info").innerText'
                           '.includes("class 3")')


def assert_console_clean():
    assert not [m for m in CONSOLE if 'Too many arguments' in m], CONSOLE


@pytest.mark.slow
def test_page_in_a_browser(page, tmp_path, capfd):
    shots = os.environ.get('MMAGIC_CM_SCREENSHOTS') or str(tmp_path)
    os.makedirs(shots, exist_ok=True)

    def shot(name):
        page.screenshot(path=osp.join(shots, f'{name}.png'), full_page=True)

    assert [t.inner_text() for t in page.get_by_role('tab').all()] == list(TABS)
    # Generate
    page.click('#generate-button')
    page.locator('#tab-generate .thumbnail-item img').nth(7).wait_for()
    page.wait_for_function('() => [...document.querySelectorAll("#generate-gallery img")]'
                           '.every(i => i.complete && i.naturalWidth > 0)')
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
    assert_console_clean()
    out, err = capfd.readouterr()
    assert 'Traceback' not in out + err


@pytest.mark.slow
def test_page_refuses_a_non_image_upload(page, url, tmp_path, capfd):
    """A .txt, and text renamed .png, uploaded on the page: one line, the box
    emptied; running the task then says there is no image. No traceback."""
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'text.png').write_text('hello')
    page.goto(url)
    page.wait_for_selector('#generate-button')
    for tab, name, button, upload in (('colorize', 'Colorize', 'Colorize', 'notes.txt'),
                                      ('inpaint', 'Inpaint', 'Inpaint', 'text.png'),
                                      ('superres', 'Super-resolve', 'Super-resolve',
                                       'notes.txt')):
        open_tab(page, name)
        close_toasts(page)
        page.locator(f'#{tab}-input input[type=file]').set_input_files(str(tmp_path / upload))
        message = wait_for_toast(page, 'is not a readable image')
        assert message == f'image {upload} is not a readable image; give a PNG or JPEG file'
        page.wait_for_function(f'!document.querySelector("#{tab}-input img")')
        close_toasts(page)
        page.locator(f'#tab-{tab}').get_by_role('button', name=button, exact=True).click()
        assert wait_for_toast(page, 'no image').startswith('no image: upload one')
        assert summary(page, tab) == ''
        close_toasts(page)
    out, err = capfd.readouterr()
    assert 'Traceback' not in out + err
    assert_console_clean()


@pytest.mark.slow
def test_trigflow_on_the_page(page, url, capfd):
    """The trigflow sampler from the page: its defaults (two steps), Steps=40
    with no times (derived), 3 steps with '1.3,1.1'; times that do not fit are
    one line, with no summary of the run before beside it."""
    page.goto(url)
    page.wait_for_selector('#generate-button')
    page.locator('#tab-generate').get_by_text('trigflow', exact=True).click()
    steps, ts = page.locator('#generate-steps input'), page.locator('#generate-ts textarea')
    ts.wait_for()
    assert 'TrigFlow times' in page.locator('#generate-ts').inner_text()
    assert steps.input_value() == '2' and ts.input_value() == ''
    count = page.locator('#generate-num input[type=number]')
    for n, times, images in (('2', '', '8'), ('40', '', '1'), ('3', '1.3,1.1', '8')):
        steps.fill(n)
        ts.fill(times)
        count.fill(images)  # (40 steps of 8 images take long on a busy CPU)
        count.press('Enter')
        page.click('#generate-button')
        page.wait_for_function(
            '(nfe) => document.querySelector("#generate-info").innerText.includes(nfe)',
            arg=f'NFE {n} ')
        assert summary(page, 'generate').startswith(
            f'{images} image{"s" if images != "1" else ""} · NFE {n} ')
    ts.fill('0,22,39')
    page.click('#generate-button')
    assert 'TrigFlow times must decrease' in wait_for_toast(page, 'TrigFlow times')
    assert summary(page, 'generate') == ''  # the last run's summary is gone
    close_toasts(page)
    # an empty Seed box is seed 0
    page.locator('#tab-generate').get_by_text('onestep', exact=True).click()
    page.locator('#generate-seed input').fill('')
    page.click('#generate-button')
    page.wait_for_function('() => document.querySelector("#generate-info").innerText'
                           '.includes("NFE 1 ")')
    out, err = capfd.readouterr()
    assert 'Traceback' not in out + err
    assert_console_clean()


@pytest.mark.slow
def test_page_layout_and_the_class_of_a_sample(page, url):
    """At 1,400 px the gallery shows all 8 images with their classes below
    them; a picked sample sets the editing tab's class; the API snippet names
    the page's own address."""
    page.set_viewport_size({'width': 1400, 'height': 900})
    page.goto(url)
    page.wait_for_selector('#generate-button')
    page.click('#generate-button')
    page.locator('#generate-gallery .thumbnail-item img').nth(7).wait_for()
    box = page.locator('#generate-gallery').bounding_box()
    for item in page.locator('#generate-gallery .thumbnail-item').all():
        img = item.locator('img').bounding_box()
        caption = item.locator('.caption-label').bounding_box()
        assert box['x'] <= img['x'] and img['x'] + img['width'] <= box['x'] + box['width']
        assert caption['y'] >= img['y'] + img['height'] - 1  # below the image, not over it
    colorize_sample_3(page)
    open_tab(page, 'API')
    assert f"Client('{url}')" in page.locator('#api-help').inner_text()
    assert_console_clean()


@pytest.mark.slow
def test_samples_and_a_bad_upload_over_one_from_outside_the_repository(
        app, page, tmp_path, monkeypatch, capfd):
    """A server started in another folder still serves the shipped samples
    (Gradio serves files under the working directory only); a non-image
    uploaded over a picked sample is one line without server paths, empties
    the box and the last result, and leaves no 'Error' badge; no traceback."""
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (tmp_path / 'notes.txt').write_text('hello')
    demo, address = serve(app, tmp_path / 'work')
    context = page.context.browser.new_context(viewport={'width': 1280, 'height': 900})
    other = context.new_page()
    try:
        other.set_default_timeout(180000)
        other.goto(address)
        other.wait_for_selector('#generate-button')
        colorize_sample_3(other)
        other.locator('#colorize-input input[type=file]').set_input_files(
            str(tmp_path / 'notes.txt'))
        message = wait_for_toast(other, 'is not a readable image')
        assert message == 'image notes.txt is not a readable image; give a PNG or JPEG file'
        other.wait_for_function('!document.querySelector("#colorize-input img")')
        other.wait_for_function('!document.querySelector("#colorize-result img")')
        assert summary(other, 'colorize') == ''
        assert not any('Error' in t for t in toasts(other))
        assert 'Error' not in other.locator('#tab-colorize').inner_text()
    finally:
        context.close()
        demo.close()
    out, err = capfd.readouterr()
    assert 'Traceback' not in out + err
