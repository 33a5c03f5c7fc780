"""Perturbed margin (after Natekar & Sharma): output margins on noise-perturbed training inputs."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import PERCENTILE, POSITIVE, POSITIVE_INT, SEED


def perturb(x: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``x + noise * std(x) * N(0, I)``: isotropic Gaussian noise scaled to the inputs' spread."""
    x = np.asarray(x, np.float32)
    scale = float(np.std(x)) or 1.0
    return (x + rng.normal(0.0, noise * scale, x.shape)).astype(np.float32)


class PerturbedMargin(Measure):
    """A percentile of the output margins on training inputs perturbed by Gaussian noise.

    On the first ``max_examples`` training examples, with ``s`` the standard deviation of their
    input values, ``e_i ~ N(0, I)`` drawn with `seed` and ``f`` the logits::

        x~_i = x_i + noise * s * e_i
        gamma_i = f(x~_i)_{y_i} - max_{j != y_i} f(x~_i)_j
        perturbed_margin = percentile_q(gamma_1, ..., gamma_n)

    Larger values predict a smaller gap (direction -1). Natekar & Sharma list a perturbed
    margin among their margin variants; the perturbation here is isotropic input noise (no
    gradient needed, any input shape), a documented choice rather than a reproduction of the
    paper's exact perturbation. The authors' own margin (their submission's ``'Margin'``:
    unperturbed margins normalised by their gradient norm at the first layer and by that
    layer's spread) is ``normalized_margin``.

    Args:
        noise: the noise's standard deviation relative to the inputs'.
        percentile: ``q``, the percentile of the margins (50: the median).
        max_examples: training examples used.
        seed: the seed of the noise.
        batch_size: examples per forward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020): margin variants.
    """

    name: ClassVar[str] = "perturbed_margin"
    summary: ClassVar[str] = ("after Natekar & Sharma: percentile of the output margins on noise-perturbed training"
                              " inputs")
    direction: ClassVar[int] = -1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("after Natekar & Sharma, arXiv:2012.02775, perturbed margin: percentile_q of "
                                "f(x~)_y - max_{j != y} f(x~)_j, x~ = x + noise * std(x) * N(0, I)")

    @validate_params({"noise": POSITIVE, "percentile": PERCENTILE, "max_examples": POSITIVE_INT, "seed": SEED,
                      "batch_size": POSITIVE_INT})
    def __init__(self, *, noise: float = 0.1, percentile: float = 50.0, max_examples: int = 5000, seed: int = 0,
                 batch_size: int = 256):
        self.noise = noise
        self.percentile = percentile
        self.max_examples = max_examples
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        x, y = rep.first_examples(trained.train, self.max_examples)
        _common.check_labels(y, trained.num_classes)
        noisy = perturb(x, self.noise, np.random.default_rng(self.seed))
        return rep.margin_percentile(trained.model, noisy, y, self.percentile, self.batch_size)
