"""Importing the training package, the zoo's training and the model graph imports no Keras; the
packages name their Keras classes lazily (PEP 562)."""

from __future__ import annotations

import subprocess
import sys


def test_light_modules_import_no_keras():
    code = ("import sys, pgdl_measures.training, pgdl_measures.training.models, pgdl_measures.zoo.train, "
            "pgdl_measures.autodiff.model_graph, pgdl_measures.autodiff.perturbed; print('keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_packages_name_their_keras_classes():
    import keras

    from pgdl_measures import autodiff, training
    from pgdl_measures.autodiff.layers import PreActivation
    from pgdl_measures.training.optimizers import CoupledSGD
    from pgdl_measures.training.trackers import ExactAGN

    assert training.CoupledSGD is CoupledSGD and issubclass(CoupledSGD, keras.optimizers.SGD)
    assert training.ExactAGN is ExactAGN and issubclass(ExactAGN, keras.callbacks.Callback)
    assert autodiff.PreActivation is PreActivation and issubclass(autodiff.BoxProjectedStep, keras.optimizers.Optimizer)
