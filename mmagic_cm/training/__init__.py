"""Training: objectives (registered, built from ``train_cfg``), their losses and
schedules, and the mmengine hooks (the digits data is in ``datasets``)."""
from .hooks import ConsistencyEMAHook, WeightsOnlyCheckpointHook
from .losses import build_metric, consistency_loss, edm_loss
from .objectives import (
    ConsistencyDistillation,
    ConsistencyTraining,
    EasyConsistencyTuning,
    EDMObjective,
    Objective,
)
from .optim import BF16AutocastOptimWrapper
from .schedules import ECTSchedule, ImprovedSchedule, OriginalSchedule, build_schedule
from .scm import ContinuousConsistencyDistillation, ContinuousConsistencyTraining

__all__ = [
    'BF16AutocastOptimWrapper', 'ConsistencyEMAHook', 'WeightsOnlyCheckpointHook',
    'ConsistencyDistillation', 'ConsistencyTraining', 'EDMObjective', 'Objective',
    'EasyConsistencyTuning', 'ContinuousConsistencyTraining',
    'ContinuousConsistencyDistillation', 'ECTSchedule', 'ImprovedSchedule', 'OriginalSchedule',
    'build_metric', 'build_schedule', 'consistency_loss', 'edm_loss'
]
