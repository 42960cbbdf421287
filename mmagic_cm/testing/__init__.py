"""Test support: seeded weights, parity fixtures, tiny models, the original code, tools in-process.

- :mod:`.fixtures`: deterministic random weights, the reference fixtures of
  ``tests/fixtures/reference`` and the models they were made with, the parity
  criterion, running a tool in this process;
- :mod:`.reference`: the original OpenAI code run beside ours (fixtures,
  ``tools/benchmark.py --compare original``).
"""
from .fixtures import (
    ECT_CASES,
    REF,
    ROOT,
    SCM_CASES,
    SCM_P_MEAN,
    SCM_P_STD,
    TINY_CONFIGS,
    arch_keys,
    assert_images_close,
    load_ref,
    reference_model,
    reference_unet,
    reference_weights,
    run_tool,
    seeded_state_dict,
    tiny_ect_denoiser,
    tiny_scm_setup,
)

__all__ = [
    'ECT_CASES', 'REF', 'ROOT', 'SCM_CASES', 'SCM_P_MEAN', 'SCM_P_STD', 'TINY_CONFIGS',
    'arch_keys', 'assert_images_close', 'load_ref', 'reference_model', 'reference_unet',
    'reference_weights', 'run_tool', 'seeded_state_dict', 'tiny_ect_denoiser', 'tiny_scm_setup'
]
