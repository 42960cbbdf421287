"""Learning curves of the digits models: training loss and Fréchet distance per checkpoint.

``evaluate_run`` samples every ``iter_N.pth`` of a work dir at one and two
steps (the digits metrics, :mod:`.digits`), ``read_scalars`` reads
mmengine's logged scalars, and ``plot_curves`` draws both against the
iteration for several runs (PNG). ``tools/digits_curves.py`` is the command.
"""
from __future__ import annotations

import glob
import json
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np


def checkpoints(work_dir: str) -> List[str]:
    """``iter_N.pth`` files of a work dir, by N."""
    found = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    return sorted(found, key=lambda p: int(re.search(r'iter_(\d+)\.pth$', p).group(1)))


def read_scalars(path: str) -> List[dict]:
    """mmengine's ``scalars.json`` (one JSON object per line): the file itself,
    or every run of a work dir merged by ``step`` (a resumed run logs into a
    new timestamped folder; where runs overlap, the later run's row wins).
    Training rows only (those with ``loss``), sorted by step."""
    if osp.isdir(path):
        found = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
        if not found:
            raise FileNotFoundError(f'no */vis_data/scalars.json under {path}')
    else:
        found = [path]
    by_step = {}
    for one in found:
        with open(one) as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    if 'loss' in row:
                        by_step[row.get('step', len(by_step))] = row
    return [by_step[k] for k in sorted(by_step)]


def heun_samplers(steps: int = 40) -> Dict[str, dict]:
    """Sampling for a diffusion model's curve: Heun over ``steps`` Karras levels
    (2 · steps − 1 network calls), as the EDM teachers are evaluated."""
    return {'heun': dict(sampler='heun', steps=steps)}


def evaluate_run(load_model: Callable, work_dir: str, ts: Sequence[int] = (0, 22, 39),
                 num_samples: int = 1000, sample_ema: Optional[float] = None,
                 every: int = 1, samplers: Optional[Dict[str, dict]] = None) -> List[dict]:
    """Digits metrics of every ``every``-th checkpoint of ``work_dir`` (and the
    last one): ``[{'iter', 'onestep': {...}, 'twostep': {...}}]``, one step
    and two steps at grid indices ``ts`` of a 40-level Karras grid, 1,000
    balanced class-conditional samples with the config's seed; ``samplers``
    (name -> sampling overrides, e.g. :func:`heun_samplers`) replaces the two.

    ``load_model(checkpoint_path)`` returns the model that samples (e.g.
    ``partial(mmagic_cm.apis.init_model, CONFIG, device='cpu')``)."""
    from .digits import digits_metrics
    if samplers is None:
        samplers = {'onestep': dict(sampler='onestep'),
                    'twostep': dict(sampler='multistep', steps=40, ts=tuple(ts))}
    labels = np.arange(num_samples) % 10
    found = checkpoints(work_dir)
    if not found:
        raise FileNotFoundError(f'no iter_*.pth checkpoints in {work_dir}')
    chosen = found[::every]
    if chosen[-1] != found[-1]:
        chosen.append(found[-1])
    rows = []
    for path in chosen:
        model = load_model(path)
        if sample_ema is not None:
            model.sample_ema = sample_ema
        model.materialize()
        row = {'iter': int(re.search(r'iter_(\d+)\.pth$', path).group(1))}
        for name, kw in samplers.items():
            images, _ = model.sample(num_samples, labels=labels.tolist(), batch_size=250, **kw)
            row[name] = {k: round(float(v), 4) for k, v in digits_metrics(images, labels).items()}
        rows.append(row)
    return rows


#: how :func:`plot_curves` draws each kind of evaluation: marker, line, label
CURVE_STYLES = {'onestep': ('o', '-', '1 step'), 'twostep': ('s', '--', '2 steps'),
                'heun': ('^', '-.', 'Heun')}


def plot_curves(runs: Dict[str, dict], out: str, reference: Optional[Dict[str, float]] = None
                ) -> None:
    """One PNG: per run, the training loss (left) and the Fréchet distance at
    one step (solid), two steps (dashed) or with Heun (dash-dot) (right)
    against the iteration.

    Args:
        runs: name -> ``{'scalars': read_scalars(...), 'evals': evaluate_run(...)}``.
        reference: horizontal lines, label -> Fréchet distance (e.g. CD two steps).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_fd) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, run) in enumerate(runs.items()):
        color = f'C{i}'
        rows = run.get('scalars') or []
        if rows:
            ax_loss.plot([r['iter'] for r in rows], [r['loss'] for r in rows], color=color,
                         label=name)
        evals = run.get('evals') or []
        its = [e['iter'] for e in evals]
        for kind, (marker, line, label) in CURVE_STYLES.items():
            if evals and kind in evals[0]:
                ax_fd.plot(its, [e[kind]['frechet'] for e in evals], color=color,
                           marker=marker, linestyle=line, label=f'{name}, {label}')
    for j, (label, value) in enumerate((reference or {}).items()):
        ax_fd.axhline(value, color='gray', linestyle=[':', '-.', '--'][j % 3], label=label)
    # log scales: recipes' losses differ by orders of magnitude, and the first
    # checkpoints' distances dwarf the differences that matter near the end;
    # sCM's loss with adaptive weighting (l e^-u + u) can be negative: symlog
    losses = [r['loss'] for run in runs.values() for r in run.get('scalars') or []]
    if losses and min(losses) <= 0:
        ax_loss.set_yscale('symlog', linthresh=0.1)
    else:
        ax_loss.set_yscale('log')
    ax_fd.set_yscale('log')
    ax_loss.set(xlabel='iteration', ylabel='training loss (logged mean)', title='loss')
    ax_fd.set(xlabel='iteration', ylabel='Fréchet distance (1,000 samples)',
              title='Fréchet distance to held-out digits (lower is better)')
    ax_loss.legend(fontsize=8)
    ax_fd.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
