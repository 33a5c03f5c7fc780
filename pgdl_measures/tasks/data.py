"""Training and test data as streams of numpy batches.

Measures read data only through :class:`Dataset`: ``batches(batch_size, limit=...)`` yields
``(x, y)`` numpy arrays in a fixed order, so a measure never needs the whole set in memory and
gives the same value on every backend. Two implementations: :class:`ShardedDataset` streams a
task's TFRecord shards, :class:`ArrayDataset` wraps arrays already in memory (tests, the zoo).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np


class Dataset(abc.ABC):
    """A finite, ordered dataset of (input, integer label) examples."""

    @abc.abstractmethod
    def batches(self, batch_size: int, *, limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(x, y)`` batches in dataset order, at most `limit` examples in all."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of examples."""

    def take(self, n: int | None = None, *, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """The first `n` examples (all when None) as two arrays."""
        xs, ys = [], []
        for x, y in self.batches(batch_size, limit=n):
            xs.append(x)
            ys.append(y)
        if not xs:
            raise ValueError("the dataset is empty")
        return np.concatenate(xs), np.concatenate(ys)


class ArrayDataset(Dataset):
    """A dataset held in memory as arrays ``x`` (float32) and ``y`` (integer labels)."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y).astype(np.int64).reshape(-1)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size, *, limit=None):
        n = len(self.x) if limit is None else min(limit, len(self.x))
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield self.x[start:stop], self.y[start:stop]

    def __repr__(self):
        return f"ArrayDataset({len(self)} examples, input shape {self.x.shape[1:]})"


class ShardedDataset(Dataset):
    """A split of a task (``dataset_1/train`` or ``dataset_1/test``) read from TFRecord shards.

    Shards are read in natural sorted order (see :mod:`pgdl_measures.tasks.tfrecords`), streamed.
    """

    def __init__(self, files: Sequence[Path]):
        self.files = [Path(f) for f in files]
        self._len: int | None = None

    @classmethod
    def from_folder(cls, folder: str | Path) -> ShardedDataset:
        from pgdl_measures.tasks.tfrecords import list_shards

        return cls(list_shards(folder))

    def __len__(self) -> int:
        if self._len is None:
            from pgdl_measures.tasks.tfrecords import count_examples

            self._len = count_examples(self.files)
        return self._len

    def batches(self, batch_size, *, limit=None):
        from pgdl_measures.tasks.tfrecords import iter_batches

        yield from iter_batches(self.files, batch_size, limit=limit)

    def __repr__(self):
        folder = self.files[0].parent if self.files else "?"
        return f"ShardedDataset({folder}, {len(self.files)} shards)"
