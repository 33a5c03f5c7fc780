"""augment_margin, perturbed_margin, augment_robustness and the augmentations: hand-built
cases, invariant models, and the refusal of non-image inputs."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures.measures import _augment
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.augment_margin import AugmentMargin
from pgdl_measures.measures.augment_robustness import AugmentChangeRate, AugmentRobustness, prediction_change_rate
from pgdl_measures.measures.base import MeasureError
from pgdl_measures.measures.perturbed_margin import PerturbedMargin
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.tasks.trained import TrainedModel
from pgdl_measures.testing import tiny_trained_model


def test_flip_mirrors_about_half_the_images():
    batch = np.repeat(np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1), 50, axis=0)
    out = _augment.flip(batch, np.random.default_rng(0))
    flipped = [np.array_equal(o, b[:, ::-1]) for o, b in zip(out, batch)]
    kept = [np.array_equal(o, b) for o, b in zip(out, batch)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 30 < sum(flipped) < 70


def test_shift_moves_pixels_and_fills_zeros():
    x = np.zeros((200, 8, 8, 1), np.float32)
    x[:, 3, 4, 0] = 1.0
    out = _augment.shift(x, np.random.default_rng(0))
    assert np.all(out.sum(axis=(1, 2, 3)) == 1.0)  # an offset of at most 1 pixel keeps it inside
    positions = {tuple(np.argwhere(o[..., 0] == 1.0)[0]) for o in out}
    assert positions <= {(3 + dy, 4 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)} and len(positions) == 9


def test_unknown_augmentation_is_refused():
    from pgdl_measures.errors import PGDLError

    with pytest.raises(PGDLError, match="unknown augmentation 'rotate'"):
        AugmentMargin(augmentations=("flip", "rotate"))


def test_image_measures_refuse_feature_vectors():
    trained = tiny_trained_model("dense")
    for measure in (AugmentMargin(), AugmentRobustness(), AugmentChangeRate()):
        with pytest.raises(MeasureError, match=r"needs image inputs \[height, width, channels\].*\(6,\)"):
            measure(trained)


def _flip_invariant_model():
    """Global average pooling then a Dense layer: a left-right flip changes nothing."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    return TrainedModel("m", model, None, ArrayDataset(x, y), task="t"), x, y


def test_flip_invariant_model_keeps_its_predictions_and_margins():
    trained, x, y = _flip_invariant_model()
    assert AugmentChangeRate(augmentations=("flip",), repeats=3)(trained) == 0.0
    plain = np.percentile(rep.output_margins(np.asarray(trained.model.predict_on_batch(x)), y), 50)
    assert AugmentMargin(augmentations=("flip",))(trained) == pytest.approx(plain, rel=1e-5)


def test_prediction_change_rate_by_hand():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    b = np.array([[1.0, 2.0], [0.0, 1.0], [2.0, 1.0], [4.0, 3.0]])
    assert prediction_change_rate(a, b) == 0.5


def test_perturbed_margin_tends_to_the_plain_margin_as_the_noise_vanishes():
    trained = tiny_trained_model("dense")
    x, y = trained.train.take()
    plain = np.percentile(rep.output_margins(np.asarray(trained.model.predict_on_batch(x)), y), 50)
    assert PerturbedMargin(noise=1e-6)(trained) == pytest.approx(plain, abs=1e-4)
    assert PerturbedMargin(noise=1.0)(trained) != pytest.approx(plain, abs=1e-4)
