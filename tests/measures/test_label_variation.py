"""label_variation: the k-NN cosine graph and the label variation by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures.measures.label_variation import LabelVariation, knn_cosine_graph, label_variation
from pgdl_measures.testing import tiny_trained_model


def test_graph_by_hand():
    h = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    w = knn_cosine_graph(h, 1)
    c = 1 / np.sqrt(2)
    expected = np.array([[0, c, 0, 0], [c, 0, c, 0], [0, c, 0, 0], [0, 0, 0, 0]])
    # 0 and 2 each keep 1 (cos 1/sqrt 2); 1 keeps 0 or 2 (a tie), and symmetrising restores the other;
    # 3 has no positive similarity, so no edge
    assert np.allclose(w, expected)


def test_label_variation_by_hand():
    w = np.array([[0, 2.0, 1.0], [2.0, 0, 0], [1.0, 0, 0]])
    assert label_variation(w, np.array([0, 0, 1])) == pytest.approx(2 * 1.0 / (2 * 3.0))
    assert label_variation(w, np.array([5, 5, 5])) == 0.0
    assert label_variation(np.zeros((3, 3)), np.array([0, 1, 2])) == 0.0


def test_separated_classes_have_no_variation():
    rng = np.random.default_rng(0)
    h = np.concatenate([rng.uniform(0.9, 1.0, (10, 2)) * [1, 0.01], rng.uniform(0.9, 1.0, (10, 2)) * [0.01, 1]])
    y = np.repeat([0, 1], 10)
    assert label_variation(knn_cosine_graph(h, 3), y) == 0.0


def test_measure_runs_on_a_layer():
    value = LabelVariation(layer=0, k=3, examples_per_class=10)(tiny_trained_model("conv"))
    assert 0.0 <= value <= 1.0
