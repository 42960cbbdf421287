"""``ConsistencyModel``: MMagic's model over the sampling pipeline (settings -> denoiser ->
sampler -> uint8), lazy weights and the training state (:mod:`mmagic_cm.training.state`)."""
from __future__ import annotations

from functools import partial
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import nn

from ..denoiser.fast import InferenceUNets
from ..denoiser.precond import build_precond, refuse_renamed, uses_boundary_condition
from ..export.runtime import is_exported_file
from ..registry import MODELS
from ..sampling import pipeline
from ..sampling.labels import LabelSpec, labels_for, labels_of_data_samples
from ..sampling.settings import SamplingSettings
from . import mmagic_outputs
from .preprocessor import build_preprocessor
from .weights import LazyWeightsMixin, build_unet


@MODELS.register_module()
class ConsistencyModel(LazyWeightsMixin, BaseModel):
    """A consistency model (or its EDM teacher): sampling, and training with ``train_cfg``.

    Args:
        unet, precond: ``ConsistencyUNetModel`` and ``KarrasPrecond`` configs or objects.
        model_path: the weights sampling reads on first use (``.pt``, exported
            ``.onnx``/``.xml``; path or URL); None: random init.
        training_mode: 'edm', 'sct', 'scd': EDM's scalings; 'consistency_distillation',
            'consistency_training', 'ect': boundary-condition scalings. Selects the
            registered objective declaring it, unless ``train_cfg.type`` names one.
        sample_ema: the EMA rate of a training checkpoint to sample with; None: online.
        train_cfg: the objective's settings, ``ema_rates``, ``seed``, ``init_from``;
            None: a model that samples only.
        data_preprocessor: MMagic ``DataPreprocessor`` config ([0, 255] <-> [-1, 1]).
        **settings: sampling settings (:class:`~mmagic_cm.sampling.settings.SamplingSettings`).
    """

    def __init__(self, unet: Union[dict, nn.Module], precond=None, model_path=None,
                 training_mode: str = 'consistency_distillation',
                 sample_ema: Optional[float] = None, train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 **settings):
        refuse_renamed(settings, 'model.')
        super().__init__(build_preprocessor(data_preprocessor, now=bool(train_cfg)), init_cfg)
        self.training_mode, self.sample_ema = training_mode, sample_ema
        self.sample_settings = SamplingSettings(**settings)
        self.precond = build_precond(precond, uses_boundary_condition(training_mode))
        self.model_path, self.train_cfg = model_path or None, dict(train_cfg or {})
        # a sampling model's UNet waits on the meta device for model_path; a training
        # model's has real (placeholder) weights until it trains, loads or samples
        meta = bool(self.model_path) and not self.train_cfg and isinstance(unet, dict)
        self.unet = build_unet(unet, meta=meta)
        self._model_path_unread = bool(self.model_path) and not meta
        self._inference_unets = InferenceUNets()  # not a module: no state, no .to()
        # training/state.py, built through the registry: the step counter, objective and
        # EMAs it makes are attributes of this model (the checkpoint keys stay as they were)
        state = dict(type='TrainingState', model=self, unet_cfg=unet)
        self.training_state = MODELS.build(state) if self.train_cfg else None
        self.setup_lazy_weights()  # and the checkpoint-format hooks

    # class count (None: unconditional), (C, H, W), a consistency model of any recipe
    num_classes = property(lambda self: getattr(self.unet, 'num_classes', None))
    image_shape = property(lambda self: (self.unet.in_channels, *[self.unet.image_size] * 2))
    is_consistency_model = property(lambda self: self.training_mode != 'edm')
    trainable = property(lambda self: self.training_state is not None)

    def settings(self, **overrides) -> SamplingSettings:
        """The sampling settings with ``overrides`` applied, checked."""
        return self.sample_settings.replace(**overrides)

    def sampling_denoiser(self, settings: Optional[SamplingSettings] = None):
        """D(x, σ) as sampling runs it (:func:`.pipeline.denoiser_for`; an exported
        ``model_path``: the file's), called as ``D(x, sigma, y=labels)``."""
        s = settings or self.sample_settings
        if is_exported_file(self.model_path):
            self.materialize()
            return self.exported.for_settings(s)
        return pipeline.denoiser_for(self.sampling_unet(), self.precond, s, self.device,
                                     self._inference_unets)

    @torch.no_grad()
    def sample_batch(self, batch_size: int, generator, labels: Optional[torch.Tensor] = None,
                     noise: Optional[torch.Tensor] = None, progress: bool = False,
                     **overrides) -> torch.Tensor:
        """(N, C, H, W) float32 in [-1, 1] from (N,) long ``labels`` iff class-conditional,
        (N, C, H, W) ``noise`` (:func:`.pipeline.draw_batch`)."""
        s = self.settings(**overrides)
        pipeline.check_labels(labels, self.num_classes)
        self.materialize()
        with self.unet_in_eval_mode():
            return pipeline.draw_batch(self.sampling_denoiser(s), self.precond, s,
                                       (batch_size, *self.image_shape), generator, labels,
                                       noise, self.device, progress)

    @torch.no_grad()
    def sample(self, num_samples: int, labels: LabelSpec = None, batch_size: Optional[int] = None,
               progress: bool = False, rank: int = 0, world_size: int = 1, start: int = 0,
               stop: Optional[int] = None, **overrides) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Samples ``[start, stop)`` of ``num_samples`` (:func:`.pipeline.draw_images`): uint8
        (N, H, W, C) images and int64 (N,) labels or None."""
        stop = pipeline.check_run(num_samples, start, stop)
        s = self.settings(batch_size=batch_size, **overrides)
        labels = self.sample_labels(labels, num_samples, s.seed)
        return pipeline.draw_images(partial(self.sample_batch, **overrides), num_samples, labels,
                                    s, rank, world_size, start, stop, progress,
                                    self.model_path or 'the model in memory')

    def sample_labels(self, labels: LabelSpec, num_samples: int, seed: int) -> Optional[List[int]]:
        """One label per sample: the given ones, or random ones seeded by ``seed``."""
        return labels_for(labels, self.num_classes, num_samples, seed)

    def unet_in_eval_mode(self):
        """Sample with the UNets in eval mode (no dropout), then restore their modes."""
        return pipeline.eval_mode(self.unet, self.sampling_unet())

    def forward(self, inputs: Optional[Dict] = None, data_samples=None, mode: Optional[str] = None):
        """Losses (``mode='loss'``, ``inputs`` (N, C, H, W) in [-1, 1]), else images as
        MMagic's generative models give them (:func:`.mmagic_outputs.generate`)."""
        if mode == 'loss':
            y = None if self.num_classes is None else labels_of_data_samples(data_samples)
            return self.training_loss(inputs, None if y is None else y.to(inputs.device))
        return mmagic_outputs.generate(self, inputs, data_samples, mode)

    def training_loss(self, x_start: torch.Tensor, labels: Optional[torch.Tensor]) -> dict:
        """``{'loss': ..., logs}`` of one (N, C, H, W) [-1, 1] batch at the current step."""
        if not self.trainable:
            raise ValueError('this model cannot train: its config has no train_cfg')
        self._model_path_unread = False  # training owns the weights now
        return self.training_state.loss(self, x_start, labels)

    def init_weights(self) -> None:
        """Sampling: ``model_path``, else random init. Training: random init, then
        the start of training (``init_from`` or the teacher, the copies)."""
        if not self.trainable and self.model_path:
            return self.materialize()
        super().init_weights()
        if self.trainable:
            self.training_state.start(self)
            self._model_path_unread = False

    def training_copy_prefixes(self) -> Tuple[str, ...]:
        """Parameter-name prefixes of the training copies (never optimised)."""
        return self.training_state.copy_prefixes(self) if self.trainable else ()

    def after_optimizer_step(self) -> None:
        """After each optimizer step: the objective's target, the EMAs, ``k += 1``."""
        if self.trainable:
            self.training_state.after_step(self)
