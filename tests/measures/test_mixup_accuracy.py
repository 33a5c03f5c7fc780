"""mixup_accuracy: within-class partners, every same-class pair, a loop over batches, classes and pairs."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.mixup_accuracy import MixupAccuracy
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


def test_pairwise_mixtures_mix_every_pair_once():
    x = np.array([[1.0], [10.0], [100.0]], np.float32)
    assert rep.pairwise_mixtures(x, 0.5)[:, 0].tolist() == [5.5, 50.5, 55.0]
    assert rep.pairwise_mixtures(x, 0.75)[:, 0].tolist() == [7.75, 75.25, 77.5]  # lam x_j + (1 - lam) x_i, i < j
    assert rep.pairwise_mixtures(x[:1], 0.5).shape == (0, 1)


@pytest.mark.parametrize("lam, per_class", [(0.5, 4), (0.3, 6)])
def test_mixup_accuracy_equals_a_loop_over_batches_classes_and_pairs(lam, per_class):
    trained = tiny_trained_model("dense")  # 48 examples, 3 classes: batches of 3 * per_class, read over again
    x, y = trained.train.take()
    size, batches = 3 * per_class, 10
    rows = np.arange(batches * size) % len(x)
    per_class_accuracy = {k: [] for k in range(3)}
    for b in range(batches):
        xb, yb = x[rows[b * size:(b + 1) * size]], y[rows[b * size:(b + 1) * size]]
        for k in range(3):
            members = xb[yb == k]
            hits = [int(np.argmax(trained.model.predict_on_batch(lam * members[j:j + 1] + (1 - lam) * members[i:i + 1]))
                        == k) for i in range(len(members)) for j in range(i + 1, len(members))]
            if hits:
                per_class_accuracy[k].append(np.mean(hits))
    expected = np.mean([np.mean(v) for v in per_class_accuracy.values() if v])
    assert MixupAccuracy(lam=lam, per_class_in_batch=per_class)(trained) == pytest.approx(expected, abs=1e-12)


def test_output_margins_on_hand_built_logits():
    z = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0], [1.0, 1.0, 4.0]])
    assert rep.output_margins(z, np.array([0, 2, 2])).tolist() == [1.0, -6.0, 3.0]


@pytest.mark.parametrize("bad", [{"lam": 1.5}, {"batches": 0}, {"per_class_in_batch": 2.5}, {"lam": "half"}])
def test_bad_parameters_are_refused(bad):
    from pgdl_measures.errors import PGDLError

    with pytest.raises(PGDLError):
        MixupAccuracy(**bad)
