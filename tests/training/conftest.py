from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def small_data():
    """200 training, 40 validation and 100 test digits (8x8x1)."""
    from pgdl_measures.training import datasets

    return datasets.prepare(datasets.digits(train_size=240, test_size=100, seed=0), validation=40, seed=0)


def _small_mlp(data, seed=0, **options):
    import keras

    from pgdl_measures.training.models import build

    keras.utils.set_random_seed(seed)
    return build("mlp", data.input_shape, data.num_classes, **{"depth": 1, "width": 16, **options})


@pytest.fixture(scope="session")
def small_mlp():
    """``small_mlp(data, seed=0, **options)``: a seeded MLP (one hidden layer of 16) for `data`."""
    return _small_mlp
