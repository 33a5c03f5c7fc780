"""power_law_alpha: the Hill/MLE fit on a known Pareto distribution, against the `powerlaw`
package where it is installed, and the layer matrices."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures.measures._power_law import alpha_mle, fit_power_law, ks_distance
from pgdl_measures.measures.power_law_alpha import PowerLawAlpha, WeightedPowerLawAlpha, esd, layer_matrices
from pgdl_measures.testing import tiny_trained_model


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
    assert PowerLawAlpha()(trained) == pytest.approx(np.mean(alphas), rel=1e-6)
    assert WeightedPowerLawAlpha()(trained) == pytest.approx(np.mean(np.array(alphas) * np.log10(peaks)), rel=1e-6)
