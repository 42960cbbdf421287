r"""Make the ECT ImageNet-64 loss fixture by running ``locuslab/ect``'s ``imgnet`` branch.

Check that branch out separately (``git clone -b imgnet
https://github.com/locuslab/ect``) and point ``--ect-repo`` at it; nothing of
it is committed here::

    python tools/reference/make_ect_imgnet_fixtures.py --ect-repo ECT_IMGNET \
        --out tests/fixtures/reference/ect_imgnet_loss.npz

Their ImageNet ``ECMLoss`` (``training/loss.py``: weighting ``wt='snrpk'``,
SNR(t) + 1/σ_d², instead of the CIFAR-10 branch's 1/(t − r)) is called with
our tiny class-conditional UNet inside plain EDM scalings (their EDM2
``Precond``'s), seeded weights and dropout 0.3, so both sides evaluate the
same network; compared: the draws, r(t) per stage, the shared noise and
dropout masks, the metric, the weighting, and the gradient. Their shared
dropout restores the CUDA RNG state; without CUDA,
:func:`mmagic_cm.testing.reference.load_ect_loss` points it at the CPU generator.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mmagic_cm.testing import tiny_ect_denoiser
from mmagic_cm.testing.reference import load_ect_loss

#: the ImageNet-64 recipe's settings (their ct_train.py defaults and the
#: edm2-img64-s preset: q = 4, c = 0.06, k = 8, b = 1, ln t ~ N(-0.8, 1.6²))
CASES = {
    'snrpk_sigmoid_stage0': dict(seed=1, stage=0, mapping='sigmoid', q=4.0, k=8.0, b=1.0,
                                 c=0.06, p_mean=-0.8, p_std=1.6),
    'snrpk_sigmoid_stage2': dict(seed=2, stage=2, mapping='sigmoid', q=4.0, k=8.0, b=1.0,
                                 c=0.06, p_mean=-0.8, p_std=1.6),
    'snrpk_const_stage1': dict(seed=3, stage=1, mapping='const', q=4.0, k=8.0, b=1.0,
                               c=0.0, p_mean=-1.1, p_std=2.0),
}


class TheirNet(torch.nn.Module):
    """Their ``net(x, sigma, class_labels)`` (a module: their loss calls ``net.apply``)."""

    def __init__(self, denoiser):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, x, sigma, class_labels=None):
        return self.denoiser(x, sigma.flatten(), y=class_labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ect-repo', type=Path, required=True,
                        help="a checkout of github.com/locuslab/ect's imgnet branch")
    parser.add_argument('--out', type=Path,
                        default=Path('tests/fixtures/reference/ect_imgnet_loss.npz'))
    args = parser.parse_args()

    ECMLoss = load_ect_loss(args.ect_repo)  # noqa: N806  (their class)

    from mmagic_cm.denoiser.precond import Denoiser
    arrays = {}
    for name, case in CASES.items():
        denoiser, images, labels = tiny_ect_denoiser()
        plain = Denoiser(denoiser.net, denoiser.precond.with_boundary_condition(False))
        loss_fn = ECMLoss(P_mean=case['p_mean'], P_std=case['p_std'], q=case['q'],
                          c=case['c'], k=case['k'], b=case['b'], adj=case['mapping'],
                          wt='snrpk')
        loss_fn.update_schedule(case['stage'])
        torch.manual_seed(case['seed'])
        loss = loss_fn(TheirNet(plain), images, labels)
        loss.sum().backward()
        grad = denoiser.net.out[2].weight.grad
        arrays[f'{name}/loss'] = loss.detach().numpy().astype(np.float64)
        arrays[f'{name}/grad'] = grad.numpy().copy()
    meta = dict(source='github.com/locuslab/ect branch imgnet, training/loss.py ECMLoss '
                "(wt='snrpk')", cases=CASES, torch=torch.__version__)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, meta=json.dumps(meta), **arrays)
    print(f'wrote {args.out}: {len(CASES)} cases')


if __name__ == '__main__':
    main()
