"""Training: the training state, objectives from ``train_cfg``, losses, schedules, hooks, FSDP.

A model with ``train_cfg`` builds its :class:`~.state.TrainingState` (step
counter, objective, target and EMA copies) through the registry, and the
state builds the objective the same way; the model never imports this layer.
The digits data is in :mod:`mmagic_cm.datasets`."""
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
from .state import TrainingState

__all__ = [
    'BF16AutocastOptimWrapper', 'InverseSquareRootLR', 'ConsistencyEMAHook',
    'WeightsOnlyCheckpointHook',
    'ConsistencyDistillation', 'ConsistencyTraining', 'EDMObjective', 'Objective',
    'EasyConsistencyTuning', 'ContinuousConsistencyTraining',
    'ContinuousConsistencyDistillation', 'ECTSchedule', 'ImprovedSchedule', 'OriginalSchedule',
    'TrainingState', 'build_metric', 'build_schedule', 'consistency_loss', 'edm_loss'
]
