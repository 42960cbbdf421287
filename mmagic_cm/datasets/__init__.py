from .digits import DigitsDataset, load_digits_arrays

__all__ = ['DigitsDataset', 'load_digits_arrays']
