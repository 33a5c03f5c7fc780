"""label_variation (the authors' VPM) and label_variation_knn: the graphs and variations by hand,
and label_variation against the values the authors' own code (cadurosar/pgdl, ``VPM_1``, run
unchanged by ``pgdl run-submission``) gave on data/mnist_conv
(tests/measures/reference/vpm/mnist_conv.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.label_variation import (
    LabelVariation,
    LabelVariationKNN,
    graph_variation,
    knn_cosine_graph,
    label_variation,
    mixup,
    rbf_nearest_neighbour_laplacian,
    shuffle_buffer_draw,
)
from pgdl_measures.tasks.task import Task
from pgdl_measures.testing import tiny_trained_model

MNIST_CONV = Path(__file__).resolve().parents[2] / "data" / "mnist_conv" / "input_data" / "mnist_conv"
REFERENCE = Path(__file__).parent / "reference" / "vpm" / "mnist_conv.json"


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
    value = LabelVariationKNN(layer=0, k=3, examples_per_class=10)(tiny_trained_model("conv"))
    assert 0.0 <= value <= 1.0


def test_rbf_nearest_neighbour_laplacian_by_hand():
    # two close pairs and a point on its own; the graph is built on unit rows
    h = np.array([[1.0, 0.0], [0.995, 0.0998], [0.0, 1.0], [0.0998, 0.995], [-1.0, 0.0]])
    h = h / np.linalg.norm(h, axis=1, keepdims=True)
    d = np.sum((h[:, None] - h[None]) ** 2, axis=-1)
    s = np.exp(-d / (3 * d.std()))
    nearest = np.where(np.eye(5, dtype=bool), -1.0, s).argmax(axis=1)
    assert list(nearest) == [1, 0, 3, 2, 2]
    a = np.zeros((5, 5))
    a[np.arange(5), nearest] = 1  # one unweighted edge per row, not symmetrised
    degree = a.sum(axis=1)
    expected = np.eye(5) - a / np.sqrt(np.outer(degree, degree))
    np.testing.assert_allclose(rbf_nearest_neighbour_laplacian(3.0 * h, 1), expected, atol=1e-12)  # rows scaled


def test_variation_is_zero_when_neighbours_share_labels():
    h = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.05, 0.99]])
    y = np.eye(2)[[0, 0, 1, 1]]
    assert graph_variation(rbf_nearest_neighbour_laplacian(h), y) == pytest.approx(0.0, abs=1e-12)
    # labels swapped within the pairs: every edge joins two classes, trace = sum_i ||y_i||^2 = n
    assert graph_variation(rbf_nearest_neighbour_laplacian(h), np.eye(2)[[0, 1, 0, 1]]) == pytest.approx(4 / 2000)


def test_shuffle_buffer_draw_takes_distinct_items_from_the_first_ones():
    rng = np.random.default_rng(0)
    draws = np.concatenate([shuffle_buffer_draw(1000, 50, rng) for _ in range(200)])
    assert draws.max() <= 50 + 100 - 2 and len(np.unique(draws[:50])) == 50
    assert np.mean(draws < 100) > 0.6  # the buffer's first fill dominates
    # a class of 30 examples is cycled through (repeat())
    assert set(shuffle_buffer_draw(30, 50, rng)) <= set(range(30))


def test_mixup_mixes_inputs_and_labels_alike():
    x = np.arange(6, dtype=np.float32).reshape(6, 1) * 10
    y = np.array([0, 1, 2, 0, 1, 2])
    mixed, soft = mixup(x, y, 3, 2.0, np.random.default_rng(0))
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all((mixed[:, 0] >= 0) & (mixed[:, 0] <= 50)) and not np.array_equal(mixed, x)
    assert np.all(soft[np.arange(6), y] > 0)  # each keeps a share of its own label
    same, one_hot = mixup(x, y, 3, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(same, x)
    np.testing.assert_array_equal(one_hot, np.eye(3)[y])


def test_bad_mixup_alpha_is_refused():
    with pytest.raises(PGDLError, match="parameter mixup_alpha must be a number >= 0"):
        LabelVariation(mixup_alpha=-1)


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def ours(reference):
    if not MNIST_CONV.is_dir():
        pytest.skip("data/mnist_conv is absent")
    task = Task("mnist_conv", MNIST_CONV)
    return {m: LabelVariation()(task.load_model(m)) for m in reference["test_models"]}


def test_agrees_with_the_authors_as_their_reruns_agree(reference, ours):
    """Their examples, mixup partners and weights are unseeded and drawn afresh for every model, so
    two runs of their code differ per model about as much as the models differ from one another:
    on these 12 models the two runs' rank correlation is only ``rerun_spearman_test_models``
    (0.24; 0.43 on all 64). A rank correlation of 0.99 cannot be asked of anyone's values, so:

    * per model, ours (seed 0) is no farther from the mean of their two runs than their two runs
      are from each other (mean absolute difference);
    * our ranking agrees with the mean of their runs at least as well as one of their runs with
      the other (rank correlation), less 0.1.
    """
    models = reference["test_models"]
    runs = np.array([[run[m] for m in models] for run in reference["runs"]])
    theirs = runs.mean(axis=0)
    mine = np.array([ours[m] for m in models])
    assert np.mean(np.abs(mine - theirs)) <= reference["rerun_mean_abs_difference_test_models"]
    assert spearmanr(mine, theirs).statistic >= reference["rerun_spearman_test_models"] - 0.1
