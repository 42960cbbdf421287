"""Known third-party noise, silenced at this project's entry points only.

``tools/*.py`` and ``demo/mmagic_inference_demo.py`` import MMagic inside
:func:`known_warnings_silenced` and filter the runner's logger with
:func:`quiet_runner_logger`; ``--verbose`` shows everything. Nothing here
touches the global warning filters outside the ``with`` block, so a user's
own ``import mmagic_cm`` sees every warning.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Iterator

#: (category, message regex, module regex of the frame the warning names).
#: All come from importing MMagic 1.2.0's dependency tree on today's torch.
KNOWN_WARNINGS = (
    # mmagic.apis -> controlnet_aux (teed/Fsmish.py, zoe/.../attractor.py) call
    # torch.jit.script at import; torch >= 2.10 deprecates it
    (FutureWarning, r'`torch\.jit\.script` is deprecated', r'torch\.jit\._script'),
    # controlnet_aux.segment_anything imports timm's pre-0.9 module paths
    (FutureWarning, r'Importing from timm\.models\.(layers|registry) is deprecated',
     r'timm\.models\.'),
    # controlnet_aux re-registers timm's tiny_vit_* models under the same names
    (UserWarning, r'Overwriting tiny_vit_\w+ in registry', r'controlnet_aux\.'),
    # diffusers 0.24 (pinned <0.25 by mmagic) uses torch's private pytree API;
    # reached from mmagic.models.archs.register_diffusers_models
    (FutureWarning, r'`torch\.utils\._pytree\._register_pytree_node` is deprecated',
     r'diffusers\.'),
    # MMagic's FID/IS load Tero Karras' TorchScript Inception (tools/test.py)
    (FutureWarning, r'`torch\.jit\.load` is deprecated', r'torch\.jit\._serialization'),
)

#: mmengine 0.10's CheckpointHook.before_train and save_checkpoint build a
#: FileClient themselves (checkpoint_hook.py:273, runner/checkpoint.py:784) and
#: warn about their own deprecated class; no config avoids it.
KNOWN_MMENGINE_LOGS = (
    '"FileClient" will be deprecated in future',
    '"HardDiskBackend" is the alias of "LocalBackend"',
)


@contextlib.contextmanager
def known_warnings_silenced(verbose: bool = False) -> Iterator[None]:
    """Ignore exactly :data:`KNOWN_WARNINGS` inside the block (all if verbose)."""
    if verbose:
        yield
        return
    with warnings.catch_warnings():
        for category, message, module in KNOWN_WARNINGS:
            warnings.filterwarnings('ignore', message=message, category=category,
                                    module=module)
        yield


#: third-party loggers' known noise: logger name -> message starts. NNCF
#: (int8 export) imports torch.utils.cpp_extension, which logs on CPU-only
#: machines that it found no CUDA runtime.
KNOWN_LOGS = {'torch.utils.cpp_extension': ('No CUDA runtime is found', )}


class _KnownLogNoise(logging.Filter):

    def __init__(self, starts=KNOWN_MMENGINE_LOGS):
        super().__init__()
        self.starts = tuple(starts)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(text) for text in self.starts)


def quiet_runner_logger(runner, verbose: bool = False) -> None:
    """Drop :data:`KNOWN_MMENGINE_LOGS` from a Runner's logger."""
    if not verbose:
        runner.logger.addFilter(_KnownLogNoise())


def import_mmagic(verbose: bool = False, apis: bool = False, models: bool = True) -> None:
    """Import the plugin and the MMagic modules our tools reach, quietly.

    ``mmagic.models`` would otherwise be imported later, unguarded, by the
    first build of one of MMagic's classes (its registry's import location);
    ``models=False`` (the sampling tools: they build none) skips it; ``apis``
    also imports ``mmagic.apis`` (the inferencer, for the demo). In core-only
    mode (``MMAGIC_CM_CORE_ONLY=1``) nothing of MMagic is imported.
    """
    import os
    if os.environ.get('MMAGIC_CM_CORE_ONLY') == '1':
        models = apis = False
    if not verbose:  # for this process (an entry point's), on loggers not yet used
        for name, starts in KNOWN_LOGS.items():
            logger = logging.getLogger(name)
            if not any(isinstance(f, _KnownLogNoise) for f in logger.filters):
                logger.addFilter(_KnownLogNoise(starts))
    with known_warnings_silenced(verbose):
        if models:
            import mmagic.models  # noqa: F401

        import mmagic_cm  # noqa: F401
        if apis:
            import mmagic.apis  # noqa: F401
