"""Evaluation: MMagic metric preflight (``resources``), the digits metrics (also as
MMagic's ``DigitsMetric``), PSNR and the editing measurements."""
from .digits_metric import DigitsMetric
from .quality import psnr
from .resources import (
                        TERO_INCEPTION_URL,
                        EvaluationSetupError,
                        check_eval_resources,
                        required_files,
)

__all__ = ['DigitsMetric', 'psnr', 'EvaluationSetupError', 'TERO_INCEPTION_URL',
           'check_eval_resources', 'required_files']
