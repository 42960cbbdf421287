"""Training with torch and mmengine alone: core-only mode (``MMAGIC_CM_CORE_ONLY=1``).

``tools/train.py`` reads the config with :func:`load_training_config` and
hands it to mmengine's runner after :func:`core_only_config`:

- the config's ``custom_imports`` are imported but for the evaluation
  metrics (``DigitsMetric`` subclasses MMagic's; the test loop needs MMagic);
- the runner's default scope is ``mmagic_cm`` (the plugin's registries and
  its scope nodes in mmengine's, :func:`mmagic_cm.registry.add_core_scope_nodes`)
  instead of ``mmagic``;
- MMagic's ``DataPreprocessor`` and ``PackInputs`` are the plugin's
  stand-ins (:data:`mmagic_cm.registry.CORE_STANDINS`);
- every other class the run builds must be registered without MMagic: a
  config that names one of MMagic's (its image loading and augmentation
  transforms, its datasets) is refused in one line before anything is
  written.

This covers the digits configs (``configs/consistency_models/*digits*``) and
configs built like them; the ImageNet and LSUN configs load their images
with MMagic's transforms and need MMagic.
"""
from __future__ import annotations

from typing import Iterator, Tuple

#: the runner's default scope in core-only mode
CORE_SCOPE = 'mmagic_cm'
#: ``custom_imports`` skipped in core-only mode (they import MMagic)
CORE_SKIPPED_IMPORTS = ('mmagic_cm.evaluation.', 'mmagic.')
#: the config entries a training run builds (the test loop's are built only
#: by ``tools/test.py``, which needs MMagic)
TRAINING_ENTRIES = ('model', 'train_dataloader', 'train_cfg', 'optim_wrapper',
                    'param_scheduler', 'custom_hooks', 'default_hooks', 'model_wrapper_cfg',
                    'strategy', 'log_processor', 'visualizer', 'val_dataloader', 'val_cfg',
                    'val_evaluator')
#: sub-entries whose ``type`` is not a registry name (the objective's own
#: tables: schedules, losses, noise samplers) or is checked elsewhere
NOT_REGISTRY_TYPES = ('model.train_cfg', )


def core_only() -> bool:
    from ..registry import CORE_ONLY
    return CORE_ONLY


def load_training_config(path: str):
    """``Config.fromfile(path)``; in core-only mode without the imports of
    :data:`CORE_SKIPPED_IMPORTS`."""
    from mmengine.config import Config
    if not core_only():
        return Config.fromfile(path)
    cfg = Config.fromfile(path, import_custom_modules=False)
    custom = cfg.get('custom_imports')
    if custom:
        from mmengine.utils import import_modules_from_strings
        imports = custom.get('imports', [])
        imports = [imports] if isinstance(imports, str) else list(imports)
        import_modules_from_strings([m for m in imports if not m.startswith(
            CORE_SKIPPED_IMPORTS)], custom.get('allow_failed_imports', False))
    return cfg


def named_types(value, where: str) -> Iterator[Tuple[str, str]]:
    """``(where, type name)`` of every ``dict(type='Name', ...)`` in ``value``."""
    if where.startswith(NOT_REGISTRY_TYPES):
        return
    if isinstance(value, dict):
        name = value.get('type')
        if isinstance(name, str):
            yield where, name
        for key, item in value.items():
            if key != 'type':
                yield from named_types(item, f'{where}.{key}')
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from named_types(item, f'{where}[{i}]')


def core_only_config(cfg) -> None:
    """In core-only mode: the runner's scope set to :data:`CORE_SCOPE`, and a
    ``ValueError`` (one line) for a class the run would build that is not
    registered without MMagic. Does nothing otherwise."""
    if not core_only():
        return
    from ..registry import find_registered
    cfg.default_scope = CORE_SCOPE
    for entry in TRAINING_ENTRIES:
        for where, name in named_types(cfg.get(entry), entry):
            if find_registered(name) is None:
                raise ValueError(
                    f'{where}.type={name!r} is not available in core-only mode '
                    '(MMAGIC_CM_CORE_ONLY=1: torch and mmengine, no MMagic); core-only '
                    'training covers the digits configs. Install MMagic for this config, '
                    'or unset MMAGIC_CM_CORE_ONLY')
