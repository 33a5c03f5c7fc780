"""power_law_alpha: the Hill/MLE fit on a known Pareto distribution, against the `powerlaw`
package where it is installed, the layer matrices, and the measures against WeightWatcher 0.7.7
(where installed) on data/mnist_conv's models."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from pgdl_measures.measures._power_law import alpha_mle, fit_power_law, fit_power_law_weightwatcher, ks_distance
from pgdl_measures.measures.power_law_alpha import (
    PowerLawAlpha,
    PowerLawAlphaSliced,
    SmallSpectrumWarning,
    WeightedPowerLawAlpha,
    esd,
    layer_matrices,
    layer_spectra,
    pooled_alphas,
)
from pgdl_measures.tasks.task import Task
from pgdl_measures.testing import tiny_trained_model

MNIST_CONV = Path(__file__).resolve().parents[2] / "data" / "mnist_conv" / "input_data" / "mnist_conv"
#: models with one conv layer (9 eigenvalues) and with two (the second with 72 or 144), and the
#: two whose 9-eigenvalue fit picks a different x_min under WeightWatcher's KS choice than under
#: its small-sample objective (40, 56)
REFERENCE = Path(__file__).parent / "reference" / "weightwatcher" / "mnist_conv.json"
WW_MODELS = ("model_0", "model_8", "model_24", "model_32", "model_40", "model_48", "model_56", "model_63")


def _pareto(alpha: float, n: int, xmin: float = 1.0, seed: int = 0) -> np.ndarray:
    """Samples of p(x) ~ x^-alpha for x >= xmin (inverse CDF)."""
    u = np.random.default_rng(seed).random(n)
    return xmin * (1 - u) ** (-1 / (alpha - 1))


@pytest.mark.parametrize("alpha", [2.0, 3.5])
def test_mle_recovers_a_known_exponent(alpha):
    x = _pareto(alpha, 20000)
    assert alpha_mle(x, 1.0) == pytest.approx(alpha, rel=0.03)


def test_ks_choice_of_xmin_finds_the_tail_above_a_uniform_body():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(0.1, 2.0, 2000), _pareto(2.5, 4000, xmin=2.0, seed=2)])
    fit = fit_power_law(x)
    assert 1.9 <= fit.xmin <= 3.0  # in the tail, not in the uniform body
    assert fit.alpha == pytest.approx(2.5, rel=0.05)


def test_ks_distance_of_the_exact_quantiles_is_small():
    alpha = 3.0
    q = (np.arange(1000) + 0.5) / 1000
    x = (1 - q) ** (-1 / (alpha - 1))
    assert ks_distance(x, 1.0, alpha) == pytest.approx(0.0005, abs=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_agrees_with_the_powerlaw_package():
    powerlaw = pytest.importorskip("powerlaw")
    x = _pareto(2.7, 3000, seed=3)
    x = x * np.random.default_rng(4).uniform(0.8, 1.2, len(x))
    assert alpha_mle(x, 1.3) == pytest.approx(powerlaw.Fit(x, xmin=1.3, verbose=False).power_law.alpha, rel=1e-9)
    ours, theirs = fit_power_law(x), powerlaw.Fit(x, verbose=False)
    assert ours.xmin == pytest.approx(theirs.xmin, rel=1e-9)
    assert ours.alpha == pytest.approx(theirs.power_law.alpha, rel=1e-9)


def test_layer_matrices_and_measures_by_hand():
    trained = tiny_trained_model("conv")
    matrices = layer_matrices(trained.model)
    assert [m.shape for m in matrices] == [(3, 4)] * 9 + [(4, 4)] * 9 + [(4, 3)]
    alphas, peaks = [], []
    for m in matrices:
        eig = np.linalg.eigvalsh(m.T @ m) if m.shape[0] >= m.shape[1] else np.linalg.eigvalsh(m @ m.T)
        eig = eig[eig > 1e-12]
        assert np.allclose(np.sort(eig), np.sort(esd(m)), rtol=1e-8)
        alphas.append(fit_power_law(eig).alpha)
        peaks.append(eig.max())
    assert PowerLawAlphaSliced()(trained) == pytest.approx(np.mean(alphas), rel=1e-6)


def test_pooled_spectra_by_hand():
    """One spectrum per layer: a convolution's per-offset eigenvalues together, halved."""
    trained = tiny_trained_model("conv")
    spectra = layer_spectra(trained.model)
    matrices = layer_matrices(trained.model)
    assert [len(s) for s in spectra] == [27, 36, 3]
    assert np.allclose(spectra[0], np.sort(np.concatenate([esd(m) for m in matrices[:9]])) / 2)
    assert np.allclose(spectra[2], np.sort(esd(matrices[-1])))


def test_weightwatcher_fit_by_hand():
    """Below 20 values: tails of at least 8, the bias-corrected MLE, the one-sided KS choice."""
    x = np.array([0.5, 0.9, 1.0, 1.3, 1.7, 2.2, 3.0, 4.5, 7.0, 12.0])
    best = None
    for i in range(3):  # tails of 10, 9, 8 values
        tail = x[i:]
        alpha = 1 + (len(tail) - 1) / np.sum(np.log(tail / tail[0]))
        ks = np.max(np.abs(1 - (tail / tail[0]) ** (1 - alpha) - np.arange(len(tail)) / len(tail)))
        if best is None or ks < best[1]:
            best = (alpha, ks, tail[0])
    fit = fit_power_law_weightwatcher(x)
    assert (fit.alpha, fit.ks, fit.xmin) == pytest.approx(best, rel=1e-12)
    large = _pareto(2.5, 5000, seed=5)
    assert fit_power_law_weightwatcher(large).alpha == pytest.approx(2.5, rel=0.05)


@pytest.mark.parametrize("n", [9, 12, 19, 20, 300])
def test_weightwatcher_fit_equals_weightwatchers(n):
    ww_powerlaw = pytest.importorskip("weightwatcher.WW_powerlaw")
    x = _pareto(2.8, n, seed=n) * np.random.default_rng(n).uniform(0.5, 1.5, n)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = ww_powerlaw.WWFit(x)
    ours = fit_power_law_weightwatcher(x)
    assert (ours.alpha, ours.xmin) == pytest.approx((theirs.alpha, theirs.xmin), rel=1e-10)


@pytest.fixture(scope="module")
def mnist_conv_models():
    if not MNIST_CONV.is_dir():
        pytest.skip("data/mnist_conv is absent")
    task = Task("mnist_conv", MNIST_CONV)
    return {m: task.load_model(m, with_data=False) for m in WW_MODELS}


def test_layers_equal_the_committed_weightwatcher_values(mnist_conv_models):
    """Per layer, against weightwatcher 0.7.7's analyze() on the same models, committed with its
    command (runs without weightwatcher installed)."""
    reference = json.loads(REFERENCE.read_text())["models"]
    for model_id, trained in mnist_conv_models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSpectrumWarning)
            alphas, peaks = pooled_alphas(trained.model, 2)
        np.testing.assert_allclose(alphas, reference[model_id]["alpha"], rtol=1e-9)
        np.testing.assert_allclose(alphas * np.log10(peaks), reference[model_id]["alpha_weighted"], rtol=1e-9)
        assert [len(s) for s in layer_spectra(trained.model)] == reference[model_id]["num_evals"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Passing a dict to DataFrame.from_records")
def test_measures_equal_weightwatchers_alpha(mnist_conv_models):
    """WeightWatcher 0.7.7's default analysis: a Conv2D kernel is one spectrum; mean of its
    ``alpha`` and ``alpha_weighted`` columns over the layers it fits."""
    weightwatcher = pytest.importorskip("weightwatcher")
    for trained in mnist_conv_models.values():
        with contextlib.redirect_stdout(io.StringIO()):
            frame = weightwatcher.WeightWatcher(model=trained.model).analyze()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSpectrumWarning)
            for min_eigenvalues in (2, 8):  # the default, and WeightWatcher's min_evals (same layers here)
                measures = PowerLawAlpha(min_eigenvalues=min_eigenvalues), WeightedPowerLawAlpha(min_eigenvalues=min_eigenvalues)
                assert measures[0](trained) == pytest.approx(frame["alpha"].mean(), rel=1e-9)
                assert measures[1](trained) == pytest.approx(frame["alpha_weighted"].mean(), rel=1e-9)


def test_small_spectra_are_reported(mnist_conv_models):
    """mnist_conv's layers have 9 and 10 eigenvalues: the value comes with a warning saying so."""
    with pytest.warns(SmallSpectrumWarning, match="fewer than 20 eigenvalues .*layer 0: 9, layer 1: 10"):
        PowerLawAlpha()(mnist_conv_models["model_0"])


def test_small_layers_are_marked_or_refused_in_one_line():
    """The tiny dense model's layers have 6 and 3 eigenvalues: by default a value marked as
    fitted on too few; with WeightWatcher's minimum of 8, a refusal naming it."""
    from pgdl_measures.measures.base import MeasureError

    trained = tiny_trained_model("dense")
    with pytest.warns(SmallSpectrumWarning, match="layer 0: 6, layer 1: 3"):
        assert np.isfinite(PowerLawAlpha()(trained))
    with pytest.raises(MeasureError, match="no layer has 8 or more eigenvalues for a power-law fit"):
        PowerLawAlpha(min_eigenvalues=8)(trained)
