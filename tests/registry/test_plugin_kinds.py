"""One registry each for samplers, editing tasks and export formats: a toy one
registered in a test is found everywhere its kind is listed (the tools' help
and choices, the web demo, the model and MMagic's inferencer), then removed."""
import os.path as osp

import numpy as np
import pytest

from mmagic_cm.apps import DemoApp
from mmagic_cm.registry import EDITING_TASKS, EXPORT_FORMATS, SAMPLERS
from mmagic_cm.testing import ROOT, run_tool

CD = osp.join(ROOT, 'configs', 'consistency_models',
              'consistency_models_cd_digits-onestep-16x16.py')


@pytest.fixture(scope='module')
def app():
    return DemoApp.from_config(CD, device='cpu', max_images=4)


def help_of(tool, capsys):
    with pytest.raises(SystemExit):
        run_tool(tool, ['--help'])
    return capsys.readouterr().out


@pytest.fixture
def toy_sampler():
    from mmagic_cm.sampling.samplers import register_sampler

    @register_sampler('toy', consistency=True)
    def sample_toy(denoiser, x, sigmas, randn_like=None, progress=False, callback=None):
        return denoiser(x, sigmas[0] * x.new_ones([x.shape[0]])) * 0  # grey
    try:
        yield sample_toy
    finally:
        SAMPLERS.module_dict.pop('toy')


def test_a_registered_sampler_is_everywhere(toy_sampler, app, capsys):
    from mmagic_cm.sampling import SamplingSettings
    from mmagic_cm.sampling.samplers import sampler_names
    assert 'toy' in sampler_names(consistency=True)
    assert SamplingSettings(sampler='toy').sampler == 'toy'
    assert 'toy' in help_of('sample', capsys)
    assert 'toy' in app.samplers  # the web demo's choices
    res = app.generate(2, label='3', sampler='toy')
    assert (res.images == 127).all()  # 0 truncated to uint8
    # MMagic's inferencer passes sample_kwargs to the model's forward
    out = app.model(dict(num_batches=2, sample_kwargs=dict(sampler='toy')), mode='tensor')
    assert out.abs().max() == 0
    SAMPLERS.module_dict.pop('toy')
    with pytest.raises(ValueError, match="unknown sampler 'toy'"):
        SamplingSettings(sampler='toy')
    SAMPLERS.module_dict['toy'] = toy_sampler


@pytest.fixture
def toy_task():
    from mmagic_cm.editing import EditingTask

    @EDITING_TASKS.register_module(name='invert')
    class Invert(EditingTask):
        name, metafile_task = 'invert', 'Inversion'

        def run(self, denoiser, batch, gen, sigma_max, extra):
            return -batch, batch
    try:
        yield Invert
    finally:
        EDITING_TASKS.module_dict.pop('invert')


def test_a_registered_editing_task_is_everywhere(toy_task, app, capsys):
    from mmagic_cm.apis.editing_inferencer import metafile_tasks
    from mmagic_cm.editing import task_names
    assert 'invert' in task_names()
    assert 'invert' in help_of('edit', capsys)
    assert metafile_tasks()['invert'] == 'Inversion'  # editing configs may name it
    image = np.zeros((16, 16, 3), np.uint8)
    res = app.edit('invert', image, label='1')
    assert (res.images == 255).all() and (res.observed == 0).all()
    EDITING_TASKS.module_dict.pop('invert')
    with pytest.raises(ValueError, match="unknown task 'invert'"):
        app.edit('invert', image, label='1')
    EDITING_TASKS.module_dict['invert'] = toy_task


@pytest.fixture
def toy_format():
    from mmagic_cm.export import ExportFormat

    @EXPORT_FORMATS.register_module(name='toyfmt')
    class ToyFormat(ExportFormat):
        name, label, suffix, backend = 'toyfmt', 'Toy', '.toy', 'json'
    try:
        yield ToyFormat
    finally:
        EXPORT_FORMATS.module_dict.pop('toyfmt')


def test_a_registered_export_format_is_everywhere(toy_format, capsys):
    from mmagic_cm.export import format_names, format_of, is_exported_file
    from mmagic_cm.sampling.settings import default_device
    assert 'toyfmt' in format_names()
    assert 'toyfmt' in help_of('export', capsys) and '.toy' in capsys.readouterr().out + \
        help_of('export', capsys)
    assert format_of('m.toy').name == 'toyfmt'
    # a model_path of this format samples through the exported file, on the CPU
    assert is_exported_file('m.toy') and default_device(None, 'm.toy') == 'cpu'
    EXPORT_FORMATS.module_dict.pop('toyfmt')
    assert not is_exported_file('m.toy')
    with pytest.raises(ValueError, match='not an exported file'):
        format_of('m.toy')
    EXPORT_FORMATS.module_dict['toyfmt'] = toy_format


@pytest.mark.parametrize('doc,kind', [('sampling.md', 'samplers'), ('editing.md', 'tasks'),
                                      ('deploy.md', 'formats')])
def test_the_docs_list_every_registered_name(doc, kind):
    from mmagic_cm.editing import task_names
    from mmagic_cm.export import format_names
    from mmagic_cm.sampling.samplers import sampler_names
    names = dict(samplers=sampler_names, tasks=task_names, formats=format_names)[kind]()
    text = open(osp.join(ROOT, 'docs', doc)).read()
    assert not [n for n in names if f'`{n}`' not in text], f'docs/{doc} lacks some {kind}'
