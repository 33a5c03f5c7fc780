"""How a model is trained: :class:`TrainConfig` (the study's defaults) and its learning-rate schedule.

Optimisation (the study's defaults): SGD with momentum 0.9, batch 128, learning rate 0.1
divided by 10 at 50% and by 100 at 75% of 160 epochs (``schedule="piecewise"``, in steps: the
same as PyTorch's ``MultiStepLR`` stepped every epoch), cross-entropy on logits, L2 weight decay
1e-4. Weight decay is ``decay="coupled"`` by default, as PyTorch's ``SGD(weight_decay=...)``
that the study used: ``wd * w`` is added to the gradient before the momentum
(:class:`~pgdl_measures.training.optimizers.CoupledSGD`), so it is scaled by the learning rate
and carried by the momentum, like an L2 term ``wd/2 ||w||^2`` in the loss (which is not
included in the logged loss). ``decay="decoupled"`` is Keras's own ``weight_decay``: after each
step every weight is multiplied by ``1 - lr * wd``, outside the momentum. Decay applies to every
trainable variable (kernels, biases, batch norm), as PyTorch's default.

Nothing here imports Keras: the optimizer and its Keras schedule are built by
:mod:`pgdl_measures.training.optimizers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pgdl_measures.errors import PGDLError


@dataclass
class TrainConfig:
    """How a model is trained (the defaults are the study's).

    Attributes:
        epochs: passes over the training data.
        batch_size: examples per step.
        learning_rate: the initial learning rate.
        schedule: ``"piecewise"`` (divided by ``1/gamma`` at each fraction of ``milestones`` of
            the run) or ``"constant"``.
        milestones: fractions of the run where the learning rate drops.
        gamma: the factor of each drop.
        optimizer: ``"sgd"`` (with momentum) or ``"adam"``.
        momentum: SGD's momentum.
        weight_decay: L2 weight decay.
        decay: ``"coupled"`` (PyTorch's, the study's) or ``"decoupled"`` (Keras's).
        seed: ``keras.utils.set_random_seed`` before the model is used, and the data order.
        shuffle: ``"seeded"`` (:class:`~pgdl_measures.training.feeding.EpochBatches`) or
            ``"keras"`` (``fit(shuffle=True)``).
        stop_loss: stop after the first epoch whose training loss is below this (0: never).
        diverge_loss: a training loss above this (or not finite) stops the run as diverged.
        steps_per_execution: Keras's ``steps_per_execution``.
        jit_compile: Keras's ``jit_compile`` (``"auto"``, True, False).
    """

    epochs: int = 160
    batch_size: int = 128
    learning_rate: float = 0.1
    schedule: str = "piecewise"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    decay: str = "coupled"
    seed: int = 0
    shuffle: str = "seeded"
    stop_loss: float = 0.0
    diverge_loss: float = 1e4
    steps_per_execution: int = 1
    jit_compile: Any = "auto"

    def check(self) -> None:
        """Raises PGDLError on a value out of range."""
        problems = []
        if self.epochs < 1 or self.batch_size < 1 or self.steps_per_execution < 1:
            problems.append("epochs, batch_size and steps_per_execution must be positive")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        for name, value, choices in (("schedule", self.schedule, ("piecewise", "constant")),
                                     ("optimizer", self.optimizer, ("sgd", "adam")),
                                     ("decay", self.decay, ("coupled", "decoupled")),
                                     ("shuffle", self.shuffle, ("seeded", "keras"))):
            if value not in choices:
                problems.append(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        if self.weight_decay < 0:
            problems.append("weight_decay must be >= 0")
        if problems:
            raise PGDLError("training config: " + "; ".join(problems))


def epoch_learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate of every step of (0-based) `epoch`: PyTorch's ``MultiStepLR`` with
    milestones ``round(m * epochs)`` for each fraction ``m`` of ``config.milestones``."""
    if config.schedule == "constant":
        return float(config.learning_rate)
    drops = sum(epoch >= int(round(m * config.epochs)) for m in config.milestones)
    return float(config.learning_rate) * config.gamma ** drops


def milestone_steps(config: TrainConfig, steps_per_epoch: int) -> tuple[list[int], list[float]]:
    """The schedule over the optimizer's step count: ``(boundaries, values)`` such that the
    learning rate is ``values[i]`` while ``step <= boundaries[i]`` (Keras's
    ``PiecewiseConstantDecay``), i.e. :func:`epoch_learning_rate` at every step of every epoch."""
    # epoch e starts at step e * steps_per_epoch
    milestones = sorted(int(round(m * config.epochs)) for m in config.milestones)
    boundaries = [e * steps_per_epoch - 1 for e in milestones if e > 0]
    values = [float(config.learning_rate) * config.gamma ** i for i in range(len(boundaries) + 1)]
    return boundaries, values
