#!/usr/bin/env python
"""Learning curves of digits training runs (loss and Fréchet distance per checkpoint).

    python tools/digits_curves.py evaluate CONFIG WORK_DIR --log-dir docs/digits/logs/ect
    python tools/digits_curves.py plot docs/digits/logs/ect docs/digits/logs/sct --out curves.png

``evaluate`` samples every ``iter_N.pth`` of WORK_DIR at one and two steps
(``--heun 40`` for an EDM teacher: Heun, 79 NFE; 1,000 samples, the config's
seed; ``--sample-ema`` overrides the config's EMA copy) and writes
``evals.json`` and the run's ``scalars.json`` (mmengine's logged scalars) to
LOG_DIR: the evidence kept for a shipped model. ``plot``
draws the runs of several LOG_DIRs in one PNG.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from functools import partial
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='command', required=True)
    ev = sub.add_parser('evaluate', help='evaluate the checkpoints of a run')
    ev.add_argument('config')
    ev.add_argument('work_dir')
    ev.add_argument('--log-dir', required=True, help='where evals.json and scalars.json go')
    ev.add_argument('--ts', default='0,22,39', help='two-step grid indices (40 levels)')
    ev.add_argument('--sample-ema', type=float, metavar='RATE')
    ev.add_argument('--every', type=int, default=1, help='every N-th checkpoint (and the last)')
    ev.add_argument('--num-samples', type=int, default=1000)
    ev.add_argument('--heun', type=int, metavar='STEPS',
                    help='a diffusion model (the EDM teachers): Heun over STEPS levels '
                    'instead of one and two consistency steps')
    pl = sub.add_parser('plot', help='draw runs of evaluate into one PNG')
    pl.add_argument('log_dirs', nargs='+', help='LOG_DIRs of evaluate (name: the folder)')
    pl.add_argument('--out', required=True, help='PNG file')
    pl.add_argument('--reference', action='append', default=[], metavar='LABEL=FRECHET',
                    help='a horizontal line, e.g. "CD, 2 steps=73.8"')
    args = p.parse_args(argv)

    from mmagic_cm.evaluation import curves
    if args.command == 'evaluate':
        try:
            ts = tuple(int(i) for i in args.ts.split(','))
        except ValueError:
            print(f'error: --ts {args.ts}: expected grid indices like 0,22,39', file=sys.stderr)
            return 2
        try:
            scalars = curves.read_scalars(args.work_dir)
            from mmagic_cm.apis import init_model
            rows = curves.evaluate_run(partial(init_model, args.config, device='cpu'),
                                       args.work_dir, ts, args.num_samples, args.sample_ema,
                                       args.every,
                                       curves.heun_samplers(args.heun) if args.heun else None)
        except (FileNotFoundError, ValueError) as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
        os.makedirs(args.log_dir, exist_ok=True)
        with open(osp.join(args.log_dir, 'evals.json'), 'w') as f:
            json.dump(dict(config=osp.basename(args.config), ts=list(ts),
                           sample_ema=args.sample_ema, evals=rows), f, indent=1)
        with open(osp.join(args.log_dir, 'scalars.json'), 'w') as f:
            f.writelines(json.dumps(row) + '\n' for row in scalars)
        for row in rows:
            print(f"iter {row['iter']}: " + ', '.join(
                f"{curves.CURVE_STYLES[k][2]} {m['frechet']:.1f} / {100 * m['confident']:.1f}%"
                for k, m in row.items() if k != 'iter'))
        print(f'{len(scalars)} logged rows; wrote {args.log_dir}/evals.json, scalars.json')
        return 0
    runs = {}
    reference = {}
    for item in args.reference:
        label, _, value = item.rpartition('=')
        try:
            reference[label] = float(value)
        except ValueError:
            print(f'error: --reference {item!r}: expected LABEL=NUMBER', file=sys.stderr)
            return 2
    for log_dir in args.log_dirs:
        name = osp.basename(osp.normpath(log_dir))
        try:
            with open(osp.join(log_dir, 'evals.json')) as f:
                evals = json.load(f)['evals']
            runs[name] = dict(scalars=curves.read_scalars(osp.join(log_dir, 'scalars.json')),
                              evals=evals)
        except (OSError, KeyError, ValueError) as exc:
            print(f'error: {log_dir}: {exc}', file=sys.stderr)
            return 2
    curves.plot_curves(runs, args.out, reference)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
