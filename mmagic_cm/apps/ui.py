"""The web demo's page: a Gradio Blocks app over :class:`~.core.DemoApp`.

Tabs Generate, Sketch, Inpaint, Colorize, Super-resolve, Denoise and
Interpolate; two named API endpoints for ``gradio_client``:

- ``/generate(label, num_images, seed, sampler, steps, ts)`` -> (gallery,
  files [.npz, grid .png], summary)
- ``/edit(task, image, mask, mask_name, label, sigma, patch_size, add_noise,
  num_points, seed, ts, fit)`` -> (input as the model saw it, result, summary);
  interpolation gives a strip of its points.

Every event that runs the model shares one queue slot (``concurrency_id``
'model', limit 1): requests wait their turn, one model in memory. Any input,
from the page or the API, gives a result or a one-line message on the page
(``gr.Error``), never a traceback: the functions check every value
(:mod:`.core`), Gradio's own checks pass what they refuse on to them
(:func:`lenient`), and what Gradio cannot read at all is one line
(:class:`DemoBlocks <_blocks_class>`).
"""
from __future__ import annotations

import atexit
import collections
import functools
import glob
import json
import logging
import os
import os.path as osp
import re
import shutil
import tempfile
from typing import Optional

import numpy as np

from ..editing import task_names
from ..editing.masks import BUILTIN_MASKS
from ..files.checkpoint import CheckpointError
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
/* the Generate gallery: its columns share the box's width (Gradio's 100 px
   minimum cuts the last ones off), every image square with its class below */
#generate-gallery .grid-wrap { height: auto !important; max-height: none !important;
  padding-top: 32px !important; }
#generate-gallery .grid-container {
  grid-template-columns: repeat(var(--grid-cols), minmax(0, 1fr)) !important; }
#generate-gallery .thumbnail-item { height: auto !important; aspect-ratio: auto !important;
  overflow: visible !important; display: flex; flex-direction: column; }
#generate-gallery .thumbnail-item img { width: 100%; height: auto; aspect-ratio: 1 / 1; }
#generate-gallery .caption-label { position: static !important; align-self: center;
  max-width: 100%; margin-top: 2px; }
"""
logger = logging.getLogger(__name__)


def user_errors(fn):
    """Turn the library's errors into one-line page messages (they stay until
    closed: the outputs' own 'Error' marks say nothing more)."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError, CheckpointError) as exc:
            raise gr.Error(str(exc), duration=None, print_exception=False) from None
        except Exception as exc:  # a bug: the log gets the traceback, the page one line
            logger.exception('request failed')
            raise gr.Error(f'internal error ({type(exc).__name__}); see the server log',
                           duration=None, print_exception=False) from None

    return wrapped


def editor_image(value, size: int) -> np.ndarray:
    """The image under an image editor's strokes, (size, size, 3) uint8."""
    from PIL import Image
    background = value.get('background') if isinstance(value, dict) else None
    if background is None or isinstance(background, np.ndarray) and background.ndim == 3 \
            and background.shape[-1] == 4 and not background[..., 3].any():
        # (an empty editor holds a transparent canvas)
        raise ValueError('no image: upload one or pick a sample first')
    img = open_image(background)
    return np.asarray(fit_image(img, size, 'resize', resample=Image.BOX), dtype=np.uint8)


def numeric_layers(value) -> list:
    """The editor's stroke layers as numeric arrays (anything else is refused)."""
    layers = value.get('layers') if isinstance(value, dict) else None
    out = []
    for layer in layers or ():
        if layer is None:
            continue
        arr = np.asarray(layer)
        if arr.dtype.kind not in 'biuf' or arr.ndim not in (2, 3):
            raise ValueError('the editor\'s layers are not images; draw on the canvas')
        out.append(arr)
    return out


def canvas_drawing(value, size: int) -> np.ndarray:
    """What was drawn on a sketchpad (background included), (size, size, 3) uint8."""
    from PIL import Image
    if not isinstance(value, dict) or value.get('composite') is None:
        raise ValueError('draw something on the canvas first')
    composite = open_image(value['composite'], 'canvas')
    layers = numeric_layers(value)
    if not any(x.ndim == 3 and x.shape[-1] == 4 and x[..., 3].any() for x in layers) and \
            np.ptp(np.asarray(composite)) == 0:
        raise ValueError('the canvas is empty: draw a few strokes first')
    return np.asarray(fit_image(composite, size, 'resize', resample=Image.BOX), dtype=np.uint8)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _lenient_preprocess(original):
    @functools.wraps(original)
    def preprocess(self, payload):
        try:
            return original(self, payload)
        except Exception:
            path = getattr(payload, 'path', None)
            return path if isinstance(path, str) else payload
    return preprocess


@functools.cache
def _lenient_class(cls):
    """``cls`` with a lenient ``preprocess``: the same name, module and front-end
    block, so the page and the API info see the component they expect."""
    block = (cls.__base__ if hasattr(cls, 'is_template') else cls).__name__.lower()
    return type(cls.__name__, (cls, ), {
        'preprocess': _lenient_preprocess(cls.preprocess), '__module__': cls.__module__,
        '__qualname__': cls.__qualname__, 'get_block_name': lambda self: block,
        'get_block_class': lambda self: block})


def lenient(component):
    """Let whatever a client sends for ``component`` reach the event's function,
    which checks it and answers in one line: Gradio's own checks (choices,
    numbers, image files) raise with a traceback in the server log. A value
    Gradio cannot read arrives as sent (a file: its path). The component's
    class changes, not the instance: Gradio rebuilds a component from its class
    for the session when an event returns ``gr.update()``."""
    component.__class__ = _lenient_class(type(component))
    return component


def _blocks_class():
    """``gr.Blocks`` with the demo's two changes (see :class:`DemoBlocks`)."""
    import gradio as gr

    class DemoBlocks(gr.Blocks):
        """Blocks whose inputs never end in a traceback, whose API info gives
        the page's own client every event's parameters, and which serve the
        shipped samples from any working directory.

        - An input Gradio cannot read at all (a malformed file description, a
          path outside the uploads, a missing value) is one line on the page.
        - Gradio 5.14's API info lists no event by number, yet the page calls
          events by number: its client then warns 'Too many arguments provided
          for the endpoint.' on every click. Each event's info is given under
          its number too (``unnamed_endpoints``).
        """

        async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
            try:
                return await super().preprocess_data(block_fn, inputs, state, explicit_call)
            except gr.Error as exc:
                exc.print_exception, exc.duration = False, None
                raise
            except Exception as exc:
                raise gr.Error(await self._unreadable(block_fn, inputs, state, explicit_call,
                                                      exc),
                               duration=None, print_exception=False) from None

        async def _unreadable(self, block_fn, inputs, state, explicit_call, exc) -> str:
            """One line for an input Gradio could not read: the input (each is
            tried alone to find it), and for a file the way to send one."""
            from gradio import processing_utils
            for i, block in enumerate(block_fn.inputs):
                block = state[block._id] if block._id in state else block
                model = getattr(block, 'data_model', None)
                try:
                    value = await processing_utils.async_move_files_to_cache(
                        inputs[i], block, check_in_upload_folder=not explicit_call)
                    if model is not None and value is not None:
                        model.model_validate(value, context={'validate_meta': True})
                except Exception:
                    name = block.label or f'input {i + 1}'
                    if 'path' in getattr(model, 'model_fields', ()):  # a file (FileData, ImageData)
                        return (f'{name}: not a file this app can read; upload one, or from '
                                'Python send handle_file(PATH) (gradio_client)')
                    return f'{name}: cannot be read: {first_line(exc)}'
            return f'an input of this request cannot be read: {first_line(exc)}'

        def launch(self, *args, allowed_paths=None, **kwargs):
            # the shipped samples are served wherever the server was started
            # (Gradio serves files under the working directory only)
            folder = sample_images_folder()
            paths = [*(allowed_paths or []), *([folder] if folder else [])]
            return super().launch(*args, allowed_paths=paths or None, **kwargs)

        def get_api_info(self, all_endpoints: bool = False):
            info = super().get_api_info(all_endpoints)
            if info is None:
                return info
            every = super().get_api_info(all_endpoints=True) or {}
            named = every.get('named_endpoints', {})
            for index, fn in self.fns.items():
                if isinstance(fn.api_name, str) and f'/{fn.api_name}' in named:
                    info['unnamed_endpoints'][str(index)] = named[f'/{fn.api_name}']
            return info

    return DemoBlocks


#: the digits samples are named after their class (demo/editing/digits)
SAMPLE_NAME = re.compile(r'digit_(\d+)\.png$')


def class_of_sample(path) -> Optional[str]:
    """The class of a shipped sample image from its name ('digit_7.png' -> '7')."""
    m = SAMPLE_NAME.search(osp.basename(path)) if isinstance(path, str) else None
    return m.group(1) if m else None


def _theme():
    import gradio as gr
    # system fonts, as plain font names: Gradio fetches names given as text
    # from its static folder (404s) or Google
    font = gr.themes.Font
    return gr.themes.Default(font=[font('ui-sans-serif'), font('system-ui'), font('sans-serif')],
                             font_mono=[font('ui-monospace'), font('monospace')])


def sampler_fields(app: DemoApp, sampler: str) -> dict:
    """What the Steps and ts boxes show for ``sampler``: visibility, label, value."""
    if sampler == 'multistep':
        return dict(steps=dict(visible=True, label='Steps (grid size)',
                               value=app.default_steps),
                    ts=dict(visible=True, label='ts (multistep)',
                            info='grid indices, increasing', value=app.default_ts))
    if sampler == 'trigflow':
        return dict(steps=dict(visible=True, label='Steps', value=2),
                    ts=dict(visible=True, label='ts (trigflow)',
                            info='Steps - 1 TrigFlow times in (0, π/2), decreasing, e.g. '
                            '1.3,1.1; empty: from 1.1 down', value=''))
    if sampler == 'onestep':
        return dict(steps=dict(visible=False, label='Steps', value=app.default_steps),
                    ts=dict(visible=False, label='ts', value=''))
    return dict(steps=dict(visible=True, label='Steps', value=app.default_steps),
                ts=dict(visible=False, label='ts', value=''))


def build_demo(app: DemoApp, work_dir: Optional[str] = None):
    """The Gradio Blocks of the demo for ``app`` (not launched).

    Args:
        work_dir: where downloads are written (default: a new temp folder).
    """
    import gradio as gr
    if work_dir is None:  # ours: removed when the process ends
        work_dir = tempfile.mkdtemp(prefix='mmagic_cm_demo_')
        atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    os.makedirs(work_dir, exist_ok=True)
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
    page = dict(show_api=False)  # page updates that run no model

    def label_box(label='Class', value=default_label, random=False, **kw):
        return lenient(gr.Dropdown(choices=([RANDOM_LABEL] if random else []) + choices,
                                   value=value, label=label, filterable=True,
                                   allow_custom_value=True, visible=conditional, **kw))

    def seed_box(key):
        return lenient(gr.Number(0, precision=0, label='Seed', info='empty: 0',
                                 elem_id=f'{key}-seed'))

    def result_pair(key, seen_label='Input as the model saw it'):
        with gr.Row():
            seen = gr.Image(label=seen_label, format='png', height=CANVAS,
                            interactive=False, elem_classes='pixelated',
                            elem_id=f'{key}-observed')
            out = gr.Image(label='Result', format='png', height=CANVAS, interactive=False,
                           elem_classes='pixelated', elem_id=f'{key}-result')
        info = gr.Markdown(label='summary', elem_id=f'{key}-info')
        return seen, out, info

    def forget():
        """A new (or emptied) input: the last run's images and summary are
        about another image, so they go."""
        return None, None, ''

    def on_run(button, fn, inputs, outputs, info, **kw):
        """``button`` runs ``fn``; its summary is cleared at once (in the browser),
        so that an error is never shown beside the last run's summary."""
        button.click(None, None, info, js='() => ""', **page)
        button.click(fn, inputs, outputs, **kw)

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

    def sampler_changed(sampler):
        fields = sampler_fields(app, sampler if sampler in app.samplers
                                else app.default_sampler)
        return gr.update(**fields['steps']), gr.update(**fields['ts'])

    def pair(res):
        return grid_strip(res.observed), grid_strip(res.images), res.summary()

    @user_errors
    def edit_api(task, image, mask, mask_name, label, sigma, patch_size, add_noise,
                 num_points, seed, ts, fit, progress=bar):
        if isinstance(mask_name, str) and mask_name.strip() and not mask:
            mask = mask_name.strip()
        res = app.edit(task, image, mask=mask or None, label=label, sigma=sigma,
                       patch_size=patch_size, add_noise=add_noise, num_points=num_points,
                       seed=seed, ts=ts, fit=fit, progress=True)
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
            mask = mask_from_layers(numeric_layers(value), size)
            if mask is None:
                raise ValueError('the mask is empty: brush the region to fill (or pick a '
                                 'built-in mask) first')
        return pair(app.edit('inpaint', image, mask=mask, label=label, seed=seed, ts=ts,
                             progress=True))

    def unreadable(path) -> Optional[str]:
        """Why an uploaded file cannot be used (None: it can)."""
        try:
            open_image(path)
        except ValueError as exc:
            return str(exc)
        return None

    def upload_checked(path):
        """An upload that is not a readable image: one line on the page, and the
        image box emptied (no broken picture left to run on)."""
        problem = None if path is None else unreadable(path)
        if problem is None:
            return gr.update()
        gr.Warning(problem, duration=None)
        return None

    def to_editor(path, fit):
        if path is None or unreadable(path):  # an unreadable upload: said on upload
            return None
        big = enlarge(read_image(path, size, fit), CANVAS)
        return {'background': big, 'layers': [], 'composite': big}

    def class_of(path):
        found = class_of_sample(path) if conditional else None
        return gr.update() if found is None else found

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
        if conditional and (not label_a or not label_b):
            raise ValueError('choose both classes')
        for value in (label_a, label_b):
            if conditional and not isinstance(value, (str, int)):
                raise ValueError(f'class must be text such as "7", got {value!r}')
        labels = f'{label_a},{label_b}' if conditional else None
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
    with _blocks_class()(title='Consistency models', theme=_theme(), css=CSS,
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
                        g_num = lenient(gr.Slider(1, app.max_images,
                                                  value=min(8, app.max_images), step=1,
                                                  label='Number of images',
                                                  elem_id='generate-num'))
                        g_seed = seed_box('generate')
                        g_sampler = lenient(gr.Radio(list(app.samplers),
                                                     value=app.default_sampler,
                                                     label='Sampler'))
                        fields = sampler_fields(app, app.default_sampler)
                        with gr.Row():
                            g_steps = lenient(gr.Number(precision=0, elem_id='generate-steps',
                                                        **fields['steps']))
                            g_ts = lenient(gr.Textbox(elem_id='generate-ts', **fields['ts']))
                        g_button = gr.Button('Generate', variant='primary',
                                             elem_id='generate-button')
                    with gr.Column(scale=2):
                        g_gallery = gr.Gallery(label='Samples', format='png', columns=4,
                                               height='auto', object_fit='contain',
                                               elem_id='generate-gallery',
                                               elem_classes='pixelated')
                        g_files = gr.File(label='Download (.npz as tools/sample.py, grid)',
                                          file_count='multiple', interactive=False)
                        g_info = gr.Markdown(label='summary', elem_id='generate-info')
                g_sampler.change(sampler_changed, g_sampler, [g_steps, g_ts], **page)
                on_run(g_button, generate, [g_label, g_num, g_seed, g_sampler, g_steps, g_ts],
                       [g_gallery, g_files, g_info], g_info, api_name='generate', **run)

            with gr.Tab('Sketch', id='sketch', elem_id='tab-sketch'):
                gr.Markdown(f'Draw on the {CANVAS} px canvas; the model sees it at {size} px, '
                            'noised to σ, and finishes it. Small σ: faithful to the '
                            'strokes; large σ: free.')
                blank = np.full((CANVAS, CANVAS, 3), sketch_bg, dtype=np.uint8)
                blank_value = {'background': blank, 'layers': [], 'composite': blank}
                with gr.Row():
                    with gr.Column():
                        s_canvas = lenient(gr.Sketchpad(
                            value=blank_value, type='numpy', image_mode='RGBA',
                            canvas_size=(CANVAS, CANVAS), fixed_canvas=True, layers=False,
                            transforms=(),
                            brush=gr.Brush(colors=['#ffffff', '#808080', '#000000', '#d62728',
                                                   '#2ca02c', '#1f77b4'],
                                           default_color='#ffffff' if sketch_bg == 0
                                           else '#000000',
                                           default_size=max(8, CANVAS // 10)),
                            label='Canvas', elem_id='sketch-canvas', height=CANVAS + 120,
                            elem_classes='pixelated'))
                        s_clear = gr.Button('Clear canvas', size='sm')
                    with gr.Column():
                        s_label = label_box()
                        s_sigma = lenient(gr.Slider(0.1, 20.0, value=2.0, step=0.1,
                                                    label='σ: faithful ↔ free'))
                        s_seed = seed_box('sketch')
                        s_ts = lenient(gr.Textbox('', label='ts (empty: default)'))
                        s_button = gr.Button('Generate from sketch', variant='primary',
                                             elem_id='sketch-button')
                s_seen, s_out, s_info = result_pair('sketch', f'Your drawing at {size}x{size}')
                on_run(s_button, sketch, [s_canvas, s_label, s_sigma, s_seed, s_ts],
                       [s_seen, s_out, s_info], s_info, **hidden)
                s_clear.click(lambda: blank_value, None, s_canvas, **page)

            def source_inputs(key):
                with gr.Column():
                    src = lenient(gr.Image(type='filepath', label='Image',
                                           sources=['upload', 'clipboard'], height=CANVAS,
                                           elem_classes='pixelated', elem_id=f'{key}-input'))
                    fit = lenient(gr.Radio(['resize', 'center-crop'], value='resize',
                                           label=f'Another size than {size}x{size}'))
                    with gr.Row():
                        lab = label_box(info='the class the image is edited as (a sample '
                                        'sets it)')
                        seed = seed_box(key)
                    draw = gr.Button('Draw an input from the model', size='sm')
                    if samples:
                        gr.Examples(samples, inputs=src, label='Samples', elem_id=f'{key}-samples')
                draw.click(draw_input, [lab, seed], src, **hidden)
                src.upload(upload_checked, src, src, **page)
                src.change(class_of, src, lab, **page)
                return src, fit, lab, seed

            def ts_box():
                return lenient(gr.Textbox('', label='ts (empty: default)',
                                          info='multistep grid indices, e.g. 0,22,39'))

            with gr.Tab('Inpaint', id='inpaint', elem_id='tab-inpaint'):
                gr.Markdown('Upload an image (or pick a sample), brush the region to fill, '
                            'run.')
                with gr.Row():
                    i_src, i_fit, i_label, i_seed = source_inputs('inpaint')
                    with gr.Column():
                        i_editor = lenient(gr.ImageEditor(
                            type='numpy', image_mode='RGBA', canvas_size=(CANVAS, CANVAS),
                            fixed_canvas=True, sources=(), layers=False, transforms=(),
                            brush=gr.Brush(colors=['#ff00ff'], default_color='#ff00ff',
                                           default_size=max(8, CANVAS // 8)),
                            label='Brush the region to fill', height=CANVAS + 120,
                            elem_id='inpaint-editor',
                            elem_classes='pixelated'))
                        i_mask = lenient(gr.Dropdown([BRUSH_MASK, *BUILTIN_MASKS],
                                                     value=BRUSH_MASK, label='Mask'))
                        i_ts = ts_box()
                        i_button = gr.Button('Inpaint', variant='primary')
                i_seen, i_out, i_info = result_pair('inpaint')
                i_src.change(forget, None, [i_seen, i_out, i_info], **page)
                for trigger in (i_src.change, i_fit.change):
                    trigger(to_editor, [i_src, i_fit], i_editor, **page)
                on_run(i_button, inpaint, [i_editor, i_mask, i_label, i_seed, i_ts],
                       [i_seen, i_out, i_info], i_info, **hidden)

            with gr.Tab('Colorize', id='colorize', elem_id='tab-colorize'):
                gr.Markdown('The model keeps the luminance and chooses the colours.')
                with gr.Row():
                    c_src, c_fit, c_label, c_seed = source_inputs('colorize')
                    with gr.Column():
                        c_ts = ts_box()
                        c_button = gr.Button('Colorize', variant='primary')
                c_seen, c_out, c_info = result_pair('colorize')
                c_src.change(forget, None, [c_seen, c_out, c_info], **page)
                on_run(c_button, colorize, [c_src, c_fit, c_label, c_seed, c_ts],
                       [c_seen, c_out, c_info], c_info, **hidden)

            with gr.Tab('Super-resolve', id='superres', elem_id='tab-superres'):
                gr.Markdown(f'The mean of every patch is kept. Give a {size}x{size} image or '
                            'a low-resolution one of size/patch pixels.')
                patches = app.patch_sizes() or [1]
                with gr.Row():
                    r_src, r_fit, r_label, r_seed = source_inputs('superres')
                    with gr.Column():
                        r_patch = lenient(gr.Dropdown(patches, value=4 if 4 in patches
                                                      else patches[0], label='Patch size'))
                        r_ts = ts_box()
                        r_button = gr.Button('Super-resolve', variant='primary')
                r_seen, r_out, r_info = result_pair('superres')
                r_src.change(forget, None, [r_seen, r_out, r_info], **page)
                on_run(r_button, superres, [r_src, r_fit, r_label, r_seed, r_ts, r_patch],
                       [r_seen, r_out, r_info], r_info, **hidden)

            with gr.Tab('Denoise', id='denoise', elem_id='tab-denoise'):
                gr.Markdown('σ is the noise of the image (in [-1, 1] units); "add noise" '
                            'noises a clean image first.')
                with gr.Row():
                    d_src, d_fit, d_label, d_seed = source_inputs('denoise')
                    with gr.Column():
                        d_sigma = lenient(gr.Slider(0.05, 5.0, value=0.5, step=0.05,
                                                    label='σ'))
                        d_add = lenient(gr.Checkbox(True, label='Add noise of σ first'))
                        d_ts = ts_box()
                        d_button = gr.Button('Denoise', variant='primary')
                d_seen, d_out, d_info = result_pair('denoise')
                d_src.change(forget, None, [d_seen, d_out, d_info], **page)
                on_run(d_button, denoise, [d_src, d_fit, d_label, d_seed, d_ts, d_sigma, d_add],
                       [d_seen, d_out, d_info], d_info, **hidden)

            with gr.Tab('Interpolate', id='interpolate', elem_id='tab-interpolate'):
                gr.Markdown('Spherical interpolation between two noises (and two classes).')
                with gr.Row():
                    with gr.Column():
                        with gr.Row():
                            n_a = label_box('From class', value=choices[3] if
                                            len(choices) > 3 else default_label)
                            n_b = label_box('To class', value=choices[8] if
                                            len(choices) > 8 else default_label)
                        n_points = lenient(gr.Slider(2, 16, value=8, step=1, label='Points'))
                        n_seed = seed_box('interpolate')
                        n_ts = lenient(gr.Textbox('', label='ts (empty: one step)'))
                        n_button = gr.Button('Interpolate', variant='primary')
                    with gr.Column():
                        n_strip = gr.Image(label='Strip', format='png', interactive=False,
                                           height=CANVAS // 3,
                                           elem_classes='pixelated', elem_id='interpolate-strip')
                        n_gif = gr.Image(label='Animation', type='filepath', interactive=False,
                                         height=CANVAS // 2, elem_id='interpolate-gif')
                        n_info = gr.Markdown(label='summary', elem_id='interpolate-info')
                on_run(n_button, interpolate, [n_a, n_b, n_points, n_seed, n_ts],
                       [n_strip, n_gif, n_info], n_info, **hidden)

            with gr.Tab('API', id='api', elem_id='tab-api'):
                api_help = gr.Markdown(API_HELP.replace('{url}', DEFAULT_URL),
                                       elem_id='api-help')
        # the snippet names the address the page was opened at
        demo.load(None, None, api_help, js='() => ' + json.dumps(API_HELP) +
                  '.replace("{url}", window.location.origin + window.location.pathname)')

        # /edit: the editing tasks for API clients (no page of their own)
        with gr.Column(visible=False):
            e_task = lenient(gr.Dropdown(list(task_names()), value='inpaint', label='task'))
            e_image = lenient(gr.File(label='image', file_types=None))
            e_mask = lenient(gr.File(label='mask (white = keep)'))
            e_mask_name = lenient(gr.Textbox('', label='mask_name (built-in: ' +
                                             ', '.join(BUILTIN_MASKS) + ')'))
            e_label = lenient(gr.Textbox('', label='label'))
            e_sigma = lenient(gr.Number(None, label='sigma'))
            e_patch = lenient(gr.Number(4, precision=0, label='patch_size'))
            e_add = lenient(gr.Checkbox(True, label='add_noise'))
            e_points = lenient(gr.Number(8, precision=0, label='num_points'))
            e_seed = lenient(gr.Number(0, precision=0, label='seed'))
            e_ts = lenient(gr.Textbox('', label='ts'))
            e_fit = lenient(gr.Dropdown(['resize', 'center-crop', 'none'], value='resize',
                                        label='fit'))
            e_seen = gr.Image(format='png', label='observed')
            e_out = gr.Image(format='png', label='result')
            e_info = gr.Textbox(label='summary')
            e_button = gr.Button('edit')
        e_button.click(edit_api, [e_task, e_image, e_mask, e_mask_name, e_label, e_sigma,
                                  e_patch, e_add, e_points, e_seed, e_ts, e_fit],
                       [e_seen, e_out, e_info], api_name='edit', **run)
    return demo


#: the address the API snippet shows until the page fills in its own
DEFAULT_URL = 'http://127.0.0.1:7860/'
API_HELP = """\
The two endpoints, from Python with `gradio_client` (installed with Gradio):

```python
from gradio_client import Client, handle_file
client = Client('{url}')
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

`ts`: multistep grid indices; for the trigflow sampler, steps - 1 TrigFlow
times in (0, π/2), decreasing (`3, '1.3,1.1'`; empty: from 1.1 down). A seed
of None is 0. Tasks: inpaint, colorize, superres, denoise, stroke (sigma
needed for the last two), interpolate (label 'a,b'; no image). Bad input
raises `gradio_client.exceptions.AppError` with a one-line message.
`client.view_api()` lists the parameters.
"""
