"""Training: objectives built from ``train_cfg``, their losses and schedules, hooks, FSDP.

Objectives are registered and built by name; the model never imports this
layer. The digits data is in :mod:`mmagic_cm.datasets`."""
from .hooks import ConsistencyEMAHook, WeightsOnlyCheckpointHook
from .losses import build_metric, consistency_loss, edm_loss
from .objectives import (
    ConsistencyDistillation,
    ConsistencyTraining,
    EasyConsistencyTuning,
    EDMObjective,
    Objective,
)
from .optim import BF16AutocastOptimWrapper, InverseSquareRootLR
from .schedules import ECTSchedule, ImprovedSchedule, OriginalSchedule, build_schedule
from .scm import ContinuousConsistencyDistillation, ContinuousConsistencyTraining

__all__ = [
    'BF16AutocastOptimWrapper', 'InverseSquareRootLR', 'ConsistencyEMAHook',
    'WeightsOnlyCheckpointHook',
    'ConsistencyDistillation', 'ConsistencyTraining', 'EDMObjective', 'Objective',
    'EasyConsistencyTuning', 'ContinuousConsistencyTraining',
    'ContinuousConsistencyDistillation', 'ECTSchedule', 'ImprovedSchedule', 'OriginalSchedule',
    'build_metric', 'build_schedule', 'consistency_loss', 'edm_loss'
]
