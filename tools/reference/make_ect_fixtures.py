r"""Make the ECT loss parity fixture by running ``locuslab/ect``'s ``ECMLoss``.

Check the ECT code out separately (https://github.com/locuslab/ect) and point
``--ect-repo`` at it; nothing of it is committed here::

    python tools/reference/make_ect_fixtures.py --ect-repo ECT_REPO \
        --out tests/fixtures/reference/ect_loss.npz

Their loss is called with our tiny class-conditional UNet inside our
preconditioning (seeded weights, dropout 0.3), so both sides evaluate the
same network; what is compared is the loss: the draws of t and the noise,
the mapping r(t) per stage, the shared noise and dropout masks, the clean
image at r = 0, the metric and the weighting (per sample), and the gradient
it gives. ``ECMLoss`` shares dropout masks by restoring the CUDA RNG state;
without CUDA, :func:`mmagic_cm.testing.reference.load_ect_loss` points those calls
at the CPU generator, which is what CPU dropout draws from.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mmagic_cm.testing import ECT_CASES as CASES
from mmagic_cm.testing import tiny_ect_denoiser
from mmagic_cm.testing.reference import load_ect_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ect-repo', type=Path, required=True,
                        help='a checkout of github.com/locuslab/ect')
    parser.add_argument('--out', type=Path,
                        default=Path('tests/fixtures/reference/ect_loss.npz'))
    args = parser.parse_args()

    ECMLoss = load_ect_loss(args.ect_repo)  # noqa: N806  (their class)

    arrays = {}
    for name, case in CASES.items():
        denoiser, images, labels = tiny_ect_denoiser()

        def net(x, sigma, class_labels=None, augment_labels=None, denoiser=denoiser):
            return denoiser(x, sigma.flatten(), y=class_labels)

        loss_fn = ECMLoss(P_mean=case['p_mean'], P_std=case['p_std'], q=case['q'],
                          c=case['c'], k=case['k'], b=case['b'], adj=case['mapping'])
        loss_fn.update_schedule(case['stage'])
        torch.manual_seed(case['seed'])
        loss = loss_fn(net, images, labels)
        loss.sum().backward()
        grad = denoiser.net.out[2].weight.grad
        arrays[f'{name}/loss'] = loss.detach().numpy().astype(np.float64)
        arrays[f'{name}/grad'] = grad.numpy().copy()
    meta = dict(source='github.com/locuslab/ect training/loss.py ECMLoss', cases=CASES,
                torch=torch.__version__)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, meta=json.dumps(meta), **arrays)
    print(f'wrote {args.out}: {len(CASES)} cases')


if __name__ == '__main__':
    main()
