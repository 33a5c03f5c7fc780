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

The module also holds the machinery the competition's sharpness baselines
(:mod:`pgdl_measures.measures.sharpness_pgdl`) share with it, all backend-neutral Keras 3:

* :func:`magnitude_box`, :func:`project_to_box`, :func:`bisect_largest`: the math, as plain
  NumPy/Python functions tested alone;
* :class:`BatchStream`, :class:`DatasetBatchStream` and :func:`shuffle_buffer`: a seeded,
  repeated, shuffled stream of batches (``tf.data``'s ``shuffle(buffer).repeat().batch(b)``
  emulated with NumPy, so both backends see the same batches), over examples held in memory
  or over a whole training set streamed from its shards (only the buffer held);
* :class:`PerturbedCopy`: a copy of the model run in inference mode whose trainable weights take
  box-projected steps through ``train_on_batch`` with a small custom Keras optimizer
  (``w <- clip(w - lr * step(g), lower, upper)``). No autodiff is imported here: Keras computes
  the gradient in its own train step, on the TensorFlow and JAX backends alike.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures._common import check_count
from pgdl_measures.measures.base import Measure

__all__ = [
    "Sharpness",
    "magnitude_box",
    "project_to_box",
    "bisect_largest",
    "shuffle_buffer",
    "shuffle_buffer_order",
    "BatchStream",
    "DatasetBatchStream",
    "batch_stream",
    "PerturbedCopy",
    "cross_entropy_and_accuracy",
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


_END = object()


def shuffle_buffer(items: Iterable, buffer_size: int, rng: np.random.Generator) -> Iterator:
    """`items` in the order ``tf.data``'s ``shuffle(buffer_size)`` gives them, holding at most
    `buffer_size` of them.

    The buffer is filled with the first `buffer_size` items; then each output is a uniformly
    chosen buffer slot, refilled with the next item while any remain; at the end the buffer
    drains in random order (``rng.integers`` once per item). Item ``i`` therefore never comes
    out before position ``i - buffer_size + 1``.
    """
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
    source = iter(items)
    buffer = list(itertools.islice(source, buffer_size))
    while buffer:
        slot = int(rng.integers(len(buffer)))
        item = buffer[slot]
        following = next(source, _END)
        if following is not _END:
            buffer[slot] = following
        else:
            buffer[slot] = buffer[-1]
            buffer.pop()
        yield item


def shuffle_buffer_order(n: int, buffer_size: int | None, rng: np.random.Generator) -> np.ndarray:
    """One epoch's order of ``0..n-1`` as ``tf.data``'s ``shuffle(buffer_size)`` produces it
    (:func:`shuffle_buffer` over the indices); ``buffer_size=None`` (or >= n) is a uniform
    permutation.

    Args:
        n: the number of examples.
        buffer_size: the shuffle buffer's size (>= 1), or None for a full shuffle.
        rng: the NumPy generator that makes the choices.

    Returns:
        A permutation of ``arange(n)`` (int64).
    """
    if buffer_size is None or buffer_size >= n:
        return rng.permutation(n).astype(np.int64)
    return np.fromiter(shuffle_buffer(range(n), buffer_size, rng), dtype=np.int64, count=n)


class BatchStream:
    """An endless, seeded stream of ``(x, y)`` batches: shuffle, repeat, batch.

    Emulates ``tf.data``'s ``ds.shuffle(buffer_size).repeat().batch(batch_size)`` over examples
    held in memory: every epoch is shuffled anew (:func:`shuffle_buffer_order`) and a batch may
    span two epochs, so every batch is full.

    Args:
        x: the inputs, one example per row.
        y: the integer labels.
        batch_size: examples per batch.
        buffer_size: the shuffle buffer (None: a full shuffle of each epoch).
        rng: the generator of the shuffles.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, buffer_size: int | None,
                 rng: np.random.Generator):
        if len(x) == 0:
            raise PGDLError("the training data is empty: no batches to draw")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size, self.buffer_size, self.rng = int(batch_size), buffer_size, rng
        self._order = np.empty(0, dtype=np.int64)
        self._pos = 0
        self.epochs = 0

    def next_indices(self) -> np.ndarray:
        """The example indices of the next batch."""
        parts, need = [], self.batch_size
        while need:
            if self._pos == len(self._order):
                self._order = shuffle_buffer_order(len(self.x), self.buffer_size, self.rng)
                self._pos = 0
                self.epochs += 1
            take = self._order[self._pos:self._pos + need]
            self._pos += len(take)
            need -= len(take)
            parts.append(take)
        return np.concatenate(parts)

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch ``(x, y)``."""
        idx = self.next_indices()
        return self.x[idx], self.y[idx]


class DatasetBatchStream:
    """:class:`BatchStream` over a :class:`~pgdl_measures.tasks.data.Dataset` read in order every epoch,
    holding only the shuffle buffer (and one read chunk) in memory: ``tf.data``'s
    ``ds.shuffle(buffer_size).repeat().batch(batch_size)`` over a whole training set.

    With a generator used for nothing else it gives the batches :class:`BatchStream` gives on
    the same examples in memory (the same ``rng`` draws, in the same order).

    Args:
        dataset: the examples.
        batch_size: examples per batch.
        buffer_size: the shuffle buffer (>= 1).
        rng: the generator of the shuffles.
        limit: only the first `limit` examples make an epoch (all when None).
        chunk: examples read at a time.
    """

    def __init__(self, dataset, batch_size: int, buffer_size: int, rng: np.random.Generator, *,
                 limit: int | None = None, chunk: int = 1024):
        self.n = len(dataset) if limit is None else min(int(limit), len(dataset))
        if self.n == 0:
            raise PGDLError("the training data is empty: no batches to draw")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self.dataset, self.batch_size, self.buffer_size, self.rng = dataset, int(batch_size), int(buffer_size), rng
        self.chunk = int(chunk)
        self._examples: Iterator = iter(())
        self.epochs = 0

    def _rows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for x, y in self.dataset.batches(self.chunk, limit=self.n):
            for i in range(len(x)):
                yield x[i].copy(), y[i]  # a copy: a row kept in the buffer must not pin its chunk

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch ``(x, y)``."""
        xs, ys = [], []
        fresh = False
        while len(xs) < self.batch_size:
            item = next(self._examples, _END)
            if item is _END:
                if fresh:
                    raise PGDLError(f"the training data yielded no examples (expected {self.n})")
                self._examples = shuffle_buffer(self._rows(), self.buffer_size, self.rng)
                self.epochs += 1
                fresh = True
                continue
            fresh = False
            xs.append(item[0])
            ys.append(item[1])
        return np.stack(xs), np.asarray(ys)


def batch_stream(dataset, batch_size: int, buffer_size: int | None, rng: np.random.Generator, *,
                 limit: int | None = None) -> BatchStream | DatasetBatchStream:
    """A stream of the first `limit` examples of `dataset` (all when None): a
    :class:`DatasetBatchStream` when the shuffle buffer is smaller than the data, else (a full
    shuffle needs every example) a :class:`BatchStream` over the examples read into memory."""
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if buffer_size is not None and buffer_size < n:
        return DatasetBatchStream(dataset, batch_size, buffer_size, rng, limit=n)
    if n == 0:
        raise PGDLError("the training data is empty: no batches to draw")
    x, y = dataset.take(n)
    return BatchStream(x, y, batch_size, buffer_size, rng)


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
# Keras machinery (backend-neutral: keras.ops only; Keras differentiates in its train step)
# --------------------------------------------------------------------------------------------

@functools.cache
def _keras_classes():
    """The Keras classes below, defined on first use so importing this module stays cheap."""
    import keras
    from keras import ops

    class BoxProjectedStep(keras.optimizers.Optimizer):
        """``w <- clip(w - lr * step(g), lower, upper)`` per variable.

        ``rule="gradient"``: ``step(g) = g`` (SGD, then clipping to the box).
        ``rule="scaled_sign"``: ``step(g) = scale * sign(g)`` (an L-infinity projected step
        whose size is relative to each coordinate's box half-width).
        The bounds (and scales) are optimizer variables set with :meth:`set_box`.
        """

        def __init__(self, learning_rate=1e-3, rule="gradient", name="box_projected_step"):
            super().__init__(learning_rate=learning_rate, name=name)
            if rule not in ("gradient", "scaled_sign"):
                raise ValueError(f"rule must be 'gradient' or 'scaled_sign', got {rule!r}")
            self.rule = rule

        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self.lower = self.add_optimizer_variables(variables, "lower")
            self.upper = self.add_optimizer_variables(variables, "upper")
            self.scale = self.add_optimizer_variables(variables, "scale") if self.rule == "scaled_sign" else []

        def set_box(self, lower, upper, scale=None):
            for var, value in zip(self.lower, lower):
                var.assign(value)
            for var, value in zip(self.upper, upper):
                var.assign(value)
            if self.rule == "scaled_sign":
                for var, value in zip(self.scale, scale):
                    var.assign(value)

        def update_step(self, gradient, variable, learning_rate):
            index = self._get_variable_index(variable)
            learning_rate = ops.cast(learning_rate, variable.dtype)
            gradient = ops.cast(gradient, variable.dtype)
            if self.rule == "gradient":
                step = gradient
            else:
                step = ops.multiply(self.scale[index], ops.sign(gradient))
            moved = ops.subtract(variable, ops.multiply(learning_rate, step))
            self.assign(variable, ops.minimum(ops.maximum(moved, self.lower[index]), self.upper[index]))

        def get_config(self):
            config = super().get_config()
            config["rule"] = self.rule
            return config

    class InferenceMode(keras.Model):
        """Runs the wrapped model with ``training=False`` (dropout off, batch-norm moving
        statistics used and not updated), also inside ``train_on_batch``."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.built = True

        def call(self, inputs, training=None):
            return self.inner(inputs, training=False)

    return BoxProjectedStep, InferenceMode


def _numpy_weights(variables) -> list[np.ndarray]:
    """Copies of Keras variables' values (``np.asarray``: no NumPy-2 copy warning on any backend)."""
    return [np.array(np.asarray(v)) for v in variables]


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


class PerturbedCopy:
    """A copy of a Keras model, run in inference mode, whose trainable weights are stepped
    inside a box by ``train_on_batch``.

    The copy (``keras.models.clone_model`` + the model's weights) is compiled once, with a
    custom optimizer that does ``w <- clip(w - lr * step(g), lower, upper)`` (see
    :meth:`set_box`). The original model is never changed.

    Args:
        model: the trained Keras model.
        loss: a Keras loss ``f(y_true, logits)`` returning per-example values (descended).
        rule: ``"gradient"`` (SGD steps) or ``"scaled_sign"`` (steps of ``lr * scale * sign(g)``).
        learning_rate: the step's learning rate.

    Raises:
        PGDLError: the model cannot be cloned (e.g. a subclassed model without get_config).
    """

    def __init__(self, model, loss, *, rule: str, learning_rate: float):
        import keras

        box_step, inference_mode = _keras_classes()
        try:
            inner = keras.models.clone_model(model)
            inner.set_weights(_numpy_weights(model.weights))
        except Exception as exc:  # noqa: BLE001 - any failure to copy is reported the same way
            raise PGDLError(f"cannot copy the model to perturb it ({type(exc).__name__}: {exc}); "
                            "sharpness needs a Sequential or functional Keras model") from exc
        self.inner = inner
        self.net = inference_mode(inner)
        self.optimizer = box_step(learning_rate=learning_rate, rule=rule)
        self.optimizer.build(self.net.trainable_variables)
        self.net.compile(optimizer=self.optimizer, loss=loss)
        self.start_weights = _numpy_weights(inner.weights)
        self.start_trainable = self.get_trainable()

    def get_trainable(self) -> list[np.ndarray]:
        """The current trainable weights, in ``trainable_variables`` order."""
        return _numpy_weights(self.net.trainable_variables)

    def set_trainable(self, arrays: Sequence[np.ndarray]) -> None:
        """Set the trainable weights (``trainable_variables`` order)."""
        for var, value in zip(self.net.trainable_variables, arrays):
            var.assign(np.asarray(value, dtype=var.dtype))

    def set_weights(self, arrays: Sequence[np.ndarray]) -> None:
        """Set every weight, trainable or not (``model.get_weights()`` order)."""
        self.inner.set_weights([np.asarray(a) for a in arrays])

    def set_box(self, lower: Sequence[np.ndarray], upper: Sequence[np.ndarray],
                scale: Sequence[np.ndarray] | None = None) -> None:
        """Bounds (and, for ``scaled_sign``, step scales) of each trainable variable."""
        self.optimizer.set_box(lower, upper, scale)

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        """One projected step on the batch ``(x, y)``."""
        self.net.train_on_batch(x, y)

    def logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The model's outputs on `x` (inference mode), as a NumPy array."""
        return np.concatenate([np.asarray(self.net.predict_on_batch(x[i:i + batch_size]))
                               for i in range(0, len(x), batch_size)])


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

    def __init__(self, *, criterion: str = "accuracy", target: float = 0.1, eps: float = 1e-3,
                 ascent_steps: int = 20, step_size: float = 0.125, batch_size: int = 64,
                 max_examples: int | None = 1000, alpha_min: float = 1e-4, alpha_max: float = 10.0,
                 rounds: int = 12, seed: int = 0):
        if criterion not in CRITERIA:
            raise PGDLError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if not 0 < alpha_min < alpha_max:
            raise PGDLError(f"need 0 < alpha_min < alpha_max, got {alpha_min} and {alpha_max}")
        for count, value in (("ascent_steps", ascent_steps), ("batch_size", batch_size), ("rounds", rounds)):
            check_count(self.name, count, value)
        check_count(self.name, "max_examples", max_examples, optional=True)
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
