"""The meta-measure: a fitted linear combination of other measures (``pgdl meta fit``).

.. math::

    \\mu(f) = \\sum_k w_k \\, \\operatorname{asinh}\\big(d_k\\, \\mu_k(f) / c_k\\big)

over the component measures :math:`\\mu_k` (each with its default parameters), where
:math:`d_k` is the component's direction (so that every term grows with the predicted gap),
:math:`c_k > 0` its scale and :math:`w_k` its fitted weight. The transform is a signed
logarithm: :math:`\\operatorname{asinh}(x/c) \\approx \\operatorname{sign}(x) \\log(2|x|/c)`
for :math:`|x| \\gg c`, so a component whose values differ between tasks by a factor (a norm
on a wider network) differs by an additive constant, which does not change the order of a
task's models; it is monotone, so a single component ranks the models as the measure itself.
The weights and scales are what :func:`pgdl_measures.meta.fit.fit_meta` learns; they are
this plugin's parameters, so ``pgdl evaluate`` records them with each value and ``pgdl
package`` ships them in the submission.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import POSITIVE, Interval, ListOf, Text

#: The defaults are the fit ``pgdl meta fit data results/ranking --out results/meta`` on the two
#: bundled tasks (the committed ranking's 30 measures): it keeps one component.
DEFAULT_MEASURES: tuple[str, ...] = ("mixup_accuracy",)
DEFAULT_WEIGHTS: tuple[float, ...] = (1.622998177430583,)
DEFAULT_SCALES: tuple[float, ...] = (0.0009992871572871572,)


def signed_log(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``asinh(values / scales)``, elementwise (the scales broadcast over the last axis)."""
    return np.arcsinh(np.asarray(values, dtype=np.float64) / np.asarray(scales, dtype=np.float64))


def combine(oriented: np.ndarray, weights: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """The meta-measure of models from their components' oriented values.

    Args:
        oriented: (..., K) the components' values times their directions.
        weights: (K,) the fitted weights.
        scales: (K,) the positive scales of the signed logarithm.

    Returns:
        (...,) ``sum_k weights[k] * asinh(oriented[..., k] / scales[k])``.
    """
    return signed_log(oriented, np.asarray(scales, dtype=np.float64)) @ np.asarray(weights, dtype=np.float64)


class MetaMeasure(Measure):
    """A combination of measures fitted to order models by their gap (see the module docstring).

    Args:
        measures: the component measures' registry names (computed with default parameters).
        weights: one fitted weight per component.
        scales: one positive scale per component (the signed logarithm's :math:`c_k`).
    """

    name = "meta_measure"
    summary = "A fitted combination of measures (pgdl meta fit): sum_k w_k asinh(d_k mu_k / c_k)"
    direction = 1
    reference = ("This toolkit's `pgdl meta fit`: a pairwise (within-task) logistic ranking model on "
                 "signed-log component values, L1-regularised, its strength chosen by inner leave-one-task-out "
                 "cross-validation; in the spirit of the PGDL winners' product of two measures "
                 "(Natekar & Sharma, arXiv:2012.02775)")

    @validate_params({"measures": ListOf(Text(), "measure names"),
                      "weights": ListOf(Interval(float, None, None), "finite numbers"),
                      "scales": ListOf(POSITIVE, "positive numbers")})
    def __init__(self, *, measures: tuple[str, ...] = DEFAULT_MEASURES, weights: tuple[float, ...] = DEFAULT_WEIGHTS,
                 scales: tuple[float, ...] = DEFAULT_SCALES):
        self.measures, self.weights, self.scales = _check(measures, weights, scales)
        self._components = None
        classes = [_component_class(name) for name in self.measures]
        # what the combination needs is what any of its components needs
        self.needs_train_data = any(c.needs_train_data for c in classes)
        self.needs_initial_weights = any(c.needs_initial_weights for c in classes)
        self.needs_images = any(c.needs_images for c in classes)
        self.backends = tuple(b for b in ("tensorflow", "jax") if all(b in c.backends for c in classes))

    def components(self) -> list[Measure]:
        """The component measures, built once."""
        if self._components is None:
            from pgdl_measures.registry import get_measure

            self._components = [get_measure(name) for name in self.measures]
        return self._components

    def compute(self, trained) -> float:
        oriented = np.array([m.direction * m(trained) for m in self.components()])
        return float(combine(oriented, self.weights, self.scales))


def _component_class(name: str) -> type:
    from pgdl_measures.registry import available_measures

    found = available_measures().get(name)
    if found is None:
        raise PGDLError(f"measure 'meta_measure': component {name!r} is not a registered measure")
    return found


def _check(measures, weights, scales) -> tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...]]:
    """The parameters as tuples, each rule checked once; one-line PGDLError otherwise."""
    where = "measure 'meta_measure'"
    for label, items in (("measures", measures), ("weights", weights), ("scales", scales)):
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise PGDLError(f"{where}: {label} must be a list (got {items!r})")
    if not measures:
        raise PGDLError(f"{where}: measures must name at least one component")
    if not len(measures) == len(weights) == len(scales):
        raise PGDLError(f"{where}: measures, weights and scales must have the same length "
                        f"({len(measures)}, {len(weights)}, {len(scales)})")
    if any(not isinstance(m, str) for m in measures):
        raise PGDLError(f"{where}: measures must be measure names (strings)")
    if MetaMeasure.name in measures:
        raise PGDLError(f"{where}: a meta-measure cannot be its own component")
    if len(set(measures)) != len(measures):
        raise PGDLError(f"{where}: a component is named twice in measures")
    numbers = []
    for label, items, positive in (("weights", weights, False), ("scales", scales, True)):
        out = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) \
                    or (positive and item <= 0):
                raise PGDLError(f"{where}: {label} must be {'positive' if positive else 'finite'} numbers "
                                f"(got {item!r})")
            out.append(float(item))
        numbers.append(tuple(out))
    return tuple(measures), numbers[0], numbers[1]
