"""Datasets the zoo trains on, as train/test arrays (:class:`Splits`).

Loaders (:data:`DATASETS`), each a function of explicit keyword options that a spec's
``"dataset"`` object passes through:

* ``digits``: scikit-learn's bundled handwritten digits (``load_digits``: 1,797 8x8 grey images,
  10 classes; always offline). Pixels are scaled from 0..16 to 0..1; images get a channel axis
  (8x8x1).
* ``npz``: arrays in a NumPy ``.npz`` file, either with keys ``x_train, y_train, x_test, y_test``
  (the split is kept) or ``x, y`` (split here). Inputs are used as they are (cast to float32);
  ``[n, h, w]`` images get a channel axis. Labels are integer class indices ``0..K-1``.

``train_size``/``test_size`` choose how many examples each split keeps (an int, or a fraction of
the data for a split made here); the split and any subsampling are stratified by class and fixed
by ``seed``. What a loader returns is exactly what the models train and are tested on, and what
the task's ``dataset_1/train`` and ``dataset_1/test`` hold.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgdl_measures.errors import PGDLError


@dataclass
class Splits:
    """Training and held-out test arrays of one dataset.

    Attributes:
        name: the dataset's name (``digits``, the npz file's stem).
        x_train, y_train: float32 inputs ``[n, ...]`` and int64 labels ``[n]`` the models train on.
        x_test, y_test: the held-out split.
        num_classes: ``max label + 1`` over both splits.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> list[int]:
        return [int(d) for d in self.x_train.shape[1:]]

    def fingerprint(self) -> str:
        """SHA-256 of the four arrays (shapes, dtypes and bytes): identifies the data of a run."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def summary(self) -> dict:
        return {"name": self.name, "train_examples": len(self.y_train), "test_examples": len(self.y_test),
                "input_shape": self.input_shape, "num_classes": self.num_classes}


def _as_inputs(x, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{where} must be a numeric array [n, ...], got {x.dtype} of shape {x.shape}")
    x = x.astype(np.float32)
    if x.ndim == 3:  # [n, h, w] grey images -> [n, h, w, 1]
        x = x[..., None]
    return x


def _as_labels(y, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise ValueError(f"{where} must hold one integer label per example, shape ({n},), got {y.shape}"
                         + (" (one-hot labels? store class indices instead)" if y.ndim == 2 else ""))
    if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"{where} must be non-negative integer class indices, got {y.dtype}")
    return y.astype(np.int64)


def _split(x, y, train_size, test_size, seed):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, train_size=train_size, test_size=test_size, random_state=seed,
                            stratify=y, shuffle=True)


def _subsample(x, y, size, seed):
    """At most `size` examples (an int), stratified, in a seeded order; all when None."""
    if size is None or size >= len(y):
        return x, y
    x_keep, _, y_keep, _ = _split(x, y, size, None, seed)
    return x_keep, y_keep


def _splits(name, x_train, y_train, x_test, y_test) -> Splits:
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"train inputs have shape {x_train.shape[1:]} but test inputs {x_test.shape[1:]}")
    if len(y_train) == 0 or len(y_test) == 0:
        raise ValueError("both the training and the test split need at least one example")
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return Splits(name, x_train, y_train, x_test, y_test, num_classes)


def digits(*, train_size: int | float = 0.75, test_size: int | float | None = None,
           seed: int = 0) -> Splits:
    """scikit-learn's handwritten digits, 8x8x1 in [0, 1], split by class-stratified sampling.

    Args:
        train_size: training examples (int) or fraction of the 1,797.
        test_size: test examples (int) or fraction; None: all the others.
        seed: the split's random state.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = _split(x, y, train_size, test_size, seed)
    return _splits("digits", x_train, y_train, x_test, y_test)


def npz(*, path: str | os.PathLike, train_size: int | float | None = None,
        test_size: int | float | None = None, seed: int = 0) -> Splits:
    """Arrays from an ``.npz`` file (keys ``x_train, y_train, x_test, y_test`` or ``x, y``).

    Args:
        path: the file (a relative path is resolved against the spec's folder by the caller).
        train_size, test_size: with ``x, y``: each split's size (int or fraction; defaults: 75% /
            the rest); with a stored split: at most this many examples (int) of each split.
        seed: the random state of the split and of subsampling.

    Raises:
        PGDLError: the file is missing or unreadable, or lacks the keys.
        ValueError: malformed arrays (the caller adds the spec file).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise PGDLError("dataset file not found (a relative path is taken from the spec's folder)", path) from None
    except (OSError, ValueError) as exc:
        raise PGDLError(f"not a readable .npz file: {exc}", path) from None
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        x_train = _as_inputs(arrays["x_train"], "x_train")
        x_test = _as_inputs(arrays["x_test"], "x_test")
        y_train = _as_labels(arrays["y_train"], len(x_train), "y_train")
        y_test = _as_labels(arrays["y_test"], len(x_test), "y_test")
        for size in (train_size, test_size):
            if size is not None and not (isinstance(size, int) and size > 0):
                raise ValueError("with a stored split, train_size and test_size must be positive integers")
        x_train, y_train = _subsample(x_train, y_train, train_size, seed)
        x_test, y_test = _subsample(x_test, y_test, test_size, seed)
    elif {"x", "y"} <= arrays.keys():
        x = _as_inputs(arrays["x"], "x")
        y = _as_labels(arrays["y"], len(x), "y")
        x_train, x_test, y_train, y_test = _split(
            x, y, 0.75 if train_size is None else train_size, test_size, seed)
    else:
        raise PGDLError(f"expected arrays x_train, y_train, x_test, y_test (or x, y); found "
                        f"{', '.join(sorted(arrays)) or 'none'}", path)
    return _splits(path.stem, x_train, y_train, x_test, y_test)


#: dataset name in a spec -> loader taking the spec's options as keyword arguments.
DATASETS = {"digits": digits, "npz": npz}
