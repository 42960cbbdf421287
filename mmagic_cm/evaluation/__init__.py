"""Evaluation: MMagic metric preflight (``resources``) and the digits metrics."""
from .quality import psnr
from .resources import (
                        TERO_INCEPTION_URL,
                        EvaluationSetupError,
                        check_eval_resources,
                        required_files,
)

__all__ = ['psnr', 'EvaluationSetupError', 'TERO_INCEPTION_URL', 'check_eval_resources',
           'required_files']
