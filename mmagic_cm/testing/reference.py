"""The original OpenAI consistency-models code, run beside ours (fixtures, benchmarks).

Nothing of the original repository is part of this package: check it out
(https://github.com/openai/consistency_models) and pass its folder to
:class:`Reference`. The original package imports a few dependencies that are
unavailable or not wanted on a CPU-only machine; :func:`install_stand_ins`
registers small stand-ins in ``sys.modules`` before it is imported:

* ``flash_attn.flash_attention.FlashAttention``: plain float32 softmax
  attention with scale ``1/sqrt(head_dim)`` (or PyTorch's SDPA for speed
  comparisons);
* ``mpi4py`` (``MPI``, one process) and ``blobfile`` (local files): only
  imported by ``cm.dist_util``, enough for its scripts to run on one CPU
  process (``tools/reference/original_sample.py``);
* ``piq.LPIPS``: raises if called (the sampling script only builds one).

Used by ``tools/reference/make_fixtures.py`` and ``tools/benchmark.py
--compare original``.
"""
from __future__ import annotations

import math
import os
import sys
import types
from pathlib import Path
from typing import Any, Dict

import torch
from torch import nn

from .fixtures import seeded_state_dict

DENOISER_KWARGS = dict(sigma_data=0.5, sigma_max=80.0, sigma_min=0.002, loss_norm='l2')


# --------------------------------------------------------------------------
# Stand-ins for the unavailable dependencies of the original package.
# --------------------------------------------------------------------------
class StandInFlashAttention(nn.Module):
    """Float32 softmax attention with the call signature of flash_attn's module.

    With ``use_sdpa`` (``install_stand_ins(attention='sdpa')``) it calls
    ``torch.nn.functional.scaled_dot_product_attention`` instead, as fast
    as the attention of ``mmagic_cm``: what tools/benchmark.py times.
    """

    use_sdpa = False

    def __init__(self, attention_dropout: float = 0.0, device=None, dtype=None):
        """Accept flash_attn's constructor arguments; dropout must be 0."""
        super().__init__()
        if attention_dropout:
            raise ValueError('the stand-in attention supports no dropout')

    def forward(self, qkv, key_padding_mask=None, need_weights=False, causal=False):
        """Attend over ``qkv`` of shape (batch, seq, 3, heads, head_dim).

        Returns:
            ``(out, None)`` with ``out`` of shape (batch, seq, heads, head_dim)
            in the dtype of ``qkv``.
        """
        if key_padding_mask is not None or causal:
            raise ValueError('the stand-in attention supports no masks')
        if self.use_sdpa:  # fused kernel, in the input dtype (speed comparisons)
            query, key, value = qkv.transpose(1, 3).unbind(dim=2)  # each (b, h, s, d)
            out = nn.functional.scaled_dot_product_attention(query, key, value)
            return out.transpose(1, 2), None
        dtype = qkv.dtype
        query, key, value = qkv.float().unbind(dim=2)  # each (b, s, h, d)
        scale = 1.0 / math.sqrt(query.shape[-1])
        logits = torch.einsum('bqhd,bkhd->bhqk', query, key) * scale
        weights = torch.softmax(logits, dim=-1)
        out = torch.einsum('bhqk,bkhd->bqhd', weights, value)
        return out.to(dtype), None


class _NoLPIPS:
    """Placeholder for ``piq.LPIPS``: built (the original's sampling script makes
    one it never calls), but the fixtures never compute a perceptual loss."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError('LPIPS is not available here; use loss_norm="l2"')


class _OneProcessComm:
    """``MPI.COMM_WORLD`` of a single process: what ``cm.dist_util`` asks of it."""

    rank, size = 0, 1

    def Get_rank(self) -> int:  # noqa: N802  (mpi4py's name)
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def bcast(self, value, root: int = 0):
        return value


def install_stand_ins(attention: str = 'softmax') -> None:
    """Register stand-in modules for flash_attn, mpi4py, blobfile and piq.

    ``attention``: 'softmax' (float32 einsum/softmax, the fixtures) or 'sdpa'
    (PyTorch's fused attention, for speed comparisons).
    """
    if attention not in ('softmax', 'sdpa'):
        raise ValueError(f'attention must be softmax or sdpa, got {attention!r}')
    StandInFlashAttention.use_sdpa = attention == 'sdpa'
    flash_attn = types.ModuleType('flash_attn')
    flash_attention = types.ModuleType('flash_attn.flash_attention')
    flash_attention.FlashAttention = StandInFlashAttention
    flash_attn.flash_attention = flash_attention

    mpi4py = types.ModuleType('mpi4py')
    mpi4py.MPI = types.SimpleNamespace(COMM_WORLD=_OneProcessComm())

    blobfile = types.ModuleType('blobfile')  # local files: open() and os.path
    blobfile.BlobFile = open
    blobfile.join = os.path.join
    blobfile.exists = os.path.exists

    piq = types.ModuleType('piq')
    piq.LPIPS = _NoLPIPS

    sys.modules.update({
        'flash_attn': flash_attn,
        'flash_attn.flash_attention': flash_attention,
        'mpi4py': mpi4py,
        'blobfile': blobfile,
        'piq': piq,
    })


def run_original_script(cm_repo: str, script: str, argv) -> None:
    """Run one of the original's scripts (e.g. ``scripts/image_sample.py``) in
    this process as its command line would, with ``argv`` its flags, after
    :func:`install_stand_ins` (SDPA attention; one-process MPI; gloo with one
    rank on the CPU). FileNotFoundError names a missing checkout."""
    import runpy
    path = os.path.join(cm_repo, script)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found: give a checkout of '
                                'openai/consistency_models')
    install_stand_ins('sdpa')
    sys.path.insert(0, str(cm_repo))
    os.environ.setdefault('MASTER_ADDR', 'localhost')
    sys.argv = [path, *argv]
    runpy.run_path(path, run_name='__main__')


class Reference:
    """Handles to the original package's functions, imported after the stand-ins."""

    def __init__(self, cm_repo: Path, attention: str = 'softmax'):
        """Install the stand-ins and import ``cm`` from ``cm_repo``."""
        install_stand_ins(attention)
        sys.path.insert(0, str(cm_repo))
        from cm import karras_diffusion, random_util, script_util
        self.create_model = script_util.create_model
        self.KarrasDenoiser = karras_diffusion.KarrasDenoiser
        self.karras_sample = karras_diffusion.karras_sample
        self.get_sigmas_karras = karras_diffusion.get_sigmas_karras
        self.get_generator = random_util.get_generator
        self.create_ema_and_scales_fn = script_util.create_ema_and_scales_fn
        self.editing = {'inpaint': karras_diffusion.iterative_inpainting,
                        'colorize': karras_diffusion.iterative_colorization,
                        'superres': karras_diffusion.iterative_superres}

    def build(self, arch: Dict[str, Any], seed: int) -> nn.Module:
        """Build a UNet on the CPU and load seeded weights strictly."""
        model = self.create_model(**arch)
        named_shapes = [(k, v.shape) for k, v in model.state_dict().items()]
        model.load_state_dict(seeded_state_dict(named_shapes, seed=seed), strict=True)
        return model.eval()

    def diffusion(self, distillation: bool):
        """Build the original ``KarrasDenoiser`` with the released hyper-parameters."""
        return self.KarrasDenoiser(distillation=distillation, **DENOISER_KWARGS)


def load_ect_loss(ect_repo: Path):
    """``locuslab/ect``'s ``ECMLoss`` class, imported from a checkout.

    Its shared dropout masks come from saving and restoring the CUDA RNG
    state; on a machine without CUDA those calls are pointed at the CPU
    generator, which is what CPU dropout draws from.
    """
    sys.path.insert(0, str(ect_repo))
    from training.loss import ECMLoss
    if not torch.cuda.is_available():
        torch.cuda.get_rng_state = torch.get_rng_state
        torch.cuda.set_rng_state = torch.set_rng_state
    return ECMLoss
