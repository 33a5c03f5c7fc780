"""Magnitude-aware PAC-Bayes flatness (Jiang et al. 2019): the largest relative Gaussian weight
noise the training error tolerates, by Monte Carlo and bisection."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import FRACTION, POSITIVE, POSITIVE_INT, SEED, Interval


def noise_std(weights: np.ndarray, sigma: float, eps: float) -> np.ndarray:
    """The per-weight standard deviation of the magnitude-aware noise: ``sqrt(sigma^2 w^2 + eps^2)``."""
    w = np.asarray(weights, np.float64)
    return np.sqrt(sigma ** 2 * w ** 2 + eps ** 2)


def bisect_sigma(within: Callable[[float], bool], lo: float, hi: float, rounds: int) -> float:
    """The largest ``sigma`` in ``[lo, hi]`` with ``within(sigma)``, by geometric bisection.

    ``within`` is assumed true below a threshold and false above it. ``hi`` is tried first
    (returned when it holds); otherwise each of `rounds` steps tests ``sqrt(lo hi)`` and keeps
    the half holding the threshold. Returns the final ``lo`` (the initial `lo` when no tested
    point held).
    """
    if within(hi):
        return hi
    for _ in range(int(rounds)):
        mid = math.sqrt(lo * hi)
        if within(mid):
            lo = mid
        else:
            hi = mid
    return lo


class PacBayesMagFlatness(Measure):
    """Magnitude-aware PAC-Bayes flatness: ``1 / sigma'^2`` for the largest relative noise level
    ``sigma'`` at which Gaussian weight noise raises the training error by at most `target`.

    Every trainable weight ``w_i`` is perturbed by ``u_i ~ N(0, sigma^2 w_i^2 + eps^2)``
    (noise proportional to the weight's magnitude, floored at ``eps``). With ``err`` the 0-1
    error on the first `max_examples` training examples (inference mode) and the expectation
    estimated by `mc_samples` draws::

        sigma' = max { sigma : E_u[err(w + u)] - err(w) <= target }
        pacbayes_mag_flatness = 1 / sigma'^2

    ``sigma'`` is found by geometric bisection on ``[sigma_min, sigma_max]`` in `rounds` steps
    (``sigma_max`` is tried first). Jiang et al. bound the perturbed error itself at 0.1 for
    models trained to (near) zero training error; bounding its increase is the same there and
    fair to models that stopped earlier. The weights are restored afterwards. Larger values
    (sharper minima) predict a larger gap.

    Args:
        target: the allowed increase of the training error (the paper's 0.1).
        eps: the noise floor ``eps`` (the paper's 1e-3).
        mc_samples: Monte Carlo draws per noise level.
        rounds: bisection steps.
        sigma_min: the lower end of the search (and the result's floor).
        sigma_max: the upper end of the search.
        max_examples: training examples of the error.
        seed: the seed of the noise.
        batch_size: examples per forward pass.

    References:
        Y. Jiang, B. Neyshabur, H. Mobahi, D. Krishnan, S. Bengio. "Fantastic generalization
        measures and where to find them", ICLR 2020 (arXiv:1912.02178), Appendix C:
        pacbayes.mag.flatness. D. McAllester, "PAC-Bayesian model averaging", COLT 1999.
    """

    name: ClassVar[str] = "pacbayes_mag_flatness"
    summary: ClassVar[str] = ("Jiang et al. 2019: 1/sigma'^2, largest magnitude-aware Gaussian weight noise keeping"
                              " the train error within 0.1")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Jiang et al., 'Fantastic generalization measures and where to find them', ICLR 2020, "
                                "arXiv:1912.02178, pacbayes.mag.flatness: 1/sigma'^2, "
                                "u_i ~ N(0, sigma^2 w_i^2 + eps^2)")

    @validate_params({"target": FRACTION, "eps": Interval(float, 0.0, math.inf), "mc_samples": POSITIVE_INT,
                      "rounds": POSITIVE_INT, "sigma_min": POSITIVE, "sigma_max": POSITIVE,
                      "max_examples": POSITIVE_INT, "seed": SEED, "batch_size": POSITIVE_INT})
    def __init__(self, *, target: float = 0.1, eps: float = 1e-3, mc_samples: int = 5, rounds: int = 10,
                 sigma_min: float = 1e-4, sigma_max: float = 2.0, max_examples: int = 2048, seed: int = 0,
                 batch_size: int = 256):
        if not sigma_min < sigma_max:
            raise PGDLError(f"measure {self.name!r}: sigma_min ({sigma_min}) must be below sigma_max ({sigma_max})")
        self.target = target
        self.eps = eps
        self.mc_samples = mc_samples
        self.rounds = rounds
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.max_examples = max_examples
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        import keras

        model = trained.model
        x, y = rep.first_examples(trained.train, self.max_examples)
        _common.check_labels(y, trained.num_classes)
        logits = model_graph.logits_model(model)
        variables = list(model.trainable_variables)
        original = [keras.ops.convert_to_numpy(v) for v in variables]
        rng = np.random.default_rng(self.seed)

        def error() -> float:
            return float(np.mean(np.argmax(rep.predict(logits, x, self.batch_size), axis=1) != y))

        base = error()

        def within(sigma: float) -> bool:
            errors = []
            for _ in range(self.mc_samples):
                for variable, w in zip(variables, original):
                    noise = rng.standard_normal(w.shape) * noise_std(w, sigma, self.eps)
                    variable.assign((w + noise).astype(w.dtype))
                errors.append(error())
            return float(np.mean(errors)) - base <= self.target

        try:
            sigma = bisect_sigma(within, self.sigma_min, self.sigma_max, self.rounds)
        finally:
            for variable, w in zip(variables, original):
                variable.assign(w)
        return 1.0 / sigma ** 2
