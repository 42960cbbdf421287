"""Zero-shot image editing with consistency models (paper, section 5).

- :mod:`.operators`: what each task keeps of the input (mask, luminance,
  patch means) and the replacement step;
- :mod:`.algorithms`: the editing loops as plain functions of a denoiser;
- :mod:`.masks`, :mod:`.io`: built-in masks, reading images and masks;
- :mod:`.tasks`: the tasks, one class each, registered in ``EDITING_TASKS``;
- :mod:`.api`: :func:`edit`, the same with a ``ConsistencyModel``, batches,
  labels and seeded generators.
"""
from .algorithms import (
                         class_weights,
                         colorize,
                         denoise,
                         edit_with_operator,
                         inpaint,
                         interpolate,
                         slerp,
                         stroke,
                         superres,
)
from .api import DEFAULT_TS, EditResult, edit
from .operators import Colorize, Inpaint, SuperResolution
from .tasks import EditingTask, task_names, task_of

__all__ = [
    'DEFAULT_TS', 'EditResult', 'EditingTask', 'edit', 'task_names', 'task_of', 'Colorize',
    'Inpaint', 'SuperResolution',
    'class_weights', 'colorize', 'denoise', 'edit_with_operator', 'inpaint', 'interpolate',
    'slerp', 'stroke', 'superres'
]
