"""``ConsistencyModel``: the mmengine model tying UNet, denoiser and sampler.

Weights: with ``model_path`` set, the UNet is built on the meta device (no
seconds spent on random init of 300M+ parameters) and its weights come from
whichever arrives first: a ``load_state_dict``/mmengine ``load_checkpoint``
call (raw released ``.pt`` files included), or ``model_path`` itself, read on
first use (sampling, or :meth:`ConsistencyModel.materialize`). Device and
dtype moves made before that are replayed once the weights are in. Without
``model_path`` the UNet is randomly initialised as usual.
"""
from __future__ import annotations

import contextlib
from copy import deepcopy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import nn

from ..checkpoint import (
    UNET_MARKER_KEY,
    check_unet_state_dict,
    extract_unet_state_dict,
    load_unet_state_dict,
)
from ..labels import LabelSpec, expand_labels, parse_labels
from ..registry import MODELS
from ..training.trainable import TrainableMixin, ema_key
from .fast import InferenceUNets
from .noise import GENERATORS, get_generator
from .samplers import SAMPLERS, check_ts, karras_sample

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
#: how each entry point takes a local checkpoint, named in download errors
LOCAL_CHECKPOINT_HINT = ('--checkpoint PATH (tools/sample.py), --model-ckpt PATH (demo), '
                         'model_ckpt=PATH (MMagicInferencer) or model_path=PATH (config)')


def build_unet(cfg: Union[dict, nn.Module]) -> nn.Module:
    """Build the UNet from a config dict (``type`` defaults to ADM's)."""
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    cfg.setdefault('type', 'ConsistencyUNetModel')
    return MODELS.build(cfg)


def resolve_dtype(dtype: Union[str, torch.dtype, None], device) -> torch.dtype:
    """Check that ``device`` can run ``dtype`` ('fp32', 'bf16', 'fp16')."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        name = {v: k for k, v in DTYPES.items()}.get(dtype)
    else:
        name = str(dtype).lower()
    if name not in DTYPES:
        raise ValueError(f'unknown dtype {dtype!r}; choose one of {", ".join(DTYPES)}')
    device = torch.device(device)
    if name == 'fp16' and device.type == 'cpu':
        raise ValueError('dtype fp16 needs a CUDA device; on the CPU use bf16 (or fp32)')
    if name == 'bf16' and device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        raise ValueError(f'{torch.cuda.get_device_name(device)} cannot run bf16; use fp16')
    return DTYPES[name]


def to_uint8_nhwc(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] NCHW floats -> uint8 NHWC, truncating as the original does."""
    return ((images + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3,
                                                                        1).contiguous()


@MODELS.register_module()
class ConsistencyModel(TrainableMixin, BaseModel):
    """A consistency model (or its EDM teacher) ready to sample.

    Args:
        unet: UNet config (``ConsistencyUNetModel``) or module.
        denoiser: ``KarrasDenoiser`` config or object (sigma range, rho).
        model_path: released ``.pt``/project checkpoint, path or URL; read
            lazily (see module docstring). ``''``/None: random init.
        training_mode: 'edm' for teachers (plain EDM scalings), anything with
            'consistency' for CD/CT models (boundary-condition scalings).
        sampler: 'onestep', 'multistep', 'heun', 'euler', 'ancestral', 'dpm'
            or 'progdist'.
        steps: schedule length; for multistep the grid that ``ts`` indexes.
        ts: multistep grid indices ("0,22,39" or a sequence).
        generator: 'dummy', 'determ' or 'determ-indiv'.
        seed: seed of the generator (and of random labels).
        batch_size: default batch size for :meth:`sample`.
        clip_denoised: clamp every denoiser output to [-1, 1].
        s_churn, s_tmin, s_tmax, s_noise: churn of heun/dpm.
        dtype: 'fp32', 'bf16' (CPU/CUDA) or 'fp16' (CUDA): bf16/fp16 cast the
            UNet trunk's convolutions once into an inference copy, as the
            original's ``use_fp16`` (norms and embeddings stay float32).
        channels_last: run the UNet in NHWC memory format (faster on CPUs
            and tensor cores). None (default) or True: on; fp32 images then
            differ from the plain NCHW path by float rounding only (~1e-7);
            False: the plain NCHW path, the original's layout. In fp32 the
            sampling UNet itself is converted (no second copy of its
            weights); ``state_dict()`` still gives contiguous tensors.
        compile: ``torch.compile`` the sampling UNet (first batch compiles;
            on the CPU a C++ compiler is needed, else a clear error); True or
            a mode, e.g. 'reduce-overhead' (CUDA graphs, for one-step on GPUs).
        sample_ema: for checkpoints saved by training, the EMA rate whose
            weights to sample with (e.g. 0.9999); None: the online weights.
        train_cfg: training settings (see :mod:`mmagic_cm.training.trainable`);
            None for a sampling-only model.
        data_preprocessor: MMagic ``DataPreprocessor`` config (images in
            [0, 255] <-> [-1, 1]).
    """

    def __init__(self,
                 unet: Union[dict, nn.Module],
                 denoiser: Optional[Union[dict, object]] = None,
                 model_path: Optional[str] = None,
                 training_mode: str = 'consistency_distillation',
                 sampler: str = 'onestep',
                 steps: int = 40,
                 ts: Optional[Union[str, Sequence[int]]] = None,
                 generator: str = 'determ',
                 seed: int = 42,
                 batch_size: int = 4,
                 clip_denoised: bool = True,
                 s_churn: float = 0.0,
                 s_tmin: float = 0.0,
                 s_tmax: float = float('inf'),
                 s_noise: float = 1.0,
                 dtype: str = 'fp32',
                 channels_last: Optional[bool] = None,
                 compile: Union[bool, str] = False,
                 sample_ema: Optional[float] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='DataPreprocessor', mean=[127.5] * 3,
                                     std=[127.5] * 3)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.training_mode = training_mode
        self.sample_settings = self.check_settings(dict(
            sampler=sampler, steps=steps, ts=ts, generator=generator, seed=seed,
            batch_size=batch_size, clip_denoised=clip_denoised, s_churn=s_churn,
            s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise, dtype=dtype,
            channels_last=channels_last, compile=compile))

        if denoiser is None or isinstance(denoiser, dict):
            denoiser = dict(denoiser or {})
            denoiser.setdefault('type', 'KarrasDenoiser')
            denoiser['distillation'] = 'consistency' in training_mode
            denoiser = MODELS.build(denoiser)
        self.denoiser = denoiser

        self.model_path = model_path or None
        self.sample_ema = sample_ema
        if self.model_path and isinstance(unet, dict):
            with torch.device('meta'):
                self.unet = build_unet(unet)
        else:
            self.unet = build_unet(unet)
        self._deferred_apply = []
        self._inference_unets = InferenceUNets()  # not a module: no state, no .to()
        self.setup_training(train_cfg, unet)
        self.register_load_state_dict_pre_hook(_accept_unet_checkpoints)
        self._register_state_dict_hook(_contiguous_state)
        self.register_load_state_dict_post_hook(
            lambda module, incompatible_keys: module._apply_deferred())

    # ------------------------------------------------------------------ settings
    @staticmethod
    def check_settings(settings: Dict) -> Dict:
        """Validate sampling settings; returns them with ``ts`` parsed."""
        s = dict(settings)
        if s['sampler'] not in SAMPLERS:
            raise ValueError(f'unknown sampler {s["sampler"]!r}; choose one of '
                             f'{", ".join(SAMPLERS)}')
        if s['generator'] not in GENERATORS:
            raise ValueError(f'unknown generator {s["generator"]!r}; choose one of '
                             f'{", ".join(GENERATORS)}')
        if s['sampler'] == 'multistep':
            s['ts'] = check_ts(s['ts'], s['steps'])
        elif int(s['steps']) < 1:
            raise ValueError(f'steps must be >= 1, got {s["steps"]}')
        if int(s['batch_size']) < 1:
            raise ValueError(f'batch size must be >= 1, got {s["batch_size"]}')
        if str(s['dtype']).lower() not in DTYPES:
            raise ValueError(f'unknown dtype {s["dtype"]!r}; choose one of '
                             f'{", ".join(DTYPES)}')
        if s.get('channels_last') is not None:
            s['channels_last'] = _as_bool(s['channels_last'], 'channels_last')
        if 'compile' in s:
            s['compile'] = _as_compile(s['compile'])
        return s

    @property
    def num_classes(self) -> Optional[int]:
        return getattr(self.unet, 'num_classes', None)

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return (self.unet.in_channels, self.unet.image_size, self.unet.image_size)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    # ------------------------------------------------------------------- weights
    @property
    def weights_pending(self) -> bool:
        return any(p.is_meta for p in self.unet.parameters())

    def materialize(self) -> None:
        """Give a meta-device UNet its weights: ``model_path``, else random."""
        if not self.weights_pending:
            return
        if self.model_path:
            self.load_unet_weights(self.model_path)
        else:
            self.unet.init_weights()
        self._apply_deferred()

    def load_unet_weights(self, path_or_url: str, local_hint: str = LOCAL_CHECKPOINT_HINT
                          ) -> None:
        """Load a raw or project checkpoint into the UNet, strictly.

        Raises:
            CheckpointError: unreadable file, failed download or another
            architecture; the model is left as it was.
        """
        state = load_unet_state_dict(path_or_url, local_hint, ema=self.sample_ema)
        check_unet_state_dict(self.unet, state, str(path_or_url))
        if self.weights_pending:
            # assign would keep the file's dtype (the shipped digits weights
            # are half precision): sample in float32
            state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
            self.unet.load_state_dict(state, strict=True, assign=True)
        else:
            self.unet.load_state_dict(state, strict=True)

    def _apply(self, fn, recurse=True):
        # .to()/.cuda()/.half() while the weights are pending: remember it for
        # the UNet (applied once its weights arrive), so that building an
        # inferencer or moving a model reads no checkpoint yet
        if self.weights_pending:
            self._deferred_apply.append(fn)
            for child in self.children():
                if child is not self.unet:
                    child._apply(fn, recurse)
            return self
        return super()._apply(fn, recurse)

    def _apply_deferred(self) -> None:
        while self._deferred_apply:
            self.unet._apply(self._deferred_apply.pop(0))

    def init_weights(self) -> None:
        """Random init (training from scratch), or ``model_path`` if set; then
        the training copies (target, EMAs; CD: online <- teacher)."""
        if self.weights_pending and self.model_path:
            self.materialize()
        elif not self.model_path:
            super().init_weights()  # runs the UNet's own init_weights
        self.init_training_weights()

    # ------------------------------------------------------------------ sampling
    def denoise_fn(self, model_kwargs: Optional[Dict] = None, clip_denoised: bool = True,
                   dtype: torch.dtype = torch.float32, channels_last: Optional[bool] = None,
                   compile: Union[bool, str, None] = None):
        """``D(x, sigma)`` for the samplers: preconditioned UNet, optional clamp.

        bf16/fp16 run the UNet's trunk in that dtype (see
        :mod:`mmagic_cm.models.fast`); images stay float32. ``channels_last``
        and ``compile`` default to the configured settings (``channels_last``
        None: on).
        """
        model_kwargs = model_kwargs or {}
        device_type = self.device.type
        if channels_last is None:
            channels_last = self.sample_settings.get('channels_last')
        if channels_last is None:
            channels_last = True  # measured faster on the CPU in every dtype (README, Speed)
        if compile is None:
            compile = self.sample_settings.get('compile', False)

        unet, autocast = self.inference_unet(dtype, channels_last, compile)

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            ctx = (contextlib.nullcontext() if autocast is None else
                   torch.autocast(device_type, dtype=autocast))
            with ctx:
                _, denoised = self.denoiser.denoise(unet, x, sigma, **model_kwargs)
            denoised = denoised.float()
            return denoised.clamp(-1, 1) if clip_denoised else denoised

        return denoise

    def inference_unet(self, dtype: torch.dtype = torch.float32, channels_last: bool = False,
                       compile: Union[bool, str] = False
                       ) -> Tuple[nn.Module, Optional[torch.dtype]]:
        """The sampling UNet prepared for ``dtype``/``channels_last``/``compile``.

        Returns ``(unet, autocast_dtype)``: run ``unet`` under autocast in
        ``autocast_dtype`` unless it is None. Copies are cached and rebuilt
        when the weights change.
        """
        return self._inference_unets.get(self.sampling_unet(), dtype, channels_last, compile)

    def sampling_unet(self) -> nn.Module:
        """The UNet that samples: the ``sample_ema`` copy when the model holds it."""
        emas = getattr(self, 'ema_unets', None)
        if self.sample_ema is not None and emas is not None and ema_key(self.sample_ema) in emas:
            return emas[ema_key(self.sample_ema)].module
        return self.unet

    def settings(self, **overrides) -> Dict:
        """The configured sampling settings with ``overrides`` applied, checked."""
        unknown = set(overrides) - set(self.sample_settings)
        if unknown:
            raise ValueError(f'unknown sampling setting(s) {sorted(unknown)}; known: '
                             f'{sorted(self.sample_settings)}')
        merged = dict(self.sample_settings)
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return self.check_settings(merged)

    @torch.no_grad()
    def sample_batch(self, batch_size: int, generator, labels: Optional[torch.Tensor] = None,
                     noise: Optional[torch.Tensor] = None, progress: bool = False,
                     **overrides) -> torch.Tensor:
        """One batch of images.

        Args:
            batch_size: N.
            generator: a noise generator positioned at this batch.
            labels: (N,) long class labels, iff class-conditional.
            noise: (N, C, H, W) standard-normal starting noise; default: the
                generator's first draw.
            **overrides: sampling settings (sampler, steps, ts, s_churn, ...).

        Returns:
            (N, C, H, W) float32 in [-1, 1].
        """
        s = self.settings(**overrides)
        self.materialize()
        dtype = resolve_dtype(s['dtype'], self.device)
        if (labels is None) != (self.num_classes is None):
            raise ValueError('labels are needed for a class-conditional model and '
                             'not allowed for an unconditional one')
        kwargs = {} if labels is None else {'y': labels.to(self.device)}
        with self.unet_in_eval_mode():
            return karras_sample(
                self.denoise_fn(kwargs, s['clip_denoised'], dtype, s['channels_last'],
                                s['compile']),
                (batch_size, *self.image_shape), generator, sampler=s['sampler'],
                steps=s['steps'], sigma_min=self.denoiser.sigma_min,
                sigma_max=self.denoiser.sigma_max, rho=self.denoiser.rho, ts=s['ts'],
                s_churn=s['s_churn'], s_tmin=s['s_tmin'], s_tmax=s['s_tmax'],
                s_noise=s['s_noise'], device=self.device, noise=noise, progress=progress)

    @contextlib.contextmanager
    def unet_in_eval_mode(self):
        """Sample with the UNet in eval mode (no dropout), then restore its mode."""
        was_training = self.unet.training
        self.unet.eval()
        try:
            yield
        finally:
            self.unet.train(was_training)

    def sample_labels(self, labels: LabelSpec, num_samples: int, seed: int
                      ) -> Optional[List[int]]:
        """Labels for ``num_samples`` samples: given ones, or seeded random ones.

        The original draws random labels from the unseeded global RNG; here
        they come from ``seed`` so that runs repeat.
        """
        parsed = parse_labels(labels, self.num_classes)
        if parsed is None and self.num_classes is not None:
            gen = torch.Generator().manual_seed(seed)
            return torch.randint(0, self.num_classes, (num_samples, ), generator=gen).tolist()
        return expand_labels(parsed, num_samples)

    @torch.no_grad()
    def sample(self, num_samples: int, labels: LabelSpec = None,
               batch_size: Optional[int] = None, progress: bool = False,
               rank: int = 0, world_size: int = 1, start: int = 0,
               stop: Optional[int] = None, **overrides
               ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Draw ``num_samples`` images in batches, like ``image_sample.py``.

        The generator is positioned at every batch (``set_done_samples``), so
        with 'determ' and 'determ-indiv' each sample's noise does not depend
        on the batch size (unlike the original script, which re-uses the
        first rows in every batch).

        ``start``/``stop`` draw only the samples ``[start, stop)`` of the
        ``num_samples`` (a shard): batches begin at ``start``, so where it is
        a multiple of the batch size they are the very batches of the full
        run and the images equal its rows bit for bit ('determ' and
        'determ-indiv'; 'dummy' continues the global RNG).

        Returns:
            ``(images, labels)``: uint8 (N, H, W, C) and int64 (N,) or None,
            N = ``stop - start``.
        """
        if num_samples < 1:
            raise ValueError(f'num_samples must be >= 1, got {num_samples}')
        stop = num_samples if stop is None else stop
        if not 0 <= start < stop <= num_samples:
            raise ValueError(f'samples [{start}, {stop}) are not a non-empty part of '
                             f'[0, {num_samples})')
        s = self.settings(batch_size=batch_size, **overrides)
        label_list = self.sample_labels(labels, num_samples, s['seed'])
        gen = get_generator(s['generator'], num_samples, s['seed'], rank=rank,
                            world_size=world_size)
        bs = int(s['batch_size'])
        images = []
        batches = range(start, stop, bs)
        if progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc='sampling', unit='batch')
        for first in batches:
            gen.set_done_samples(first)
            y = None
            if label_list is not None:
                chunk = label_list[first:first + bs]  # the full run's batch, past stop too
                chunk = chunk + [chunk[-1]] * (bs - len(chunk))  # pad the last batch
                y = torch.tensor(chunk, dtype=torch.long)
            x = self.sample_batch(bs, gen, y, **{k: s[k] for k in overrides if k in s})
            images.append(to_uint8_nhwc(x).cpu().numpy())
        arr = np.concatenate(images)[:stop - start]
        label_arr = (None if label_list is None
                     else np.asarray(label_list[start:stop], dtype=np.int64))
        return arr, label_arr

    # ------------------------------------------------------------------- mmengine
    def forward(self, inputs: Optional[Dict] = None, data_samples=None,
                mode: Optional[str] = None):
        """Generate images for MMagic's inferencers and evaluators.

        Randomness follows MMagic's generative models: the global torch RNG
        (seeded by the inferencer or the runner), so that every call draws
        new images. :meth:`sample` and ``tools/sample.py`` are the paths with
        the original code's seeded generators.

        Args:
            inputs: dict with ``num_batches`` (images to draw; default the
                configured batch size), ``labels`` (see :meth:`sample`;
                default: the data samples' ``gt_label``, else uniform random),
                ``noise`` ((N, C, H, W) standard normal; default random),
                ``sample_kwargs`` (sampling-setting overrides).
            data_samples: optional DataSamples (MMagic's conditional metrics
                put the real data's labels there).
            mode: 'tensor' returns the (N, C, H, W) [-1, 1] batch; anything
                else a list of ``DataSample`` with ``fake_img`` (C, H, W)
                float in [0, 255], BGR as MMagic's generative models give it,
                the starting ``noise`` and ``gt_label`` for class-conditional
                models.
        """
        from mmagic.structures import DataSample
        if mode == 'loss':
            labels = None
            if self.num_classes is not None:
                labels = _labels_of(data_samples).to(inputs.device)
            return self.training_loss(inputs, labels)
        inputs = dict(inputs or {})
        sample_kwargs = dict(inputs.get('sample_kwargs') or {})
        noise = inputs.get('noise')
        num = len(noise) if noise is not None else int(
            inputs.get('num_batches') or self.sample_settings['batch_size'])
        self.settings(**sample_kwargs)  # bad overrides and labels fail before
        y = self._forward_labels(inputs.get('labels'), data_samples, num)  # any loading
        self.materialize()
        if noise is None:
            noise = torch.randn(num, *self.image_shape, device=self.device)
        images = self.sample_batch(num, get_generator('dummy'), y, noise=noise,
                                   **sample_kwargs)
        if mode == 'tensor':
            return images
        fake = ((images + 1) * 127.5).clamp(0, 255)[:, [2, 1, 0]]
        outputs = []
        for i in range(num):
            ds = DataSample(fake_img=fake[i], noise=noise[i].cpu(),
                            sample_kwargs=deepcopy(sample_kwargs), sample_model='orig')
            if y is not None:
                ds.set_gt_label(y[i:i + 1])
            outputs.append(ds)
        return outputs

    def _forward_labels(self, labels: LabelSpec, data_samples, num: int
                        ) -> Optional[torch.Tensor]:
        if labels is None and data_samples and self.num_classes is not None:
            labels = _labels_of(data_samples)
        parsed = parse_labels(labels, self.num_classes)
        if parsed is None:
            if self.num_classes is None:
                return None
            return torch.randint(0, self.num_classes, (num, ))
        return torch.tensor(expand_labels(parsed, num), dtype=torch.long)


def _as_bool(value, name: str) -> bool:
    if isinstance(value, str) and value.lower() in ('1', 'true', 'on', 'yes', '0', 'false',
                                                    'off', 'no'):
        return value.lower() in ('1', 'true', 'on', 'yes')
    if isinstance(value, (bool, int)) and value in (0, 1):
        return bool(value)
    raise ValueError(f'{name} must be true or false, got {value!r}')


#: torch.compile modes; 'reduce-overhead' replays CUDA graphs on GPUs
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


def _as_compile(value) -> Union[bool, str]:
    if isinstance(value, str) and value in COMPILE_MODES:
        return value
    try:
        return _as_bool(value, 'compile')
    except ValueError:
        raise ValueError(f'compile must be true, false or a torch.compile mode '
                         f'({", ".join(COMPILE_MODES)}), got {value!r}') from None


def _labels_of(data_samples) -> Optional[torch.Tensor]:
    """(N,) long labels from DataSamples: a list, or MMagic's stacked batch."""
    items = data_samples if isinstance(data_samples, (list, tuple)) else [data_samples]
    found = [getattr(ds, 'gt_label', None) for ds in items]
    if any(f is None for f in found):
        return None
    return torch.cat([f.label.reshape(-1) for f in found]).long()


def _contiguous_state(module, state_dict, prefix, local_metadata) -> None:
    # channels_last sampling converts the float32 UNet in place (no second
    # copy of its weights); checkpoints stay in the plain layout
    for key, value in state_dict.items():
        if torch.is_tensor(value) and not value.is_contiguous():
            state_dict[key] = value.contiguous()


def _accept_unet_checkpoints(module: ConsistencyModel, state_dict, prefix, *args) -> None:
    """Load-state-dict pre-hook: take raw UNet files and check them strictly.

    Runs for ``model.load_state_dict`` and mmengine's ``load_checkpoint``
    (which calls ``_load_from_state_dict`` per module): renames a bare UNet
    state dict's keys under ``unet.``; for a training checkpoint loaded into
    a model without training copies, keeps the UNet (the ``sample_ema`` copy
    if set) and drops target/EMA entries; refuses another architecture with a
    plain error (even when the caller asked for ``strict=False``); and gives a
    meta-device UNet real storage to load into.
    """
    unet_prefix = prefix + 'unet.'
    if prefix + UNET_MARKER_KEY in state_dict and unet_prefix + UNET_MARKER_KEY \
            not in state_dict:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            state_dict[unet_prefix + key[len(prefix):]] = state_dict.pop(key)
    has_copies = hasattr(module, 'ema_unets') and len(module.ema_unets) > 0
    if not has_copies and any(k.startswith(prefix + 'ema_unets.') for k in state_dict):
        local = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        chosen = extract_unet_state_dict(local, ema=module.sample_ema)
        for key in [k for k in state_dict if k.startswith(prefix) and
                    k[len(prefix):].split('.', 1)[0] in ('unet', 'ema_unets', 'target_unet')]:
            del state_dict[key]
        state_dict.update({unet_prefix + k: v for k, v in chosen.items()})
    if not module.trainable:  # a sampling model: training state has no place here
        for key in [k for k in state_dict if k.startswith(prefix + 'target_unet.')
                    or k == prefix + 'train_step_count']:
            del state_dict[key]
    elif not hasattr(module, 'target_unet'):
        for key in [k for k in state_dict if k.startswith(prefix + 'target_unet.')]:
            del state_dict[key]
    if unet_prefix + UNET_MARKER_KEY not in state_dict:
        return  # no UNet here (e.g. a partial load): leave it to torch/mmengine
    unet_state = extract_unet_state_dict(
        {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(unet_prefix)})
    check_unet_state_dict(module.unet, unet_state, 'the checkpoint')
    if module.weights_pending:
        module.unet.to_empty(device='cpu')
