"""FSDP training that writes the checkpoints a one-process or DDP run writes.

``tools/train.py --strategy fsdp`` runs mmengine's ``FlexibleRunner`` with
:class:`ConsistencyFSDPStrategy`: mmengine's ``FSDPStrategy`` (full state
dicts, gathered on rank 0) with these differences.

- The model's state-dict keys. ``ConsistencyModel`` checkpoints keep the
  objective's modules at the top level (CD/CT's ``target_unet.*``, sCT/sCD's
  ``weight_net.*``, a learned metric's ``loss_metric.*``), not under
  ``objective.``: the model renames them in a state-dict hook. Under FSDP
  that hook runs before FSDP's own, which looks every parameter up by its
  module name (``objective.target_unet.*``) to gather and clone it; renamed,
  they were missing (issue 24: ``KeyError`` on one rank, ``AssertionError``
  listing every key on the other). Inside an FSDP wrapper the model leaves
  its keys alone (:func:`~mmagic_cm.models.weights.plain_state_keys`) and
  this strategy renames them after FSDP has gathered them. Loading needs
  nothing: FSDP's pre-load hook runs first, then the model's, which moves the
  top-level keys back under ``objective.``.
- The optimizer. FSDP cannot add modules to a wrapped model, so the EMA and
  target copies exist before wrapping, and before the optimizer is built; a
  DDP run builds its optimizer before them. The strategy leaves them out of
  the optimizer, and saves its state in torch's own layout (parameters by
  position, :func:`optimizer_state_by_position`) instead of FSDP's (by name):
  a DDP run and an FSDP run resume each other's checkpoints. It loads with
  current torch's argument order (mmengine 0.10 passes an old one), and on
  the CPU gathers without "offloading" (torch then keeps no copy of each
  state: ``exp_avg`` came back holding ``exp_avg_sq``).
- Weights a module reads on first use (LPIPS's VGG) are read before
  wrapping; read in FSDP's forward pass they would land in the gathered
  parameters only, which FSDP drops after it.
- Errors while saving, loading or resuming become a one-line
  :class:`~mmagic_cm.files.checkpoint.CheckpointError` naming the cause (FSDP's own
  messages list every key of the model).
"""
from __future__ import annotations

import re
from typing import List

from mmengine._strategy import FSDPStrategy
from mmengine.registry import STRATEGIES

from ..files.checkpoint import CheckpointError
from ..models.weights import FSDP_WRAPPED, plain_state_keys

#: the longest cause a save/load error line quotes
MAX_CAUSE = 200


def short_cause(exc: BaseException) -> str:
    """One short line naming what went wrong in an FSDP state-dict call."""
    text = str(exc).strip()
    found = re.match(r'FSDP assumes (\S+) is in the state_dict', text)
    if found:
        return (f'the model\'s state dict has no entry {found.group(1)!r} for a parameter '
                'FSDP shards (a state-dict hook renamed or dropped it)')
    if isinstance(exc, KeyError) and exc.args:
        return f'no state-dict entry {exc.args[0]!r}'
    line = text.splitlines()[0] if text else ''
    if len(line) > MAX_CAUSE:
        line = line[:MAX_CAUSE] + '...'
    return f'{type(exc).__name__}: {line}' if line else type(exc).__name__


@STRATEGIES.register_module()
class ConsistencyFSDPStrategy(FSDPStrategy):
    """mmengine's ``FSDPStrategy`` writing ordinary ``ConsistencyModel``
    checkpoints (see the module's docstring); same arguments."""

    def _wrap_model(self, model):
        # weights a module reads on first use (LPIPS's VGG) must be in place
        # before FSDP flattens and shards them: read in a forward pass, they
        # would land in the gathered copy only, which FSDP drops after it
        for module in model.modules():
            if callable(getattr(module, 'ensure_weights', None)):
                module.ensure_weights()
        model = super()._wrap_model(model)
        optim_cfg = self.optim_state_dict_config
        if model.compute_device.type == 'cpu' and getattr(optim_cfg, 'offload_to_cpu', False):
            # torch's full optimizer state dict skips its copy when offloading to
            # the CPU, and .cpu() of a CPU tensor is the tensor itself: each state
            # (exp_avg) stays a view of the buffer the next one (exp_avg_sq) is
            # gathered into. On the CPU nothing needs offloading: keep the copy.
            self.optim_state_dict_config = type(optim_cfg)(
                **dict(vars(optim_cfg), offload_to_cpu=False))
            model.set_state_dict_type(model, self.state_dict_type, self.state_dict_config,
                                      self.optim_state_dict_config)
        return model

    def build_optim_wrapper(self, optim_wrapper, model=None):
        wrapper = super().build_optim_wrapper(optim_wrapper, model)
        # the optimizer of a one-process or DDP run, which is built before the
        # EMA and target copies exist: the same parameters, the same positions
        inner = getattr(model, 'module', model)
        prefixes = getattr(inner, 'training_copy_prefixes', tuple)()
        optimizer = getattr(wrapper, 'optimizer', None)
        if prefixes and optimizer is not None:
            copies = {id(p) for n, p in model.named_parameters()
                      if n.replace(FSDP_WRAPPED, '').startswith(prefixes)}
            for group in optimizer.param_groups:  # no state yet: nothing else to change
                group['params'] = [p for p in group['params'] if id(p) not in copies]
            optimizer.param_groups[:] = [g for g in optimizer.param_groups if g['params']]
        return wrapper

    def model_state_dict(self) -> dict:
        state = super().model_state_dict()
        plain_state_keys(None, state, '')  # objective.* -> top level, as without FSDP
        return state

    def save_checkpoint(self, filename: str, **kwargs) -> None:
        try:
            super().save_checkpoint(filename, **kwargs)
        except CheckpointError:
            raise
        except (KeyError, AssertionError, RuntimeError, ValueError, OSError) as exc:
            raise CheckpointError(f'saving checkpoint {filename} under FSDP failed on rank '
                                  f'{self.rank}: {short_cause(exc)}') from exc

    def load_checkpoint(self, filename: str, **kwargs) -> dict:
        try:
            return super().load_checkpoint(filename, **kwargs)
        except CheckpointError:
            raise
        except (KeyError, AssertionError) as exc:
            raise CheckpointError(f'loading checkpoint {filename} under FSDP failed on rank '
                                  f'{self.rank}: {short_cause(exc)}') from exc

    def optim_state_dict(self) -> dict:
        return optimizer_state_by_position(super().optim_state_dict())

    def load_optim_state_dict(self, state_dict: dict) -> None:
        ids = {id(p): n.replace(FSDP_WRAPPED, '') for n, p in self.model.named_parameters()}
        names = [ids[id(p)] for g in self.optim_wrapper.optimizer.param_groups
                 for p in g['params']]
        # (mmengine 0.10 passes optim_state_dict_to_load's arguments in an old order)
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        state = FSDP.optim_state_dict_to_load(self.model, self.optim_wrapper.optimizer,
                                              optimizer_state_by_name(state_dict, names))
        self.optim_wrapper.load_state_dict(state)

    def resume(self, filename: str, **kwargs) -> dict:
        try:
            return super().resume(filename, **kwargs)
        except CheckpointError:
            raise
        except (KeyError, AssertionError, ValueError) as exc:
            raise CheckpointError(f'resuming from {filename} under FSDP failed on rank '
                                  f'{self.rank}: {short_cause(exc)}') from exc

    @property
    def rank(self) -> int:
        from mmengine.dist import get_rank
        return get_rank()


def optimizer_state_by_position(state: dict) -> dict:
    """An optimizer state dict keyed by parameter names (FSDP's full layout)
    in torch's own layout: parameters numbered in ``param_groups`` order,
    as ``optimizer.state_dict()`` of a one-process or DDP run numbers them."""
    if not state or not all(isinstance(n, str) for g in state.get('param_groups', ())
                            for n in g['params']):
        return state  # empty (another rank's) or by position already
    order = [n for g in state['param_groups'] for n in g['params']]
    index = {n: i for i, n in enumerate(order)}
    groups = [dict(g, params=[index[n] for n in g['params']]) for g in state['param_groups']]
    by_position = {index[n]: v for n, v in state['state'].items()}
    return dict(state, state=dict(sorted(by_position.items())), param_groups=groups)


def optimizer_state_by_name(state: dict, names: List[str]) -> dict:
    """The inverse: torch's layout (parameters by position) keyed by ``names``,
    the optimizer's parameters in ``param_groups`` order."""
    positions = [i for g in state['param_groups'] for i in g['params']]
    if not all(isinstance(i, int) for i in positions):
        return state  # by name already
    if len(positions) != len(names):
        raise CheckpointError(f'the checkpoint\'s optimizer state holds {len(positions)} '
                              f'parameters, this model\'s optimizer {len(names)}: it was '
                              'saved by another model or optimizer configuration')
    name = dict(zip(positions, names))
    groups = [dict(g, params=[name[i] for i in g['params']]) for g in state['param_groups']]
    return dict(state, state={name[i]: v for i, v in state['state'].items()},
                param_groups=groups)
