"""A copy of a Keras model whose trainable weights take box-projected gradient steps: the one
training step of the measures (magnitude-aware sharpness and the competition's sharpness
baselines), kept behind the backend layer with the rest of the toolkit's differentiation.

Why Keras's own train step rather than a tape or ``jax.grad`` here: the step is
``w <- clip(w - lr * step(g), lower, upper)``, which is exactly a Keras optimizer's
``update_step``; ``train_on_batch`` then compiles forward, backward and update into one call on
the TensorFlow and JAX backends alike (and keeps batch-norm statistics and dropout in inference
mode through :class:`~pgdl_measures.autodiff.layers.InferenceMode`). A hand-written step per
backend would repeat what Keras does and give the same numbers. The optimizer is
:class:`~pgdl_measures.autodiff.optimizers.BoxProjectedStep`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pgdl_measures.errors import PGDLError

__all__ = ["PerturbedCopy", "numpy_weights"]


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

        from pgdl_measures.autodiff.layers import InferenceMode
        from pgdl_measures.autodiff.optimizers import BoxProjectedStep

        try:
            inner = keras.models.clone_model(model)
            inner.set_weights(numpy_weights(model.weights))
        except Exception as exc:  # noqa: BLE001 - any failure to copy is reported the same way
            raise PGDLError(f"cannot copy the model to perturb it ({type(exc).__name__}: {exc}); "
                            "sharpness needs a Sequential or functional Keras model") from exc
        self.inner = inner
        self.net = InferenceMode(inner)
        self.optimizer = BoxProjectedStep(learning_rate=learning_rate, rule=rule)
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
