"""The web demo's page: a Gradio Blocks app over :class:`~.core.DemoApp`.

Tabs Generate, Sketch, Inpaint, Colorize, Super-resolve, Denoise and
Interpolate; two named API endpoints for ``gradio_client``:

- ``/generate(label, num_images, seed, sampler, steps, ts)`` -> (gallery,
  files [.npz, grid .png], summary)
- ``/edit(task, image, mask, mask_name, label, sigma, patch_size, add_noise,
  num_points, seed, ts, fit)`` -> (input as the model saw it, result, summary);
  interpolation gives a strip of its points.

Every event that runs the model shares one queue slot (``concurrency_id``
'model', limit 1): requests wait their turn, one model in memory. Bad input
comes back as a one-line message on the page (``gr.Error``), never a
traceback.
"""
from __future__ import annotations

import atexit
import collections
import functools
import glob
import logging
import os.path as osp
import shutil
import tempfile
from typing import Optional

import numpy as np

from ..checkpoint import CheckpointError
from ..editing import TASKS
from ..editing.masks import BUILTIN_MASKS
from .core import (
    RANDOM_LABEL,
    DemoApp,
    enlarge,
    fit_image,
    grid_strip,
    mask_from_layers,
    open_image,
    read_image,
    sample_images_folder,
    write_downloads,
    write_gif,
)

#: on-screen side of canvases and result images, px
CANVAS = 256
#: all model calls share this queue slot
CONCURRENCY_ID = 'model'
#: request folders of downloads kept (older ones are removed)
KEEP_REQUEST_FOLDERS = 32
BRUSH_MASK = '(brush)'
CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; }
.pixelated img { width: 100%; height: 100%; object-fit: contain; }
"""
logger = logging.getLogger(__name__)


def user_errors(fn):
    """Turn the library's errors into one-line page messages."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError, CheckpointError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # a bug: the log gets the traceback, the page one line
            logger.exception('request failed')
            raise gr.Error(f'internal error ({type(exc).__name__}); see the server log',
                           print_exception=False) from None

    return wrapped


def editor_image(value, size: int) -> np.ndarray:
    """The image under an image editor's strokes, (size, size, 3) uint8."""
    from PIL import Image
    if not value or value.get('background') is None:
        raise ValueError('no image: upload one or pick a sample first')
    img = open_image(value['background'])
    return np.asarray(fit_image(img, size, 'resize', resample=Image.BOX), dtype=np.uint8)


def canvas_drawing(value, size: int) -> np.ndarray:
    """What was drawn on a sketchpad (background included), (size, size, 3) uint8."""
    from PIL import Image
    if not value or value.get('composite') is None:
        raise ValueError('draw something on the canvas first')
    composite = np.asarray(value['composite'])
    layers = [np.asarray(x) for x in value.get('layers') or () if x is not None]
    if not any(x.ndim == 3 and x.shape[-1] == 4 and x[..., 3].any() for x in layers) and \
            np.ptp(composite[..., :3]) == 0:
        raise ValueError('the canvas is empty: draw a few strokes first')
    img = open_image(composite)
    return np.asarray(fit_image(img, size, 'resize', resample=Image.BOX), dtype=np.uint8)


def _theme():
    import gradio as gr
    # system fonts: the page loads nothing from the internet
    return gr.themes.Default(font=['ui-sans-serif', 'system-ui', 'sans-serif'],
                             font_mono=['ui-monospace', 'monospace'])


def build_demo(app: DemoApp, work_dir: Optional[str] = None):
    """The Gradio Blocks of the demo for ``app`` (not launched).

    Args:
        work_dir: where downloads are written (default: a new temp folder).
    """
    import gradio as gr
    if work_dir is None:  # ours: removed when the process ends
        work_dir = tempfile.mkdtemp(prefix='mmagic_cm_demo_')
        atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    recent = collections.deque()
    size, conditional = app.size, app.num_classes is not None
    choices = app.class_choices()
    default_label = ('7' if app.num_classes == 10 else
                     '145: king penguin' if app.num_classes == 1000 else
                     (choices[0] if choices else None))
    samples = sorted(glob.glob(osp.join(sample_images_folder() or '', '*.png'))) \
        if size == 16 and app.num_classes == 10 else []
    sketch_bg = 0 if app.num_classes == 10 else 255  # the digits are white on black
    run = dict(concurrency_limit=1, concurrency_id=CONCURRENCY_ID)
    hidden = dict(show_api=False, **run)

    def label_box(label='Class', value=default_label, random=False, **kw):
        return gr.Dropdown(choices=([RANDOM_LABEL] if random else []) + choices,
                           value=value, label=label, filterable=True,
                           allow_custom_value=True, visible=conditional, **kw)

    def result_pair(key, seen_label='Input as the model saw it'):
        with gr.Row():
            seen = gr.Image(label=seen_label, format='png', height=CANVAS,
                            interactive=False, elem_classes='pixelated',
                            elem_id=f'{key}-observed')
            out = gr.Image(label='Result', format='png', height=CANVAS, interactive=False,
                           elem_classes='pixelated', elem_id=f'{key}-result')
        info = gr.Markdown(elem_id=f'{key}-info')
        return seen, out, info

    def folder():
        # one folder per request; only the latest few are kept (the page shows
        # the last result of each tab), so a long-running server does not grow
        recent.append(tempfile.mkdtemp(dir=work_dir))
        while len(recent) > KEEP_REQUEST_FOLDERS:
            shutil.rmtree(recent.popleft(), ignore_errors=True)
        return recent[-1]

    # ------------------------------------------------------------ handlers
    # a gr.Progress default makes Gradio show progress (the library's tqdm bars)
    bar = gr.Progress(track_tqdm=True)

    @user_errors
    def generate(label, num_images, seed, sampler, steps, ts, progress=bar):
        res = app.generate(num_images, label, seed, sampler, steps, ts, progress=True)
        npz, png = write_downloads(res, folder())
        gallery = [(img, cap) for img, cap in zip(res.images, res.captions)]
        return gallery, [npz, png], res.summary()

    def pair(res):
        return grid_strip(res.observed), grid_strip(res.images), res.summary()

    @user_errors
    def edit_api(task, image, mask, mask_name, label, sigma, patch_size, add_noise,
                 num_points, seed, ts, fit, progress=bar):
        res = app.edit(task, image, mask=mask if mask else (mask_name or None), label=label,
                       sigma=sigma, patch_size=patch_size, add_noise=add_noise,
                       num_points=num_points, seed=seed, ts=ts, fit=fit or 'resize',
                       progress=True)
        return pair(res)

    @user_errors
    def sketch(value, label, sigma, seed, ts, progress=bar):
        drawing = canvas_drawing(value, size)
        res = app.edit('stroke', drawing, label=label, sigma=sigma, seed=seed, ts=ts,
                       progress=True)
        return drawing, res.images[0], res.summary()

    @user_errors
    def inpaint(value, mask_name, label, seed, ts, progress=bar):
        image = editor_image(value, size)
        if mask_name and mask_name != BRUSH_MASK:
            mask = mask_name
        else:
            mask = mask_from_layers(value.get('layers'), size)
            if mask is None:
                raise ValueError('the mask is empty: brush the region to fill (or pick a '
                                 'built-in mask) first')
        return pair(app.edit('inpaint', image, mask=mask, label=label, seed=seed, ts=ts,
                             progress=True))

    @user_errors
    def to_editor(path, fit):
        if path is None:
            return None
        big = enlarge(read_image(path, size, fit), CANVAS)
        return {'background': big, 'layers': [], 'composite': big}

    @user_errors
    def colorize(image, fit, label, seed, ts, progress=bar):
        return pair(app.edit('colorize', image, label=label, seed=seed, ts=ts, fit=fit,
                             progress=True))

    @user_errors
    def superres(image, fit, label, seed, ts, patch_size, progress=bar):
        return pair(app.edit('superres', image, label=label, seed=seed, ts=ts, fit=fit,
                             patch_size=patch_size, progress=True))

    @user_errors
    def denoise(image, fit, label, seed, ts, sigma, add_noise, progress=bar):
        return pair(app.edit('denoise', image, label=label, seed=seed, ts=ts, fit=fit,
                             sigma=sigma, add_noise=add_noise, progress=True))

    @user_errors
    def interpolate(label_a, label_b, num_points, seed, ts, progress=bar):
        labels = f'{label_a},{label_b}' if conditional else None
        if conditional and (not label_a or not label_b):
            raise ValueError('choose both classes')
        res = app.edit('interpolate', label=labels, num_points=num_points, seed=seed, ts=ts,
                       progress=True)
        gif = write_gif(res.images, osp.join(folder(), 'interpolation.gif'))
        return grid_strip(res.images), gif, res.summary()

    @user_errors
    def draw_input(label, seed):
        res = app.generate(1, label, seed)
        from PIL import Image
        path = osp.join(folder(), 'sample.png')
        Image.fromarray(res.images[0]).save(path)
        return path

    # ------------------------------------------------------------ page
    with gr.Blocks(title='Consistency models', theme=_theme(), css=CSS,
                   analytics_enabled=False) as demo:
        gr.Markdown(f'# Consistency models\n{app.describe()}. ' + (
            'One network call per image (one-step) or a few (multistep); editing needs no '
            'extra training.' if app.is_consistency else 'An EDM teacher: it generates with '
            'its ODE/SDE samplers; the editing tabs need a consistency model (CD or CT).'))
        with gr.Tabs():
            with gr.Tab('Generate', id='generate', elem_id='tab-generate'):
                with gr.Row():
                    with gr.Column(scale=1):
                        g_label = label_box(random=True, info='a class, or random classes')
                        g_num = gr.Slider(1, app.max_images, value=min(8, app.max_images),
                                          step=1, label='Number of images')
                        g_seed = gr.Number(0, precision=0, label='Seed')
                        g_sampler = gr.Radio(list(app.samplers), value=app.default_sampler,
                                             label='Sampler')
                        with gr.Row():
                            g_steps = gr.Number(app.default_steps, precision=0,
                                                label='Steps (grid size)')
                            g_ts = gr.Textbox(app.default_ts, label='ts (multistep)',
                                              info='grid indices, increasing')
                        g_button = gr.Button('Generate', variant='primary',
                                             elem_id='generate-button')
                    with gr.Column(scale=2):
                        g_gallery = gr.Gallery(label='Samples', format='png', columns=8,
                                               height='auto', elem_classes='pixelated',
                                               object_fit='contain')
                        g_files = gr.File(label='Download (.npz as tools/sample.py, grid)',
                                          file_count='multiple', interactive=False)
                        g_info = gr.Markdown()
                g_button.click(generate, [g_label, g_num, g_seed, g_sampler, g_steps, g_ts],
                               [g_gallery, g_files, g_info], api_name='generate', **run)

            with gr.Tab('Sketch', id='sketch', elem_id='tab-sketch'):
                gr.Markdown(f'Draw on the {CANVAS} px canvas; the model sees it at {size} px, '
                            'noised to σ, and finishes it. Small σ: faithful to the '
                            'strokes; large σ: free.')
                blank = np.full((CANVAS, CANVAS, 3), sketch_bg, dtype=np.uint8)
                blank_value = {'background': blank, 'layers': [], 'composite': blank}
                with gr.Row():
                    with gr.Column():
                        s_canvas = gr.Sketchpad(
                            value=blank_value, type='numpy', image_mode='RGBA',
                            canvas_size=(CANVAS, CANVAS), fixed_canvas=True, layers=False,
                            transforms=(),
                            brush=gr.Brush(colors=['#ffffff', '#808080', '#000000', '#d62728',
                                                   '#2ca02c', '#1f77b4'],
                                           default_color='#ffffff' if sketch_bg == 0
                                           else '#000000',
                                           default_size=max(8, CANVAS // 10)),
                            label='Canvas', elem_id='sketch-canvas', height=CANVAS + 120,
                            elem_classes='pixelated')
                        s_clear = gr.Button('Clear canvas', size='sm')
                    with gr.Column():
                        s_label = label_box()
                        s_sigma = gr.Slider(0.1, 20.0, value=2.0, step=0.1,
                                            label='σ: faithful ↔ free')
                        s_seed = gr.Number(0, precision=0, label='Seed')
                        s_ts = gr.Textbox('', label='ts (empty: default)')
                        s_button = gr.Button('Generate from sketch', variant='primary',
                                             elem_id='sketch-button')
                s_seen, s_out, s_info = result_pair('sketch', f'Your drawing at {size}x{size}')
                s_button.click(sketch, [s_canvas, s_label, s_sigma, s_seed, s_ts],
                               [s_seen, s_out, s_info], **hidden)
                s_clear.click(lambda: blank_value, None, s_canvas, show_api=False)

            def source_inputs(key):
                with gr.Column():
                    src = gr.Image(type='filepath', label='Image', sources=['upload',
                                                                           'clipboard'],
                                   height=CANVAS, elem_classes='pixelated',
                                   elem_id=f'{key}-input')
                    fit = gr.Radio(['resize', 'center-crop'], value='resize',
                                   label=f'Another size than {size}x{size}')
                    with gr.Row():
                        lab = label_box()
                        seed = gr.Number(0, precision=0, label='Seed')
                    draw = gr.Button('Draw an input from the model', size='sm')
                    if samples:
                        gr.Examples(samples, inputs=src, label='Samples', elem_id=f'{key}-samples')
                draw.click(draw_input, [lab, seed], src, **hidden)
                return src, fit, lab, seed

            with gr.Tab('Inpaint', id='inpaint', elem_id='tab-inpaint'):
                gr.Markdown('Upload an image (or pick a sample), brush the region to fill, '
                            'run.')
                with gr.Row():
                    i_src, i_fit, i_label, i_seed = source_inputs('inpaint')
                    with gr.Column():
                        i_editor = gr.ImageEditor(
                            type='numpy', image_mode='RGBA', canvas_size=(CANVAS, CANVAS),
                            fixed_canvas=True, sources=(), layers=False, transforms=(),
                            brush=gr.Brush(colors=['#ff00ff'], default_color='#ff00ff',
                                           default_size=max(8, CANVAS // 8)),
                            label='Brush the region to fill', height=CANVAS + 120,
                            elem_id='inpaint-editor',
                            elem_classes='pixelated')
                        i_mask = gr.Dropdown([BRUSH_MASK, *BUILTIN_MASKS], value=BRUSH_MASK,
                                             label='Mask')
                        i_ts = gr.Textbox('', label='ts (empty: default)')
                        i_button = gr.Button('Inpaint', variant='primary')
                i_seen, i_out, i_info = result_pair('inpaint')
                for trigger in (i_src.change, i_fit.change):
                    trigger(to_editor, [i_src, i_fit], i_editor, show_api=False)
                i_button.click(inpaint, [i_editor, i_mask, i_label, i_seed, i_ts],
                               [i_seen, i_out, i_info], **hidden)

            with gr.Tab('Colorize', id='colorize', elem_id='tab-colorize'):
                gr.Markdown('The model keeps the luminance and chooses the colours.')
                with gr.Row():
                    c_src, c_fit, c_label, c_seed = source_inputs('colorize')
                    with gr.Column():
                        c_ts = gr.Textbox('', label='ts (empty: default)')
                        c_button = gr.Button('Colorize', variant='primary')
                c_seen, c_out, c_info = result_pair('colorize')
                c_button.click(colorize, [c_src, c_fit, c_label, c_seed, c_ts],
                               [c_seen, c_out, c_info], **hidden)

            with gr.Tab('Super-resolve', id='superres', elem_id='tab-superres'):
                gr.Markdown(f'The mean of every patch is kept. Give a {size}x{size} image or '
                            'a low-resolution one of size/patch pixels.')
                patches = app.patch_sizes() or [1]
                with gr.Row():
                    r_src, r_fit, r_label, r_seed = source_inputs('superres')
                    with gr.Column():
                        r_patch = gr.Dropdown(patches, value=4 if 4 in patches else patches[0],
                                              label='Patch size')
                        r_ts = gr.Textbox('', label='ts (empty: default)')
                        r_button = gr.Button('Super-resolve', variant='primary')
                r_seen, r_out, r_info = result_pair('superres')
                r_button.click(superres, [r_src, r_fit, r_label, r_seed, r_ts, r_patch],
                               [r_seen, r_out, r_info], **hidden)

            with gr.Tab('Denoise', id='denoise', elem_id='tab-denoise'):
                gr.Markdown('σ is the noise of the image (in [-1, 1] units); "add noise" '
                            'noises a clean image first.')
                with gr.Row():
                    d_src, d_fit, d_label, d_seed = source_inputs('denoise')
                    with gr.Column():
                        d_sigma = gr.Slider(0.05, 5.0, value=0.5, step=0.05, label='σ')
                        d_add = gr.Checkbox(True, label='Add noise of σ first')
                        d_ts = gr.Textbox('', label='ts (empty: default)')
                        d_button = gr.Button('Denoise', variant='primary')
                d_seen, d_out, d_info = result_pair('denoise')
                d_button.click(
                    denoise, [d_src, d_fit, d_label, d_seed, d_ts, d_sigma, d_add],
                    [d_seen, d_out, d_info], **hidden)

            with gr.Tab('Interpolate', id='interpolate', elem_id='tab-interpolate'):
                gr.Markdown('Spherical interpolation between two noises (and two classes).')
                with gr.Row():
                    with gr.Column():
                        with gr.Row():
                            n_a = label_box('From class', value=choices[3] if
                                            len(choices) > 3 else default_label)
                            n_b = label_box('To class', value=choices[8] if
                                            len(choices) > 8 else default_label)
                        n_points = gr.Slider(2, 16, value=8, step=1, label='Points')
                        n_seed = gr.Number(0, precision=0, label='Seed')
                        n_ts = gr.Textbox('', label='ts (empty: one step)')
                        n_button = gr.Button('Interpolate', variant='primary')
                    with gr.Column():
                        n_strip = gr.Image(label='Strip', format='png', interactive=False,
                                           height=CANVAS // 3,
                                           elem_classes='pixelated', elem_id='interpolate-strip')
                        n_gif = gr.Image(label='Animation', type='filepath', interactive=False,
                                         height=CANVAS // 2, elem_id='interpolate-gif')
                        n_info = gr.Markdown(elem_id='interpolate-info')
                n_button.click(interpolate, [n_a, n_b, n_points, n_seed, n_ts],
                               [n_strip, n_gif, n_info], **hidden)

            with gr.Tab('API', id='api', elem_id='tab-api'):
                gr.Markdown(API_HELP)

        # /edit: the editing tasks for API clients (no page of their own)
        with gr.Column(visible=False):
            e_task = gr.Dropdown(list(TASKS), value='inpaint', label='task')
            e_image = gr.File(label='image', file_types=None)
            e_mask = gr.File(label='mask (white = keep)')
            e_mask_name = gr.Textbox('', label='mask_name (built-in: ' +
                                     ', '.join(BUILTIN_MASKS) + ')')
            e_label = gr.Textbox('', label='label')
            e_sigma = gr.Number(None, label='sigma')
            e_patch = gr.Number(4, precision=0, label='patch_size')
            e_add = gr.Checkbox(True, label='add_noise')
            e_points = gr.Number(8, precision=0, label='num_points')
            e_seed = gr.Number(0, precision=0, label='seed')
            e_ts = gr.Textbox('', label='ts')
            e_fit = gr.Dropdown(['resize', 'center-crop', 'none'], value='resize',
                                label='fit')
            e_seen = gr.Image(format='png', label='observed')
            e_out = gr.Image(format='png', label='result')
            e_info = gr.Textbox(label='summary')
            e_button = gr.Button('edit')
        e_button.click(edit_api, [e_task, e_image, e_mask, e_mask_name, e_label, e_sigma,
                                  e_patch, e_add, e_points, e_seed, e_ts, e_fit],
                       [e_seen, e_out, e_info], api_name='edit', **run)
    return demo


API_HELP = """\
The two endpoints, from Python with `gradio_client` (installed with Gradio):

```python
from gradio_client import Client, handle_file
client = Client('http://127.0.0.1:7860/')
gallery, files, summary = client.predict(
    '7', 8, 0, 'onestep', 40, '0,22,39', api_name='/generate')
# label, number of images, seed, sampler, steps, ts
gallery[0]['image']   # a PNG of the first image; files: [.npz, grid .png]
observed, result, summary = client.predict(
    'inpaint', handle_file('digit_7.png'), None, 'bottom', '7', None, 4, True, 8, 0, '',
    'resize', api_name='/edit')
# task, image, mask file (white = keep), built-in mask, label, sigma, patch_size,
# add_noise, num_points, seed, ts, fit
```

Tasks: inpaint, colorize, superres, denoise, stroke (sigma needed for the last
two), interpolate (label 'a,b'; no image). `client.view_api()` lists the
parameters.
"""
