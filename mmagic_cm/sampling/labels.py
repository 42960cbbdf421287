"""Class labels given as integers or ImageNet class names."""
from __future__ import annotations

import difflib
import functools
from typing import List, Optional, Sequence, Union

import torch

LabelSpec = Union[None, int, str, Sequence[Union[int, str]], torch.Tensor]


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> List[str]:
    """The 1000 ImageNet-1k class names (index order), shipped by torchvision."""
    from torchvision.models import ResNet50_Weights
    return list(ResNet50_Weights.IMAGENET1K_V1.meta['categories'])


def _name_to_index(name: str, num_classes: int) -> int:
    if num_classes != 1000:
        raise ValueError(f'label {name!r} is a name, but class names are only known for '
                         f'ImageNet (1000 classes); this model has {num_classes}: give an '
                         'integer')
    names = imagenet_class_names()
    lowered = [n.lower() for n in names]
    key = name.strip().lower().replace('_', ' ')
    if key in lowered:
        return lowered.index(key)
    close = difflib.get_close_matches(key, lowered, n=3, cutoff=0.6)
    hint = f'; did you mean {", ".join(repr(names[lowered.index(c)]) for c in close)}?' \
        if close else ''
    raise ValueError(f'unknown ImageNet class name {name!r}{hint}')


def parse_labels(spec: LabelSpec, num_classes: Optional[int]) -> Optional[List[int]]:
    """Turn a label spec into a list of class indices (or None).

    Args:
        spec: None, an int, a class name, a comma-separated string of ints
            and/or names ("1,145" or "king penguin"), a sequence of those, or
            a tensor of ints.
        num_classes: class count of the model; None for unconditional models.

    Raises:
        ValueError: a blank string (it would silently mean random labels), a
        label for an unconditional model, a label out of ``[0, num_classes)``,
        or an unknown class name.
    """
    if spec is None:
        return None
    if isinstance(spec, str) and not spec.replace(',', '').strip():
        raise ValueError(f'labels {spec!r} is empty; give class labels (e.g. 3 or 1,145), '
                         'or omit --labels (API: labels=None) for random labels')
    if num_classes is None:
        raise ValueError(f'labels {spec!r} given, but this model is unconditional; '
                         'drop the labels')
    if torch.is_tensor(spec):
        items = spec.flatten().tolist()
    elif isinstance(spec, str):
        items = [s for s in spec.split(',') if s.strip()] if ',' in spec else [spec]
    elif isinstance(spec, (int, )):
        items = [spec]
    else:
        items = list(spec)
    out = []
    for item in items:
        if isinstance(item, str):
            item = item.strip()
            value = int(item) if item.lstrip('-').isdigit() else _name_to_index(
                item, num_classes)
        else:
            value = int(item)
        if not 0 <= value < num_classes:
            raise ValueError(f'class label {value} is out of range [0, {num_classes - 1}]')
        out.append(value)
    return out


def expand_labels(labels: Optional[List[int]], num_samples: int) -> Optional[List[int]]:
    """One label per sample: a single label repeats, otherwise one each."""
    if labels is None:
        return None
    if len(labels) == 1:
        return labels * num_samples
    if len(labels) != num_samples:
        raise ValueError(f'{len(labels)} labels for {num_samples} samples: give one label '
                         f'or exactly {num_samples}')
    return list(labels)


def labels_of_data_samples(data_samples) -> Optional[torch.Tensor]:
    """(N,) long labels from DataSamples: a list, or MMagic's stacked batch."""
    items = data_samples if isinstance(data_samples, (list, tuple)) else [data_samples]
    found = [getattr(ds, 'gt_label', None) for ds in items]
    if any(f is None for f in found):
        return None
    return torch.cat([f.label.reshape(-1) for f in found]).long()


def labels_for(spec: LabelSpec, num_classes: Optional[int], num: int,
               seed: Optional[int] = None) -> Optional[List[int]]:
    """One class index in ``[0, num_classes)`` for each of ``num`` samples:
    the given ones (:func:`parse_labels`, :func:`expand_labels`), or for a
    class-conditional model without labels random ones, from a generator
    seeded by ``seed`` (None: the global torch RNG; the original draws them
    unseeded). None for an unconditional model."""
    parsed = parse_labels(spec, num_classes)
    if parsed is None and num_classes is not None:
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        return torch.randint(0, num_classes, (num, ), generator=gen).tolist()
    return expand_labels(parsed, num)


def batch_labels(spec: LabelSpec, num_classes: Optional[int], num: int,
                 data_samples=None) -> Optional[torch.Tensor]:
    """(num,) long labels of one batch: the given ones, else the data samples'
    ``gt_label``, else random ones from the global torch RNG (as MMagic's
    generative models draw them); None for an unconditional model."""
    if spec is None and data_samples and num_classes is not None:
        spec = labels_of_data_samples(data_samples)
    labels = labels_for(spec, num_classes, num)
    return None if labels is None else torch.tensor(labels, dtype=torch.long)
