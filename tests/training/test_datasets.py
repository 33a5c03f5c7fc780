"""Dataset readers on tiny files written here in each dataset's real format; offline datasets;
normalisation, augmentation, the seeded fraction and validation split; missing-file errors."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.training import datasets as ds

RNG = np.random.default_rng(0)


def images(n, shape):
    return RNG.integers(0, 256, size=(n,) + shape, dtype=np.uint8)


def labels(n, classes=10):
    return np.arange(n) % classes


def write_idx(path, array, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist_idx(folder, n_train=20, n_test=10, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": images(n_train, (28, 28)), "train-labels-idx1-ubyte": labels(n_train),
              "t10k-images-idx3-ubyte": images(n_test, (28, 28)), "t10k-labels-idx1-ubyte": labels(n_test)}
    for name, array in arrays.items():
        write_idx(folder / name, array, gz)
    return arrays


def test_mnist_npz_as_keras_downloads_it(tmp_path):
    x_train, x_test = images(20, (28, 28)), images(10, (28, 28))
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=labels(20).astype(np.uint8), x_test=x_test,
             y_test=labels(10).astype(np.uint8))
    s = ds.mnist(data_dir=tmp_path)
    assert s.x_train.shape == (20, 28, 28, 1) and s.x_test.shape == (10, 28, 28, 1)
    np.testing.assert_allclose(s.x_train[..., 0], x_train / 255.0, rtol=1e-6)
    assert s.num_classes == 10 and s.augment is None


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_and_fashion_idx_files(tmp_path, gz):
    arrays = write_mnist_idx(tmp_path, gz=gz)
    s = ds.mnist(data_dir=tmp_path)
    np.testing.assert_array_equal(s.y_test, arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_allclose(s.x_test[..., 0], arrays["t10k-images-idx3-ubyte"] / 255.0, rtol=1e-6)
    write_mnist_idx(tmp_path / "fashion-mnist", gz=gz)  # Keras's cache layout
    f = ds.fashion_mnist(data_dir=tmp_path, train_size=10, seed=1)
    assert f.x_train.shape == (10, 28, 28, 1) and sorted(np.bincount(f.y_train)) == [1] * 10


def test_cifar_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    raw = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = images(10, (3, 32, 32))
        raw[name] = x
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x.reshape(10, -1), b"labels": list(labels(10)), b"batch_label": b"x"}, f)
    s = ds.cifar10(data_dir=tmp_path, standardize=False)
    assert s.x_train.shape == (50, 32, 32, 3) and s.augment == "crop_flip"
    np.testing.assert_allclose(s.x_test, raw["test_batch"].transpose(0, 2, 3, 1) / 255.0, rtol=1e-6)
    z = ds.cifar10(data_dir=tmp_path)  # standardised with the training split's per-channel statistics
    np.testing.assert_allclose(z.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(z.x_train.std(axis=(0, 1, 2)), 1, atol=1e-3)

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": images(20, (3072,)), b"fine_labels": list(labels(20, 100) * 5 % 100),
                         b"coarse_labels": list(labels(20, 20))}, f)
    assert ds.cifar100(data_dir=tmp_path).num_classes == 96
    assert ds.cifar100(data_dir=tmp_path, label_mode="coarse").num_classes == 20


def test_svhn_mat_files(tmp_path):
    from scipy.io import savemat

    for name, n in (("train_32x32.mat", 12), ("test_32x32.mat", 6)):
        x = images(n, (32, 32, 3))
        savemat(tmp_path / name, {"X": np.transpose(x, (1, 2, 3, 0)), "y": (labels(n) + 1).reshape(-1, 1)})
    s = ds.svhn(data_dir=tmp_path, standardize=False)
    assert s.x_train.shape == (12, 32, 32, 3) and s.augment == "crop"
    assert list(s.y_test) == [1, 2, 3, 4, 5, 6]  # label k+1 in the file is digit k+1; 10 means 0
    assert 0 in s.y_train  # label 10 read as 0


@pytest.mark.parametrize("name, files", [("mnist", "mnist.npz or the idx files"), ("fashion_mnist", "idx files"),
                                         ("cifar10", "data_batch_1"), ("cifar100", "train and test"),
                                         ("svhn", "train_32x32.mat and test_32x32.mat")])
def test_a_missing_dataset_is_one_line_naming_files_and_folder(tmp_path, name, files):
    with pytest.raises(PGDLError) as err:
        ds.load_dataset(name, data_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and files in message and str(tmp_path) in message and "--data-dir" in message


def test_default_folder_is_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert ds.default_data_dir() == tmp_path / "datasets"
    write_mnist_idx(tmp_path / "datasets")
    assert len(ds.mnist().y_train) == 20


def test_offline_datasets_and_unknown_name():
    s = ds.mnist_digits(seed=0)
    assert s.x_train.shape == (4000, 28, 28, 1) and len(s.y_test) == 1000
    assert 0 <= s.x_train.min() < s.x_train.max() <= 1
    assert ds.digits().input_shape == [8, 8, 1]
    with pytest.raises(PGDLError, match="unknown dataset 'imagenet'; known: digits"):
        ds.load_dataset("imagenet")


def test_prepare_fraction_and_validation_are_seeded_and_stratified():
    s = ds.digits(seed=0)
    a = ds.prepare(s, train_fraction=0.2, validation=50, seed=3)
    b = ds.prepare(s, train_fraction=0.2, validation=50, seed=3)
    c = ds.prepare(s, train_fraction=0.2, validation=50, seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, c.y_train)
    assert len(a.y_val) == 50 and len(a.y_train) + 50 == round(0.2 * len(s.y_train))
    assert np.bincount(a.y_train).min() >= 20  # stratified
    with pytest.raises(PGDLError, match="train_fraction"):
        ds.prepare(s, train_fraction=1.5)


def test_augmentation_pads_crops_and_flips():
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1) + 1
    rng = np.random.default_rng(0)
    out = ds.augment_batch(x, "crop_flip", rng, pad=1)
    assert out.shape == x.shape
    for i in range(2):  # each output is a shifted (possibly mirrored) window of the zero-padded image
        padded = np.pad(x[i, ..., 0], 1)
        windows = [padded[r:r + 4, c:c + 4] for r in range(3) for c in range(3)]
        assert any(np.array_equal(out[i, ..., 0], w) or np.array_equal(out[i, ..., 0], w[:, ::-1]) for w in windows)
    assert ds.augment_batch(x, None, rng) is x
    seen = {ds.augment_batch(x, "crop", np.random.default_rng(s), pad=1).tobytes() for s in range(20)}
    assert len(seen) > 5
