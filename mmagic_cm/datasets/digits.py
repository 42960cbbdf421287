"""scikit-learn's handwritten digits as an MMagic dataset (ships offline).

1,797 grey 8x8 images of the digits 0-9 (UCI optical digits, as bundled with
scikit-learn), upsampled with bicubic filtering to ``image_size`` and
repeated to 3 channels. A fixed, seeded split keeps ``test_size`` images
out of training for evaluation.
"""
from __future__ import annotations

from typing import List

import numpy as np
from mmengine.dataset import BaseDataset

from ..registry import DATASETS

NUM_CLASSES = 10


def load_digits_arrays(image_size: int = 16, split: str = 'train', test_size: int = 297,
                       seed: int = 0):
    """``(images, labels)``: uint8 (N, S, S, 3) and int64 (N,) of one split.

    Args:
        image_size: output side (bicubic upsampling of the 8x8 originals).
        split: 'train', 'test' or 'all'.
        test_size: images held out for 'test' (a seeded permutation).
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    if split not in ('train', 'test', 'all'):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    if split == 'train':
        order = np.sort(order[test_size:])
    elif split == 'test':
        order = np.sort(order[:test_size])
    else:
        order = np.arange(len(digits.target))
    small = (digits.images[order] * (255.0 / 16.0)).round().astype(np.uint8)
    big = np.stack([
        np.asarray(Image.fromarray(img).resize((image_size, image_size), Image.BICUBIC))
        for img in small
    ])
    return np.repeat(big[..., None], 3, axis=-1), digits.target[order].astype(np.int64)


@DATASETS.register_module()
class DigitsDataset(BaseDataset):
    """MMagic dataset of the digits: ``gt`` (S, S, 3) uint8 and ``gt_label``.

    Args:
        image_size: side of the images (e.g. 16 or 32).
        split: 'train', 'test' or 'all'.
        test_size: held-out images (seeded split, ``split_seed``).
        pipeline: MMagic transforms, usually ``[dict(type='PackInputs')]``.
    """

    METAINFO = dict(classes=tuple(str(i) for i in range(NUM_CLASSES)))

    def __init__(self, image_size: int = 16, split: str = 'train', test_size: int = 297,
                 split_seed: int = 0, pipeline=(), **kwargs):
        self.image_size = image_size
        self.split = split
        self.test_size = test_size
        self.split_seed = split_seed
        super().__init__(pipeline=list(pipeline), serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        images, labels = load_digits_arrays(self.image_size, self.split, self.test_size,
                                            self.split_seed)
        return [dict(gt=img, gt_label=int(label), sample_idx=i)
                for i, (img, label) in enumerate(zip(images, labels))]
