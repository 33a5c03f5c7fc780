"""The zoo trains through :mod:`pgdl_measures.training.fit` (the one training path of the
project); this module re-exports what the zoo and its CLI use."""

from pgdl_measures.training.fit import TRAINING_HPARAMS, TrainResult, accuracy, train_model, zoo_config

__all__ = ["TRAINING_HPARAMS", "TrainResult", "accuracy", "train_model", "zoo_config"]
