"""Evaluation: MMagic metric preflight (``resources``), the digits metrics,
PSNR and the editing measurements. MMagic's ``DigitsMetric`` lives in
``digits_metric``, imported by the configs that use it (it loads MMagic's
metrics, which take seconds to import)."""
from .quality import psnr
from .resources import (
                        TERO_INCEPTION_URL,
                        EvaluationSetupError,
                        check_eval_resources,
                        required_files,
)

__all__ = ['psnr', 'EvaluationSetupError', 'TERO_INCEPTION_URL',
           'check_eval_resources', 'required_files']
