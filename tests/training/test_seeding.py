"""Seeded training is reproducible when other threads draw from Python's global `random` (as the
event loop of a Dask worker does while a search trial builds its model)."""

from __future__ import annotations

import random
import threading

import numpy as np

from pgdl_measures.training.fit import seeded
from pgdl_measures.training.models import build


def _weights(seed: int) -> list[np.ndarray]:
    with seeded(seed):
        model = build("vgg", (8, 8, 1), 10, depth=2, width=8, dropout=0.25)
        return [np.array(w) for w in model.get_weights()]


def test_seeded_weights_ignore_other_threads_drawing_from_random():
    reference = _weights(0)
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            random.random()

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        noisy = _weights(0)
    finally:
        stop.set()
        thread.join()
    assert len(reference) == len(noisy)
    for a, b in zip(reference, noisy):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(reference, _weights(1)))


def test_seeded_draws_what_set_random_seed_draws_in_one_thread():
    """The private generator gives the global one's sequence: single-threaded runs (pgdl zoo,
    data/mini) are unchanged."""
    import keras

    keras.utils.set_random_seed(3)
    plain = [np.array(w) for w in build("vgg", (8, 8, 1), 10, depth=2, width=8).get_weights()]
    with seeded(3):
        ours = [np.array(w) for w in build("vgg", (8, 8, 1), 10, depth=2, width=8).get_weights()]
    for a, b in zip(plain, ours):
        np.testing.assert_array_equal(a, b)
