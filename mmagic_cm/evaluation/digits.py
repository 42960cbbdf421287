"""Metrics for the digits models: a shipped classifier judges the samples.

- recognisability: share of samples the classifier labels with confidence
  >= 0.9, and (for class-conditional samples) its accuracy against the
  requested labels;
- coverage: entropy of the predicted classes (ln 10 = 2.303 when all ten
  are equally frequent);
- Frechet distance between classifier features (the 128-d penultimate
  layer) of the samples and of the held-out split.

The same numbers for real held-out images are the floor to compare with.
"""
from __future__ import annotations

import os.path as osp
import warnings
from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from ..datasets.digits import NUM_CLASSES, load_digits_arrays
from ..files.checkpoint import read_checkpoint
from ..files.images import from_uint8

CLASSIFIER_PATH = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'weights',
                           'digits', 'classifier.pt')


class DigitsClassifier(nn.Module):
    """Small CNN on (N, 3, S, S) images in [-1, 1]; ``features`` is 128-d."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, 128), nn.ReLU())
        self.head = nn.Linear(128, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return from_uint8(images)


def train_classifier(image_size: int = 16, epochs: int = 40, seed: int = 0
                     ) -> (DigitsClassifier, float):
    """Train on the train split (with +-1 px shifts); returns (model, test accuracy)."""
    torch.manual_seed(seed)
    x, y = load_digits_arrays(image_size, 'train')
    xt, yt = load_digits_arrays(image_size, 'test')
    x, y = to_model_input(x), torch.from_numpy(y)
    model = DigitsClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(64):
            shift = tuple(torch.randint(-1, 2, (2, )).tolist())
            loss = nn.functional.cross_entropy(model(torch.roll(x[idx], shift, (2, 3))),
                                               y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(to_model_input(xt)).argmax(1).numpy() == yt).mean()
    return model, float(acc)


def load_classifier(path: str = CLASSIFIER_PATH) -> DigitsClassifier:
    if not osp.isfile(path):
        raise FileNotFoundError(f'digits classifier not found at {path}; make it with '
                                'python tools/eval_digits.py --train-classifier')
    model = DigitsClassifier()
    state = read_checkpoint(path)  # checks the shipped file's SHA-256 too
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets (N, D)."""
    from scipy import linalg
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # singular products are handled below, not printed
        warnings.simplefilter('ignore', linalg.LinAlgWarning)
        covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    return float(((mu1 - mu2)**2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@torch.no_grad()
def digits_metrics(images: np.ndarray, labels: Optional[np.ndarray] = None,
                   classifier: Optional[DigitsClassifier] = None,
                   reference: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Metrics of uint8 NHWC ``images`` (optionally with intended ``labels``).

    Args:
        reference: real images for the Frechet distance (default: the
            held-out split at the same size).
    """
    classifier = classifier or load_classifier()
    if reference is None:
        reference, _ = load_digits_arrays(images.shape[1], 'test')
    x = to_model_input(images)
    probs = torch.softmax(classifier(x), 1).numpy()
    pred = probs.argmax(1)
    hist = np.bincount(pred, minlength=NUM_CLASSES) / len(pred)
    nz = hist[hist > 0]
    out = dict(
        confident=float((probs.max(1) >= 0.9).mean()),
        class_entropy=float(-(nz * np.log(nz)).sum()),
        min_class_share=float(hist.min()),
        frechet=frechet_distance(classifier.features(x).numpy(),
                                 classifier.features(to_model_input(reference)).numpy()))
    if labels is not None:
        out['accuracy'] = float((pred == labels).mean())
    return out


def real_floor(num: int = 1000, image_size: int = 16, seed: int = 0,
               classifier: Optional[DigitsClassifier] = None) -> Dict[str, float]:
    """The same metrics for ``num`` real training images against the held-out split."""
    x, y = load_digits_arrays(image_size, 'train')
    idx = np.random.default_rng(seed).choice(len(x), size=min(num, len(x)), replace=False)
    return digits_metrics(x[idx], y[idx], classifier)


#: middle grid indices tried for two-step sampling (40-point grid), the same for every method
MID_CANDIDATES = (8, 14, 18, 22, 26, 30)


def choose_two_step_ts(model, candidates=MID_CANDIDATES, num_samples: int = 500,
                       steps: int = 40, batch_size: int = 250):
    """The two-step ``ts`` (0, m, steps - 1) whose samples have the lowest
    Fréchet distance, m from ``candidates`` (``num_samples`` balanced samples
    each; the original's search over the middle point, on a fixed list).

    Returns ``(ts, {m: frechet})``.
    """
    labels = np.arange(num_samples) % 10
    scores = {}
    for m in candidates:
        images, _ = model.sample(num_samples, labels=labels.tolist(), batch_size=batch_size,
                                 sampler='multistep', steps=steps, ts=(0, int(m), steps - 1))
        scores[int(m)] = digits_metrics(images, labels)['frechet']
    best = min(scores, key=scores.get)
    return (0, best, steps - 1), scores
