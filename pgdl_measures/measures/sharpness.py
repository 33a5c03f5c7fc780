"""Magnitude-aware sharpness (Jiang et al., 2020, "Fantastic generalization measures").

The measure is :math:`1/\\alpha'^2`, where :math:`\\alpha'` is the largest radius of a
magnitude-aware box around the trained weights :math:`w` inside which no perturbation found by
projected gradient ascent raises the training loss, or lowers the training accuracy, by more
than a target:

.. math::

    \\alpha' = \\max\\Big\\{\\alpha :\\ \\mathrm{acc}(w) - \\min_{|u_i| \\le \\alpha(|w_i| + \\epsilon)}
               \\mathrm{acc}(w + u) \\le \\delta \\Big\\},
    \\qquad \\mu = 1/\\alpha'^2

(or the same with the rise of the training loss in place of the drop of the accuracy), the
inner optimum approximated by projected gradient ascent and :math:`\alpha'` by bisection. See
:class:`Sharpness`.

The math is in plain NumPy/Python functions tested alone (:func:`magnitude_box`,
:func:`project_to_box`, :func:`bisect_largest`). What the competition's sharpness baselines
(:mod:`pgdl_measures.measures.sharpness_pgdl`) share with this measure lives in shared modules:
the seeded stream of batches in :mod:`pgdl_measures.measures._streams`, and the copy of the
model whose weights take box-projected gradient steps in
:class:`pgdl_measures.autodiff.perturbed.PerturbedCopy` (the gradient is computed by Keras's own
train step, behind the backend layer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from pgdl_measures.autodiff.perturbed import PerturbedCopy
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures._streams import BatchStream
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, SEED, Options

__all__ = [
    "Sharpness",
    "magnitude_box",
    "project_to_box",
    "bisect_largest",
    "cross_entropy_and_accuracy",
    "sparse_cross_entropy",
    "negated_sparse_cross_entropy",
]

CRITERIA = ("accuracy", "loss")


# --------------------------------------------------------------------------------------------
# The math: plain functions
# --------------------------------------------------------------------------------------------

def magnitude_box(weights: Sequence[np.ndarray], alpha: float, eps: float) -> list[np.ndarray]:
    """Half-widths of the magnitude-aware box: :math:`h_i = \\alpha (|w_i| + \\epsilon)`.

    Args:
        weights: the centre of the box, one array per weight tensor.
        alpha: the box's relative radius (>= 0).
        eps: the absolute floor that lets a zero weight move (>= 0).

    Returns:
        One array of half-widths per weight array, in the weights' dtype.
    """
    if alpha < 0 or eps < 0:
        raise ValueError(f"alpha and eps must be >= 0, got alpha={alpha}, eps={eps}")
    return [(alpha * (np.abs(w) + eps)).astype(np.asarray(w).dtype, copy=False) for w in weights]


def project_to_box(perturbation: Sequence[np.ndarray], half_widths: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Project a perturbation onto the box: :math:`u_i \\mapsto \\min(\\max(u_i, -h_i), h_i)`.

    Args:
        perturbation: one array per weight array.
        half_widths: the box's half-widths (see :func:`magnitude_box`), same shapes.

    Returns:
        The projected perturbation, with :math:`|u_i| \\le h_i` everywhere.
    """
    if len(perturbation) != len(half_widths):
        raise ValueError(f"{len(perturbation)} perturbation arrays but {len(half_widths)} half-width arrays")
    return [np.minimum(np.maximum(u, -h), h) for u, h in zip(perturbation, half_widths)]


def bisect_largest(predicate: Callable[[float], bool], lo: float, hi: float, rounds: int, *,
                   geometric: bool = True) -> tuple[float, list[tuple[float, bool]]]:
    """Bisection for the largest ``x`` in ``[lo, hi]`` with ``predicate(x)`` true.

    Assumes the predicate is true below a threshold and false above it (it is evaluated only at
    midpoints, never at the ends). Each round evaluates the midpoint (geometric
    :math:`\\sqrt{lo \\cdot hi}` or arithmetic :math:`(lo + hi)/2`) and moves ``lo`` up when the
    predicate holds there, ``hi`` down otherwise.

    Args:
        predicate: the test, e.g. "the loss stays within the target at this radius".
        lo: lower end (> 0 when `geometric`).
        hi: upper end (> lo).
        rounds: the number of midpoints to evaluate; the bracket shrinks to
            ``(hi/lo) ** (1 / 2**rounds)`` (geometric) or ``(hi - lo) / 2**rounds``.
        geometric: bisect on a log scale (for radii spanning decades).

    Returns:
        ``(lo, trace)``: the final lower end (the largest point where the predicate was seen
        to hold, or the initial `lo` when it never held) and the ``(midpoint, result)`` pairs.
    """
    if not hi > lo or (geometric and lo <= 0):
        raise ValueError(f"need 0 < lo < hi for a geometric bisection (lo < hi otherwise), got lo={lo}, hi={hi}")
    trace = []
    for _ in range(int(rounds)):
        mid = math.sqrt(lo * hi) if geometric else (lo + hi) / 2.0
        ok = bool(predicate(mid))
        trace.append((mid, ok))
        if ok:
            lo = mid
        else:
            hi = mid
    return lo, trace


def cross_entropy_and_accuracy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean softmax cross-entropy (from logits, in float64) and accuracy of a set of predictions."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    loss = -float(np.mean(log_probs[np.arange(len(labels)), labels]))
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == labels))
    return loss, accuracy


# --------------------------------------------------------------------------------------------
# Losses (keras.ops) the perturbed copy descends
# --------------------------------------------------------------------------------------------

def sparse_cross_entropy(y_true, logits):
    """Per-example softmax cross-entropy from logits, with integer labels (keras.ops)."""
    import keras
    from keras import ops

    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def negated_sparse_cross_entropy(y_true, logits):
    """Minus :func:`sparse_cross_entropy`: descending it is gradient *ascent* on the loss."""
    from keras import ops

    return ops.negative(sparse_cross_entropy(y_true, logits))


# --------------------------------------------------------------------------------------------
# The measure
# --------------------------------------------------------------------------------------------

class Sharpness(Measure):
    """Magnitude-aware sharpness :math:`1/\\alpha'^2` (Jiang et al., 2020, "sharpness-mag").

    .. math::

        \\alpha' = \\max\\Big\\{\\alpha :\\ D\\big(w + u^*_\\alpha\\big) \\le \\delta\\Big\\},
        \\qquad |u_i| \\le \\alpha (|w_i| + \\epsilon),
        \\qquad \\mu(f_w) = 1/\\alpha'^2,

    where :math:`u^*_\\alpha` is found by projected gradient ascent on the training
    cross-entropy inside the box, and :math:`D` is the drop in training accuracy
    (``criterion="accuracy"``: :math:`\\mathrm{acc}(w) - \\mathrm{acc}(w+u)`) or the rise in
    training loss (``criterion="loss"``: :math:`L(w+u) - L(w)`), measured on the same fixed
    examples. A sharper minimum tolerates only a smaller box, so a larger value predicts a
    larger generalization gap (``direction = +1``).

    Procedure, on the first `max_examples` training examples (one NumPy generator seeded with
    `seed` makes every random choice, so the value is repeatable and the same on both
    backends up to float rounding):

    1. Bisect :math:`\\alpha` on a log scale in ``[alpha_min, alpha_max]`` for `rounds` rounds
       (:func:`bisect_largest`); :math:`\\alpha'` is the final lower end.
    2. For each trial :math:`\\alpha`: start from a uniformly random point of the box
       (:math:`u_i \\sim U(-h_i, h_i)`, :math:`h_i = \\alpha(|w_i| + \\epsilon)`), then take
       `ascent_steps` steps :math:`u \\leftarrow \\Pi_{box}\\big(u + \\eta\\, h \\odot
       \\mathrm{sign}\\,\\nabla_w L(w+u)\\big)` (:math:`\\eta` = `step_size`) on batches of
       `batch_size` examples drawn from a seeded shuffle of the examples.
    3. Evaluate :math:`D` at the final point over all the examples.

    Only trainable weights are perturbed (kernels, biases, batch-norm scale and offset); the
    model runs in inference mode (dropout off, batch-norm moving statistics used as they are).
    If even `alpha_min` exceeds the target, the value is ``1/alpha_min**2``; if `alpha_max`
    does not, ``1/alpha_max**2`` (the search range bounds the value).

    Args:
        criterion: ``"accuracy"`` (drop in training accuracy) or ``"loss"`` (rise in
            training cross-entropy).
        target: the tolerated drop or rise :math:`\\delta` (0.1: ten points of accuracy, as in
            the paper).
        eps: :math:`\\epsilon`, the floor that lets zero weights move.
        ascent_steps: projected-gradient-ascent steps per trial radius.
        step_size: :math:`\\eta`, each step's length as a fraction of the box half-width.
        batch_size: examples per ascent step.
        max_examples: training examples read (the first ones); all when None.
        alpha_min: lower end of the search for :math:`\\alpha`.
        alpha_max: upper end of the search.
        rounds: bisection rounds (each one trial radius).
        seed: seed of the random starts and of the batch order.

    References:
        Y. Jiang, B. Neyshabur, H. Mobahi, D. Krishnan, S. Bengio, "Fantastic Generalization
        Measures and Where to Find Them", ICLR 2020 (arXiv:1912.02178): the magnitude-aware
        sharpness measures ("sharpness-mag") of its list of complexity measures.
        N. S. Keskar et al., "On Large-Batch Training for Deep Learning: Generalization Gap and
        Sharp Minima", ICLR 2017 (the box-constrained sharpness it builds on).
    """

    name = "sharpness"
    summary = "Magnitude-aware sharpness 1/alpha'^2: largest relative weight box tolerated by projected ascent"
    direction = 1
    needs_train_data = True
    needs_initial_weights = False
    reference = ("Jiang et al., 'Fantastic Generalization Measures and Where to Find Them', ICLR 2020 "
                 "(arXiv:1912.02178), magnitude-aware sharpness 1/alpha'^2 ('sharpness-mag')")

    @validate_params({"criterion": Options(CRITERIA), "target": POSITIVE, "eps": NON_NEGATIVE,
                      "ascent_steps": POSITIVE_INT, "step_size": POSITIVE, "batch_size": POSITIVE_INT,
                      "max_examples": [POSITIVE_INT, None], "alpha_min": POSITIVE, "alpha_max": POSITIVE,
                      "rounds": POSITIVE_INT, "seed": SEED})
    def __init__(self, *, criterion: str = "accuracy", target: float = 0.1, eps: float = 1e-3,
                 ascent_steps: int = 20, step_size: float = 0.125, batch_size: int = 64,
                 max_examples: int | None = 1000, alpha_min: float = 1e-4, alpha_max: float = 10.0,
                 rounds: int = 12, seed: int = 0):
        if not alpha_min < alpha_max:
            raise PGDLError(f"measure {self.name!r}: need 0 < alpha_min < alpha_max, got {alpha_min} and {alpha_max}")
        self.criterion = criterion
        self.target = target
        self.eps = eps
        self.ascent_steps = ascent_steps
        self.step_size = step_size
        self.batch_size = batch_size
        self.max_examples = max_examples
        self.alpha_min = alpha_min
        self.alpha_max = alpha_max
        self.rounds = rounds
        self.seed = seed

    def search(self, trained) -> tuple[float, list[tuple[float, bool]]]:
        """Run the bisection; return :math:`\\alpha'` and the ``(alpha, within target)`` trials."""
        x, y = trained.train.take(self.max_examples)
        rng = np.random.default_rng(self.seed)
        copy = PerturbedCopy(trained.model, negated_sparse_cross_entropy, rule="scaled_sign",
                             learning_rate=self.step_size)
        center = copy.start_trainable
        base_loss, base_acc = cross_entropy_and_accuracy(copy.logits(x), y)
        stream = BatchStream(x, y, self.batch_size, None, rng)

        def within_target(alpha: float) -> bool:
            half = magnitude_box(center, alpha, self.eps)
            copy.set_box([w - h for w, h in zip(center, half)], [w + h for w, h in zip(center, half)], half)
            start = [w + rng.uniform(-1.0, 1.0, size=w.shape).astype(w.dtype) * h for w, h in zip(center, half)]
            copy.set_trainable(start)
            for _ in range(self.ascent_steps):
                copy.step(*stream.next())
            loss, acc = cross_entropy_and_accuracy(copy.logits(x), y)
            change = base_acc - acc if self.criterion == "accuracy" else loss - base_loss
            return change <= self.target

        return bisect_largest(within_target, self.alpha_min, self.alpha_max, self.rounds, geometric=True)

    def compute(self, trained) -> float:
        alpha, _ = self.search(trained)
        return 1.0 / alpha ** 2
