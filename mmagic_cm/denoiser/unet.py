"""The ADM UNet (guided-diffusion) used by the released consistency models.

Parameter names and shapes equal those of the released ``.pt`` files
(``time_embed``, ``label_emb``, ``input_blocks``, ``middle_block``,
``output_blocks``, ``out``), so they load with ``strict=True``.

Attention runs through ``torch.nn.functional.scaled_dot_product_attention``.
The released checkpoints were trained with flash attention, whose qkv
projection lays its ``3*C`` output channels out as ``(3, heads, head_dim)``;
guided-diffusion's legacy order ``(heads, 3, head_dim)`` would silently give
wrong images with these weights.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from ..registry import MODELS

#: channel multipliers the original code picks when ``channel_mult`` is empty
DEFAULT_CHANNEL_MULT = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
}


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0
                       ) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) time inputs.

    Args:
        timesteps: (N,) time inputs; consistency models feed ``250 * ln(sigma)``.
        dim: embedding width.
        max_period: lowest frequency is ``1 / max_period``.

    Returns:
        (N, dim) float32 tensor (float64 for float64 inputs), cosines first, then sines.
    """
    half = dim // 2
    # float64 inputs stay float64 (exact checks of derivatives); all else float32
    dtype = torch.float64 if timesteps.dtype == torch.float64 else torch.float32
    exponent = torch.arange(half, dtype=dtype, device=timesteps.device) / half
    freqs = torch.exp(-math.log(max_period) * exponent)
    args = timesteps[:, None].to(dtype) * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def _cpu_autocast_enabled() -> bool:
    try:
        return torch.is_autocast_enabled('cpu')
    except TypeError:  # torch < 2.4 takes no device argument
        return torch.is_autocast_cpu_enabled()


#: how :class:`GroupNorm32` computes (``GroupNorm32.mode``; set on inference
#: copies by :mod:`mmagic_cm.denoiser.fast`, never on the trained modules):
#: 'fp32' the original's (the default), 'fused' float32 statistics and affine
#: without float32 copies of the activations, 'dtype' in the activations' dtype
NORM_MODES = ('fp32', 'fused', 'dtype')


def fused_group_norm(x: torch.Tensor, num_groups: int, weight: torch.Tensor,
                     bias: torch.Tensor, eps: float, scale: Optional[torch.Tensor] = None,
                     shift: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``group_norm(x) * (1 + scale) + shift`` (FiLM; without ``scale``/``shift``
    plain GroupNorm) in ``x``'s dtype and memory format, the arithmetic in float32.

    The statistics are float32 reductions of ``x`` as it is (on CUDA a
    bf16/fp16 tensor is read as it is, with no float32 copy), the variance as
    ``E[x^2] - E[x]^2``; normalisation, affine and FiLM fold into one float32
    scale and offset per (sample, channel), applied by one ``addcmul`` that
    writes ``x``'s dtype. Against the original (a float32 copy of ``x``,
    GroupNorm, a cast back, then FiLM in ``x``'s dtype) it rounds once instead
    of three times, and a channels_last ``x`` stays channels_last (CUDA's
    GroupNorm kernel makes NCHW copies).
    """
    n, c = x.shape[:2]
    grouped = x.unflatten(1, (num_groups, c // num_groups))  # a view in either layout
    dims = tuple(range(2, grouped.dim()))
    count = grouped[0, 0].numel()
    mean = grouped.mean(dim=dims, dtype=torch.float32)  # (n, groups)
    squares = torch.linalg.vector_norm(grouped, 2, dim=dims, dtype=torch.float32).square()
    var = (squares / count - mean.square()).clamp_min_(0)
    a = torch.rsqrt(var + eps).unsqueeze(-1) * weight.float().view(num_groups, -1)
    b = bias.float().view(num_groups, -1) - mean.unsqueeze(-1) * a
    a, b = a.reshape(n, c), b.reshape(n, c)
    if scale is not None:
        gain = 1 + scale.reshape(n, c).float()
        a, b = a * gain, b * gain + shift.reshape(n, c).float()
    shape = (n, c) + (1, ) * (x.dim() - 2)
    if _compiling():  # inductor fuses it all; no out= in the graph
        return (x.float() * a.view(shape) + b.view(shape)).to(x.dtype)
    return torch.addcmul(b.view(shape), x, a.view(shape), out=torch.empty_like(x))


def _compiling() -> bool:
    compiler = getattr(torch, 'compiler', None)
    return bool(compiler is not None and hasattr(compiler, 'is_compiling')
                and compiler.is_compiling())


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the input dtype.

    On the CPU a bf16/fp16 input with float32 affine parameters goes to the
    native mixed-dtype kernel (float32 statistics and arithmetic, one rounding
    of the output): the same values without two copies of the activations.

    ``mode`` (:data:`NORM_MODES`; 'fp32' unless an inference copy sets it):
    'fused' computes with :func:`fused_group_norm` (float32 arithmetic, FiLM
    folded in by :meth:`modulate`); 'dtype' runs PyTorch's GroupNorm in the
    activations' dtype with affine parameters cast to it, as diffusers does
    (the inference copy casts them).
    """

    mode = 'fp32'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode != 'fp32' and x.dtype != torch.float64:
            if self.mode == 'fused':
                return fused_group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
            if self.weight.dtype == x.dtype:  # 'dtype'
                return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        if (x.dtype != torch.float32 and x.device.type == 'cpu'
                and self.weight.dtype == torch.float32 and not _cpu_autocast_enabled()):
            return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        wide = x if x.dtype == torch.float64 else x.float()  # float64 stays (exact checks)
        return super().forward(wide).type(x.dtype)

    def modulate(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor
                 ) -> torch.Tensor:
        """``self(x) * (1 + scale) + shift`` (ResBlocks' FiLM)."""
        if self.mode == 'fused' and x.dtype != torch.float64:
            return fused_group_norm(x, self.num_groups, self.weight, self.bias, self.eps,
                                    scale, shift)
        return self(x) * (1 + scale) + shift


def _pixel_norm(v: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``v / rms(v)`` over the channels (dim 1)."""
    return v * torch.rsqrt(v.pow(2).mean(dim=1, keepdim=True) + eps)


def _norm(channels: int) -> GroupNorm32:
    return GroupNorm32(32, channels)


def _zeroed(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.detach().zero_()
    return module


class TimestepSequential(nn.Sequential):
    """``nn.Sequential`` that hands the embedding to the blocks that take it."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, optionally followed by a 3x3 conv."""

    def __init__(self, channels: int, use_conv: bool, out_channels: Optional[int] = None):
        super().__init__()
        self.channels = channels
        if use_conv:
            self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)
        self.use_conv = use_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """2x downsampling: a strided 3x3 conv, or 2x2 average pooling."""

    def __init__(self, channels: int, use_conv: bool, out_channels: Optional[int] = None):
        super().__init__()
        out_channels = out_channels or channels
        if use_conv:
            self.op = nn.Conv2d(channels, out_channels, 3, stride=2, padding=1)
        else:
            if out_channels != channels:
                raise ValueError('average-pool downsampling cannot change channels '
                                 f'({channels} -> {out_channels})')
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ResBlock(nn.Module):
    """Residual block conditioned on the time (and class) embedding.

    With ``use_scale_shift_norm`` the embedding modulates the second norm
    FiLM-style (``norm(h) * (1 + scale) + shift``); otherwise it is added.
    ``up``/``down`` resample inside the block (``resblock_updown``).
    """

    def __init__(self, channels: int, emb_channels: int, dropout: float,
                 out_channels: Optional[int] = None, use_scale_shift_norm: bool = False,
                 up: bool = False, down: bool = False, use_checkpoint: bool = False,
                 pixel_norm_scale_shift: bool = False):
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.pixel_norm_scale_shift = pixel_norm_scale_shift
        self.use_checkpoint = use_checkpoint
        self.in_layers = nn.Sequential(
            _norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        emb_out = 2 * out_channels if use_scale_shift_norm else out_channels
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, emb_out))
        self.out_layers = nn.Sequential(
            _norm(out_channels), nn.SiLU(), nn.Dropout(p=dropout),
            _zeroed(nn.Conv2d(out_channels, out_channels, 3, padding=1)))
        if out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return grad_checkpoint(self._forward, x, emb, use_reentrant=False)
        return self._forward(x, emb)

    def _forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            # resample between the activation and the conv, as ADM does
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            if self.pixel_norm_scale_shift:  # sCM's adaptive double normalisation
                scale, shift = _pixel_norm(scale), _pixel_norm(shift)
            h = self.out_layers[1:](self.out_layers[0].modulate(h, scale, shift))
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over all spatial positions, with a residual.

    Heads are ``num_heads`` or, when ``num_head_channels`` is set,
    ``channels // num_head_channels``. The 1x1-conv qkv projection's output
    channels are read in flash-attention order ``(3, heads, head_dim)``.
    """

    def __init__(self, channels: int, num_heads: int = 1, num_head_channels: int = -1,
                 use_checkpoint: bool = False):
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        else:
            if channels % num_head_channels:
                raise ValueError(f'attention channels {channels} are not divisible by '
                                 f'num_head_channels={num_head_channels}')
            self.num_heads = channels // num_head_channels
        if channels % self.num_heads:
            raise ValueError(f'attention channels {channels} are not divisible by '
                             f'num_heads={self.num_heads}')
        self.use_checkpoint = use_checkpoint
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = _zeroed(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return grad_checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, c // self.num_heads, -1)
        # (b, 3, heads, d, T) -> three (b, heads, T, d) tensors for SDPA
        q, k, v = qkv.permute(1, 0, 2, 4, 3).unbind(0)
        h = F.scaled_dot_product_attention(q, k, v)  # (b, heads, T, d)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # NHWC as the NHWC convolution takes it: a view of the (b, T, heads, d)
            # buffer that PyTorch's flash and memory-efficient kernels write (a
            # copy otherwise), not an NCHW copy that the convolution copies back
            h = h.transpose(1, 2).reshape(b, height, width, c).permute(0, 3, 1, 2)
        else:  # the original's layout
            h = h.transpose(-1, -2).reshape(b, c, height, width)
        return x + self.proj_out(h)


def _parse_ints(value: Union[str, Sequence, None], name: str) -> Tuple:
    if value is None or value == '':
        return ()
    if isinstance(value, str):
        try:
            return tuple(float(v) if '.' in v else int(v) for v in value.split(',') if v)
        except ValueError:
            raise ValueError(f'{name}={value!r}: expected comma-separated numbers, '
                             'e.g. "32,16,8"') from None
    if isinstance(value, (int, float)):
        return (value, )
    return tuple(value)


@MODELS.register_module()
class ConsistencyUNetModel(BaseModule):
    """ADM UNet with time (and optional class) conditioning.

    Defaults follow the original ``create_model``; configs of the released
    checkpoints set every field explicitly.

    Args:
        image_size: input height/width (square), e.g. 64 or 256.
        in_channels: image channels.
        model_channels: base width; the time embedding is 4x this.
        num_res_blocks: ResBlocks per resolution level.
        attention_resolutions: resolutions (in pixels) that get attention,
            as "32,16,8" or a sequence; converted to downsampling rates.
        out_channels: output channels; default ``in_channels`` (doubled with
            ``learn_sigma``).
        dropout: dropout inside ResBlocks.
        dropout_resolutions: only the ResBlocks at these feature resolutions
            (in pixels, "16,8" or a sequence) get ``dropout``, a resampling
            block counting at its output resolution (EDM2's ``dropout_res``,
            which locuslab/ect's ImageNet recipe uses); None: every ResBlock
            (the original).
        channel_mult: per-level width multipliers ("1,2,3,4" or a sequence);
            empty picks the original default for ``image_size``.
        conv_resample: learned convs (True) or plain resampling between levels.
        num_classes: class count for class conditioning, or None.
        num_heads / num_head_channels / num_heads_upsample: attention heads;
            ``num_head_channels`` > 0 fixes the width per head instead.
        use_scale_shift_norm: FiLM conditioning in ResBlocks.
        resblock_updown: resample with ResBlocks instead of conv/pool.
        learn_sigma: double the output channels (variance head; unused by
            the consistency samplers).
        use_checkpoint: gradient checkpointing in training.
        pixel_norm_scale_shift: sCM's adaptive double normalisation: the
            FiLM scale and shift are pixel-normalised (needs
            ``use_scale_shift_norm``; no new weights; off for the released models).
        use_fp16: accepted for config compatibility with the original; use
            the sampler's ``dtype`` (autocast) instead.
        use_new_attention_order: must be False: the released weights use the
            flash-attention qkv order, which this module always uses.

    Forward: ``x`` (N, C, H, W) float, ``timesteps`` (N,), ``y`` (N,) long
    class labels iff class-conditional; returns (N, out_channels, H, W).
    """

    def __init__(self,
                 image_size: int = 64,
                 in_channels: int = 3,
                 model_channels: int = 128,
                 num_res_blocks: int = 2,
                 attention_resolutions: Union[str, Sequence[int]] = '32,16,8',
                 out_channels: Optional[int] = None,
                 dropout: float = 0.0,
                 channel_mult: Union[str, Sequence[float]] = '',
                 conv_resample: bool = True,
                 num_classes: Optional[int] = None,
                 num_heads: int = 4,
                 num_head_channels: int = -1,
                 num_heads_upsample: int = -1,
                 use_scale_shift_norm: bool = True,
                 resblock_updown: bool = False,
                 learn_sigma: bool = False,
                 use_checkpoint: bool = False,
                 use_fp16: bool = False,
                 use_new_attention_order: bool = False,
                 pixel_norm_scale_shift: bool = False,
                 dropout_resolutions: Optional[Union[str, Sequence[int]]] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if pixel_norm_scale_shift and not use_scale_shift_norm:
            raise ValueError('pixel_norm_scale_shift=True needs use_scale_shift_norm=True')
        if use_new_attention_order:
            raise ValueError('use_new_attention_order=True is not supported: the released '
                             'checkpoints use the flash-attention qkv order; set it to False')
        channel_mult = _parse_ints(channel_mult, 'channel_mult')
        if not channel_mult:
            if image_size not in DEFAULT_CHANNEL_MULT:
                raise ValueError(f'no default channel_mult for image_size={image_size}; '
                                 'set channel_mult, e.g. "1,2,2"')
            channel_mult = DEFAULT_CHANNEL_MULT[image_size]
        attention_ds = {image_size // int(r) for r in
                        _parse_ints(attention_resolutions, 'attention_resolutions')}
        dropout_ds = None if dropout_resolutions is None else {
            image_size // int(r) for r in _parse_ints(dropout_resolutions, 'dropout_resolutions')}
        out_channels = out_channels or in_channels
        if learn_sigma:
            out_channels *= 2
        if num_heads_upsample == -1:
            num_heads_upsample = num_heads

        self.image_size = image_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.model_channels = model_channels
        self.num_classes = num_classes
        self.channel_mult = channel_mult
        self.use_fp16 = use_fp16

        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if num_classes is not None:
            # nn.Embedding's own init, skipped on the meta device (a sampling
            # build), where normal_ would import torch._dynamo (0.7 s)
            self.label_emb = nn.Embedding(num_classes, emb_dim,
                                          _weight=torch.empty(num_classes, emb_dim))
            if not self.label_emb.weight.is_meta:
                nn.init.normal_(self.label_emb.weight)

        def resblock(cin, cout=None, ds=1, **kw):
            p = dropout if dropout_ds is None or ds in dropout_ds else 0.0
            return ResBlock(cin, emb_dim, p, out_channels=cout,
                            use_scale_shift_norm=use_scale_shift_norm,
                            use_checkpoint=use_checkpoint,
                            pixel_norm_scale_shift=pixel_norm_scale_shift, **kw)

        def attention(ch, heads):
            return AttentionBlock(ch, num_heads=heads, num_head_channels=num_head_channels,
                                  use_checkpoint=use_checkpoint)

        ch = first_ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList(
            [TimestepSequential(nn.Conv2d(in_channels, ch, 3, padding=1))])
        skip_chans = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [resblock(ch, int(mult * model_channels), ds=ds)]
                ch = int(mult * model_channels)
                if ds in attention_ds:
                    layers.append(attention(ch, num_heads))
                self.input_blocks.append(TimestepSequential(*layers))
                skip_chans.append(ch)
            if level != len(channel_mult) - 1:
                down = (resblock(ch, ch, ds=2 * ds, down=True) if resblock_updown else
                        Downsample(ch, conv_resample, out_channels=ch))
                self.input_blocks.append(TimestepSequential(down))
                skip_chans.append(ch)
                ds *= 2

        self.middle_block = TimestepSequential(
            resblock(ch, ds=ds), attention(ch, num_heads), resblock(ch, ds=ds))

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [resblock(ch + skip_chans.pop(), int(model_channels * mult), ds=ds)]
                ch = int(model_channels * mult)
                if ds in attention_ds:
                    layers.append(attention(ch, num_heads_upsample))
                if level and i == num_res_blocks:
                    layers.append(resblock(ch, ch, ds=ds // 2, up=True) if resblock_updown else
                                  Upsample(ch, conv_resample, out_channels=ch))
                    ds //= 2
                self.output_blocks.append(TimestepSequential(*layers))

        self.out = nn.Sequential(
            _norm(ch), nn.SiLU(), _zeroed(nn.Conv2d(first_ch, out_channels, 3, padding=1)))

    def init_weights(self) -> None:
        """PyTorch's default init, then zeroed output convs, as the original.

        Also materialises a model built on the meta device.
        """
        if any(p.is_meta for p in self.parameters()):
            self.to_empty(device='cpu')
        for module in self.modules():
            if module is not self and hasattr(module, 'reset_parameters'):
                module.reset_parameters()
        for module in self.modules():
            if isinstance(module, ResBlock):
                _zeroed(module.out_layers[-1])
            elif isinstance(module, AttentionBlock):
                _zeroed(module.proj_out)
        _zeroed(self.out[-1])
        super().init_weights()

    @property
    def compute_dtype(self) -> torch.dtype:
        """dtype of the trunk's convolutions (float32 unless converted)."""
        return self.input_blocks[0][0].weight.dtype

    def convert_to_dtype(self, dtype: torch.dtype) -> ConsistencyUNetModel:
        """Cast the convolutions of the trunk (input, middle and output blocks)
        to ``dtype`` once, for inference, as the original's ``use_fp16`` does.

        Norms, the time/label embeddings and the final ``out`` layers stay in
        float32; the trunk's activations are in ``dtype``. ``float32`` undoes it.
        """
        for part in (self.input_blocks, self.middle_block, self.output_blocks):
            for module in part.modules():
                if isinstance(module, nn.Conv2d):
                    module.to(dtype)
        return self

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor,
                y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x`` (N, C, H, W), ``timesteps`` (N,) and ``y`` (N,) int64 class
        labels or (N, num_classes) float class weights -> (N, out_channels, H, W)."""
        if (y is not None) != (self.num_classes is not None):
            raise ValueError('class labels `y` must be given if and only if the UNet is '
                             f'class-conditional (num_classes={self.num_classes})')
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        if y is not None:
            if y.is_floating_point():
                # (N, num_classes) class weights: a mix of class embeddings
                # (interpolating between classes when editing)
                emb = emb + y.to(self.label_emb.weight.dtype) @ self.label_emb.weight
            else:
                emb = emb + self.label_emb(y)
        skips = []
        h = x.type(self.compute_dtype)
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h.type(x.dtype))


def unet_config_from_flags(flags: dict) -> dict:
    """Translate the original code's model flags into a UNet config.

    Args:
        flags: ``image_sample.py``/``create_model`` flags, e.g.
            ``dict(image_size=64, num_channels=192, class_cond=True, ...)``.

    Returns:
        kwargs for :class:`ConsistencyUNetModel` (``type`` included).
    """
    cfg = dict(type='ConsistencyUNetModel', image_size=flags.get('image_size', 64),
               model_channels=flags.get('num_channels', 128))
    same = ('num_res_blocks', 'attention_resolutions', 'channel_mult', 'num_heads',
            'num_head_channels', 'num_heads_upsample', 'use_scale_shift_norm',
            'resblock_updown', 'learn_sigma', 'dropout', 'use_checkpoint', 'use_fp16',
            'use_new_attention_order')
    cfg.update({k: flags[k] for k in same if k in flags})
    cfg['num_classes'] = 1000 if flags.get('class_cond') else None
    return cfg
