"""``ConsistencyModel``: the mmengine model, read top to bottom as a pipeline.

    noise --(generator, sampling/noise.py)--> x_T = σ_max · z
          --(sampler, sampling/samplers.py, over the levels of
             denoiser/sigmas.py)--> calls D(x, σ)
          --(Denoiser, denoiser/precond.py: the UNet, denoiser/unet.py,
             inside EDM's scalings)--> x_0
          --(to_uint8, files/images.py)--> uint8 images

The pieces around it, each in its own module: sampling settings
(:mod:`mmagic_cm.sampling.settings`), lazy weights and checkpoint matching
(:mod:`.weights`), the fast inference paths (:mod:`mmagic_cm.denoiser.fast`),
the batching loop (:mod:`mmagic_cm.sampling.batching`). Training objectives
are registered modules built from ``train_cfg`` by name
(:mod:`mmagic_cm.training.objectives`); this module never imports them.
"""
from __future__ import annotations

import contextlib
from copy import deepcopy
from functools import partial
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.model import BaseModel, ExponentialMovingAverage
from torch import nn

from ..denoiser.fast import AutocastNet, InferenceUNets
from ..denoiser.precond import (
    Denoiser,
    KarrasPrecond,
    build_precond,
    refuse_renamed,
    uses_boundary_condition,
)
from ..export.runtime import ExportedDenoiser, is_exported_file
from ..files.checkpoint import ema_key
from ..files.images import to_uint8
from ..registry import MODELS
from ..sampling.batching import pad_rows, run_batches
from ..sampling.labels import LabelSpec, expand_labels, labels_of_data_samples, parse_labels
from ..sampling.noise import get_generator
from ..sampling.samplers import karras_sample
from ..sampling.settings import DTYPES, SamplingSettings, resolve_dtype  # noqa: F401  (re-exported)
from .preprocessor import DeferredPreprocessor
from .weights import (  # noqa: F401  (LOCAL_CHECKPOINT_HINT re-exported)
    LOCAL_CHECKPOINT_HINT,
    LazyWeightsMixin,
    build_unet,
    objective_keys_in,
    plain_state_keys,
)

#: training_mode -> registered objective (``train_cfg.type`` picks one directly)
OBJECTIVES = {'edm': 'EDMObjective', 'consistency_distillation': 'ConsistencyDistillation',
              'consistency_training': 'ConsistencyTraining', 'ect': 'EasyConsistencyTuning',
              'sct': 'ContinuousConsistencyTraining',
              'scd': 'ContinuousConsistencyDistillation'}

#: train_cfg keys the model keeps; the rest configure the objective
MODEL_TRAIN_KEYS = ('ema_rates', 'seed', 'init_from')


@MODELS.register_module()
class ConsistencyModel(LazyWeightsMixin, BaseModel):
    """A consistency model (or its EDM teacher): sampling, and training with ``train_cfg``.

    Args:
        unet: UNet config (``ConsistencyUNetModel``) or module.
        precond: ``KarrasPrecond`` config or object (sigma range, rho).
        model_path: the weights sampling reads (released ``.pt``, project
            checkpoint, path or URL), read on first use; ``''``/None: random
            init. Training never starts from it (see ``train_cfg``).
        training_mode: 'edm' for teachers, 'sct' / 'scd' for continuous-time
            (TrigFlow) models: plain EDM scalings; 'consistency_distillation',
            'consistency_training', 'ect': boundary-condition scalings. Picks
            the objective (``OBJECTIVES``) unless ``train_cfg.type`` does.
        sample_ema: for checkpoints saved by training, the EMA rate whose
            weights to sample with (e.g. 0.9999); None: the online weights.
        train_cfg: training settings: the objective's (loss, schedule,
            teacher, ...; :mod:`mmagic_cm.training.objectives`) and
            ``ema_rates``, ``seed``, ``init_from`` (the online network's start;
            default: the teacher for CD, random init otherwise). None: a
            sampling-only model (built fast: its UNet waits on the meta device
            for ``model_path``).
        data_preprocessor: MMagic ``DataPreprocessor`` config (images in
            [0, 255] <-> [-1, 1]).
        **settings: sampling settings (:class:`~mmagic_cm.sampling.settings.SamplingSettings`):
            sampler, steps, ts, generator, seed, batch_size, clip_denoised,
            s_churn, s_tmin, s_tmax, s_noise, dtype, channels_last, compile.
    """

    def __init__(self, unet: Union[dict, nn.Module], precond=None, model_path=None,
                 training_mode: str = 'consistency_distillation',
                 sample_ema: Optional[float] = None, train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 **settings):
        refuse_renamed(settings, 'model.')
        if data_preprocessor is None:
            data_preprocessor = dict(type='DataPreprocessor', mean=[127.5] * 3,
                                     std=[127.5] * 3)
        if isinstance(data_preprocessor, dict):
            # sampling needs none: MMagic's (seconds to import) is built on first use
            data_preprocessor = (MODELS.build(data_preprocessor) if train_cfg
                                 else DeferredPreprocessor(data_preprocessor))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.training_mode = training_mode
        self.sample_settings = SamplingSettings(**settings)
        self.precond: KarrasPrecond = build_precond(
            precond,
            boundary_condition=uses_boundary_condition(training_mode))
        self.model_path = model_path or None
        self.sample_ema = sample_ema
        self.train_cfg = dict(train_cfg or {})
        if self.train_cfg and is_exported_file(self.model_path):
            raise ValueError(f'model_path {self.model_path} is an exported graph: it samples '
                             'only (a config without train_cfg), it cannot train')
        meta = bool(self.model_path) and not self.train_cfg and isinstance(unet, dict)
        self.unet = build_unet(unet, meta=meta)
        # a training model has real (placeholder) weights until it trains,
        # loads a checkpoint or reads model_path for sampling
        self._model_path_unread = bool(self.model_path) and not meta
        self._inference_unets = InferenceUNets()  # not a module: no state, no .to()
        if self.train_cfg:
            self._build_training_state(unet)
        self.setup_lazy_weights()
        self.register_load_state_dict_pre_hook(objective_keys_in)
        self._register_state_dict_hook(plain_state_keys)

    def _build_training_state(self, unet_cfg) -> None:
        """The step counter, the objective (target, teacher, metric) and the EMAs."""
        tc = self.train_cfg
        objective = {k: v for k, v in tc.items() if k not in MODEL_TRAIN_KEYS}
        if 'type' not in objective and self.training_mode not in OBJECTIVES:
            raise ValueError(f'training_mode {self.training_mode!r} cannot train; choose one '
                             f'of {", ".join(OBJECTIVES)} (or give train_cfg.type)')
        objective.setdefault('type', OBJECTIVES.get(self.training_mode))
        self.register_buffer('train_step_count', torch.zeros((), dtype=torch.long))
        check_objective_keys(objective)
        self._objective_cfg = dict(objective, online=self.unet, precond=self.precond,
                                   unet_cfg=unet_cfg)
        self.objective = MODELS.build(self._objective_cfg)
        self.ema_rates = tuple(float(r) for r in tc.get('ema_rates', ()))

    def ensure_training_copies(self) -> None:
        """Create the objective's target and the EMA copies of the online UNet.

        Done when training starts (:meth:`init_weights`, the first loss) or a
        training checkpoint arrives, not at construction: a model built from a
        training config only to sample (MMagic's ``test.py``, say) then holds
        one UNet, not five.
        """
        if not self.trainable or hasattr(self, 'ema_unets'):
            return
        self.objective.make_copies(self.unet)
        self.ema_unets = nn.ModuleDict({
            ema_key(r): ExponentialMovingAverage(self.unet, momentum=1 - r)
            for r in self.ema_rates
        }).requires_grad_(False)

    def training_copy_prefixes(self) -> Tuple[str, ...]:
        """Parameter-name prefixes of the training copies (the EMA and target
        networks): never optimised. A one-process or DDP run builds its
        optimizer before they exist; under FSDP they must exist before the
        model is wrapped, and the optimizer leaves them out
        (:mod:`mmagic_cm.training.fsdp`)."""
        if not self.trainable:
            return ()
        return ('ema_unets.', *(f'objective.{name}.' for name in
                                getattr(self.objective, 'copy_names', ())))

    # ------------------------------------------------------------------ facts
    @property
    def num_classes(self) -> Optional[int]:
        return getattr(self.unet, 'num_classes', None)

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return (self.unet.in_channels, self.unet.image_size, self.unet.image_size)

    @property
    def device(self) -> torch.device:
        if is_exported_file(self.model_path):
            return self.exported_device  # where ONNX Runtime / OpenVINO run D
        return next(self.unet.parameters()).device

    @property
    def is_consistency_model(self) -> bool:
        """A consistency model of any recipe (CD, CT, ECT, sCT, sCD), not an EDM
        teacher; sCT/sCD models keep EDM's scalings, so ask the training mode."""
        return self.training_mode != 'edm'

    @property
    def trainable(self) -> bool:
        return hasattr(self, 'objective')

    def settings(self, **overrides) -> SamplingSettings:
        """The sampling settings with ``overrides`` applied, checked."""
        return self.sample_settings.replace(**overrides)

    # --------------------------------------------------------------- sampling
    def sampling_unet(self) -> nn.Module:
        """The UNet that samples: the ``sample_ema`` copy when the model holds it."""
        emas = getattr(self, 'ema_unets', {})
        if self.sample_ema is not None and ema_key(self.sample_ema) in emas:
            return emas[ema_key(self.sample_ema)].module
        return self.unet

    def sampling_denoiser(self, settings: Optional[SamplingSettings] = None
                          ) -> Union[Denoiser, ExportedDenoiser]:
        """D(x, σ) as sampling runs it: the sampling UNet prepared for the
        settings' dtype/channels_last/compile (:mod:`mmagic_cm.denoiser.fast`),
        clamping to [-1, 1] if ``clip_denoised``. Call it as ``D(x, sigma,
        y=labels)``. For an exported ``model_path`` (``.onnx``/``.xml``): ONNX
        Runtime or OpenVINO runs D (:mod:`mmagic_cm.export.runtime`); dtype,
        channels_last and compile are the file's."""
        s = settings or self.sample_settings
        if is_exported_file(self.model_path):
            self.materialize()
            return self.exported.for_settings(s)
        channels_last = True if s.channels_last is None else s.channels_last  # faster on CPUs
        dtype = resolve_dtype(s.dtype, self.device)
        net, autocast = self._inference_unets.get(self.sampling_unet(), dtype, channels_last,
                                                   s.compile)
        if autocast is not None:
            net = AutocastNet(net, autocast, self.device.type)
        return Denoiser(net, self.precond, clip=s.clip_denoised)

    @torch.no_grad()
    def sample_batch(self, batch_size: int, generator, labels: Optional[torch.Tensor] = None,
                     noise: Optional[torch.Tensor] = None, progress: bool = False,
                     **overrides) -> torch.Tensor:
        """One batch of images: noise -> sampler -> D(x, σ) calls -> images.

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
        if (labels is None) != (self.num_classes is None):
            raise ValueError('labels are needed for a class-conditional model and '
                             'not allowed for an unconditional one')
        self.materialize()
        cond = {} if labels is None else {'y': labels.to(self.device)}
        p = self.precond
        with self.unet_in_eval_mode():
            return karras_sample(
                partial(self.sampling_denoiser(s), **cond), (batch_size, *self.image_shape),
                generator, sampler=s.sampler, steps=s.steps, sigma_min=p.sigma_min,
                sigma_max=p.sigma_max, rho=p.rho, ts=s.ts, s_churn=s.s_churn,
                s_tmin=s.s_tmin, s_tmax=s.s_tmax, s_noise=s.s_noise, device=self.device,
                noise=noise, progress=progress, trig_ts=s.trig_ts, sigma_data=p.sigma_data)

    @torch.no_grad()
    def sample(self, num_samples: int, labels: LabelSpec = None,
               batch_size: Optional[int] = None, progress: bool = False,
               rank: int = 0, world_size: int = 1, start: int = 0,
               stop: Optional[int] = None, **overrides
               ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Draw ``num_samples`` images in batches, like ``image_sample.py``.

        The generator is positioned at every batch, so with 'determ' and
        'determ-indiv' each sample's noise does not depend on the batch size
        (the original script re-uses the first rows in every batch).
        ``start``/``stop`` draw only the samples ``[start, stop)`` (a shard):
        where ``start`` is a multiple of the batch size, they are the very
        batches of the full run and equal its rows bit for bit.

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
        label_list = self.sample_labels(labels, num_samples, s.seed)
        gen = get_generator(s.generator, num_samples, s.seed, rank=rank,
                            world_size=world_size)
        bs = s.batch_size

        def make(first: int, count: int):
            y = None  # labels of the full run's batch (past stop too), padded
            if label_list is not None:
                y = pad_rows(torch.tensor(label_list[first:first + bs], dtype=torch.long), bs)
            batch = self.sample_batch(bs, gen, y, **overrides)
            if not bool(torch.isfinite(batch).all()):  # else black images, silently
                raise ValueError(
                    f'sampling produced NaN or infinite values (dtype {s.dtype}, weights '
                    f'{self.model_path or "the model in memory"}); nothing was written. '
                    'Check the checkpoint, or sample in fp32')
            return (to_uint8(batch), )

        images, = run_batches(make, gen, stop, bs, start, progress)
        label_arr = (None if label_list is None
                     else np.asarray(label_list[start:stop], dtype=np.int64))
        return images, label_arr

    # ------------------------------------------------------------------ mmengine
    def forward(self, inputs: Optional[Dict] = None, data_samples=None,
                mode: Optional[str] = None):
        """Training losses (``mode='loss'``), or images for MMagic's inferencers
        and evaluators.

        Randomness of generation follows MMagic's generative models: the
        global torch RNG (seeded by the inferencer or the runner).

        Args:
            inputs: loss: the (N, C, H, W) batch in [-1, 1]; otherwise a dict
                with ``num_batches`` (images to draw; default the batch size),
                ``labels`` (default: the data samples' ``gt_label``, else
                random), ``noise`` ((N, C, H, W) standard normal) and
                ``sample_kwargs`` (sampling-setting overrides).
            data_samples: DataSamples (labels of the real data).
            mode: 'loss'; 'tensor' returns the (N, C, H, W) [-1, 1] batch;
                anything else a list of ``DataSample`` with ``fake_img``
                (C, H, W) float in [0, 255], BGR as MMagic's generative models
                give it, the starting ``noise`` and ``gt_label``.
        """
        if mode == 'loss':
            labels = None if self.num_classes is None else labels_of_data_samples(data_samples)
            return self.training_loss(inputs, None if labels is None else
                                      labels.to(inputs.device))
        from mmagic.structures import DataSample
        inputs = dict(inputs or {})
        sample_kwargs = dict(inputs.get('sample_kwargs') or {})
        noise = inputs.get('noise')
        num = len(noise) if noise is not None else int(
            inputs.get('num_batches') or self.sample_settings.batch_size)
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

    # ------------------------------------------------------------------ training
    def training_loss(self, x_start: torch.Tensor, labels: Optional[torch.Tensor]
                      ) -> Dict[str, torch.Tensor]:
        """The objective's loss of one batch at the current step (``{'loss': ...}``).

        The step's randomness (noise, noise levels, dropout) comes from a
        generator seeded by ``(train_cfg.seed, step, rank)``: a resumed run
        draws what the uninterrupted one would have.
        """
        if not self.trainable:
            raise ValueError('this model cannot train: its config has no train_cfg')
        self.ensure_training_copies()
        self._model_path_unread = False  # training owns the weights now
        step = int(self.train_step_count)
        devices = [x_start.device] if x_start.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(_step_seed(self.train_cfg.get('seed', 0), step, get_rank()))
            out = self.objective(self.unet, x_start, labels, step)
        loss = out.pop('loss').mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f'the training loss is {loss.item()} at step {step}; stopping. Checkpoints '
                'already saved are kept: resume from the last one with a lower lr or '
                'gradient clipping (optim_wrapper.clip_grad)')
        return dict(loss=loss, **out)

    def init_weights(self) -> None:
        """Sampling model: its weights (``model_path``, else random). Training
        model (the start of training): random init, then the online network
        from ``train_cfg.init_from`` or the objective (CD: the teacher); the
        target and EMA copies from the online network. The objective's
        learned parts (sCT/sCD's weighting u(t)) are drawn here too, after the
        UNet: a run's random init then depends on the seed only, not on when
        the runner built the model (mmengine's FlexibleRunner, used for FSDP,
        builds it after the data loader, its Runner before)."""
        if not self.trainable:
            if self.model_path:
                self.materialize()
            else:
                super().init_weights()
            return
        super().init_weights()
        self._init_learned_objective_parts()
        init_from = self.train_cfg.get('init_from')
        if init_from:
            from .weights import load_unet_from
            load_unet_from(self.unet, init_from, local_hint='train_cfg.init_from=PATH')
        else:
            self.objective.init_online(self.unet)
        self.ensure_training_copies()
        self.copy_unet_to_training_copies()
        self._model_path_unread = False

    @torch.no_grad()
    def _init_learned_objective_parts(self) -> None:
        """The objective's trainable parameters as a newly built objective draws them now."""
        learned = [(n, p) for n, p in self.objective.named_parameters() if p.requires_grad]
        if not learned:
            return
        fresh = dict(MODELS.build(self._objective_cfg).named_parameters())
        for name, param in learned:
            param.copy_(fresh[name])

    def copy_unet_to_training_copies(self) -> None:
        if not self.trainable:
            return
        self.objective.online_changed(self.unet)
        for ema in getattr(self, 'ema_unets', {}).values():
            ema.module.load_state_dict(self.unet.state_dict())

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """After each optimizer step: the objective's target, the EMAs, ``k += 1``."""
        if not self.trainable:
            return
        self.ensure_training_copies()
        self.objective.after_step(self.unet, int(self.train_step_count))
        for ema in self.ema_unets.values():
            ema.update_parameters(self.unet)
        self.train_step_count += 1

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def unet_in_eval_mode(self):
        """Sample with the UNets in eval mode (no dropout), then restore their modes."""
        unets = {id(u): u for u in (self.unet, self.sampling_unet())}.values()
        modes = [(u, u.training) for u in unets]
        for u in unets:
            u.eval()
        try:
            yield
        finally:
            for u, was_training in modes:
                u.train(was_training)

    def sample_labels(self, labels: LabelSpec, num_samples: int, seed: int
                      ) -> Optional[List[int]]:
        """Labels for ``num_samples`` samples: given ones, or seeded random ones
        (the original draws them from the unseeded global RNG)."""
        parsed = parse_labels(labels, self.num_classes)
        if parsed is None and self.num_classes is not None:
            gen = torch.Generator().manual_seed(seed)
            return torch.randint(0, self.num_classes, (num_samples, ), generator=gen).tolist()
        return expand_labels(parsed, num_samples)

    def _forward_labels(self, labels: LabelSpec, data_samples, num: int
                        ) -> Optional[torch.Tensor]:
        if labels is None and data_samples and self.num_classes is not None:
            labels = labels_of_data_samples(data_samples)
        parsed = parse_labels(labels, self.num_classes)
        if parsed is None:
            if self.num_classes is None:
                return None
            return torch.randint(0, self.num_classes, (num, ))
        return torch.tensor(expand_labels(parsed, num), dtype=torch.long)


def init_arguments(cls) -> Optional[set]:
    """Keyword arguments ``cls(...)`` takes, following ``**kwargs`` up its bases
    to ``nn.Module``; None when they end in a ``**kwargs`` nobody checks."""
    import inspect
    names = set()
    for klass in cls.__mro__:
        if klass in (nn.Module, object):
            return names  # nn.Module refuses what is left
        if '__init__' not in vars(klass):
            continue
        params = inspect.signature(vars(klass)['__init__']).parameters.values()
        names |= {p.name for p in params if p.name != 'self' and p.kind in (
            p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
    return None


def check_objective_keys(objective: dict) -> None:
    """Refuse train_cfg keys the objective does not take, naming the close ones."""
    import difflib
    cls = MODELS.get(objective['type'])
    if cls is None:
        raise ValueError(f'train_cfg.type={objective["type"]!r} is no registered objective')
    takes = init_arguments(cls)
    if takes is None:  # it takes any keyword: nothing to check here
        return
    known = (takes - {'online', 'precond', 'unet_cfg'}) | set(MODEL_TRAIN_KEYS) | {'type'}
    for key in objective:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f'; did you mean {close[0]!r}?' if close else ''
            raise ValueError(f'train_cfg.{key}: not a setting of {objective["type"]} (it takes '
                             f'{", ".join(sorted(known))}){hint}')


def _step_seed(seed: int, step: int, rank: int) -> int:
    """A training step's seed from (train_cfg.seed, step, rank); the hash of a
    tuple of ints is the same in every Python process."""
    return hash((int(seed), step, rank)) & (2**62 - 1)
