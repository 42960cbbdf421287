r"""Make the sCM parity fixture by running NVlabs FastGen's own sCM loss.

Check FastGen out separately (https://github.com/NVlabs/FastGen) and point
``--fastgen-repo`` at it; nothing of it is committed here::

    python tools/reference/make_scm_fixtures.py --fastgen-repo FASTGEN_REPO \
        --out tests/fixtures/reference/scm_loss.npz

FastGen's package needs CUDA-era dependencies (omegaconf, loguru, ftfy, a
newer diffusers) that a CPU checkout of this project does not have, so the
script does not import it as a package: it loads three of its source files
as they are, ``fastgen/networks/noise_schedule.py`` (the EDM and TrigFlow
schedules), ``fastgen/networks/network.py`` (``FastGenNetwork``) and
``fastgen/methods/consistency_model/sCM.py`` (``TrigFlowPrecond``,
``SCMModel``), with small stand-ins for the modules they import that play no
part in the arithmetic (a logger, ``CMModel``, the config helpers; their
``expand_like`` and ``PRECISION_MAP`` are taken from their own files). Then
``SCMModel._compute_scm_loss`` runs unbound, on an object holding what the
method reads (``net``, ``net_trigflow``, ``teacher_trigflow``, ``loss_config``,
...): their EDM -> TrigFlow conversion of the networks (``TrigFlowPrecond``),
their t -> t̂ mapping (``atan2(σ, σ_d)``), x_t̂ and dx_t̂/dt (``cond_velocity``,
or σ_d F_teacher for sCD), their JVP (``_jvp``) and their tangent, warm-up,
normalisation and weighting (``_scm_pred_to_loss``). What both sides share is
only the networks: our tiny UNet as an EDM denoiser D(x, σ) (plain EDM
scalings, ``time_scale · ln σ``), the teacher, and the adaptive-weight MLP
u(ln σ) (:func:`mmagic_cm.testing.tiny_scm_setup`), float64, eval mode.

The draws follow our objective's order, which is FastGen's too once t is
given: ln σ ~ N(p_mean, p_std²) from ``torch.randn`` (FastGen's EDM schedule
draws a truncated lognormal its own way, so σ is passed in), then
z = σ_d · randn. Settings: FastGen's defaults (RMS tangent normalisation,
``g_norm_spatial_invariance``; constant 0.1) except
``divide_x_0_spatial_dim=False``, as our objective does not divide the loss
by the image size (with the learned log-variance, that only shifts u).

Recorded per case: the per-sample loss, the unweighted loss, the gradient of
the summed loss in two network weights and the adaptive MLP, and, for the
tangent alone, the inputs of ``_scm_pred_to_loss`` with the tangent g it
uses (g = -M/2 · d(unweighted)/dF, M the size of one image), for the cases
whose ``tangent`` is set.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from mmagic_cm.denoiser.precond import Denoiser, KarrasPrecond
from mmagic_cm.testing import SCM_CASES, SCM_P_MEAN, SCM_P_STD, tiny_scm_setup

SIGMA_DATA = 0.5


def _definitions(path: Path, names, namespace: dict) -> dict:
    """Execute only the top-level definitions ``names`` of a source file."""
    tree = ast.parse(path.read_text(), str(path))
    keep = [node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names
            or isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in names for t in node.targets)]
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), 'exec'), namespace)
    return namespace


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def _load_source(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_fastgen_scm(repo: Path):
    """``(SCMModel, TrigFlowPrecond, EDMNoiseSchedule)`` from a FastGen checkout."""
    src = repo / 'fastgen'
    if not (src / 'methods' / 'consistency_model' / 'sCM.py').is_file():
        raise SystemExit(f'{repo} is not a FastGen checkout (no fastgen/methods/'
                         'consistency_model/sCM.py)')

    def quiet(*args, **kwargs):
        pass

    logger = types.SimpleNamespace(**{k: quiet for k in (
        'debug', 'info', 'warning', 'critical', 'error', 'success')})
    _module('fastgen', __path__=[str(src)])
    _module('fastgen.networks', __path__=[str(src / 'networks')])
    _module('fastgen.methods', CMModel=object, __path__=[str(src / 'methods')])
    _module('fastgen.methods.consistency_model',
            __path__=[str(src / 'methods' / 'consistency_model')])
    log = _module('fastgen.utils.logging_utils', **vars(logger))
    basic = _module('fastgen.utils.basic_utils',
                    convert_cfg_to_dict=lambda cfg: dict(vars(cfg)))
    basic.__dict__.update(_definitions(src / 'utils' / 'basic_utils.py', {'PRECISION_MAP'},
                                       {'torch': torch}))
    utils = _module('fastgen.utils', __path__=[str(src / 'utils')], logging_utils=log,
                    basic_utils=basic)
    utils.__dict__.update(_definitions(src / 'utils' / '__init__.py', {'expand_like'},
                                       {'torch': torch}))
    import diffusers  # noise_schedule.py names two schedulers it does not use here
    for missing in ('DDIMScheduler', 'CogVideoXDPMScheduler'):
        if not hasattr(diffusers, missing):
            setattr(diffusers, missing, None)
    schedules = _load_source('fastgen.networks.noise_schedule',
                             src / 'networks' / 'noise_schedule.py')
    _load_source('fastgen.networks.network', src / 'networks' / 'network.py')
    scm = _load_source('fastgen.methods.consistency_model.sCM',
                       src / 'methods' / 'consistency_model' / 'sCM.py')
    return scm.SCMModel, scm.TrigFlowPrecond, schedules.EDMNoiseSchedule


class EDMNet(torch.nn.Module):
    """Our network as the x0-predicting EDM network FastGen's TrigFlowPrecond wraps."""

    def __init__(self, net, labels, schedule, weight_net=None):
        super().__init__()
        self.net, self.weight_net, self.labels = net, weight_net, labels
        self.noise_scheduler = schedule
        self.denoiser = Denoiser(net, KarrasPrecond(sigma_data=SIGMA_DATA))

    def forward(self, x_t, t, condition=None, return_logvar=False, fwd_pred_type='x0', **kw):
        assert fwd_pred_type == 'x0'
        x0 = self.denoiser.forward_with_output(x_t, t, y=condition)[1]
        if not return_logvar:
            return x0
        logvar = (self.weight_net(torch.log(t)) if self.weight_net is not None
                  else torch.zeros_like(t))
        return x0, logvar.unsqueeze(-1)


def run_case(classes, case: dict) -> dict:
    SCMModel, TrigFlowPrecond, EDMNoiseSchedule = classes  # noqa: N806  (their classes)
    net, teacher, weight_net, images, labels = tiny_scm_setup()
    model = types.SimpleNamespace(
        sample_t_cfg=types.SimpleNamespace(quantize=False, sigma_data=SIGMA_DATA),
        loss_config=types.SimpleNamespace(
            use_cd=case['cd'], tangent_warmup_steps=case['warmup'], tangent_warmup_const=0.1,
            prior_weighting_enabled=case['prior'], g_norm_spatial_invariance=True,
            divide_x_0_spatial_dim=False, use_jvp_finite_diff=False, jvp_finite_diff_eps=1e-3),
        sigma_data=SIGMA_DATA, precision_amp_jvp=None, device=torch.device('cpu'),
        config=types.SimpleNamespace(guidance_scale=None, skip_layers=None))
    model.net = EDMNet(net, labels, EDMNoiseSchedule(),
                       weight_net if case['adaptive'] else None)
    model.net_trigflow = TrigFlowPrecond(model.net, sigma_data=SIGMA_DATA)
    model.teacher_trigflow = (TrigFlowPrecond(EDMNet(teacher, labels, EDMNoiseSchedule()),
                                              sigma_data=SIGMA_DATA) if case['cd'] else None)
    for name in ('_compute_scm_loss', '_jvp', '_compute_vt', '_scm_pred_to_loss'):
        setattr(model, name, types.MethodType(getattr(SCMModel, name), model))
    recorded = {}
    to_loss = model._scm_pred_to_loss

    def record(**kwargs):
        recorded.update({k: v.detach().clone() if torch.is_tensor(v) else v
                         for k, v in kwargs.items()})
        return to_loss(**kwargs)

    model._scm_pred_to_loss = record

    torch.manual_seed(case['seed'])
    sigma = (torch.randn(len(images), dtype=torch.float64) * SCM_P_STD + SCM_P_MEAN).exp()
    assert bool(((sigma > 0.002) & (sigma < 80)).all()), 'σ outside EDM range: another seed'
    with sdpa_kernel(SDPBackend.MATH):  # the fused kernels have no forward-mode rule
        loss, unweighted, _, _, warmup = model._compute_scm_loss(
            images, sigma, condition=labels, iteration=case['step'])
    loss.sum().backward()

    # the tangent g: -M/2 times the gradient of the unweighted loss in F (F - sg(F) = 0)
    F_leaf = recorded['F_theta'].clone().requires_grad_(True)  # noqa: N806
    inputs = dict(recorded, F_theta=F_leaf)
    _, unweighted_again, _ = to_loss(**inputs)
    unweighted_again.sum().backward()
    g = -F_leaf.grad * F_leaf[0].numel() / 2

    out = {'loss': loss, 'unweighted': unweighted, 'warmup': torch.tensor(float(warmup)),
           'grad_out': net.out[2].weight.grad, 'grad_in': net.input_blocks[0][0].weight.grad}
    if case['tangent']:
        out.update({'tangent/F': recorded['F_theta'], 'tangent/dF': recorded['F_theta_jvp'],
                    'tangent/x_t': recorded['x_t_hat'], 'tangent/dxdt': recorded['dxt_dt'],
                    'tangent/t': recorded['t_hat'], 'tangent/g': g})
    if case['adaptive']:
        out['grad_weight_net'] = weight_net.mlp[0].weight.grad
    return {k: v.detach().double().numpy().copy() for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--fastgen-repo', type=Path, required=True,
                        help='a checkout of github.com/NVlabs/FastGen')
    parser.add_argument('--fastgen-commit',
                        help='the commit checked out (default: git rev-parse HEAD there)')
    parser.add_argument('--out', type=Path,
                        default=Path('tests/fixtures/reference/scm_loss.npz'))
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    classes = load_fastgen_scm(args.fastgen_repo)
    arrays = {}
    for name, case in SCM_CASES.items():
        for key, value in run_case(classes, case).items():
            arrays[f'{name}/{key}'] = value
    commit = args.fastgen_commit
    if not commit:
        try:
            commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=args.fastgen_repo,
                                    capture_output=True, text=True).stdout.strip() or None
        except OSError:
            commit = None
    meta = dict(source='github.com/NVlabs/FastGen fastgen/methods/consistency_model/sCM.py '
                'SCMModel._compute_scm_loss (TrigFlowPrecond, _jvp, _scm_pred_to_loss)',
                commit=commit, cases=SCM_CASES, p_mean=SCM_P_MEAN, p_std=SCM_P_STD,
                sigma_data=SIGMA_DATA, tangent_norm='rms', tangent_norm_const=0.1,
                divide_x_0_spatial_dim=False, torch=torch.__version__)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, meta=json.dumps(meta), **arrays)
    print(f'wrote {args.out}: {len(SCM_CASES)} cases')


if __name__ == '__main__':
    main()
