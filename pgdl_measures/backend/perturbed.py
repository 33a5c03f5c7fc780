"""A copy of a Keras model whose trainable weights take box-projected gradient steps: the one
training step of the measures (magnitude-aware sharpness and the competition's sharpness
baselines), kept behind the backend layer with the rest of the toolkit's differentiation.

Why Keras's own train step rather than a tape or ``jax.grad`` here: the step is
``w <- clip(w - lr * step(g), lower, upper)``, which is exactly a Keras optimizer's
``update_step``; ``train_on_batch`` then compiles forward, backward and update into one call on
the TensorFlow and JAX backends alike (and keeps batch-norm statistics and dropout in inference
mode through :class:`InferenceMode`). A hand-written step per backend would repeat what Keras
does and give the same numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from pgdl_measures.errors import PGDLError

__all__ = ["PerturbedCopy", "numpy_weights"]



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


def numpy_weights(variables) -> list[np.ndarray]:
    """Copies of Keras variables' values (``np.asarray``: no NumPy-2 copy warning on any backend)."""
    return [np.array(np.asarray(v)) for v in variables]


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
            inner.set_weights(numpy_weights(model.weights))
        except Exception as exc:  # noqa: BLE001 - any failure to copy is reported the same way
            raise PGDLError(f"cannot copy the model to perturb it ({type(exc).__name__}: {exc}); "
                            "sharpness needs a Sequential or functional Keras model") from exc
        self.inner = inner
        self.net = inference_mode(inner)
        self.optimizer = box_step(learning_rate=learning_rate, rule=rule)
        self.optimizer.build(self.net.trainable_variables)
        self.net.compile(optimizer=self.optimizer, loss=loss)
        self.start_weights = numpy_weights(inner.weights)
        self.start_trainable = self.get_trainable()

    def get_trainable(self) -> list[np.ndarray]:
        """The current trainable weights, in ``trainable_variables`` order."""
        return numpy_weights(self.net.trainable_variables)

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
