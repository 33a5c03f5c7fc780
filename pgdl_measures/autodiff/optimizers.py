"""The Keras optimizer of the perturbed copy (:mod:`pgdl_measures.autodiff.perturbed`): a
gradient step projected onto a box."""

from __future__ import annotations

import keras
from keras import ops


class BoxProjectedStep(keras.optimizers.Optimizer):
    """``w <- clip(w - lr * step(g), lower, upper)`` per variable.

    ``rule="gradient"``: ``step(g) = g`` (SGD, then clipping to the box).
    ``rule="scaled_sign"``: ``step(g) = scale * sign(g)`` (an L-infinity projected step whose
    size is relative to each coordinate's box half-width).
    The bounds (and scales) are optimizer variables set with :meth:`set_box`.

    Raises:
        ValueError: another `rule`.
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
        """Set the bounds (and, for ``scaled_sign``, the scales) of every variable, in order."""
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
