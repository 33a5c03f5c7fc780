"""Helpers the built-in measures share: argument checks and fixed-shape batches (no Keras)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pgdl_measures.errors import PGDLError


def padded_batches(dataset, batch_size: int, limit: int | None = None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """Yield ``(x, y, n)``: batches of exactly `batch_size` examples, the last one padded by
    repeating its final example, and ``n`` the number of real examples in it.

    A fixed shape lets a compiled function be traced once per model; per-example results of
    the padding are dropped by the caller (``result[:n]``).
    """
    for x, y in dataset.batches(batch_size, limit=limit):
        x = np.asarray(x, np.float32)
        y = np.asarray(y).astype(np.int64).reshape(-1)
        n = len(x)
        if n == 0:
            continue
        if n < batch_size:
            pad = batch_size - n
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
            y = np.concatenate([y, np.repeat(y[-1:], pad)])
        yield x, y, n


def check_labels(y: np.ndarray, num_classes: int) -> None:
    """Raise PGDLError when a label is not an integer in ``[0, num_classes)``."""
    bad = (y < 0) | (y >= num_classes)
    if np.any(bad):
        raise PGDLError(f"label {int(y[bad][0])} is outside [0, {num_classes}) for a model with "
                        f"{num_classes} outputs: the data and the model do not match")
