"""Convert ADM UNet weights between the released raw format and diffusers.

The released checkpoints (``cd_imagenet64_lpips.pt``, ...) are state dicts of
the ADM UNet (:class:`~mmagic_cm.denoiser.unet.ConsistencyUNetModel`); diffusers
runs the same network as ``UNet2DModel`` inside ``ConsistencyModelPipeline``
with a ``CMStochasticIterativeScheduler``. The two formats hold the same
tensors under other names, except that ADM's attention has one ``qkv``
1x1 conv whose ``3C`` output channels are laid out ``(3, heads, head_dim)``
(flash-attention order) while diffusers has ``to_q``/``to_k``/``to_v``
linear layers of ``C`` outputs each: ``qkv`` is cut into three along its
output channels and the 1x1 kernels lose their two trailing dims.

What ``UNet2DModel`` can express (the released ImageNet-64 and LSUN-256
UNets, the digits and test UNets can; :func:`diffusers_unet_config` raises a
``ValueError`` naming the field otherwise):

- ``channel_mult[0] == 1``: diffusers sizes the time embedding from its
  first block (``4 * block_out_channels[0]``), ADM from ``model_channels``;
- one attention head width for every attention layer (``num_head_channels``,
  or ``num_heads``/``num_heads_upsample`` that happen to give one width);
- learned resampling: ``conv_resample=True`` or ``resblock_updown=True``
  (diffusers' plain down/up blocks always resample with a conv);
- GroupNorm(32, eps=1e-5), SiLU, sinusoidal time embedding with cosines
  first (``flip_sin_to_cos=True``, ``freq_shift=0``), FiLM (``scale_shift``)
  or additive time conditioning, and a learned class embedding as ADM has.

``learn_sigma=True`` (6 output channels) converts, but
``ConsistencyModelPipeline`` feeds the whole UNet output to its scheduler,
so :func:`save_diffusers_folder` refuses it. Numerically, the two UNets agree
to float32 rounding: attention scales by ``1/sqrt(head_dim)`` on both sides,
diffusers runs GroupNorm in the model dtype where ADM upcasts to float32
(matters only in half precision), and the pipeline's time input
``1000 * 0.25 * ln(sigma)`` equals :meth:`KarrasPrecond.time_input`.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch

from ..files.checkpoint import CheckpointError

#: diffusers' parameter names of one ADM ResBlock's layers
_RESBLOCK_NAMES = {
    'in_layers.0': 'norm1',
    'in_layers.2': 'conv1',
    'emb_layers.1': 'time_emb_proj',
    'out_layers.0': 'norm2',
    'out_layers.3': 'conv2',
    'skip_connection': 'conv_shortcut',
}
#: ... of one attention block (``qkv`` is split, see ``_ATTN_QKV``)
_ATTENTION_NAMES = {'norm': 'group_norm', 'proj_out': 'to_out.0'}
_ATTN_QKV = ('to_q', 'to_k', 'to_v')
#: pre-0.14 diffusers attention names, still found in some saved folders
_DEPRECATED_ATTENTION_NAMES = {
    'query': 'to_q', 'key': 'to_k', 'value': 'to_v', 'proj_attn': 'to_out.0'}
#: settings of UNet2DModel that must have these values for an ADM UNet
_FIXED_DIFFUSERS_SETTINGS = dict(
    center_input_sample=False,
    time_embedding_type='positional',
    flip_sin_to_cos=True,
    freq_shift=0,
    mid_block_scale_factor=1,
    downsample_padding=1,
    act_fn='silu',
    norm_num_groups=32,
    attn_norm_num_groups=32,
    norm_eps=1e-5,
    add_attention=True,
    class_embed_type=None,
)
WEIGHT_NAMES = ('diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin')

UnetCfg = Mapping


def _clean_cfg(unet_cfg: UnetCfg) -> dict:
    cfg = dict(unet_cfg)
    kind = cfg.pop('type', 'ConsistencyUNetModel')
    if kind != 'ConsistencyUNetModel':
        raise ValueError(f'unet type={kind!r}: only ConsistencyUNetModel (the ADM UNet) '
                         'converts to diffusers')
    return cfg


def _meta_unet(unet_cfg: UnetCfg):
    """Our UNet for ``unet_cfg`` on the meta device (no memory, no init)."""
    from ..denoiser.unet import ConsistencyUNetModel
    with torch.device('meta'):
        return ConsistencyUNetModel(**_clean_cfg(unet_cfg))


def _layout(unet) -> Tuple[List[Tuple[str, str, str]], Dict]:
    """Walk our UNet: ``(our_prefix, diffusers_prefix, kind)`` per sub-module.

    ``kind`` is 'res', 'attn' or 'plain' (a conv/linear/embedding/norm).
    Also returns facts about the layout that the diffusers config needs.
    """
    from ..denoiser.unet import AttentionBlock, Downsample, ResBlock, Upsample

    n_levels = len(unet.channel_mult)
    n_res = (len(unet.input_blocks) - n_levels) // n_levels
    pairs = [('time_embed.0', 'time_embedding.linear_1', 'plain'),
             ('time_embed.2', 'time_embedding.linear_2', 'plain')]
    if unet.num_classes is not None:
        pairs.append(('label_emb', 'class_embedding', 'plain'))
    pairs.append(('input_blocks.0.0', 'conv_in', 'plain'))
    down_attn, up_attn, heads, resample = [], [], set(), set()

    def add(module, ours: str, theirs: str) -> None:
        if isinstance(module, ResBlock):
            pairs.append((ours, theirs, 'res'))
            if module.updown:
                resample.add('resnet')
        elif isinstance(module, AttentionBlock):
            pairs.append((ours, theirs, 'attn'))
            heads.add((module.qkv.in_channels // module.num_heads, module.num_heads))
        elif isinstance(module, Downsample):
            if not isinstance(module.op, torch.nn.Conv2d):
                resample.add('pool')
            else:
                pairs.append((f'{ours}.op', f'{theirs}.conv', 'plain'))
                resample.add('conv')
        elif isinstance(module, Upsample):
            if not module.use_conv:
                resample.add('pool')
            else:
                pairs.append((f'{ours}.conv', f'{theirs}.conv', 'plain'))
                resample.add('conv')
        else:  # pragma: no cover - the ADM UNet has no other block kinds
            raise ValueError(f'cannot convert {type(module).__name__} at {ours}')

    k = 1
    for level in range(n_levels):
        has_attn = False
        for j in range(n_res):
            block = unet.input_blocks[k]
            add(block[0], f'input_blocks.{k}.0', f'down_blocks.{level}.resnets.{j}')
            if len(block) > 1:
                add(block[1], f'input_blocks.{k}.1', f'down_blocks.{level}.attentions.{j}')
                has_attn = True
            k += 1
        down_attn.append(has_attn)
        if level != n_levels - 1:
            add(unet.input_blocks[k][0], f'input_blocks.{k}.0',
                f'down_blocks.{level}.downsamplers.0')
            k += 1
    for i, theirs in enumerate(('mid_block.resnets.0', 'mid_block.attentions.0',
                                'mid_block.resnets.1')):
        add(unet.middle_block[i], f'middle_block.{i}', theirs)
    k = 0
    for i in range(n_levels):
        has_attn = False
        for j in range(n_res + 1):
            block = unet.output_blocks[k]
            add(block[0], f'output_blocks.{k}.0', f'up_blocks.{i}.resnets.{j}')
            for m in range(1, len(block)):
                if isinstance(block[m], AttentionBlock):
                    add(block[m], f'output_blocks.{k}.{m}', f'up_blocks.{i}.attentions.{j}')
                    has_attn = True
                else:
                    add(block[m], f'output_blocks.{k}.{m}', f'up_blocks.{i}.upsamplers.0')
            k += 1
        up_attn.append(has_attn)
    pairs += [('out.0', 'conv_norm_out', 'plain'), ('out.2', 'conv_out', 'plain')]
    facts = dict(n_levels=n_levels, n_res=n_res, down_attn=down_attn, up_attn=up_attn,
                 heads=heads, resample=resample)
    return pairs, facts


def _key_map(unet) -> List[Tuple[str, Tuple[str, ...]]]:
    """``(our_key, diffusers_keys)`` for every tensor of ``unet``, in its order.

    One diffusers key per our key, except ``qkv.{weight,bias}`` -> three.
    """
    pairs, _ = _layout(unet)
    prefix_of = {ours: (theirs, kind) for ours, theirs, kind in pairs}
    out = []
    for key in unet.state_dict():
        module, _, leaf = key.rpartition('.')  # e.g. 'input_blocks.1.0.in_layers.0'
        found = None
        for prefix in _prefixes(module):
            if prefix in prefix_of:
                found = prefix
                break
        if found is None:
            raise KeyError(f'no diffusers name for {key}')
        theirs, kind = prefix_of[found]
        rest = module[len(found) + 1:]
        if kind == 'plain':
            out.append((key, (f'{theirs}.{leaf}', )))
        elif kind == 'res':
            out.append((key, (f'{theirs}.{_RESBLOCK_NAMES[rest]}.{leaf}', )))
        elif rest == 'qkv':
            out.append((key, tuple(f'{theirs}.{n}.{leaf}' for n in _ATTN_QKV)))
        else:
            out.append((key, (f'{theirs}.{_ATTENTION_NAMES[rest]}.{leaf}', )))
    return out


def _prefixes(module: str):
    parts = module.split('.')
    for n in range(len(parts), 0, -1):
        yield '.'.join(parts[:n])


def diffusers_unet_config(unet_cfg: UnetCfg) -> dict:
    """kwargs of ``diffusers.UNet2DModel`` for the same network as ``unet_cfg``.

    Args:
        unet_cfg: our UNet config (the ``model.unet`` dict of a config, with
            or without ``type``), e.g. ImageNet-64's ``image_size=64,
            model_channels=192, channel_mult='1,2,3,4', num_classes=1000``.

    Returns:
        dict for ``UNet2DModel(**cfg)``: ``sample_size``, ``block_out_channels``
        (``model_channels * channel_mult``), ``layers_per_block``
        (``num_res_blocks``), block types, ``attention_head_dim``,
        ``resnet_time_scale_shift``, ``num_class_embeds``, ...

    Raises:
        ValueError: a setting UNet2DModel cannot express, named with the fix.
    """
    cfg = _clean_cfg(unet_cfg)
    unet = _meta_unet(cfg)
    _, facts = _layout(unet)
    mults = unet.channel_mult
    if int(mults[0] * unet.model_channels) != unet.model_channels:
        raise ValueError(
            f'channel_mult={",".join(map(str, mults))}: diffusers\' UNet2DModel sizes the '
            'time embedding from its first block (4 x block_out_channels[0]) while the ADM '
            'UNet uses 4 x model_channels, so only a channel_mult starting with 1 converts')
    if 'pool' in facts['resample']:
        raise ValueError('conv_resample=False with resblock_updown=False (plain pooling / '
                         'nearest resampling between levels): UNet2DModel always resamples '
                         'with a conv or a ResBlock; such a UNet cannot be converted')
    head_dims = sorted({d for d, _ in facts['heads']})
    if len(head_dims) != 1:
        raise ValueError(
            f'num_heads={cfg.get("num_heads", 4)}, num_heads_upsample='
            f'{cfg.get("num_heads_upsample", -1)}, num_head_channels='
            f'{cfg.get("num_head_channels", -1)} give attention head widths '
            f'{", ".join(map(str, head_dims))} in different layers; UNet2DModel has one '
            'attention_head_dim for all of them (set num_head_channels instead)')
    if facts['down_attn'] != facts['up_attn'][::-1]:  # pragma: no cover - ADM is symmetric
        raise ValueError('attention differs between the down and up path of a level')
    updown = 'resnet' in facts['resample']
    down_types, up_types = [], []
    for level in range(facts['n_levels']):
        if facts['down_attn'][level]:
            down_types.append('AttnDownBlock2D')
        else:
            down_types.append('ResnetDownsampleBlock2D' if updown else 'DownBlock2D')
    for level in reversed(range(facts['n_levels'])):
        if facts['down_attn'][level]:
            up_types.append('AttnUpBlock2D')
        else:
            up_types.append('ResnetUpsampleBlock2D' if updown else 'UpBlock2D')
    config = dict(
        sample_size=unet.image_size,
        in_channels=unet.in_channels,
        out_channels=unet.out_channels,
        down_block_types=tuple(down_types),
        up_block_types=tuple(up_types),
        block_out_channels=tuple(int(m * unet.model_channels) for m in mults),
        layers_per_block=facts['n_res'],
        downsample_type='resnet' if updown else 'conv',
        upsample_type='resnet' if updown else 'conv',
        dropout=float(cfg.get('dropout', 0.0)),
        attention_head_dim=head_dims[0],
        resnet_time_scale_shift=('scale_shift' if cfg.get('use_scale_shift_norm', True)
                                 else 'default'),
        num_class_embeds=unet.num_classes,
    )
    config.update(_FIXED_DIFFUSERS_SETTINGS)
    return config


def unet_config_from_diffusers(config: Mapping) -> dict:
    """Our UNet config for a ``UNet2DModel`` config (``unet/config.json``).

    The inverse of :func:`diffusers_unet_config`: heads come back as
    ``num_head_channels``, attention levels as ``attention_resolutions``.

    Raises:
        ValueError: the config is not one of an ADM UNet, naming the field.
    """
    config = {k: v for k, v in config.items() if not k.startswith('_')}
    defaults = dict(center_input_sample=False, time_embedding_type='positional',
                    flip_sin_to_cos=True, freq_shift=0, mid_block_scale_factor=1,
                    downsample_padding=1, act_fn='silu', norm_num_groups=32,
                    attn_norm_num_groups=None, norm_eps=1e-5, add_attention=True,
                    class_embed_type=None, resnet_time_scale_shift='default',
                    downsample_type='conv', upsample_type='conv', dropout=0.0)
    get = {**defaults, **config}.get
    for key, value in _FIXED_DIFFUSERS_SETTINGS.items():
        if key == 'attn_norm_num_groups':
            # mid-block attention norm: implied by 'default' time conditioning
            if get(key) is None and get('resnet_time_scale_shift') == 'default':
                continue
        if get(key) != value:
            raise ValueError(f'UNet2DModel {key}={get(key)!r}: an ADM UNet has {value!r}; '
                             'this UNet cannot be converted')
    shift = get('resnet_time_scale_shift')
    if shift not in ('default', 'scale_shift'):
        raise ValueError(f'UNet2DModel resnet_time_scale_shift={shift!r}: only "default" and '
                         '"scale_shift" convert')
    down, up = list(get('down_block_types')), list(get('up_block_types'))
    channels = list(get('block_out_channels'))
    if not len(down) == len(up) == len(channels):
        raise ValueError('UNet2DModel down_block_types, up_block_types and '
                         'block_out_channels differ in length')
    attn_levels = []
    kinds = set()
    for level, (d, u) in enumerate(zip(down, reversed(up))):
        known = {('AttnDownBlock2D', 'AttnUpBlock2D'), ('DownBlock2D', 'UpBlock2D'),
                 ('ResnetDownsampleBlock2D', 'ResnetUpsampleBlock2D')}
        if (d, u) not in known:
            raise ValueError(f'UNet2DModel level {level} has down block {d} and up block {u}; '
                             f'only the pairs {sorted(known)} convert')
        if d.startswith('Attn'):
            attn_levels.append(level)
        if level != len(down) - 1:  # the last level does not resample
            if d.startswith('Attn'):
                kinds.add((get('downsample_type'), get('upsample_type')))
            else:
                kinds.add(('resnet', 'resnet') if d.startswith('Resnet') else ('conv', 'conv'))
    if len(kinds) > 1 or (kinds and next(iter(kinds))[0] != next(iter(kinds))[1]):
        raise ValueError(f'UNet2DModel mixes resampling kinds {sorted(kinds)}; an ADM UNet '
                         'resamples with convs everywhere or ResBlocks everywhere')
    updown = bool(kinds) and next(iter(kinds))[0] == 'resnet'
    size = get('sample_size')
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise ValueError(f'UNet2DModel sample_size={size}: only square images convert')
        size = size[0]
    if size is None:
        raise ValueError('UNet2DModel sample_size is not set; the ADM UNet needs it')
    base = channels[0]
    mults = []
    for c in channels:
        mults.append(c // base if c % base == 0 else c / base)
    out_channels = get('out_channels')
    in_channels = get('in_channels')
    return dict(
        type='ConsistencyUNetModel',
        image_size=int(size),
        in_channels=in_channels,
        model_channels=base,
        num_res_blocks=get('layers_per_block'),
        attention_resolutions=','.join(str(int(size) // 2**lv) for lv in attn_levels),
        out_channels=out_channels,
        dropout=get('dropout'),
        channel_mult=','.join(str(m) for m in mults),
        conv_resample=True,
        num_classes=get('num_class_embeds'),
        # attention_head_dim None: one head of all channels, in every layer
        num_heads=4 if get('attention_head_dim') else 1,
        num_head_channels=get('attention_head_dim') or -1,
        use_scale_shift_norm=shift == 'scale_shift',
        resblock_updown=updown,
    )


def unet_state_dict_to_diffusers(state_dict: Mapping[str, torch.Tensor], unet_cfg: UnetCfg
                                 ) -> OrderedDict[str, torch.Tensor]:
    """Rename (and split) our/the released UNet tensors into UNet2DModel's.

    Args:
        state_dict: raw UNet state dict (``input_blocks.1.0.in_layers.0.weight``,
            ...), e.g. 296M parameters for ImageNet-64; any dtype.
        unet_cfg: our UNet config the state dict belongs to.

    Returns:
        UNet2DModel state dict, same dtypes. ``qkv.weight`` (3C, C, 1, 1) becomes
        ``to_q``/``to_k``/``to_v.weight`` (C, C) each, ``qkv.bias`` (3C,) three (C,);
        ``proj_out.weight`` (C, C, 1, 1) -> ``to_out.0.weight`` (C, C). Tensors
        other than q/k/v are views of the inputs (no copy).

    Raises:
        CheckpointError: keys or shapes do not fit ``unet_cfg``.
    """
    unet = _meta_unet(unet_cfg)
    _check_keys(unet, state_dict)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for ours, theirs in _key_map(unet):
        value = state_dict[ours]
        if len(theirs) == 3:
            parts = value.chunk(3, dim=0)
        else:
            parts = (value, )
        for name, part in zip(theirs, parts):
            if '.to_' in name and part.ndim == 4:
                part = part[:, :, 0, 0]
            # q/k/v get storages of their own: safetensors refuses shared ones
            out[name] = part.clone() if len(parts) > 1 else part
    return out


def diffusers_state_dict_to_unet(state_dict: Mapping[str, torch.Tensor], unet_cfg: UnetCfg
                                 ) -> OrderedDict[str, torch.Tensor]:
    """The exact inverse of :func:`unet_state_dict_to_diffusers`.

    Args:
        state_dict: UNet2DModel state dict (deprecated ``query``/``key``/
            ``value``/``proj_attn`` attention names are accepted too).
        unet_cfg: our UNet config to produce weights for.

    Returns:
        raw UNet state dict in our (= the released files') key order, same
        dtypes: ``to_q``/``to_k``/``to_v`` (C, C) are concatenated into ``qkv``
        (3C, C, 1, 1) in flash-attention order ``(3, heads, head_dim)``.

    Raises:
        CheckpointError: keys or shapes do not fit ``unet_cfg``.
    """
    state_dict = _undeprecate(state_dict)
    unet = _meta_unet(unet_cfg)
    expected = unet.state_dict()
    key_map = _key_map(unet)
    wanted = {name for _, theirs in key_map for name in theirs}
    missing = [n for _, theirs in key_map for n in theirs if n not in state_dict]
    unexpected = [n for n in state_dict if n not in wanted]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing keys (e.g. {", ".join(missing[:3])})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys (e.g. '
                         f'{", ".join(unexpected[:3])})')
        raise CheckpointError('the diffusers UNet does not fit this UNet config: '
                              + '; '.join(parts))
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for ours, theirs in key_map:
        parts = [state_dict[n] for n in theirs]
        value = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
        shape = tuple(expected[ours].shape)
        if value.ndim == 2 and len(shape) == 4:
            value = value[:, :, None, None]
        if tuple(value.shape) != shape:
            raise CheckpointError(f'the diffusers UNet does not fit this UNet config: '
                                  f'{" + ".join(theirs)} gives {tuple(value.shape)} for {ours}, '
                                  f'which needs {shape}')
        out[ours] = value
    return out


def _undeprecate(state_dict: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    out = OrderedDict()
    for key, value in state_dict.items():
        module, _, leaf = key.rpartition('.')
        head, _, last = module.rpartition('.')
        if '.attentions.' in module and last in _DEPRECATED_ATTENTION_NAMES:
            key = f'{head}.{_DEPRECATED_ATTENTION_NAMES[last]}.{leaf}'
            if value.ndim == 4:
                value = value[:, :, 0, 0]
        out[key] = value
    return out


def _check_keys(unet, state_dict: Mapping[str, torch.Tensor]) -> None:
    from ..files.checkpoint import describe_mismatch, shape_signature
    expected = shape_signature(unet.state_dict().items())
    found = shape_signature(state_dict.items())
    if expected != found:
        raise CheckpointError('the UNet weights do not fit this UNet config: '
                              f'{describe_mismatch(expected, found)}')


def build_diffusers_unet(state_dict: Mapping[str, torch.Tensor], unet_cfg: UnetCfg,
                         dtype: torch.dtype = torch.float32):
    """A ``diffusers.UNet2DModel`` holding our/the released UNet weights.

    Built on the meta device (no random init), then the converted tensors are
    assigned with ``strict=True``.

    Args:
        state_dict: raw UNet state dict for ``unet_cfg``.
        unet_cfg: our UNet config.
        dtype: parameter dtype of the returned model.

    Returns:
        ``UNet2DModel`` in eval mode on the CPU. Its forward takes
        ``sample`` (N, C, H, W) scaled by ``c_in``, ``timestep`` (N,) =
        ``250 * ln(sigma)`` and ``class_labels`` (N,) long iff class-conditional,
        and returns ``.sample`` (N, out_channels, H, W).
    """
    from diffusers import UNet2DModel

    config = diffusers_unet_config(unet_cfg)
    converted = unet_state_dict_to_diffusers(state_dict, unet_cfg)
    converted = OrderedDict((k, v.detach().to('cpu', dtype).contiguous())
                            for k, v in converted.items())
    with torch.device('meta'):
        model = UNet2DModel(**config)
    model.load_state_dict(converted, strict=True, assign=True)
    leftover = [n for n, t in list(model.named_parameters()) + list(model.named_buffers())
                if t.is_meta]
    if leftover:  # pragma: no cover - UNet2DModel has no buffers today
        raise RuntimeError(f'UNet2DModel tensors left unset: {", ".join(leftover[:3])}')
    return model.eval()


def diffusers_scheduler_config(precond_cfg: Union[Mapping, object, None] = None, *,
                               num_train_timesteps: int = 40,
                               clip_denoised: bool = True) -> dict:
    """kwargs of ``diffusers.CMStochasticIterativeScheduler`` for a preconditioning.

    Args:
        precond_cfg: ``KarrasPrecond`` config dict or object (sigma_min,
            sigma_max, sigma_data, rho; defaults 0.002, 80, 0.5, 7).
        num_train_timesteps: the Karras grid size that multistep ``ts`` index
            (the config's ``steps``: 40, or 201/151 for the CT models).
        clip_denoised: clamp denoised images to [-1, 1] (the config's).

    Raises:
        ValueError: an EDM (teacher) denoiser: the scheduler only implements
            consistency-model (boundary-condition) scalings.
    """
    get = (precond_cfg.get if isinstance(precond_cfg, Mapping) else
           (lambda k, d=None: getattr(precond_cfg, k, d)))
    if get('boundary_condition', None) is False:
        raise ValueError('an EDM denoiser (boundary_condition=False, training_mode="edm"): '
                         'CMStochasticIterativeScheduler only applies consistency-model '
                         'scalings; only consistency models convert to its pipeline')
    return dict(num_train_timesteps=int(num_train_timesteps),
                sigma_min=float(get('sigma_min', 0.002)),
                sigma_max=float(get('sigma_max', 80.0)),
                sigma_data=float(get('sigma_data', 0.5)),
                s_noise=1.0,
                rho=float(get('rho', 7.0)),
                clip_denoised=bool(clip_denoised))


def save_diffusers_folder(folder: str, state_dict: Mapping[str, torch.Tensor],
                          unet_cfg: UnetCfg, precond_cfg: Union[Mapping, object, None] = None,
                          *, dtype: Optional[torch.dtype] = None, num_train_timesteps: int = 40,
                          clip_denoised: bool = True) -> None:
    """Write a ``ConsistencyModelPipeline`` folder.

    Layout: ``model_index.json``, ``unet/`` (``config.json`` and
    ``diffusion_pytorch_model.safetensors``, or ``.bin`` without safetensors)
    and ``scheduler/scheduler_config.json``; loads with
    ``ConsistencyModelPipeline.from_pretrained(folder)``.

    Args:
        folder: output folder (created; existing files are overwritten).
        state_dict: raw UNet state dict; written in ``dtype`` (default: its
            own floating dtype).
        unet_cfg, precond_cfg: our configs (see :func:`diffusers_unet_config`,
            :func:`diffusers_scheduler_config`).
        num_train_timesteps, clip_denoised: see :func:`diffusers_scheduler_config`.
    """
    import importlib.util

    from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline

    unet_config = diffusers_unet_config(unet_cfg)
    if unet_config['out_channels'] != unet_config['in_channels']:
        raise ValueError(
            f'out_channels={unet_config["out_channels"]} (learn_sigma=True?) differs from '
            f'in_channels={unet_config["in_channels"]}: ConsistencyModelPipeline feeds the '
            'whole UNet output to its scheduler; set learn_sigma=False')
    scheduler = CMStochasticIterativeScheduler(**diffusers_scheduler_config(
        precond_cfg, num_train_timesteps=num_train_timesteps, clip_denoised=clip_denoised))
    if dtype is None:
        dtype = next((v.dtype for v in state_dict.values() if v.is_floating_point()),
                     torch.float32)
    unet = build_diffusers_unet(state_dict, unet_cfg, dtype=dtype)
    pipe = ConsistencyModelPipeline(unet=unet, scheduler=scheduler)
    safe = importlib.util.find_spec('safetensors') is not None
    pipe.save_pretrained(folder, safe_serialization=safe)


def _unet_folder(folder: str) -> str:
    if osp.isfile(osp.join(folder, 'unet', 'config.json')):
        return osp.join(folder, 'unet')
    if osp.isfile(osp.join(folder, 'config.json')):
        return folder
    raise CheckpointError(f'{folder} is not a diffusers folder: it has neither '
                          'unet/config.json nor config.json')


def read_diffusers_unet(folder: str) -> Tuple[dict, OrderedDict[str, torch.Tensor]]:
    """``(UNet2DModel config, state dict)`` of a pipeline folder or its ``unet/``."""
    unet_dir = _unet_folder(folder)
    with open(osp.join(unet_dir, 'config.json')) as f:
        config = json.load(f)
    if config.get('_class_name', 'UNet2DModel') != 'UNet2DModel':
        raise CheckpointError(f'{unet_dir}/config.json describes a {config["_class_name"]}, '
                              'not a UNet2DModel')
    names = list(WEIGHT_NAMES) + sorted(
        n for n in os.listdir(unet_dir)
        if n.startswith('diffusion_pytorch_model.') and n.endswith(('.safetensors', '.bin'))
        and n not in WEIGHT_NAMES)
    for name in names:
        path = osp.join(unet_dir, name)
        if not osp.isfile(path):
            continue
        if name.endswith('.safetensors'):
            from safetensors.torch import load_file
            try:
                state = load_file(path)
            except Exception as exc:  # safetensors raises its own error types
                raise CheckpointError(f'{path} is truncated or corrupt ({exc}); '
                                      'download it again') from None
        else:
            from ..files.checkpoint import read_checkpoint
            state = read_checkpoint(path)
        return config, OrderedDict(state.items())
    raise CheckpointError(f'{unet_dir} holds no UNet weights (expected '
                          f'{" or ".join(WEIGHT_NAMES)})')


def load_diffusers_folder(folder: str) -> Tuple[OrderedDict[str, torch.Tensor], dict]:
    """Read a diffusers UNet back into our raw format.

    Args:
        folder: a ``ConsistencyModelPipeline`` folder (or its ``unet/``).

    Returns:
        ``(state_dict, unet_cfg)``: the raw UNet state dict (released key
        order, stored dtype) and our UNet config derived from ``config.json``.
    """
    config, state = read_diffusers_unet(folder)
    unet_cfg = unet_config_from_diffusers(config)
    return diffusers_state_dict_to_unet(state, unet_cfg), unet_cfg


def read_scheduler_config(folder: str) -> Optional[dict]:
    """``scheduler/scheduler_config.json`` of a pipeline folder, if any."""
    path = osp.join(folder, 'scheduler', 'scheduler_config.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def load_diffusers_unet(folder: str, dtype: torch.dtype = torch.float32):
    """``UNet2DModel`` of a pipeline folder (or its ``unet/``), loaded strictly.

    Unlike ``UNet2DModel.from_pretrained`` this needs no ``accelerate`` to
    skip the random init: the model is built on the meta device and the
    stored tensors are assigned, cast to ``dtype``.
    """
    from diffusers import UNet2DModel

    config, state = read_diffusers_unet(folder)
    state = OrderedDict((k, v.to(dtype).contiguous()) for k, v in _undeprecate(state).items())
    with torch.device('meta'):
        model = UNet2DModel.from_config(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f'{folder}: the UNet weights do not fit its config.json '
                              f'({str(exc).splitlines()[0]})') from None
    return model.eval()


def check_inputs(unet_cfg: UnetCfg, sigmas=(80.0, 0.5), seed: int = 0
                 ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Seeded noisy images, one per noise level, for comparing two UNets.

    Returns:
        ``(x, sigma, labels)``: x (N, C, H, W) = ``sigma * noise``, sigma
        (N,), labels (N,) long or None; N = len(sigmas).
    """
    cfg = _clean_cfg(unet_cfg)
    size, channels = int(cfg.get('image_size', 64)), int(cfg.get('in_channels', 3))
    gen = torch.Generator().manual_seed(seed)
    sigma = torch.tensor([float(s) for s in sigmas])
    noise = torch.randn(len(sigma), channels, size, size, generator=gen)
    x = noise * sigma[:, None, None, None]
    labels = None
    if cfg.get('num_classes') is not None:
        labels = torch.randint(0, int(cfg['num_classes']), (len(sigma), ), generator=gen)
    return x, sigma, labels


class DiffusersNet:
    """A diffusers ``UNet2DModel`` called as our networks are: ``F(x, t, y=None)``."""

    def __init__(self, unet):
        self.unet = unet

    def __call__(self, x, t, y=None):
        return self.unet(x, t, class_labels=y).sample


@torch.no_grad()
def output_difference(our_unet, diffusers_unet, unet_cfg: UnetCfg, sigmas=(80.0, 0.5),
                      seed: int = 0, device='cpu', precond=None) -> Tuple[float, float]:
    """Both networks on the inputs D(x, σ) gives them for :func:`check_inputs`
    (``c_in(σ) x`` and the time input, from ``precond``; default the
    consistency models' scalings): ``(max |F_ours - F_theirs|, max |F_ours|)``.

    The raw network outputs are compared (not D's), so that UNets with
    ``learn_sigma`` (6 output channels) are checked too.
    """
    from ..denoiser.precond import KarrasPrecond, append_dims
    precond = precond or KarrasPrecond(boundary_condition=True)
    x, sigma, labels = check_inputs(unet_cfg, sigmas, seed)
    x, sigma = x.to(device), sigma.to(device)
    x_in = append_dims(precond.scalings(sigma)[2], x.ndim) * x
    t = precond.time_input(sigma)
    cond = {} if labels is None else {'y': labels.to(device)}
    ours = our_unet(x_in, t, **cond)
    theirs = DiffusersNet(diffusers_unet)(x_in, t, **cond)
    return (ours.float() - theirs.float()).abs().max().item(), ours.abs().max().item()
