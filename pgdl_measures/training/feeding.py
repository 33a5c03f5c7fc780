"""Training batches whose order and augmentation depend only on the seed and the epoch.

:class:`EpochBatches` draws epoch ``e``'s order and augmentation from
``numpy.random.default_rng([seed, e])``, so they do not depend on what ran before: a run
resumed at epoch ``e`` sees the very batches an uninterrupted run saw.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from pgdl_measures.training.datasets import augment_batch


class EpochBatches(keras.utils.PyDataset):
    """A ``keras.utils.PyDataset`` of training batches (see the module docstring).

    The fit loop sets :attr:`epoch` before the epoch's batches are drawn
    (:class:`~pgdl_measures.training.callbacks.SetEpoch`).

    Args:
        x, y: the training examples and labels.
        batch_size: examples per batch (the last may be smaller).
        seed: the random state of every epoch's order and augmentation.
        augment: the augmentation of :func:`~pgdl_measures.training.datasets.augment_batch`, or None.
        start_epoch: the epoch the run starts at.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, augment: str | None = None,
                 start_epoch: int = 0):
        super().__init__()
        self.x, self.y = x, y
        self.batch_size, self.seed, self.augment = batch_size, int(seed), augment
        self.epoch = int(start_epoch)
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self):
        return math.ceil(len(self.y) / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of the examples in `epoch`."""
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.y))}
        return self._orders[epoch]

    def __getitem__(self, index):
        epoch = self.epoch
        idx = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        xb = self.x[idx]
        if self.augment is not None:
            xb = augment_batch(xb, self.augment, np.random.default_rng([self.seed, epoch, int(index), 1]))
        return xb, self.y[idx]
