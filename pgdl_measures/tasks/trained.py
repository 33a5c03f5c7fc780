"""What a complexity measure is computed on: one trained model with its data.

Only NumPy is imported here (no pandas, no Keras), so a competition submission packaged by
``pgdl package`` can carry this module as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgdl_measures.tasks.data import Dataset


@dataclass
class TrainedModel:
    """One trained model of a task: what a complexity measure is computed on.

    Attributes:
        model_id: ``model_<k>``.
        model: the Keras 3 model with its trained weights.
        initial_weights: the weights at initialisation, in ``model.get_weights()`` order, or
            None when the task has no ``weights_init.hdf5`` for this model.
        train: the training data (None when the task has none).
        test: the test data, when present.
        task: the task's name.
        path: the model's folder.
    """

    model_id: str
    model: Any
    initial_weights: list[np.ndarray] | None = None
    train: Dataset | None = None
    test: Dataset | None = None
    task: str = ""
    path: Path | None = None

    @property
    def num_classes(self) -> int:
        """The number of classes, from the model's output layer."""
        return int(self.model.outputs[0].shape[-1])

    @property
    def label(self) -> str:
        return f"{self.task}/{self.model_id}" if self.task else self.model_id
