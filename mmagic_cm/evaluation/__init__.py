"""Evaluation: how good and how fast: metric preflight, digits metrics, PSNR, benchmarks.

- :mod:`.resources`: MMagic metric preflight (Inception weights, references);
- :mod:`.quality`: PSNR; :mod:`.digits`, :mod:`.digits_editing`,
  :mod:`.curves`: the digits models' metrics and learning curves;
  :mod:`.digits_metric`: MMagic's ``DigitsMetric``, imported by the configs
  that use it (it loads MMagic's metrics, which take seconds to import);
- :mod:`.benchmark`: sampling speed against diffusers and the original code
  (``tools/benchmark.py``);
- :mod:`.gpu_check`: the prepared GPU check (``tools/gpu_check.py``).
"""
from .quality import psnr
from .resources import (
                        TERO_INCEPTION_URL,
                        EvaluationSetupError,
                        check_eval_resources,
                        required_files,
)

__all__ = ['psnr', 'EvaluationSetupError', 'TERO_INCEPTION_URL',
           'check_eval_resources', 'required_files']
