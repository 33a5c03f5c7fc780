"""mixup_accuracy and mixup_margin: within-class partners, and lam = 1 giving the plain values."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.mixup_accuracy import MixupAccuracy
from pgdl_measures.measures.mixup_margin import MixupMargin
from pgdl_measures.testing import tiny_trained_model


def test_partners_come_from_the_same_class():
    y = np.array([0, 0, 1, 1, 1, 2])
    x = np.array([[0.0], [10.0], [100.0], [200.0], [300.0], [7.0]], np.float32)
    mixed = rep.within_class_mixup(x, y, 0.5, np.random.default_rng(0))
    assert mixed[5, 0] == 7.0  # a class of one is its own partner
    for i in range(5):
        same = x[y == y[i], 0]
        partner = 2 * mixed[i, 0] - x[i, 0]
        assert partner in same


def test_lam_one_gives_plain_training_accuracy_and_margins():
    trained = tiny_trained_model("dense")
    x, y = rep.class_balanced_sample(trained.train, 3, 8)
    z = np.asarray(trained.model.predict_on_batch(x))
    assert MixupAccuracy(lam=1.0, examples_per_class=8)(trained) == pytest.approx(np.mean(z.argmax(1) == y))
    margins = rep.output_margins(z, y)
    assert MixupMargin(lam=1.0, percentile=25.0, examples_per_class=8)(trained) == \
        pytest.approx(np.percentile(margins, 25.0), rel=1e-5, abs=1e-6)


def test_output_margins_on_hand_built_logits():
    z = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0], [1.0, 1.0, 4.0]])
    assert rep.output_margins(z, np.array([0, 2, 2])).tolist() == [1.0, -6.0, 3.0]


@pytest.mark.parametrize("bad", [{"lam": 1.5}, {"examples_per_class": 0}, {"lam": "half"}])
def test_bad_parameters_are_refused(bad):
    from pgdl_measures.errors import PGDLError

    with pytest.raises(PGDLError):
        MixupAccuracy(**bad)
