"""Gradient-norm trackers of An et al.: AGN (Eq. 5), online AGN and GN (Eq. 4), as Keras callbacks.

The per-example terms come from the measures and their backend layer, so a tracker and the
measure agree on the same weights:

* :class:`ExactAGN` -- at the end of every epoch, the :class:`~pgdl_measures.measures.agn.AGN`
  measure over the training set (in inference mode): ``(1/n) sum_i (||h_i||^2 + 1) ||delta_i||^2``
  with ``h_i`` the input of the final Dense layer, ``delta_i = softmax(z_i) - onehot(y_i)``.
  It costs one forward pass over the training set up to the final Dense (less than one
  inference pass). Logged per epoch as ``agn``; Eq. 5's AGN is the sum over epochs
  (:func:`summed`).
* Online AGN (:func:`online_agn_head`, :class:`OnlineAGNMetric`) -- the same per-example terms
  taken from the forward passes training already does: the trained graph gets one extra column,
  ``||h||^2`` of each example, and a metric turns it and the logits into the term, averaged
  over the epoch. Each batch is taken at its current weights and in training mode (dropout on,
  batch statistics), so it is an approximation of the exact AGN of that epoch, almost free.
  Logged as ``online_agn``.
* :class:`GradientNormTracker` -- Eq. 4: ``GN = sum_t (1/n) sum_i ||grad_theta l_i(theta_t)||^2``
  over every iteration ``t`` (the weights before step ``t``) and every training example, with
  :func:`pgdl_measures.measures.gradient_norm.mean_grad_sq_norm` (inference mode). Exact, it
  costs a per-example backward pass over the whole training set at every iteration, so it takes
  a fixed random subsample ``M`` of ``m`` training examples (drawn once, seeded) and, in every
  epoch of ``T_e`` iterations, a random subset ``S_e`` of ``s`` iterations (seeded by epoch)::

      GN_e  = (T_e / s) sum_{t in S_e} (1/m) sum_{i in M} ||grad l_i(theta_t)||^2
      GN    = sum_e GN_e

  Given the training trajectory, ``GN_e`` is an unbiased estimate of that epoch's share of
  Eq. 4 over the subsample's examples (iterations sampled uniformly without replacement); with
  ``m = n`` and ``s = T_e`` it is Eq. 4 exactly. Logged per epoch as ``gn``.

References:
    H. An, H. Xiong, X. Li, X. Li, D. Dou, Z. Zhu. "Can we use gradient norm as a measure of
    generalization error for model selection in practice?" (ICLR 2021 submission,
    openreview.net/forum?id=MDX3F0qAfm3), Eqs. 4 and 5.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError


def sync_weights(model) -> None:
    """Write the training state back into the model's variables (the JAX trainer keeps it apart
    during ``fit``; a no-op on TensorFlow)."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def _trained(model, x: np.ndarray, y: np.ndarray):
    from pgdl_measures.tasks.data import ArrayDataset
    from pgdl_measures.tasks.trained import TrainedModel

    return TrainedModel("training", model, train=ArrayDataset(x, y))


def summed(history: Mapping[str, Sequence[float]], key: str) -> float | None:
    """Eq. 5's (or Eq. 4's) sum over epochs of a per-epoch tracker value in `history`."""
    values = history.get(key)
    return None if not values else float(np.sum(values))


class ExactAGN(keras.callbacks.Callback):
    """Eq. 5's per-epoch term: the ``agn`` measure over the training set after each epoch,
    logged as ``agn`` (see the module docstring).

    Args:
        model: the model whose final Dense layer is used (the one being trained, or the model
            it was derived from: they share weights).
        x, y: the training examples (un-augmented).
        batch_size: examples per forward pass.
        max_examples: use the first `max_examples` examples (None: all).

    Raises:
        PGDLError: the model has no final Dense layer.
    """

    def __init__(self, model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 512,
                 max_examples: int | None = None):
        super().__init__()
        from pgdl_measures.measures.agn import AGN

        model_graph.final_dense(model)  # raises PGDLError without one
        self.tracked = model
        self.measure = AGN(max_examples=max_examples, batch_size=batch_size)
        self.data = _trained(model, x, y)
        self.seconds = 0.0

    def value(self) -> float:
        """The ``agn`` measure on the current weights."""
        return float(self.measure(self.data))

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        sync_weights(self.model)
        value = self.value()
        self.seconds += time.perf_counter() - start
        if logs is not None:
            logs["agn"] = value


class GradientNormTracker(keras.callbacks.Callback):
    """Eq. 4 with a subsample of examples and of iterations, logged per epoch as ``gn`` (the
    estimator is in the module docstring).

    Args:
        model: the model (any Keras model; a final softmax is read as logits + softmax).
        x, y: the training examples.
        examples: ``m``, the size of the fixed random subsample of examples (None: all).
        iterations: ``s``, iterations sampled per epoch (None: every iteration).
        batch_size: examples per vectorized per-example-gradient call.
        seed: the random state of both subsamples.

    Raises:
        PGDLError: a subsample size that is not positive.
    """

    def __init__(self, model, x: np.ndarray, y: np.ndarray, *, examples: int | None = None,
                 iterations: int | None = None, batch_size: int = 64, seed: int = 0):
        super().__init__()
        model_graph.logits_model(model)
        n = len(y)
        if examples is not None and examples < 1 or iterations is not None and iterations < 1:
            raise PGDLError("GN subsample sizes (examples, iterations) must be positive integers")
        rng = np.random.default_rng([int(seed), 4])
        keep = np.sort(rng.choice(n, size=examples, replace=False)) if examples and examples < n else np.arange(n)
        self.tracked = model
        self.x, self.y = np.asarray(x)[keep], np.asarray(y)[keep]
        self.examples = len(keep)
        self.iterations = iterations
        self.batch_size = batch_size
        self.seed = int(seed)
        self.seconds = 0.0
        self.evaluations = 0
        self._steps: int | None = None

    def estimator(self) -> str:
        return (f"GN_e = (T_e / s) sum over s sampled iterations of the mean over m = {self.examples} "
                f"fixed random training examples of ||grad l_i||^2 (s = "
                f"{'all' if self.iterations is None else self.iterations} iterations per epoch); GN = sum_e GN_e")

    def value(self) -> float:
        """``(1/m) sum_{i in M} ||grad l_i||^2`` at the current weights."""
        from pgdl_measures.autodiff import full_float32
        from pgdl_measures.measures.gradient_norm import mean_grad_sq_norm
        from pgdl_measures.tasks.data import ArrayDataset

        with full_float32():
            return mean_grad_sq_norm(self.tracked, ArrayDataset(self.x, self.y), batch_size=self.batch_size)

    def on_epoch_begin(self, epoch, logs=None):
        steps = self.params.get("steps") if self.params else None
        if steps is None:
            raise PGDLError("the GN tracker needs the number of steps per epoch (data of known length)")
        self._steps = int(steps)
        s = steps if self.iterations is None else min(self.iterations, steps)
        rng = np.random.default_rng([self.seed, 5, int(epoch)])
        self._chosen = set(rng.choice(steps, size=s, replace=False).tolist())
        self._sum = 0.0
        self._count = 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch not in self._chosen:
            return
        start = time.perf_counter()
        sync_weights(self.model)
        self._sum += self.value()
        self._count += 1
        self.evaluations += 1
        self.seconds += time.perf_counter() - start

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._count:
            logs["gn"] = self._steps / self._count * self._sum


class AGNTerms(keras.layers.Layer):
    """``[z, ||h||^2]``: the logits with the squared norm of the final Dense's input appended."""

    def call(self, h, z):
        hsq = ops.sum(ops.square(ops.cast(h, "float32")), axis=-1, keepdims=True)
        return ops.concatenate([ops.cast(z, "float32"), hsq], axis=-1)

    def compute_output_shape(self, h_shape, z_shape):
        return tuple(z_shape[:-1]) + (z_shape[-1] + 1,)


def online_agn_head(model):
    """A model sharing `model`'s layers whose output is ``[z, ||h||^2]`` (``C + 1`` columns).

    Training it with :func:`head_loss` trains `model` exactly as the cross-entropy on its logits
    would; :class:`OnlineAGNMetric` and :class:`HeadAccuracy` read its output.

    Raises:
        PGDLError: `model` has no final Dense layer (see
            :func:`pgdl_measures.autodiff.model_graph.final_dense`).
    """
    dense = model_graph.final_dense(model)
    features = model_graph.features_model(model)
    x = keras.Input(shape=tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
    h, z = features(x)
    head = keras.Model(x, AGNTerms()(h, z), name=f"{model.name}_online_agn")
    head.pgdl_use_bias = bool(dense.use_bias)
    return head


def head_loss():
    """Sparse cross-entropy on the logits columns of :func:`online_agn_head`'s output."""
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(y_true, y_pred):
        return ce(y_true, y_pred[:, :-1])

    return loss


class OnlineAGNMetric(keras.metrics.Mean):
    """The online AGN over :func:`online_agn_head`'s output: the mean over the epoch's examples
    of ``(||h||^2 + 1) ||softmax(z) - onehot(y)||^2`` (without the ``+ 1`` when the final Dense
    has no bias)."""

    def __init__(self, use_bias: bool = True, name: str = "online_agn", **kwargs):
        super().__init__(name=name, **kwargs)
        self.use_bias = bool(use_bias)

    def update_state(self, y_true, y_pred, sample_weight=None):
        z = y_pred[:, :-1]
        hsq = y_pred[:, -1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        delta = ops.softmax(z, axis=-1) - ops.one_hot(labels, ops.shape(z)[-1], dtype=z.dtype)
        terms = (hsq + (1.0 if self.use_bias else 0.0)) * ops.sum(ops.square(delta), axis=-1)
        return super().update_state(terms, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "use_bias": self.use_bias}


class HeadAccuracy(keras.metrics.Mean):
    """Accuracy on the logits columns of :func:`online_agn_head`'s output."""

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred[:, :-1], axis=-1), "int32"), labels), "float32")
        return super().update_state(hits, sample_weight=sample_weight)


__all__ = ["AGNTerms", "ExactAGN", "GradientNormTracker", "HeadAccuracy", "OnlineAGNMetric", "describe", "head_loss",
           "online_agn_head", "summed", "sync_weights"]


def describe(trackers: Sequence[Any]) -> list[str]:
    """One line per tracker callback: its name and, for GN, its estimator."""
    out = []
    for t in trackers:
        out.append(t.estimator() if hasattr(t, "estimator") else type(t).__name__)
    return out
