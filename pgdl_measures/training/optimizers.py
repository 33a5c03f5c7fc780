"""The Keras optimizer of a :class:`~pgdl_measures.training.config.TrainConfig`: SGD with
PyTorch's coupled weight decay (:class:`CoupledSGD`), Keras's SGD or Adam, and the piecewise
learning rate as a Keras schedule (see :mod:`pgdl_measures.training.config`)."""

from __future__ import annotations

import keras
from keras import ops

from pgdl_measures.errors import PGDLError
from pgdl_measures.training.config import TrainConfig, milestone_steps


class CoupledSGD(keras.optimizers.SGD):
    """Keras SGD with PyTorch's coupled weight decay: ``g <- g + weight_decay * w`` before the
    momentum update (``v <- momentum v - lr g``; ``w <- w + v``, Keras's form of PyTorch's
    momentum: identical for a constant learning rate).

    Args:
        coupled_weight_decay: the decay ``weight_decay`` added to each gradient.
        **kwargs: ``keras.optimizers.SGD``'s arguments.
    """

    def __init__(self, coupled_weight_decay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.coupled_weight_decay = float(coupled_weight_decay)

    def update_step(self, gradient, variable, learning_rate):
        if self.coupled_weight_decay:
            gradient = ops.add(ops.cast(gradient, variable.dtype),
                               ops.multiply(ops.cast(self.coupled_weight_decay, variable.dtype), variable))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "coupled_weight_decay": self.coupled_weight_decay}


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """The learning rate for Keras: a float, or a ``PiecewiseConstantDecay`` over the optimizer's
    step count whose value at every step of epoch ``e`` is
    :func:`~pgdl_measures.training.config.epoch_learning_rate`."""
    if config.schedule == "constant" or not config.milestones:
        return float(config.learning_rate)
    boundaries, values = milestone_steps(config, steps_per_epoch)
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer_for(config: TrainConfig, steps_per_epoch: int):
    """The optimizer of `config` (see :mod:`pgdl_measures.training.config`).

    Raises:
        PGDLError: coupled weight decay asked for Adam.
    """
    lr = learning_rate(config, steps_per_epoch)
    decoupled = float(config.weight_decay) if config.decay == "decoupled" and config.weight_decay else None
    if config.optimizer == "adam":
        if config.decay == "coupled" and config.weight_decay:
            raise PGDLError("coupled weight decay is offered for sgd only; use decay='decoupled' with adam")
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=decoupled)
    if config.decay == "coupled" and config.weight_decay:
        return CoupledSGD(coupled_weight_decay=config.weight_decay, learning_rate=lr, momentum=config.momentum)
    return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum, weight_decay=decoupled)
