"""The zoo's datasets: the loaders live in :mod:`pgdl_measures.training.datasets` (the one place
datasets are read for training); this module re-exports them for the zoo's spec."""

from pgdl_measures.training.datasets import DATASETS, Splits, digits, mnist_digits, npz

__all__ = ["DATASETS", "Splits", "digits", "mnist_digits", "npz"]
