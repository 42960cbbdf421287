"""MMagic entry points: the demo command line, MMagicInferencer, metafile."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
import yaml
from mmengine.config import Config

from mmagic_cm.apis.editing_inferencer import EDITING_TASK, metafile_tasks
from mmagic_cm.apis.inferencer import plugin_inferencer_kwargs
from mmagic_cm.registry import MODELS
from mmagic_cm.testing import ROOT, TINY_CONFIGS, run_tool

DEMO = osp.join(ROOT, 'demo', 'mmagic_inference_demo.py')


def demo(argv):
    """The demo's main(argv) in this process (run from its file)."""
    return run_tool('mmagic_inference_demo', argv)

METAFILE = osp.join(ROOT, 'configs', 'consistency_models', 'metafile.yml')


def metafile_models():
    with open(METAFILE) as f:
        return yaml.safe_load(f)['Models']


@pytest.mark.slow
def test_demo_subprocess_writes_grid(tiny_cond_config, tmp_path):
    out = tmp_path / 'demo.jpg'
    proc = subprocess.run(
        [sys.executable, DEMO, '--model-name', 'consistency_models', '--model-config',
         tiny_cond_config, '--label', 'king penguin', '--result-out-dir', str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from PIL import Image
    # one row of 4 with torchvision's padding, shown 4x (16-pixel tiles), still a JPEG
    assert Image.open(out).size[1] == 4 * (16 + 2 * 2) and Image.open(out).format == 'JPEG'


@pytest.mark.slow
def test_mmagic_inferencer_in_a_plain_interpreter(tiny_cond_config, tmp_path):
    out = tmp_path / 'out.png'
    code = (
        'import mmagic_cm\n'
        'from mmagic.apis import MMagicInferencer\n'
        "editor = MMagicInferencer(model_name='consistency_models', "
        f"model_config={tiny_cond_config!r}, device='cpu', "
        "extra_parameters=dict(num_batches=3))\n"
        f"res = editor.infer(label=145, result_out_dir={str(out)!r})\n"
        "print(type(res).__name__, tuple(res[1].shape))\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == 'tuple (3, 3, 16, 16)'
    assert out.exists()


def test_inferencer_unconditional_and_labels(tiny_uncond_config, tiny_cond_config, tmp_path):
    from mmagic.apis import MMagicInferencer
    editor = MMagicInferencer(model_name='consistency_models', model_config=tiny_uncond_config,
                              device='cpu', extra_parameters=dict(num_batches=2))
    assert editor.inferencer.task == 'unconditional'
    _, images = editor.infer(result_out_dir=str(tmp_path / 'u.png'))
    assert images.shape == (2, 3, 16, 16) and (tmp_path / 'u.png').exists()
    with pytest.raises(ValueError, match='unconditional; drop the label'):
        editor.infer(label=3)
    cond = MMagicInferencer(model_name='consistency_models', model_config=tiny_cond_config,
                            device='cpu', extra_parameters=dict(num_batches=2))
    with pytest.raises(ValueError, match='out of range'):
        cond.infer(label=1000)


def test_inferencer_loads_a_local_raw_checkpoint(tiny_cond_config, tmp_path):
    from mmagic.apis import MMagicInferencer
    torch.manual_seed(1)
    unet = MODELS.build(Config.fromfile(tiny_cond_config).model).unet
    torch.save(unet.state_dict(), tmp_path / 'raw.pt')
    editor = MMagicInferencer(model_name='consistency_models', model_config=tiny_cond_config,
                              model_ckpt=str(tmp_path / 'raw.pt'), device='cpu')
    model = editor.inferencer.inferencer.model
    assert model.weights_pending  # read on first use, not at construction
    model.materialize()
    loaded = model.unet.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in unet.state_dict().items())


@pytest.mark.parametrize('index', range(len(metafile_models())))
def test_model_setting_picks_metafile_entry_and_task(index):
    entry = metafile_models()[index]
    kwargs = plugin_inferencer_kwargs('consistency_models', index, None, None, 'local.pt', None)
    editing = kwargs['config'].get('editing')
    if editing:  # editing configs: MMagic's task name in the metafile, our inferencer
        assert kwargs['task'] == EDITING_TASK
        assert entry['Results'][0]['Task'] == metafile_tasks()[editing['task']]
    else:
        assert kwargs['task'] == entry['Results'][0]['Task']
        conditional = 'imagenet' in entry['Name'] or 'digits' in entry['Name']
        assert kwargs['task'] == ('conditional' if conditional else 'unconditional')
    assert kwargs['config'].model.model_path == 'local.pt' and kwargs['ckpt'] is None


def test_print_flags_list_plugin_and_mmagic_models(capsys):
    assert demo(['--print-supported-models']) == 0
    out = capsys.readouterr().out
    assert 'consistency_models' in out and 'biggan' in out
    assert demo(['--print-task-supported-models', 'conditional']) == 0
    assert 'consistency_models' in capsys.readouterr().out
    assert demo(['--print-task-supported-models', 'Conditional GANs']) == 0
    assert 'biggan' in capsys.readouterr().out
    assert demo(['--print-task-supported-models', 'unconditional']) == 0
    assert 'consistency_models' in capsys.readouterr().out
    assert demo(['--print-supported-tasks']) == 0
    out = capsys.readouterr().out
    assert "'unconditional'" in out and "'conditional'" in out and 'Inpainting' in out


BAD = [
    (['--model-setting', '99'], 'model setting 99 does not exist for consistency_models'),
    (['--model-setting', '2', '--label', '3'], 'unconditional; drop the label'),
    (['--model-config', '/nonexistent/config.py'], 'config file not found'),
    (['--model-setting', '0', '--model-ckpt', 'http://127.0.0.1:9/cd.pt'],
     'could not download http://127.0.0.1:9/cd.pt'),
    (['--model-setting', '2', '--model-ckpt', 'TINY'], 'does not fit'),
]


@pytest.mark.parametrize('args,message', BAD)
def test_demo_bad_input_one_line(args, message, tmp_path, monkeypatch, capsys, tiny_cond_config):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    if 'TINY' in args:
        torch.save(MODELS.build(Config.fromfile(tiny_cond_config).model).unet.state_dict(),
                   tmp_path / 'tiny.pt')
        args = [str(tmp_path / 'tiny.pt') if a == 'TINY' else a for a in args]
    out = tmp_path / 'never.png'
    rc = demo(['--model-name', 'consistency_models', '--device', 'cpu',
                    '--result-out-dir', str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith('error: ') and message in err
    assert not out.exists()


def test_demo_label_out_of_range(tiny_cond_config, tmp_path, capsys):
    rc = demo(['--model-name', 'consistency_models', '--model-config', tiny_cond_config,
                    '--label', '1000', '--device', 'cpu', '--result-out-dir',
                    str(tmp_path / 'x.png')])
    assert rc == 2 and 'class label 1000 is out of range' in capsys.readouterr().err


def test_offline_message_names_the_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    rc = demo(['--model-name', 'consistency_models', '--model-config',
                    osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'), '--model-ckpt',
                    'http://127.0.0.1:9/x.pt', '--device', 'cpu'])
    err = capsys.readouterr().err
    assert rc == 2 and '--model-ckpt PATH' in err and 'http://127.0.0.1:9/x.pt' in err


def test_metafile_lists_every_config_and_builds():
    configs = sorted(osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', 'consistency_models', '*.py')))
    listed = [m['Config'] for m in metafile_models()]
    assert sorted(listed) == configs and len(set(listed)) == len(listed)
    for entry in metafile_models():
        cfg = Config.fromfile(osp.join(ROOT, entry['Config']))
        assert cfg.model.model_path == entry['Weights']
        assert osp.basename(entry['Weights']) == entry['Metadata']['Checkpoint']
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
        editing = cfg.get('editing')
        if editing:
            assert entry['Results'][0]['Task'] == metafile_tasks()[editing['task']]
            assert entry['Metadata']['NFE'] == len(editing['ts']) - 1
            continue
        assert (model.num_classes is not None) == (entry['Results'][0]['Task'] == 'conditional')
        if model.sample_settings['sampler'] == 'onestep':
            assert entry['Metadata']['NFE'] == 1
        elif model.sample_settings['sampler'] == 'multistep':
            assert entry['Metadata']['NFE'] == len(model.sample_settings['ts']) - 1
        else:
            assert entry['Metadata']['NFE'] == 2 * model.sample_settings['steps'] - 1


def test_twelve_released_checkpoints_have_a_config():
    # (the digits models ship; the ECT/sCT/sCD ImageNet-64 recipes have no
    # released weights: their Weights are the work dir their training writes)
    names = {m['Metadata']['Checkpoint'] for m in metafile_models()
             if 'digits' not in m['Name'] and not m['Weights'].startswith('work_dirs/')}
    data = ('imagenet64', 'bedroom256', 'cat256')
    expected = {f'{kind}.pt'.format(d) for d in data
                for kind in ('cd_{}_l2', 'cd_{}_lpips', 'ct_{}', 'edm_{}_ema')}
    assert names == expected and len(expected) == 12


@pytest.mark.slow
def test_readme_main_command_is_quiet(tmp_path):
    """The README's first command prints its result and nothing else (no
    third-party import warnings, no registry-scope warning); --verbose shows them."""
    with open(osp.join(ROOT, 'README.md')) as f:
        line = next(x for x in f if x.startswith('python demo/mmagic_inference_demo.py'))
    argv = line.split()[2:]
    assert '--result-out-dir' in argv
    proc = subprocess.run([sys.executable, DEMO, *argv], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) <= 3, lines
    assert lines[-1].startswith('wrote ') and (tmp_path / 'digits.png').exists()
    assert 'Failed to search registry' not in proc.stdout + proc.stderr


def test_plugin_adds_mmagic_function_registry():
    from mmengine.registry import FUNCTIONS
    assert FUNCTIONS._search_child('mmagic') is not None  # MMagicInferencer looks it up
