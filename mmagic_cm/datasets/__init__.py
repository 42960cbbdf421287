"""Training data: the bundled digits (no download), image folders, core-only transforms.

- :mod:`.digits`: ``DigitsDataset``, scikit-learn's 8x8 digits at 16x16;
- :mod:`.folders`: checks of image folders (ImageNet, LSUN) before a run;
- :mod:`.transforms`: the stand-in of MMagic's ``PackInputs`` (core-only mode).
"""
from .digits import DigitsDataset, load_digits_arrays

__all__ = ['DigitsDataset', 'load_digits_arrays']
