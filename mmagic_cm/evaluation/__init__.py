"""Evaluation: MMagic metric preflight (``resources``) and the digits metrics."""
from .resources import (
                        TERO_INCEPTION_URL,
                        EvaluationSetupError,
                        check_eval_resources,
                        required_files,
)

__all__ = ['EvaluationSetupError', 'TERO_INCEPTION_URL', 'check_eval_resources',
           'required_files']
