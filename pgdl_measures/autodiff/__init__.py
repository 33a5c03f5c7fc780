"""Automatic differentiation behind one small interface, one module per Keras backend.

Every gradient tape, ``tf.function``, ``tf.vectorized_map``, ``jax.grad``, ``jax.vmap`` and
``jax.jit`` of the toolkit lives in :mod:`pgdl_measures.autodiff.tensorflow` or
:mod:`pgdl_measures.autodiff.jax`; measures call the functions below, which forward to the
module of the running Keras backend (``keras.backend.backend()``, chosen by ``KERAS_BACKEND``).
Importing this package imports neither TensorFlow nor JAX.

The interface (numpy in, numpy out; ``model`` is a Keras model whose output is *logits*,
e.g. :func:`pgdl_measures.autodiff.model_graph.logits_model`):

* :func:`per_example_grad_sq_norms` -- ``||grad_theta l(model(x_i), y_i)||^2`` for every
  example of a batch, compiled, either layer by layer from one batched backward pass (chains
  of Dense, Conv2D, BatchNormalization and weightless layers: :mod:`pgdl_measures.autodiff._layerwise`)
  or vectorized over the batch (``tf.vectorized_map``, ``jax.vmap``; on XLA:CPU one example per
  compiled call: see :data:`pgdl_measures.autodiff.jax.CPU_VMAP_CHUNK`);
* :func:`per_example_grad_sq_norms_loop` -- the same, one example at a time (the slow,
  obviously correct reference used by tests and ``bench/``);
* :func:`input_jacobian_sq_sums` -- for a model with inputs ``u_1..u_K``, the per-example sum
  of squared entries of the Jacobian of the output with respect to each input.

Each backend module provides ``layerwise_sq_norms`` and ``vmap_sq_norms``
(the two methods of :func:`per_example_grad_sq_norms`, chosen here),
``per_example_grad_sq_norms_loop``, ``input_jacobian_sq_sums`` and ``full_float32``.

Precision: :func:`full_float32` is the context every measure runs in (``Measure.__call__``
enters it). On NVIDIA GPUs since Ampere (the H100 and H200 included) both TensorFlow and JAX
compute float32 matrix products and convolutions in TensorFloat-32 by default (inputs rounded
to a 10-bit mantissa, relative errors near 1e-3), so a measure's value would depend on the
card. Inside the context they run in true float32 (TensorFlow:
``tf.config.experimental.enable_tensor_float_32_execution(False)``; JAX:
``jax.default_matmul_precision("highest")``); elsewhere (CPUs) nothing changes. Setting the
environment variable ``PGDL_ALLOW_TF32=1`` keeps the framework's default (faster on those GPUs,
values no longer comparable across machines).

Compiled functions are cached on the model object (:func:`model_cache`), so the batches of one
model reuse them and the cache is freed with the model. Each cache key includes the backend
name, so a model is never handed a function compiled for another backend.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Sequence
from types import ModuleType

import numpy as np

from pgdl_measures.autodiff._common import cached, model_cache, variable_indices

#: Keras backend name -> module implementing the interface.
MODULES = {
    "tensorflow": "pgdl_measures.autodiff.tensorflow",
    "jax": "pgdl_measures.autodiff.jax",
}

#: environment variable that leaves TensorFloat-32 to the framework's default (see :func:`full_float32`)
ALLOW_TF32_VARIABLE = "PGDL_ALLOW_TF32"


def backend_name() -> str:
    """The running Keras backend (``"tensorflow"`` or ``"jax"``)."""
    import keras

    return keras.backend.backend()


def backend_module(name: str | None = None) -> ModuleType:
    """The module implementing the interface for Keras backend `name` (default: the running one).

    Raises:
        NotImplementedError: a Keras backend without a module here (e.g. torch).
    """
    name = name or backend_name()
    if name not in MODULES:
        raise NotImplementedError(f"no autodiff module for the Keras backend {name!r}; "
                                  f"supported: {', '.join(MODULES)} (set KERAS_BACKEND)")
    return importlib.import_module(MODULES[name])


def tf32_allowed() -> bool:
    """Whether ``PGDL_ALLOW_TF32`` is set (to anything but ``""``, ``0``, ``false`` or ``no``)."""
    return os.environ.get(ALLOW_TF32_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def full_float32():
    """Run the enclosed computations in true float32 on GPUs that default to TensorFloat-32
    (see the module docstring); the previous setting is restored on exit. A no-op where
    ``PGDL_ALLOW_TF32`` is set, or on a backend without a module here."""
    name = backend_name()
    if tf32_allowed() or name not in MODULES:
        yield
        return
    with backend_module(name).full_float32():
        yield


def float32_mode() -> str:
    """``"float32"`` (measures run in true float32) or ``"tf32-allowed"`` (``PGDL_ALLOW_TF32``)."""
    return "tf32-allowed" if tf32_allowed() else "float32"


def layerwise_plan(model):
    """The cached :func:`pgdl_measures.autodiff._layerwise.plan` of `model`: how the
    ``"layerwise"`` method computes its per-example norms, or None where it does not apply."""
    from pgdl_measures.autodiff import _layerwise

    return cached(model, ("layerwise_plan",), lambda: _layerwise.plan(model), backend=backend_name())


def per_example_grad_sq_norms(model, x: np.ndarray, y: np.ndarray, *, variables: Sequence | None = None,
                              method: str = "auto") -> np.ndarray:
    """Squared norms of the per-example gradients of the cross-entropy, vectorized.

    For every example ``i`` of the batch: ``sum_v ||d l_i / d v||^2`` over the trainable
    variables ``v`` of `model` (or `variables`), with ``l_i = -log softmax(model(x_i))[y_i]``
    computed in inference mode (``training=False``).

    Args:
        model: a Keras model returning logits ``[batch, classes]``.
        x: inputs ``[batch, ...]`` (float32).
        y: integer labels ``[batch]``.
        variables: a subset of ``model.trainable_variables`` (default: all of them).
        method: ``"layerwise"``: one batched forward and backward pass, then every parametrised
            layer's per-example norms from its input and output gradient (Dense, Conv2D,
            BatchNormalization; see :mod:`pgdl_measures.autodiff._layerwise`); ``"vmap"``: the
            per-example gradients vectorized over the batch; ``"auto"`` (default): layerwise when
            every layer with weights is one it handles, else vmap.

    Returns:
        float64 array ``[batch]``.

    Raises:
        ValueError: an unknown `method`, or ``"layerwise"`` for a model it does not handle.
    """
    if method not in ("auto", "layerwise", "vmap"):
        raise ValueError(f"unknown method {method!r}: one of 'auto', 'layerwise', 'vmap'")
    module = backend_module()
    idx = variable_indices(model, variables)
    if method != "vmap":
        plan = layerwise_plan(model)
        if plan is not None:
            return module.layerwise_sq_norms(model, plan, idx, x, y)
        if method == "layerwise":
            raise ValueError(f"model {model.name!r} has a layer the layerwise method does not handle")
    return module.vmap_sq_norms(model, idx, x, y)


def grad_sq_norms_method(model) -> str:
    """The method ``"auto"`` uses for `model`: ``"layerwise"`` or ``"vmap"``."""
    return "layerwise" if layerwise_plan(model) is not None else "vmap"


def per_example_grad_sq_norms_loop(model, x: np.ndarray, y: np.ndarray, *, variables: Sequence | None = None,
                                   compiled: bool = True) -> np.ndarray:
    """:func:`per_example_grad_sq_norms` computed one example at a time (the slow reference).

    Args:
        compiled: compile the single-example gradient (``tf.function``/``jax.jit``) once and call
            it per example; when False, run it op by op (eager tape, un-jitted ``jax.grad``),
            the way a first implementation usually looks.
    """
    return backend_module().per_example_grad_sq_norms_loop(model, x, y, variables=variables, compiled=compiled)


def input_jacobian_sq_sums(model, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-example sums of squared entries of the Jacobian of the output w.r.t. each input.

    For a model ``f(u_1, ..., u_K) -> [batch, C]`` evaluated in inference mode, returns ``S`` with
    ``S[b, k] = sum_c sum_j (d f(u)[b, c] / d u_k[b, j])^2``. Like TensorFlow's
    ``batch_jacobian``, this assumes example ``b`` of the output depends only on example ``b``
    of the inputs (true in inference mode); it is computed with ``C`` vector-Jacobian products,
    vectorized over the classes.

    Args:
        model: a Keras model with ``K`` inputs (a list, or one array when ``K == 1``).
        inputs: the ``K`` input arrays, each ``[batch, ...]``.

    Returns:
        float64 array ``[batch, K]``.
    """
    return backend_module().input_jacobian_sq_sums(model, list(inputs))


__all__ = [
    "MODULES",
    "backend_module",
    "backend_name",
    "cached",
    "float32_mode",
    "full_float32",
    "grad_sq_norms_method",
    "input_jacobian_sq_sums",
    "layerwise_plan",
    "model_cache",
    "per_example_grad_sq_norms",
    "per_example_grad_sq_norms_loop",
    "tf32_allowed",
    "variable_indices",
]

#: the Keras subclasses of this package -> their module, imported on first use (PEP 562) so
#: that importing the package imports no Keras
_KERAS_CLASSES = {
    "PreActivation": "layers",
    "InferenceMode": "layers",
    "BoxProjectedStep": "optimizers",
}


def __getattr__(name: str):
    module = _KERAS_CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
