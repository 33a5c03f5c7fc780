"""Seeded, repeated, shuffled streams of batches: ``tf.data``'s
``ds.shuffle(buffer).repeat().batch(b)`` emulated with NumPy, so both Keras backends see the same
batches, over examples held in memory or over a whole training set streamed from its shards
(only the shuffle buffer held). Shared by :mod:`~pgdl_measures.measures.sharpness` and
:mod:`~pgdl_measures.measures.sharpness_pgdl`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from pgdl_measures.errors import PGDLError

__all__ = ["BatchStream", "DatasetBatchStream", "batch_stream", "shuffle_buffer", "shuffle_buffer_order"]

_END = object()


def shuffle_buffer(items: Iterable, buffer_size: int, rng: np.random.Generator) -> Iterator:
    """`items` in the order ``tf.data``'s ``shuffle(buffer_size)`` gives them, holding at most
    `buffer_size` of them.

    The buffer is filled with the first `buffer_size` items; then each output is a uniformly
    chosen buffer slot, refilled with the next item while any remain; at the end the buffer
    drains in random order (``rng.integers`` once per item). Item ``i`` therefore never comes
    out before position ``i - buffer_size + 1``.
    """
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
    source = iter(items)
    buffer = list(itertools.islice(source, buffer_size))
    while buffer:
        slot = int(rng.integers(len(buffer)))
        item = buffer[slot]
        following = next(source, _END)
        if following is not _END:
            buffer[slot] = following
        else:
            buffer[slot] = buffer[-1]
            buffer.pop()
        yield item


def shuffle_buffer_order(n: int, buffer_size: int | None, rng: np.random.Generator) -> np.ndarray:
    """One epoch's order of ``0..n-1`` as ``tf.data``'s ``shuffle(buffer_size)`` produces it
    (:func:`shuffle_buffer` over the indices); ``buffer_size=None`` (or >= n) is a uniform
    permutation.

    Args:
        n: the number of examples.
        buffer_size: the shuffle buffer's size (>= 1), or None for a full shuffle.
        rng: the NumPy generator that makes the choices.

    Returns:
        A permutation of ``arange(n)`` (int64).
    """
    if buffer_size is None or buffer_size >= n:
        return rng.permutation(n).astype(np.int64)
    return np.fromiter(shuffle_buffer(range(n), buffer_size, rng), dtype=np.int64, count=n)


class BatchStream:
    """An endless, seeded stream of ``(x, y)`` batches: shuffle, repeat, batch.

    Emulates ``tf.data``'s ``ds.shuffle(buffer_size).repeat().batch(batch_size)`` over examples
    held in memory: every epoch is shuffled anew (:func:`shuffle_buffer_order`) and a batch may
    span two epochs, so every batch is full.

    Args:
        x: the inputs, one example per row.
        y: the integer labels.
        batch_size: examples per batch.
        buffer_size: the shuffle buffer (None: a full shuffle of each epoch).
        rng: the generator of the shuffles.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, buffer_size: int | None,
                 rng: np.random.Generator):
        if len(x) == 0:
            raise PGDLError("the training data is empty: no batches to draw")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size, self.buffer_size, self.rng = int(batch_size), buffer_size, rng
        self._order = np.empty(0, dtype=np.int64)
        self._pos = 0
        self.epochs = 0

    def next_indices(self) -> np.ndarray:
        """The example indices of the next batch."""
        parts, need = [], self.batch_size
        while need:
            if self._pos == len(self._order):
                self._order = shuffle_buffer_order(len(self.x), self.buffer_size, self.rng)
                self._pos = 0
                self.epochs += 1
            take = self._order[self._pos:self._pos + need]
            self._pos += len(take)
            need -= len(take)
            parts.append(take)
        return np.concatenate(parts)

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch ``(x, y)``."""
        idx = self.next_indices()
        return self.x[idx], self.y[idx]


class DatasetBatchStream:
    """:class:`BatchStream` over a :class:`~pgdl_measures.tasks.data.Dataset` read in order every epoch,
    holding only the shuffle buffer (and one read chunk) in memory: ``tf.data``'s
    ``ds.shuffle(buffer_size).repeat().batch(batch_size)`` over a whole training set.

    With a generator used for nothing else it gives the batches :class:`BatchStream` gives on
    the same examples in memory (the same ``rng`` draws, in the same order).

    Args:
        dataset: the examples.
        batch_size: examples per batch.
        buffer_size: the shuffle buffer (>= 1).
        rng: the generator of the shuffles.
        limit: only the first `limit` examples make an epoch (all when None).
        chunk: examples read at a time.
    """

    def __init__(self, dataset, batch_size: int, buffer_size: int, rng: np.random.Generator, *,
                 limit: int | None = None, chunk: int = 1024):
        self.n = len(dataset) if limit is None else min(int(limit), len(dataset))
        if self.n == 0:
            raise PGDLError("the training data is empty: no batches to draw")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self.dataset, self.batch_size, self.buffer_size, self.rng = dataset, int(batch_size), int(buffer_size), rng
        self.chunk = int(chunk)
        self._examples: Iterator = iter(())
        self.epochs = 0

    def _rows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for x, y in self.dataset.batches(self.chunk, limit=self.n):
            for i in range(len(x)):
                yield x[i].copy(), y[i]  # a copy: a row kept in the buffer must not pin its chunk

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch ``(x, y)``."""
        xs, ys = [], []
        fresh = False
        while len(xs) < self.batch_size:
            item = next(self._examples, _END)
            if item is _END:
                if fresh:
                    raise PGDLError(f"the training data yielded no examples (expected {self.n})")
                self._examples = shuffle_buffer(self._rows(), self.buffer_size, self.rng)
                self.epochs += 1
                fresh = True
                continue
            fresh = False
            xs.append(item[0])
            ys.append(item[1])
        return np.stack(xs), np.asarray(ys)


def batch_stream(dataset, batch_size: int, buffer_size: int | None, rng: np.random.Generator, *,
                 limit: int | None = None) -> BatchStream | DatasetBatchStream:
    """A stream of the first `limit` examples of `dataset` (all when None): a
    :class:`DatasetBatchStream` when the shuffle buffer is smaller than the data, else (a full
    shuffle needs every example) a :class:`BatchStream` over the examples read into memory."""
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if buffer_size is not None and buffer_size < n:
        return DatasetBatchStream(dataset, batch_size, buffer_size, rng, limit=n)
    if n == 0:
        raise PGDLError("the training data is empty: no batches to draw")
    x, y = dataset.take(n)
    return BatchStream(x, y, batch_size, buffer_size, rng)
