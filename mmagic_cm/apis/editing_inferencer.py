"""MMagic inferencer for the editing configs (``editing = dict(task=...)``).

``MMagicInferencer(model_name='consistency_models', config_name=
'..._digits-inpainting-16x16').infer(img=..., mask=...)`` lands here: MMagic's
own inpainting/colorization/super-resolution inferencers expect models that
map an image to an image in one call, with their own data pipelines; this one
runs :func:`mmagic_cm.editing.edit` with the config's ``editing`` settings.

``extra_parameters`` (constructor or ``infer``): ``ts``, ``seed``,
``patch_size``, ``fit`` ('none', 'resize', 'center-crop'), ``invert_mask``
(default from the config: True = white is the hole, as MMagic's masks),
``binarize_mask`` (threshold grey masks, e.g. JPEGs, at 128).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmagic.apis.inferencers.base_mmagic_inferencer import BaseMMagicInferencer

from ..editing import task_names, task_of

#: the task name MMagicInferencer passes for editing configs
EDITING_TASK = 'consistency_editing'


def metafile_tasks() -> Dict[str, str]:
    """The metafile task of each registered editing task an editing config can
    name (``EditingTask.metafile_task``)."""
    return {n: task_of(n).metafile_task for n in task_names() if task_of(n).metafile_task}


class ConsistencyEditingInferencer(BaseMMagicInferencer):
    """Zero-shot editing of one image (``img``, and ``mask`` for inpainting)."""

    func_kwargs = dict(preprocess=['img', 'mask', 'label'], forward=[],
                       visualize=['result_out_dir'], postprocess=[])
    extra_parameters = dict(ts=None, seed=0, patch_size=None, fit='none', invert_mask=None,
                            binarize_mask=False)

    def __init__(self, config, ckpt=None, device=None, extra_parameters=None, seed=2022,
                 **kwargs):
        # instance copy: the class dict is shared by every inferencer
        self.extra_parameters = dict(type(self).extra_parameters)
        super().__init__(config, ckpt, device=device, extra_parameters=extra_parameters,
                         seed=seed, **kwargs)
        editing = dict(self.model.cfg.get('editing') or {})
        if editing.get('task') not in metafile_tasks():
            raise ValueError(f"config editing.task={editing.get('task')!r}; choose one of "
                             f'{", ".join(metafile_tasks())}')
        self.task = editing.pop('task')
        self.spec = task_of(self.task)
        self.defaults = dict(ts=editing.get('ts'), patch_size=editing.get('patch_size', 8),
                             invert_mask=editing.get('invert_mask', False))

    def _init_pipeline(self, cfg):
        return None

    def _param(self, name):
        value = self.extra_parameters.get(name)
        return self.defaults.get(name) if value is None else value

    def preprocess(self, img: Optional[str] = None, mask: Optional[str] = None,
                   label=None) -> Dict:
        from ..editing.io import load_image, load_mask, load_superres_input
        from ..editing.masks import BUILTIN_MASKS
        if img is None:
            raise ValueError(f'{self.task}: give the input image (img=PATH, demo: --img)')
        size = self.model.image_shape[-1]
        fit = self._param('fit')
        if 'patch_size' in self.spec.options:
            images = load_superres_input(img, size, self._param('patch_size'), fit)[None]
        else:
            images = load_image(img, size, fit)[None]
        if 'mask' in self.spec.options:
            if mask is None:
                raise ValueError('inpainting needs mask=PATH (demo: --mask), white = fill')
            if mask in BUILTIN_MASKS and not osp.exists(mask):
                pass  # a built-in name
            else:
                mask = load_mask(mask, size, fit, binarize=bool(self._param('binarize_mask')),
                                 invert=bool(self._param('invert_mask')))
        elif mask is not None:
            raise ValueError(f'mask given, but this config {self.task}s; drop the mask')
        return dict(images=images, mask=mask, label=label)

    def forward(self, inputs: Dict):
        from ..editing import edit
        kwargs = {k: self._param(k) for k in self.spec.options if k in self.defaults}
        return edit(self.model, self.task, inputs['images'], mask=inputs['mask'],
                    labels=inputs['label'], ts=self._param('ts'), seed=self._param('seed'),
                    **kwargs)

    def visualize(self, preds, result_out_dir: str = '') -> List[np.ndarray]:
        """Write ``result_out_dir`` (a PNG: input | result); returns the result
        (H, W, 3) uint8 RGB."""
        if result_out_dir:
            from PIL import Image
            folder = osp.dirname(osp.abspath(result_out_dir))
            os.makedirs(folder, exist_ok=True)
            pair = np.concatenate([preds.observed[0], preds.images[0]], axis=1)
            Image.fromarray(pair).save(result_out_dir)
        return [preds.images[0]]

    def postprocess(self, preds, imgs=None, **kwargs):
        return dict(result=preds.images[0], input=preds.observed[0]), imgs[0]
