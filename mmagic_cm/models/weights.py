"""Where a model's UNet weights come from: lazy, meta-device loading and checkpoint matching.

Also the checkpoint format (raw UNet files accepted, the objective's keys at
the top level) and which UNet samples (the ``sample_ema`` copy if held).

A model with ``model_path`` (and no training state) builds its UNet on the
meta device: no seconds spent on random init of 300M+ parameters. The
weights come from whichever arrives first: a ``load_state_dict`` /
mmengine ``load_checkpoint`` call (raw released ``.pt`` files included), or
``model_path`` itself, read on first use (sampling, or
:meth:`LazyWeightsMixin.materialize`). Device and dtype moves made before
that are replayed once the weights are in.
"""
from __future__ import annotations

from typing import Mapping, Optional, Union

import torch
from torch import nn

from ..export.runtime import is_exported_file, load_exported, runnable_device
from ..files.checkpoint import (
    UNET_MARKER_KEY,
    CheckpointError,
    describe_mismatch,
    ema_key,
    extract_unet_state_dict,
    load_unet_state_dict,
    shape_signature,
)
from ..registry import MODELS

#: how each entry point takes a local checkpoint, named in download errors
LOCAL_CHECKPOINT_HINT = ('--checkpoint PATH (tools/sample.py), --model-ckpt PATH (demo), '
                         'model_ckpt=PATH (MMagicInferencer) or model_path=PATH (config)')


def build_unet(cfg: Union[dict, nn.Module], meta: bool = False) -> nn.Module:
    """The UNet of a config dict (``type`` defaults to ADM's), on the meta device if asked."""
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    cfg.setdefault('type', 'ConsistencyUNetModel')
    if meta:
        with torch.device('meta'):
            return MODELS.build(cfg)
    return MODELS.build(cfg)


def check_unet_state_dict(unet: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                          config_root: Optional[str] = None) -> None:
    """Raise :class:`CheckpointError` unless ``state`` fits ``unet`` exactly.

    The message names the configs (under ``config_root``, default the
    repository's ``configs/``) that the file does fit. Weights with NaN or
    infinite values are refused too (:func:`check_finite`).
    """
    expected = shape_signature(unet.state_dict().items())
    found = shape_signature(state.items())
    if expected == found:
        check_finite(state, source)
        return
    from ..files.zoo import configs_fitting
    fits = configs_fitting(found, config_root)
    fit_text = (f'It fits {", ".join(fits)}.' if fits else
                'It fits none of the configs under configs/.')
    raise CheckpointError(f'{source} does not fit this model\'s UNet: '
                          f'{describe_mismatch(expected, found)}. {fit_text}')


def check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` naming the first tensor with NaN or
    infinite values (such weights sample black images without an error)."""
    for key, value in state.items():
        if torch.is_tensor(value) and value.is_floating_point() \
                and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f'{source}: tensor {key} holds NaN or infinite values (a damaged file, or '
                'a training run that diverged); use another checkpoint')


def load_unet_from(unet: nn.Module, path_or_url: str, local_hint: str = LOCAL_CHECKPOINT_HINT,
                   ema: Optional[float] = None) -> None:
    """Read a raw or project checkpoint into ``unet`` (meta or real), strictly, as float32.

    Raises:
        CheckpointError: unreadable file, failed download or another
        architecture; ``unet`` is left as it was.
    """
    state = load_unet_state_dict(path_or_url, local_hint, ema=ema)
    check_unet_state_dict(unet, state, str(path_or_url))
    # the shipped digits weights are half precision: sample in float32
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    meta = any(p.is_meta for p in unet.parameters())
    unet.load_state_dict(state, strict=True, assign=meta)


class LazyWeightsMixin:
    """Lazy weights for an ``nn.Module`` holding ``unet`` and ``model_path``.

    The host sets ``self.unet``, ``self.model_path``, ``self.sample_ema``,
    ``self._model_path_unread`` (True while ``model_path`` is still to be
    read into a UNet that has real but placeholder weights, as a model
    built for training has) and ``self.training_state`` (None, or the
    :class:`~mmagic_cm.training.state.TrainingState` that keeps the target
    and EMA copies), and calls :meth:`setup_lazy_weights`.
    """

    def setup_lazy_weights(self) -> None:
        """Start with no weights read; register the load and save hooks that
        take raw UNet files and keep the checkpoint keys of earlier releases."""
        self._deferred_apply = []
        self.exported = None  # the ExportedDenoiser of an exported model_path, once read
        # where an exported model_path runs: model.to(device) sets the device,
        # exported_provider the ONNX Runtime provider on a GPU
        self.exported_device = torch.device('cpu')
        self._exported_provider = None
        self.register_load_state_dict_pre_hook(_accept_unet_checkpoints)
        self.register_load_state_dict_post_hook(_weights_arrived)
        self.register_load_state_dict_pre_hook(objective_keys_in)
        self._register_state_dict_hook(plain_state_keys)

    @property
    def device(self) -> torch.device:
        """Where the model samples: the UNet's device (for an exported
        ``model_path``: where ONNX Runtime / OpenVINO run D)."""
        if is_exported_file(self.model_path):
            return self.exported_device
        return next(self.unet.parameters()).device

    def sampling_unet(self) -> nn.Module:
        """The UNet that samples: the ``sample_ema`` copy when the model holds it."""
        emas = getattr(self, 'ema_unets', {})
        if self.sample_ema is not None and ema_key(self.sample_ema) in emas:
            return emas[ema_key(self.sample_ema)].module
        return self.unet

    @property
    def weights_pending(self) -> bool:
        """True until the UNet has the weights it samples with (for an exported
        ``model_path``: until the file is loaded; the UNet stays on the meta device)."""
        if is_exported_file(self.model_path):
            return self.exported is None
        return self._model_path_unread or any(p.is_meta for p in self.unet.parameters())

    def materialize(self) -> None:
        """Give the UNet its weights now: ``model_path``, else random init."""
        if not self.weights_pending:
            return
        if is_exported_file(self.model_path):  # ONNX/OpenVINO: no UNet weights
            self.exported_device = runnable_device(self.model_path, self.exported_device,
                                                   self.exported_provider)
            self.exported = load_exported(self.model_path, self, device=self.exported_device,
                                          provider=self.exported_provider)
            return
        if self.model_path:
            self.load_unet_weights(self.model_path)
        else:
            self.unet.init_weights()
        self._apply_deferred()

    def load_unet_weights(self, path_or_url: str, local_hint: str = LOCAL_CHECKPOINT_HINT
                          ) -> None:
        """Load a raw or project checkpoint into the UNet (and any training
        copies, which a bare UNet file sets too), strictly.

        Raises:
            CheckpointError: unreadable file, failed download or another
            architecture; the model is left as it was.
        """
        load_unet_from(self.unet, path_or_url, local_hint, ema=self.sample_ema)
        self.copy_unet_to_training_copies()
        self._model_path_unread = False

    def copy_unet_to_training_copies(self) -> None:
        """The training copies (target, EMAs), if any, take the UNet's weights."""
        if getattr(self, 'training_state', None) is not None:
            self.training_state.online_changed(self)

    def ensure_training_copies(self) -> None:
        """Create the target and EMA copies of a model that trains, if not yet
        there (training starts, or a training checkpoint arrives)."""
        if getattr(self, 'training_state', None) is not None:
            self.training_state.make_copies(self)

    @property
    def exported_provider(self) -> Optional[str]:
        """ONNX Runtime provider for an exported ``model_path`` on a GPU: None
        (CUDA's if onnxruntime has it, else the CPU with a warning), 'cuda'
        or 'tensorrt' (insist). Setting it reads the file again on next use."""
        return self._exported_provider

    @exported_provider.setter
    def exported_provider(self, provider: Optional[str]) -> None:
        self._exported_provider = provider
        self.exported = None

    def _set_device(self, device: torch.device) -> None:
        # mmengine's BaseModel calls this from .to()/.cuda()/.cpu(): an exported
        # model_path follows the model there (read again on its next use)
        super()._set_device(device)
        if device is not None and torch.device(device) != getattr(self, 'exported_device', None):
            self.exported_device = torch.device(device)
            self.exported = None

    def _apply(self, fn, recurse=True):
        # .to()/.cuda()/.half() while the UNet is on the meta device: remember
        # it for the UNet (applied once its weights arrive), so that building
        # an inferencer or moving a model reads no checkpoint yet
        if any(p.is_meta for p in self.unet.parameters()):
            self._deferred_apply.append(fn)
            for child in self.children():
                if child is not self.unet:
                    child._apply(fn, recurse)
            return self
        return super()._apply(fn, recurse)

    def _apply_deferred(self) -> None:
        while self._deferred_apply:
            self.unet._apply(self._deferred_apply.pop(0))


def _weights_arrived(module, incompatible_keys) -> None:
    # only a load that held the UNet's weights replaces model_path's
    if getattr(module, '_unet_in_load', False):
        module._unet_in_load = False
        module._model_path_unread = False
    module._apply_deferred()


def _accept_unet_checkpoints(module, state_dict, prefix, *args) -> None:
    """Load-state-dict pre-hook: take raw UNet files and check them strictly.

    Runs for ``model.load_state_dict`` and mmengine's ``load_checkpoint``.
    Renames a bare UNet state dict's keys under ``unet.``; a bare UNet also
    gives a training model's target and EMA copies their weights. For a
    training checkpoint loaded into a model without training copies, keeps
    the UNet (the ``sample_ema`` copy if set) and drops target/EMA entries.
    Refuses another architecture with a plain error (even with
    ``strict=False``) and gives a meta-device UNet real storage to load into.
    """
    unet_prefix = prefix + 'unet.'
    if prefix + UNET_MARKER_KEY in state_dict and unet_prefix + UNET_MARKER_KEY \
            not in state_dict:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            state_dict[unet_prefix + key[len(prefix):]] = state_dict.pop(key)
    if any(k_top(k, prefix) in ('target_unet', 'ema_unets') for k in state_dict
           if k.startswith(prefix)):
        module.ensure_training_copies()  # a training checkpoint: make room for its copies
    own = own_keys(module)
    has_emas = any(k.startswith('ema_unets.') for k in own)
    if not has_emas and any(k.startswith(prefix + 'ema_unets.') for k in state_dict):
        local = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        chosen = extract_unet_state_dict(local, ema=module.sample_ema)
        for key in [k for k in state_dict if k.startswith(prefix) and
                    k[len(prefix):].split('.', 1)[0] in ('unet', 'ema_unets', 'target_unet')]:
            del state_dict[key]
        state_dict.update({unet_prefix + k: v for k, v in chosen.items()})
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if k_top(key, prefix) in ('target_unet', 'train_step_count') and \
                key[len(prefix):] not in own:
            del state_dict[key]  # training state this model does not keep
    if unet_prefix + UNET_MARKER_KEY not in state_dict:
        return  # no UNet here (e.g. a partial load): leave it to torch/mmengine
    unet_state = extract_unet_state_dict(
        {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(unet_prefix)})
    check_unet_state_dict(module.unet, unet_state, 'the checkpoint')
    module._unet_in_load = True
    bare = not any(k.startswith(prefix + 'ema_unets.') or k.startswith(prefix + 'target_unet.')
                   for k in state_dict)
    if bare:  # a bare UNet file: the training copies start from it too
        for key in own:
            for copy_prefix in _copy_prefixes(key):
                name = key[len(copy_prefix):]
                if name in unet_state:
                    state_dict[prefix + key] = unet_state[name]
        # counters a bare file does not have keep their values (no missing keys)
        buffers = dict(module.named_buffers())
        for key in own:
            if prefix + key not in state_dict and key in buffers and (
                    key == 'train_step_count' or key.endswith('.steps')):
                state_dict[prefix + key] = buffers[key].detach().clone()
    if any(p.is_meta for p in module.unet.parameters()):
        module.unet.to_empty(device='cpu')


def own_keys(module) -> set:
    """The model's state-dict keys as checkpoints name them (objective's at the
    top level), without materialising a state dict."""
    named = [*module.named_parameters(remove_duplicate=False),
             *module.named_buffers(remove_duplicate=False)]
    inner = 'objective.'
    return {k[len(inner):] if k.startswith(inner) else k for k, _ in named}


def k_top(key: str, prefix: str) -> str:
    return key[len(prefix):].split('.', 1)[0]


def _copy_prefixes(key: str):
    """The copy prefix of a training-copy key ('target_unet.', 'ema_unets.X.module.')."""
    if key.startswith('target_unet.'):
        yield 'target_unet.'
    elif key.startswith('ema_unets.') and '.module.' in key:
        yield key.split('.module.', 1)[0] + '.module.'


#: the name FSDP gives the module it wraps (``torch.distributed.fsdp``'s FSDP_PREFIX)
FSDP_WRAPPED = '_fsdp_wrapped_module.'


def plain_state_keys(module, state_dict, prefix, local_metadata=None) -> None:
    """State-dict hook: checkpoints keep their format: the objective's state
    (``target_unet.*``, ``loss_metric.*``, ``weight_net.*``) at the top level,
    and contiguous tensors (channels_last sampling converts the float32 UNet
    in place).

    Inside an FSDP wrapper (``prefix`` names FSDP's wrapped module) the keys
    stay as they are: FSDP's own state-dict hook, which runs after this one,
    looks its parameters up by their module names (``objective.target_unet.*``);
    the FSDP strategy (:mod:`mmagic_cm.training.fsdp`) renames them once FSDP
    has gathered them."""
    if FSDP_WRAPPED in prefix:
        return
    inner = prefix + 'objective.'
    for key in list(state_dict):
        value = state_dict.pop(key)
        if torch.is_tensor(value) and not value.is_contiguous():
            value = value.contiguous()
        state_dict[prefix + key[len(inner):] if key.startswith(inner) else key] = value


def objective_keys_in(module, state_dict, prefix, *args) -> None:
    """Load-state-dict pre-hook: top-level objective keys back under ``objective.``."""
    if not module.trainable:
        return
    children = {name for name, _ in module.objective.named_children()}
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if key[len(prefix):].split('.', 1)[0] in children:
            state_dict[prefix + 'objective.' + key[len(prefix):]] = state_dict.pop(key)
