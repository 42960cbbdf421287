#!/usr/bin/env python
"""Judge digits samples with the shipped classifier (see mmagic_cm.evaluation.digits).

    python tools/eval_digits.py CONFIG [--checkpoint PATH] [--num-samples 1000]
        [--sampler S --ts 0,22,39 --steps 40 | --choose-ts] [--grid grid.png]
        [--out metrics.json]
    python tools/eval_digits.py --real            # the real-image floor
    python tools/eval_digits.py --train-classifier  # remake the shipped classifier

Samples are class-conditional with balanced labels (0..9 repeated) and the
config's seeded generator, so numbers repeat run to run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Evaluate digits samples with a classifier')
    p.add_argument('config', nargs='?', help='a digits config')
    p.add_argument('--checkpoint', help="weights (default: the config's model_path)")
    p.add_argument('--sample-ema', type=float, metavar='RATE',
                   help='training checkpoints: the EMA copy to sample with (default: the '
                   "config's sample_ema; bare weight files are used as they are)")
    p.add_argument('--num-samples', type=int, default=1000)
    p.add_argument('--batch-size', type=int, default=250)
    p.add_argument('--seed', type=int, help="generator seed (default: the config's)")
    p.add_argument('--sampler')
    p.add_argument('--ts')
    p.add_argument('--trig-ts', help='trigflow sampler: intermediate TrigFlow times')
    p.add_argument('--steps', type=int)
    p.add_argument('--choose-ts', nargs='?', const='8,14,18,22,26,30', metavar='MIDS',
                   help='two steps: pick the middle grid index (of MIDS, default '
                   '%(const)s) with the lowest Frechet distance on 500 samples, then evaluate')
    p.add_argument('--grid', help='write a PNG grid of the first 100 samples')
    p.add_argument('--out', help='write the metrics to this JSON file')
    p.add_argument('--real', action='store_true', help='evaluate real images (the floor)')
    p.add_argument('--train-classifier', action='store_true',
                   help='train the classifier and save it to the shipped path')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch

    import mmagic_cm  # noqa: F401
    from mmagic_cm.evaluation import digits as dm

    if args.train_classifier:
        model, acc = dm.train_classifier()
        if acc < 0.97:
            print(f'error: held-out accuracy {acc:.4f} < 0.97; not saved', file=sys.stderr)
            return 1
        torch.save({k: v.half() for k, v in model.state_dict().items()}, dm.CLASSIFIER_PATH)
        print(f'held-out accuracy {acc:.4f}; saved {dm.CLASSIFIER_PATH}')
        return 0
    if args.real:
        metrics = dm.real_floor(args.num_samples)
    else:
        if not args.config:
            print('error: give a digits CONFIG (or --real / --train-classifier)', file=sys.stderr)
            return 2
        from mmagic_cm.apis import init_model
        from mmagic_cm.files.checkpoint import CheckpointError
        from mmagic_cm.files.images import save_grid
        try:
            model = init_model(args.config, args.checkpoint, device='cpu')
            labels = np.arange(args.num_samples) % 10
            overrides = {k: v for k, v in dict(sampler=args.sampler, ts=args.ts,
                                               trig_ts=args.trig_ts, steps=args.steps,
                                               seed=args.seed).items()
                         if v is not None}
            if args.sample_ema is not None:  # read from the checkpoint when it loads
                model.sample_ema = args.sample_ema
            model.materialize()
            if args.choose_ts:
                try:
                    mids = [int(m) for m in args.choose_ts.split(',')]
                except ValueError:
                    raise ValueError(f'--choose-ts {args.choose_ts}: expected comma-separated '
                                     'grid indices, e.g. 8,14,18') from None
                ts, scores = dm.choose_two_step_ts(model, mids, steps=args.steps or 40)
                print('two-step middle index -> Frechet (500 samples): '
                      + ', '.join(f'{m}: {f:.1f}' for m, f in scores.items()))
                overrides.update(sampler='multistep', ts=ts, steps=args.steps or 40)
            start = time.perf_counter()
            images, _ = model.sample(args.num_samples, labels=labels.tolist(),
                                     batch_size=args.batch_size, progress=True, **overrides)
            seconds = time.perf_counter() - start
        except (ValueError, FileNotFoundError, CheckpointError) as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
        metrics = dm.digits_metrics(images, labels)
        metrics['seconds'] = seconds
        if args.choose_ts:
            metrics['ts_mid'] = ts[1]
        if args.grid:
            order = np.argsort(labels[:100], kind='stable')
            save_grid(images[:100][order], args.grid)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=2)
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
