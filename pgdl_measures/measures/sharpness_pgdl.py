"""The PGDL competition's two sharpness baselines, reproduced for comparison with their scores.

Both bisect on the radius :math:`m` of a box around the trained weights :math:`w_0`,

.. math::

    B(m) = \\{ w :\\ w_0 - m|w_0| \\le w \\le w_0 + m|w_0| \\},

and return the :math:`m` at which a perturbed model's training accuracy has dropped to about
0.9. For each trial :math:`m` (:func:`pgdl_bisection`):

* up to 3 attempts (the later ones skipped once the minimum accuracy is below 0.8,
  :func:`min_accuracy_over_attempts`), each starting from :math:`w_0` (v1) or from
  :math:`w_0 + \\xi`, :math:`\\xi \\sim U(-\\tfrac m2 |w_0|, \\tfrac m2 |w_0|)` (v2), then 20
  steps of SGD (learning rate 1e-3) on batches of 64, each followed by clipping every weight
  into :math:`B(m)`, then the accuracy over the next 10 batches of the same stream;
* deviation :math:`= 1 - \\min` accuracy; stop when :math:`|\\text{deviation} - 0.1| < 0.01`
  or the bracket is narrower than :math:`10^{-5}` (v1) / :math:`10^{-8}` (v2); else lower the
  upper end (deviation > 0.1) or raise the lower end; at most 20 (v1) / 10 (v2) rounds, from
  the bracket [0, 0.5] (v1) / [0, 2] (v2). The value is the last :math:`m` tried.

What the competition's code did, kept here (read from the organisers' published baseline
``complexity.py`` files, "Copyright 2020 The PGDL Competition organizers", Yiding Jiang):

* The batches come from one stream, ``ds.shuffle(1000).repeat(-1).batch(64)``, shared by the
  SGD steps and the accuracy estimates (which therefore see batches the steps have not yet
  used), and continuing across attempts and rounds. :class:`~pgdl_measures.measures.sharpness.
  DatasetBatchStream` emulates it with a seeded NumPy shuffle buffer of 1000.
* The steps *descend* the training loss (``optimizer.apply_gradients`` on the loss): the
  perturbation searches for weights that fit the data, not for the worst case, so
  "sharpness" here is really how far clipping plus SGD noise can move the weights.
* The model is called as ``model(x)`` outside ``fit``, which in tf.keras 2 means inference
  mode: dropout off, batch-norm moving statistics used and not updated. Only trainable
  weights are stepped; clipping covers every weight, which leaves non-trainable ones as they
  were (or, in v2, at their noisy start, already inside the box).
* v1's loss is ``CategoricalCrossentropy(from_logits=True)(logits, one_hot(y, 10))``: the
  arguments are swapped, so the *logits* are the labels and the one-hot vector is the logits
  (:func:`swapped_categorical_crossentropy`). We keep the swap, but take the class count from
  the model's output: the original's fixed 10 made it fail (a shape mismatch) on tasks with
  another number of classes, such as the sample task's 2 classes.
* The "3 batches once below 0.8" accuracy estimate is dead code in the original: an attempt
  runs only while the minimum is >= 0.8, so it always uses 10 batches. Kept as written.
* v1 defines, but never calls, a noise function (multiplying by :math:`w` rather than
  :math:`|w|`); only v2 adds noise.

Differences, by necessity: the original was unseeded (``np.random`` and ``tf.data`` shuffling),
so its values varied from run to run; ours are seeded (`seed`). Shuffling is ``tf.data``'s
algorithm but not its random number generator, so the batches are not those of any
particular original run. Like the original, the stream reads the whole
training set in order, epoch after epoch, holding only the shuffle buffer in memory
(:class:`~pgdl_measures.measures._streams.DatasetBatchStream`; v1 draws at most about
17 x 3 x 30 x 64 = 98,000 examples, v2 at most 10 x 3 x 30 x 64 = 57,600); `max_examples`
restricts it to the first examples (a shorter epoch), for quick runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pgdl_measures.autodiff.perturbed import PerturbedCopy
from pgdl_measures.measures._streams import batch_stream
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.measures.sharpness import sparse_cross_entropy
from pgdl_measures.params import POSITIVE, POSITIVE_INT, SEED

__all__ = [
    "SharpnessPGDLv1",
    "SharpnessPGDLv2",
    "pgdl_box",
    "clip_to_box",
    "pgdl_noise",
    "pgdl_bisection",
    "min_accuracy_over_attempts",
    "swapped_categorical_crossentropy",
    "swapped_categorical_crossentropy_numpy",
    "PGDL_SHUFFLE_BUFFER",
    "PGDL_LEARNING_RATE",
    "PGDL_TARGET_DEVIATION",
    "PGDL_TOLERANCE",
]

#: The competition's shuffle buffer (``ds.shuffle(1000)``).
PGDL_SHUFFLE_BUFFER = 1000
#: SGD's learning rate in both baselines.
PGDL_LEARNING_RATE = 1e-3
#: The target deviation, 1 - minimum accuracy.
PGDL_TARGET_DEVIATION = 0.1
#: Stop when the deviation is within this of the target.
PGDL_TOLERANCE = 1e-2
#: Attempts after the first are skipped once the minimum accuracy is below this.
PGDL_SKIP_BELOW = 0.8


# --------------------------------------------------------------------------------------------
# The math: plain functions
# --------------------------------------------------------------------------------------------

def pgdl_box(center: Sequence[np.ndarray], m: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The box :math:`w_0 \\pm m |w_0|`: ``(lower, upper)`` per array, in the arrays' dtype.

    As the original: the half-width :math:`m|w_0|` is computed in the weights' dtype.
    """
    lower, upper = [], []
    for w in center:
        w = np.asarray(w)
        half = np.abs(w) * np.asarray(m, dtype=w.dtype)
        lower.append(w - half)
        upper.append(w + half)
    return lower, upper


def clip_to_box(weights: Sequence[np.ndarray], lower: Sequence[np.ndarray],
                upper: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``min(max(w, lower), upper)`` per array (the original's order of the two clips)."""
    return [np.minimum(np.maximum(w, lo), hi) for w, lo, hi in zip(weights, lower, upper)]


def pgdl_noise(center: Sequence[np.ndarray], m: float, rng: np.random.Generator) -> list[np.ndarray]:
    """v2's starting noise: :math:`\\xi \\sim U(-m/2, m/2) \\cdot |w_0|` per weight (float64)."""
    return [rng.uniform(-m / 2.0, m / 2.0, size=np.shape(w)) * np.abs(w) for w in center]


def min_accuracy_over_attempts(run_attempt: Callable[[int, int], float], *, attempts: int = 3,
                               eval_batches: int = 10, eval_batches_low: int = 3,
                               skip_below: float = PGDL_SKIP_BELOW) -> float:
    """The minimum accuracy over up to `attempts` attempts, as the baselines compute it.

    An attempt runs only while the minimum so far is >= `skip_below` (it starts at 10.0, so the
    first always runs); it is asked for `eval_batches` batches of accuracy, or
    `eval_batches_low` when the minimum is below `skip_below` (which, as in the original, never
    happens for an attempt that runs).

    Args:
        run_attempt: ``run_attempt(k, n_batches)`` runs attempt `k` and returns its accuracy
            over `n_batches` batches.

    Returns:
        The minimum accuracy (10.0 when `attempts` is 0, as the original's initial value).
    """
    min_accuracy = 10.0
    for k in range(attempts):
        if min_accuracy < skip_below:
            continue
        n_batches = eval_batches_low if min_accuracy < skip_below else eval_batches
        min_accuracy = min(min_accuracy, run_attempt(k, n_batches))
    return min_accuracy


def pgdl_bisection(min_accuracy_at: Callable[[float], float], *, upper: float, max_rounds: int,
                   epsilon: float, target_deviation: float = PGDL_TARGET_DEVIATION,
                   tolerance: float = PGDL_TOLERANCE) -> tuple[float, list[tuple[float, float, float, float]]]:
    """The baselines' bisection on the box radius :math:`m`.

    Starting from ``[l, h] = [0, upper]``, each round tries :math:`m = (h + l)/2`, computes
    ``deviation = 1 - min_accuracy_at(m)`` and stops if ``h - l < epsilon`` or
    ``|deviation - target_deviation| < tolerance``; otherwise sets ``h = m`` when the deviation
    exceeds the target, ``l = m`` otherwise. At most `max_rounds` rounds.

    Returns:
        ``(m, trace)``: the last :math:`m` tried (the first is ``upper / 2``) and one
        ``(l, h, m, deviation)`` per round.

    Raises:
        ValueError: `max_rounds` < 1 (the original would return an undefined ``m``).
    """
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    high, low = float(upper), 0.0
    trace = []
    m = (high + low) / 2.0
    for _ in range(max_rounds):
        m = (high + low) / 2.0
        deviation = 1.0 - min_accuracy_at(m)
        trace.append((low, high, m, deviation))
        if high - low < epsilon or abs(deviation - target_deviation) < tolerance:
            break
        if deviation > target_deviation:
            high = m
        else:
            low = m
    return m, trace


def swapped_categorical_crossentropy_numpy(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """v1's loss, per example, in NumPy (a reference for tests).

    ``CategoricalCrossentropy(from_logits=True)(logits, one_hot)`` computes
    ``softmax_cross_entropy_with_logits(labels=logits, logits=one_hot)``:

    .. math::

        \\ell = -\\sum_k z_k \\log \\mathrm{softmax}(e_y)_k
              = -z_y + \\log(e + C - 1) \\sum_k z_k ,

    with :math:`z` the model's logits and :math:`e_y` the one-hot label over :math:`C` classes.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    onehot = np.eye(logits.shape[-1])[labels]
    log_softmax = onehot - np.log(np.exp(onehot).sum(axis=-1, keepdims=True))
    return -np.sum(logits * log_softmax, axis=-1)


def swapped_categorical_crossentropy(y_true, logits):
    """v1's loss (keras.ops), per example: the logits passed as labels, the one-hot as logits.

    See :func:`swapped_categorical_crossentropy_numpy`. The one-hot has as many classes as the
    model has outputs (the original fixed 10).
    """
    from keras import ops

    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    onehot = ops.cast(ops.one_hot(labels, logits.shape[-1]), logits.dtype)
    return ops.negative(ops.sum(ops.multiply(logits, ops.log_softmax(onehot, axis=-1)), axis=-1))


# --------------------------------------------------------------------------------------------
# The measures
# --------------------------------------------------------------------------------------------

#: The rules of both versions' parameters.
_RULES = {"upper": POSITIVE, "max_rounds": POSITIVE_INT, "epsilon": POSITIVE, "steps": POSITIVE_INT,
          "attempts": POSITIVE_INT, "eval_batches": POSITIVE_INT, "batch_size": POSITIVE_INT,
          "max_examples": [POSITIVE_INT, None], "seed": SEED}


class _SharpnessPGDL(Measure):
    """What v1 and v2 share; the subclasses set the schedule's defaults and the variant."""

    needs_train_data = True
    needs_initial_weights = False
    # A larger tolerated radius m means a flatter minimum, predicting a *smaller* gap. The
    # competition submitted m itself as the complexity; its score (conditional mutual
    # information of pairwise orderings) is unchanged when every ordering flips, so it did not
    # matter there. We return m as-is, for comparability, and declare direction -1.
    direction = -1
    #: True: each attempt starts from w0 plus uniform noise (v2); False: from w0 (v1).
    noisy_start = False
    #: True: v1's swapped categorical cross-entropy; False: sparse cross-entropy from logits.
    swapped_loss = False

    def _setup(self, *, upper, max_rounds, epsilon, steps, attempts, eval_batches, batch_size,
               max_examples, seed):
        self.upper = upper
        self.max_rounds = max_rounds
        self.epsilon = epsilon
        self.steps = steps
        self.attempts = attempts
        self.eval_batches = eval_batches
        self.batch_size = batch_size
        self.max_examples = max_examples
        self.seed = seed

    def search(self, trained) -> tuple[float, list[tuple[float, float, float, float]]]:
        """Run the bisection; return :math:`m` and the ``(l, h, m, deviation)`` of each round."""
        # Two generators from the seed: the stream's shuffles do not depend on how much noise
        # v2 drew, so the stream is the same whether it reads shards or arrays.
        stream_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(2))
        stream = batch_stream(trained.train, self.batch_size, PGDL_SHUFFLE_BUFFER, stream_rng,
                              limit=self.max_examples)
        loss = swapped_categorical_crossentropy if self.swapped_loss else sparse_cross_entropy
        copy = PerturbedCopy(trained.model, loss, rule="gradient", learning_rate=PGDL_LEARNING_RATE)
        all_weights = copy.start_weights
        trainable = copy.start_trainable

        def accuracy(n_batches: int) -> float:
            total = 0.0
            for _ in range(n_batches):
                xb, yb = stream.next()
                pred = np.argmax(copy.logits(xb, batch_size=len(xb)), axis=-1)
                total += float(np.mean(pred == yb))
            return total / n_batches

        def min_accuracy_at(m: float) -> float:
            lower, upper = pgdl_box(trainable, m)
            copy.set_box(lower, upper)

            def run_attempt(k: int, n_batches: int) -> float:
                if self.noisy_start:
                    copy.set_weights([w + n for w, n in zip(all_weights, pgdl_noise(all_weights, m, noise_rng))])
                else:
                    copy.set_weights(all_weights)
                for _ in range(self.steps):
                    copy.step(*stream.next())
                return accuracy(n_batches)

            return min_accuracy_over_attempts(run_attempt, attempts=self.attempts, eval_batches=self.eval_batches)

        return pgdl_bisection(min_accuracy_at, upper=self.upper, max_rounds=self.max_rounds, epsilon=self.epsilon)

    def compute(self, trained) -> float:
        m, _ = self.search(trained)
        return m


class SharpnessPGDLv1(_SharpnessPGDL):
    """The competition's first sharpness baseline: the box radius :math:`m` tolerated by SGD.

    Bisection on :math:`m \\in [0, 0.5]` (at most 20 rounds, stopping when the bracket is under
    1e-5, so at most 17 trials); each attempt starts from the trained weights, takes `steps`
    SGD steps on v1's swapped categorical cross-entropy
    (:func:`swapped_categorical_crossentropy`), each followed by clipping to
    :math:`w_0 \\pm m|w_0|`, then measures accuracy on `eval_batches` batches. See the module
    docstring for the full procedure and every quirk kept.

    Direction: the value is :math:`m` as the competition returned it; a larger :math:`m` means
    a flatter minimum and predicts a *smaller* gap, so ``direction = -1``.

    Args:
        upper: the initial upper end of the bracket (0.5).
        max_rounds: at most this many bisection rounds (20).
        epsilon: stop once the bracket is narrower (1e-5).
        steps: SGD-and-clip steps per attempt (20).
        attempts: attempts per trial radius (3).
        eval_batches: batches of the accuracy estimate (10).
        batch_size: examples per batch (64).
        max_examples: None (the original): the whole training set, streamed; else only the first
            `max_examples` examples, repeated.
        seed: seed of the shuffle.

    References:
        Jiang et al., "NeurIPS 2020 Competition: Predicting Generalization in Deep Learning"
        (arXiv:2012.07976), sharpness baseline; its ``complexity.py``, Yiding Jiang, 2020.
    """

    name = "sharpness_pgdl_v1"
    summary = "PGDL baseline sharpness v1: box radius m tolerated by SGD+clipping from w0 (returns m)"
    reference = ("Jiang et al., NeurIPS 2020 PGDL competition (arXiv:2012.07976), sharpness baseline v1 "
                 "(organisers' complexity.py); Keskar et al., ICLR 2017")
    noisy_start = False
    swapped_loss = True

    @validate_params(_RULES)
    def __init__(self, *, upper: float = 0.5, max_rounds: int = 20, epsilon: float = 1e-5, steps: int = 20,
                 attempts: int = 3, eval_batches: int = 10, batch_size: int = 64,
                 max_examples: int | None = None, seed: int = 0):
        self._setup(upper=upper, max_rounds=max_rounds, epsilon=epsilon, steps=steps, attempts=attempts,
                    eval_batches=eval_batches, batch_size=batch_size, max_examples=max_examples, seed=seed)


class SharpnessPGDLv2(_SharpnessPGDL):
    """The competition's second sharpness baseline: v1 with noisy starts and the correct loss.

    Bisection on :math:`m \\in [0, 2]` (at most 10 rounds; the 1e-8 bracket limit is never
    reached in 10 rounds); each attempt starts from
    :math:`w_0 + U(-\\tfrac m2|w_0|, \\tfrac m2|w_0|)` (every weight, non-trainable ones
    included, as the original), takes `steps` SGD steps on the sparse softmax cross-entropy,
    each followed by clipping to :math:`w_0 \\pm m|w_0|`, then measures accuracy on
    `eval_batches` batches. See the module docstring.

    Direction: the value is :math:`m` as the competition returned it; a larger :math:`m` means
    a flatter minimum and predicts a *smaller* gap, so ``direction = -1``.

    Args:
        upper: the initial upper end of the bracket (2.0).
        max_rounds: at most this many bisection rounds (10).
        epsilon: stop once the bracket is narrower (1e-8).
        steps: SGD-and-clip steps per attempt (20).
        attempts: attempts per trial radius (3).
        eval_batches: batches of the accuracy estimate (10).
        batch_size: examples per batch (64).
        max_examples: None (the original): the whole training set, streamed; else only the first
            `max_examples` examples, repeated.
        seed: seed of the shuffle and of the noise.

    References:
        Jiang et al., "NeurIPS 2020 Competition: Predicting Generalization in Deep Learning"
        (arXiv:2012.07976), sharpness baseline ("sharpness_v2"); its ``complexity.py``.
    """

    name = "sharpness_pgdl_v2"
    summary = "PGDL baseline sharpness v2: box radius m tolerated by SGD+clipping from noisy starts (returns m)"
    reference = ("Jiang et al., NeurIPS 2020 PGDL competition (arXiv:2012.07976), sharpness baseline v2 "
                 "(organisers' complexity.py); Keskar et al., ICLR 2017")
    noisy_start = True
    swapped_loss = False

    @validate_params(_RULES)
    def __init__(self, *, upper: float = 2.0, max_rounds: int = 10, epsilon: float = 1e-8, steps: int = 20,
                 attempts: int = 3, eval_batches: int = 10, batch_size: int = 64,
                 max_examples: int | None = None, seed: int = 0):
        self._setup(upper=upper, max_rounds=max_rounds, epsilon=epsilon, steps=steps, attempts=attempts,
                    eval_batches=eval_batches, batch_size=batch_size, max_examples=max_examples, seed=seed)
