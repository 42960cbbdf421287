"""Training: losses, schedules and the hooks (the digits data is in ``datasets``)."""
from .hooks import ConsistencyEMAHook, WeightsOnlyCheckpointHook
from .losses import build_metric, consistency_loss, edm_loss
from .optim import BF16AutocastOptimWrapper
from .schedules import ImprovedSchedule, OriginalSchedule, build_schedule

__all__ = [
    'BF16AutocastOptimWrapper', 'ConsistencyEMAHook', 'WeightsOnlyCheckpointHook',
    'ImprovedSchedule', 'OriginalSchedule',
    'build_metric', 'build_schedule', 'consistency_loss', 'edm_loss'
]
