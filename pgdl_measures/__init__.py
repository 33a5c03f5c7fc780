"""PGDL toolkit: read Predicting-Generalization-in-Deep-Learning tasks, compute complexity
measures on Keras 3 models (TensorFlow or JAX backend) and score them.

Importing this package is cheap: Keras and TensorFlow are imported by the modules that need them.
"""

__version__ = "0.1.0"

from pgdl_measures.errors import PGDLError

__all__ = ["PGDLError", "__version__"]
