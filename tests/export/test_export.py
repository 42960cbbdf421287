"""Export of D(x, σ[, y]) to ONNX / OpenVINO and sampling through the files (tiny configs)."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from mmagic_cm.apis.build import build_from_config
from mmagic_cm.files.checkpoint import CheckpointError
from mmagic_cm.testing import ROOT, TINY_CONFIGS, assert_images_close, reference_weights, run_tool

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')
pytest.importorskip('openvino')

from mmagic_cm.export import (  # noqa: E402
    ExportedDenoiser,
    MissingBackendError,
    export_denoiser,
    read_metadata,
)
from mmagic_cm.export.writer import check_inputs  # noqa: E402

COND = osp.join(TINY_CONFIGS, 'cm_tiny_cond.py')
UNCOND = osp.join(TINY_CONFIGS, 'cm_tiny_uncond.py')
DIGITS = osp.join(ROOT, 'configs', 'consistency_models')
SUFFIX = {'onnx': '.onnx', 'openvino': '.xml'}


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp('weights')
    paths = {}
    for arch in ('tiny_cond', 'tiny_uncond'):
        paths[arch] = str(folder / f'{arch}.pt')
        torch.save(reference_weights(arch, 0), paths[arch])
    return paths


@pytest.fixture(scope='module')
def exported(tmp_path_factory, weights):
    """Tiny class-conditional model exported to both formats, batch 2, fp32."""
    folder = tmp_path_factory.mktemp('exported')
    model, _ = build_from_config(COND, weights['tiny_cond'])
    files = {}
    for fmt in ('onnx', 'openvino'):
        files[fmt] = str(folder / f'tiny_cond{SUFFIX[fmt]}')
        export_denoiser(model, files[fmt], fmt, batch_size=2, config='cm_tiny_cond.py')
    return files


@pytest.mark.parametrize('fmt', ['onnx', 'openvino'])
def test_denoiser_outputs_and_metadata(exported, weights, fmt):
    model, _ = build_from_config(COND, weights['tiny_cond'])
    model.materialize()
    meta = read_metadata(exported[fmt])
    assert meta['config'] == 'cm_tiny_cond.py' and meta['format'] == fmt
    assert meta['batch_size'] == 2 and not meta['dynamic_batch'] and meta['dtype'] == 'fp32'
    assert meta['image_shape'] == [3, 16, 16] and meta['num_classes'] == 1000
    assert (meta['sigma_min'], meta['sigma_max'], meta['sigma_data']) == (0.002, 80.0, 0.5)
    assert meta['boundary_condition'] is True and meta['clip'] is True
    d = ExportedDenoiser(exported[fmt])
    ref = model.sampling_denoiser(model.settings(channels_last=False))
    inputs = check_inputs(model, 2, seed=5)
    got = d(inputs['x'], inputs['sigma'], inputs['y'])
    assert got.dtype == torch.float32
    with torch.no_grad():
        expected = ref(inputs['x'], inputs['sigma'], y=inputs['y'])
    assert float((got - expected).abs().max()) < 1e-4
    with pytest.raises(ValueError, match='fixed at export'):
        d.for_settings(model.settings(dtype='bf16'))
    with pytest.raises(ValueError, match='integer class labels'):
        d(inputs['x'], inputs['sigma'], torch.zeros(2, 1000))
    with pytest.raises(ValueError, match='exported for batch size 2, called with batch size 3'):
        d(torch.zeros(3, 3, 16, 16), torch.ones(3), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize('fmt', ['onnx', 'openvino'])
@pytest.mark.parametrize('sampler', ['onestep', 'multistep'])
def test_sampled_images_equal_pytorch(exported, weights, fmt, sampler):
    kw = dict(sampler=sampler, ts='0,22,39' if sampler == 'multistep' else None,
              steps=40 if sampler == 'multistep' else None)
    torch_model, _ = build_from_config(COND, weights['tiny_cond'], **kw)
    onnx_model, _ = build_from_config(COND, exported[fmt], **kw)
    ref, ref_labels = torch_model.sample(4, labels='1,2,3,4')
    ours, labels = onnx_model.sample(4, labels='1,2,3,4')
    assert onnx_model.weights_pending is False and onnx_model.unet.time_embed[0].weight.is_meta
    assert labels.tolist() == ref_labels.tolist()
    assert_images_close(ours, ref)


def test_dynamic_batch_and_reduced_dtypes(tmp_path, weights):
    model, _ = build_from_config(UNCOND, weights['tiny_uncond'])
    path = str(tmp_path / 'dyn.onnx')
    meta = export_denoiser(model, path, 'onnx', dynamic_batch=True)
    assert meta['dynamic_batch'] and meta['max_abs_diff'] < 1e-4
    ref, _ = model.sample(3, batch_size=3)
    for bs in (1, 3):
        m, _ = build_from_config(UNCOND, path, batch_size=bs)
        assert_images_close(m.sample(3)[0], ref)
    for fmt, dtype in (('onnx', 'fp16'), ('openvino', 'bf16')):
        meta = export_denoiser(model, str(tmp_path / f'r_{dtype}{SUFFIX[fmt]}'), fmt, dtype)
        assert meta['dtype'] == dtype and meta['max_abs_diff'] <= meta['tolerance']
    with pytest.raises(ValueError, match='no bf16 kernels'):
        export_denoiser(model, str(tmp_path / 'x.onnx'), 'onnx', 'bf16')


def test_edm_teacher_exports(tmp_path):
    cfg = osp.join(DIGITS, 'consistency_models_edm_digits-heun-16x16.py')
    model, _ = build_from_config(cfg)
    meta = export_denoiser(model, str(tmp_path / 'edm.onnx'), 'onnx', batch_size=2)
    assert meta['boundary_condition'] is False and meta['max_abs_diff'] < 1e-4


@pytest.mark.parametrize('name', ['cd_digits-onestep', 'ct_digits-multistep'])
def test_digits_tools_round_trip(tmp_path, name, capsys):
    cfg = osp.join(DIGITS, f'consistency_models_{name}-16x16.py')
    onnx_path = str(tmp_path / 'd.onnx')
    assert run_tool('export', [cfg, '--format', 'onnx', '--batch-size', '5', '--out',
                               onnx_path]) == 0
    assert 'max abs difference' in capsys.readouterr().out
    common = ['--num-samples', '10', '--batch-size', '5', '--labels',
              '0,1,2,3,4,5,6,7,8,9', '--no-progress']
    assert run_tool('sample', [cfg, '--out', str(tmp_path / 'pt.npz')] + common) == 0
    assert run_tool('sample', [cfg, '--checkpoint', onnx_path,
                               '--out', str(tmp_path / 'onnx.npz')] + common) == 0
    with np.load(tmp_path / 'pt.npz') as a, np.load(tmp_path / 'onnx.npz') as b:
        assert_images_close(b['arr_0'], a['arr_0'])
        assert a['arr_1'].tolist() == b['arr_1'].tolist()
    capsys.readouterr()
    assert run_tool('sample', [cfg, '--checkpoint', onnx_path, '--batch-size', '2',
                               '--out', str(tmp_path / 'bad.npz'), '--no-progress']) == 2
    err = capsys.readouterr().err.strip()
    assert 'batch size 5' in err and 'batch size 2' in err and len(err.splitlines()) == 1
    assert not osp.exists(tmp_path / 'bad.npz')


@pytest.mark.parametrize('fmt', ['onnx', 'openvino'])
def test_other_architecture_is_refused(exported, fmt):
    model, _ = build_from_config(UNCOND, exported[fmt])
    with pytest.raises(CheckpointError) as info:
        model.materialize()
    msg = str(info.value)
    assert 'cm_tiny_cond.py' in msg and '1000 classes' in msg and 'unconditional' in msg
    assert '\n' not in msg


def test_onnx_without_metadata_is_refused(tmp_path, exported):
    import onnx
    proto = onnx.load(exported['onnx'])
    del proto.metadata_props[:]
    bare = str(tmp_path / 'bare.onnx')
    onnx.save(proto, bare)
    model, _ = build_from_config(COND, bare)
    with pytest.raises(CheckpointError, match='has no mmagic_cm metadata'):
        model.sample(2)


def test_missing_backend_one_line(tmp_path, weights, monkeypatch, capsys):
    monkeypatch.setitem(__import__('sys').modules, 'openvino', None)
    model, _ = build_from_config(COND, weights['tiny_cond'])
    with pytest.raises(MissingBackendError, match=r'pip install -e "\.\[deploy\]"'):
        export_denoiser(model, str(tmp_path / 'm.xml'), 'openvino')
    out = str(tmp_path / 'm.xml')
    assert run_tool('export', [COND, '--checkpoint', weights['tiny_cond'], '--format',
                               'openvino', '--out', out]) == 2
    err = capsys.readouterr().err.strip()
    assert 'openvino' in err and '.[deploy]' in err and len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('fmt', ['onnx', 'openvino'])
def test_failed_check_writes_nothing(tmp_path, weights, monkeypatch, fmt):
    from mmagic_cm.export import writer
    target = tmp_path / f'm{SUFFIX[fmt]}'
    target.write_bytes(b'old')
    monkeypatch.setitem(writer.TOLERANCES, 'fp32', -1.0)
    model, _ = build_from_config(COND, weights['tiny_cond'])
    with pytest.raises(ValueError, match='nothing written'):
        export_denoiser(model, str(target), fmt)
    assert sorted(os.listdir(tmp_path)) == [target.name] and target.read_bytes() == b'old'


def test_large_weights_go_to_external_data(tmp_path, weights, monkeypatch):
    from mmagic_cm.export import writer
    monkeypatch.setattr(writer, 'EXTERNAL_DATA_BYTES', 1000)  # LSUN-256 is past 2 GiB
    model, _ = build_from_config(UNCOND, weights['tiny_uncond'])
    export_denoiser(model, str(tmp_path / 'big.onnx'), 'onnx', batch_size=2)
    assert sorted(os.listdir(tmp_path)) == ['big.onnx', 'big.onnx.data']
    assert os.path.getsize(tmp_path / 'big.onnx.data') > os.path.getsize(tmp_path / 'big.onnx')
    m, _ = build_from_config(UNCOND, str(tmp_path / 'big.onnx'))
    assert_images_close(m.sample(2)[0], model.sample(2)[0])


def test_mmagic_inferencer_model_ckpt(exported, weights, tmp_path):
    from mmagic_cm.cli.quiet import import_mmagic
    import_mmagic(False)
    from mmagic.apis import MMagicInferencer
    images = []
    for ckpt in (weights['tiny_cond'], exported['onnx']):
        torch.manual_seed(0)
        editor = MMagicInferencer(model_name='consistency_models', model_config=COND,
                                  model_ckpt=ckpt, device='cpu',
                                  extra_parameters=dict(num_batches=2))
        images.append(editor.infer(label=145, result_out_dir=str(tmp_path / 'r.png'))[1])
    assert images[0].shape == images[1].shape == (2, 3, 16, 16)
    assert float((images[0].float() - images[1].float()).abs().max()) < 1e-3


@pytest.mark.slow
def test_int8_openvino(tmp_path, weights, monkeypatch):
    pytest.importorskip('nncf')
    model, _ = build_from_config(COND, weights['tiny_cond'])
    path = str(tmp_path / 'q.xml')
    meta = export_denoiser(model, path, 'openvino', 'int8', batch_size=2,
                           calibration_batches=4)
    assert meta['dtype'] == 'int8' and meta['mean_abs_diff'] <= meta['tolerance']
    m, _ = build_from_config(COND, path)
    assert m.sample(2, labels='1,2')[0].shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match='needs calibration samples'):
        export_denoiser(model, str(tmp_path / 'n.xml'), 'openvino', 'int8',
                        calibration_batches=0)
    with pytest.raises(ValueError, match='use --format openvino'):
        export_denoiser(model, str(tmp_path / 'n.onnx'), 'onnx', 'int8')
    monkeypatch.setitem(__import__('sys').modules, 'nncf', None)
    with pytest.raises(MissingBackendError, match='nncf'):
        export_denoiser(model, str(tmp_path / 'n.xml'), 'openvino', 'int8')
    assert sorted(os.listdir(tmp_path)) == ['q.bin', 'q.xml']


def test_opset_the_runtime_cannot_run(tmp_path, exported):
    import onnx
    proto = onnx.load(exported['onnx'])
    for entry in proto.opset_import:
        if entry.domain in ('', 'ai.onnx'):
            entry.version = 99
    path = str(tmp_path / 'future.onnx')
    onnx.save(proto, path)
    model, _ = build_from_config(COND, path)
    with pytest.raises(CheckpointError, match='onnxruntime .* cannot load') as info:
        model.materialize()
    assert '\n' not in str(info.value)


def test_io_binding_runner_equals_plain_run(exported, weights):
    """The GPU path (I/O binding on torch tensors), run here on the CPU."""
    import onnxruntime as ort

    from mmagic_cm.export.runtime import bound_runner, onnx_providers
    model, _ = build_from_config(COND, weights['tiny_cond'])
    inputs = check_inputs(model, 2, seed=7)
    plain = ExportedDenoiser(exported['onnx'])(inputs['x'], inputs['sigma'], inputs['y'])
    sess = ort.InferenceSession(exported['onnx'],
                                providers=onnx_providers(ort, 'cpu', 0, 'fp32'))
    bound = bound_runner(sess, torch.device('cpu'))(
        dict(x=inputs['x'].contiguous(), sigma=inputs['sigma'].contiguous(), y=inputs['y']))
    assert torch.equal(bound.clamp(-1, 1), plain)


def test_openvino_metadata_read_from_the_xml(exported, tmp_path, monkeypatch):
    """The metadata comes from the .xml text, without OpenVINO (which would load
    the weights); a broken .xml is one line naming it."""
    from mmagic_cm.export.runtime import read_metadata
    monkeypatch.setitem(__import__('sys').modules, 'openvino', None)
    meta = read_metadata(exported['openvino'])
    assert meta['format'] == 'openvino' and meta['batch_size'] == 2
    assert meta['config'] == 'cm_tiny_cond.py'
    bad = tmp_path / 'bad.xml'
    bad.write_text('<net><layers>')
    with pytest.raises(CheckpointError, match='bad.xml is not an OpenVINO .xml file'):
        read_metadata(str(bad))
    other = tmp_path / 'other.xml'
    other.write_text('<net><rt_info><something value="1"/></rt_info></net>')
    with pytest.raises(CheckpointError, match='no mmagic_cm metadata'):
        read_metadata(str(other))


def test_openvino_compiled_model_cache(exported, tmp_path, monkeypatch):
    """A second process imports the compiled model from the cache (a folder per
    file, under $XDG_CACHE_HOME) and computes the same; a file written again
    gets its own folder; MMAGIC_CM_OPENVINO_CACHE=0 keeps nothing."""
    from mmagic_cm.export.runtime import engine_cache_dir
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    path = str(tmp_path / 'm.xml')
    for suffix in ('.xml', '.bin'):
        shutil.copy(osp.splitext(exported['openvino'])[0] + suffix,
                    osp.splitext(path)[0] + suffix)
    x, sigma, y = torch.randn(2, 3, 16, 16), torch.tensor([80.0, 0.5]), torch.tensor([1, 2])
    monkeypatch.setenv('MMAGIC_CM_OPENVINO_CACHE', '0')
    plain = ExportedDenoiser(path)(x, sigma, y)
    assert not osp.exists(tmp_path / 'cache')
    monkeypatch.delenv('MMAGIC_CM_OPENVINO_CACHE')
    folder = engine_cache_dir('openvino', path)
    assert folder.startswith(str(tmp_path / 'cache' / 'mmagic_cm' / 'openvino'))
    first = ExportedDenoiser(path)(x, sigma, y)
    blobs = os.listdir(folder)
    assert blobs and torch.equal(first, plain)
    again = ExportedDenoiser(path)(x, sigma, y)  # from the cache
    assert os.listdir(folder) == blobs and torch.equal(again, plain)
    os.utime(osp.splitext(path)[0] + '.bin', ns=(0, 10**9))
    assert engine_cache_dir('openvino', path) != folder


def test_gpu_providers(exported, weights, tmp_path, monkeypatch):
    """CUDA / TensorRT: the provider lists, and one line where onnxruntime lacks them."""
    from mmagic_cm.export.runtime import engine_cache_dir, onnx_providers
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))

    class FakeOrt:
        __version__ = '9.9'

        @staticmethod
        def get_available_providers():
            return ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
    trt, cuda = onnx_providers(FakeOrt, 'tensorrt', 1, 'fp16')
    assert trt[0] == 'TensorrtExecutionProvider' and trt[1]['trt_fp16_enable'] is True
    assert trt[1]['device_id'] == 1
    assert trt[1]['trt_engine_cache_path'] == engine_cache_dir('tensorrt')
    assert cuda == ('CUDAExecutionProvider', {'device_id': 1})
    assert onnx_providers(FakeOrt, 'tensorrt', 0, 'fp32')[0][1]['trt_fp16_enable'] is False
    # engines: a folder per file, made; a file written again gets another
    copy = tmp_path / 'm.onnx'
    copy.write_bytes(open(exported['onnx'], 'rb').read())
    first = onnx_providers(FakeOrt, 'tensorrt', 0, 'fp32', str(copy))[0][1]
    assert os.path.isdir(first['trt_engine_cache_path'])
    assert first['trt_engine_cache_path'].startswith(str(tmp_path / 'cache' / 'mmagic_cm'))
    os.utime(copy, ns=(0, 10**9))
    again = onnx_providers(FakeOrt, 'tensorrt', 0, 'fp32', str(copy))[0][1]
    assert again['trt_engine_cache_path'] != first['trt_engine_cache_path']
    assert onnx_providers(FakeOrt, 'cuda', 0, 'fp32') == [cuda[:1] + ({'device_id': 0}, )]
    import onnxruntime as ort
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        with pytest.raises(MissingBackendError, match='CUDAExecutionProvider.*onnxruntime-gpu'):
            ExportedDenoiser(exported['onnx'], device='cuda')
        # a model moved to a GPU (MMagic's inferencer does so by default) runs
        # the file on the CPU then, saying why; a provider asked for insists
        model, _ = build_from_config(COND, exported['onnx'])
        model._set_device(torch.device('cuda'))  # what .to('cuda') does first
        assert model.device == torch.device('cuda') and model.weights_pending
        with pytest.warns(UserWarning, match='D runs on the CPU, not cuda: onnxruntime'):
            model.materialize()
        assert model.device == torch.device('cpu') and not model.weights_pending
        assert model.sample(2, labels='1,2')[0].shape == (2, 16, 16, 3)
        model._set_device(torch.device('cuda'))
        model.exported_provider = 'cuda'
        with pytest.raises(MissingBackendError, match="provider 'cuda'"):
            model.materialize()
    model, _ = build_from_config(COND, exported['openvino'])
    model._set_device(torch.device('cuda'))
    with pytest.warns(UserWarning, match='OpenVINO files run on the CPU'):
        model.materialize()
    with pytest.raises(ValueError, match="provider 'tensorrt' does not run on device cpu"):
        ExportedDenoiser(exported['onnx'], provider='tensorrt')
    with pytest.raises(ValueError, match='OpenVINO files run on the CPU'):
        ExportedDenoiser(exported['openvino'], device='cuda')
    with pytest.raises(ValueError, match="provider 'rocm'"):
        ExportedDenoiser(exported['onnx'], provider='rocm')
    from mmagic_cm.export.runtime import runnable_device
    with pytest.warns(UserWarning, match='D runs on the CPU, not mps'):
        assert runnable_device(exported['onnx'], 'mps') == torch.device('cpu')


def test_quiet_provider_fallback_is_refused(exported, monkeypatch):
    """onnxruntime-gpu whose CUDA libraries do not load opens the file on the CPU
    with a warning; we refuse instead (here: a CPU build told it has CUDA)."""
    import onnxruntime as ort
    if 'CUDAExecutionProvider' in ort.get_available_providers():
        pytest.skip('this onnxruntime has the CUDA provider')
    monkeypatch.setattr(ort, 'get_available_providers',
                        lambda: ['CUDAExecutionProvider', 'CPUExecutionProvider'])
    with pytest.raises(MissingBackendError,
                       match='with CPUExecutionProvider, not CUDAExecutionProvider'):
        ExportedDenoiser(exported['onnx'], device='cuda')


@pytest.mark.slow
def test_int8_export_tool_output_is_quiet(tmp_path, weights):
    """A fresh `tools/export.py ... --dtype int8`: NNCF's progress, the check and
    the result; not torch's 'No CUDA runtime is found' log that importing NNCF
    triggers on CPU-only machines."""
    import subprocess
    import sys
    pytest.importorskip('nncf')
    out = tmp_path / 'q.xml'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'export.py'), COND, '--checkpoint',
         weights['tiny_cond'], '--format', 'openvino', '--dtype', 'int8', '--batch-size', '2',
         '--calibration-batches', '2', '--out', str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=dict(os.environ, OMP_NUM_THREADS='2'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'No CUDA runtime' not in proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith(f'wrote {out} (openvino, int8')
    assert out.is_file()


def test_openvino_metadata_from_the_file_end(exported, tmp_path, monkeypatch):
    """The metadata read from the .xml's last MiB equals the whole file's; a
    tail without the model's rt_info, or a file whose last rt_info is a
    layer's, falls back to parsing the whole file."""
    from xml.etree import ElementTree

    from mmagic_cm.export import early
    path = exported['openvino']
    whole = ElementTree.parse(path).getroot().find('rt_info/mmagic_cm').get('value')
    assert early.xml_metadata_text(path) == whole
    monkeypatch.setattr(early, 'XML_TAIL', 40)  # the tail starts inside the rt_info
    assert early.xml_metadata_text(path) == whole
    layer_only = tmp_path / 'layer.xml'
    layer_only.write_text('<net><layers><layer><rt_info><mmagic_cm value="x"/></rt_info>'
                          '</layer></layers></net>')
    assert early.xml_metadata_text(str(layer_only)) is None


def test_openvino_compile_started_early_is_taken(exported, tmp_path, monkeypatch):
    """A compile started on a thread (as tools/sample.py does before its
    imports) is the one ExportedDenoiser uses, with the same outputs; other
    settings, other files and files that are not OpenVINO's start nothing."""
    from mmagic_cm.export import early
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    path = exported['openvino']
    x, sigma, y = torch.randn(2, 3, 16, 16), torch.tensor([80.0, 0.5]), torch.tensor([1, 2])
    assert early.start_openvino(path)
    assert len(early._started) == 1
    config = early.openvino_config('fp32', threads=1)  # not what was started
    assert early.take_openvino(path, config, early.openvino_cache(path)) is None
    started = ExportedDenoiser(path)(x, sigma, y)
    assert not early._started  # taken
    monkeypatch.setenv('MMAGIC_CM_OPENVINO_CACHE', '0')
    assert torch.equal(started, ExportedDenoiser(path)(x, sigma, y))
    assert not early.start_openvino(exported['onnx'])
    assert not early.start_openvino(str(tmp_path / 'missing.xml'))
    assert not early._started


def test_sample_tool_starts_openvino_before_torch(exported, weights, tmp_path):
    """tools/sample.py starts the compile without importing torch or the
    package, which later finds and uses that same module; sampling through
    the command gives the images of a run in this process."""
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent('''
        import runpy, sys
        tool = runpy.run_path(sys.argv[1], run_name='sample_tool')
        tool['start_openvino_early'](['cfg.py', '--checkpoint', sys.argv[2]])
        assert 'torch' not in sys.modules and 'mmagic_cm' not in sys.modules
        early = sys.modules['mmagic_cm.export.early']
        assert len(early._started) == 1
        from mmagic_cm.export import ExportedDenoiser
        import mmagic_cm.export.early as again
        assert again is early
        ExportedDenoiser(sys.argv[2])
        assert not early._started
        print('ok')
    ''')
    tool = osp.join(ROOT, 'tools', 'sample.py')
    proc = subprocess.run([sys.executable, '-c', code, tool, exported['openvino']],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr
    out = tmp_path / 'cli.npz'
    args = [COND, '--checkpoint', exported['openvino'], '--batch-size', '2',
            '--num-samples', '3', '--no-progress']
    proc = subprocess.run([sys.executable, tool, *args, '--out', str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and 'wrote 3 images' in proc.stdout, proc.stderr
    assert run_tool('sample', args + ['--out', str(tmp_path / 'here.npz')]) == 0
    assert np.array_equal(np.load(out)['arr_0'], np.load(tmp_path / 'here.npz')['arr_0'])
