"""The autodiff interface on the JAX backend (see :mod:`pgdl_measures.autodiff`).

Models are called through Keras 3's stateless API,
``model.stateless_call(trainable_values, non_trainable_values, x, training=False)``, so weights
are arguments of the compiled functions rather than constants baked into them: a function is
traced once per model and input shape, and reads the current weights on every call.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from pgdl_measures.autodiff import _layerwise
from pgdl_measures.autodiff._common import cached, variable_indices

#: Examples per ``vmap`` call of the per-example gradients on the CPU. XLA:CPU materialises
#: every per-example gradient and lowers a vmapped convolution weight-gradient to a grouped
#: convolution, so there the cost per example grows with the vmap width: on the benchmark VGG
#: (bench/measures.py, 2 CPU cores) a loop of compiled single-example gradients took 6-10 ms per
#: example, vmap over 2 examples 10-13 ms, over 4 13-18 ms, over 32 58 ms. On the CPU we
#: therefore call the compiled function on one example at a time (still one trace per model);
#: elsewhere (GPU, TPU) the whole batch is one vmap.
CPU_VMAP_CHUNK = 1


def _values(variables) -> list:
    return [v.value for v in variables]


def _split(model, idx: tuple[int, ...]):
    """(values to differentiate, the other trainable values, non-trainable values)."""
    trainable = _values(model.trainable_variables)
    chosen = set(idx)
    wrt = [trainable[i] for i in idx]
    fixed = [value for i, value in enumerate(trainable) if i not in chosen]
    return wrt, fixed, _values(model.non_trainable_variables)


def _single_example_loss(model, idx: tuple[int, ...]):
    """``loss(wrt, fixed, ntv, x, y)``: cross-entropy of one example (``x`` without batch axis)."""
    n = len(model.trainable_variables)
    chosen = set(idx)
    rest = [i for i in range(n) if i not in chosen]

    def loss(wrt, fixed, ntv, x, y):
        trainable = [None] * n
        for i, value in zip(idx, wrt):
            trainable[i] = value
        for i, value in zip(rest, fixed):
            trainable[i] = value
        logits, _ = model.stateless_call(trainable, ntv, x[None], training=False)
        logits = logits[0].astype(jnp.float32)
        return jax.nn.logsumexp(logits) - logits[y]

    return loss


_compiled = functools.partial(cached, backend="jax")


def full_float32():
    """``jax.default_matmul_precision("highest")``: float32 matrix products and convolutions
    traced inside are computed in true float32 (not TensorFloat-32 on NVIDIA GPUs; no effect on
    CPUs). The precision is part of jit's cache key, so a function traced outside is retraced."""
    return jax.default_matmul_precision("highest")


def layerwise_sq_norms(model, plan, idx, x, y) -> np.ndarray:
    """One batched forward pass with zero perturbations ``e_i`` added to every layer's output,
    ``jax.grad`` of the summed loss w.r.t. the ``e_i`` (the output gradients), then the
    per-example norms layer by layer (see :mod:`pgdl_measures.autodiff._layerwise`)."""

    def build():
        chosen = set(idx)

        def sq_norms(tv, ntv, x, y):
            def outputs(tv, ntv, x):
                found = {}

                def record(i, z):
                    found[i] = z
                    return z

                _layerwise.forward(plan.steps, tv, ntv, x, record)
                return found

            zeros = {i: jnp.zeros(s.shape, s.dtype) for i, s in jax.eval_shape(outputs, tv, ntv, x).items()}

            def loss(perturbations):
                logits, records = _layerwise.forward(plan.steps, tv, ntv, x, lambda i, z: z + perturbations[i])
                logits = logits.astype(jnp.float32)
                picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
                return jnp.sum(jax.nn.logsumexp(logits, axis=1) - picked), records

            deltas, records = jax.grad(loss, has_aux=True)(zeros)
            return _layerwise.nan_unless_finite(_layerwise.sq_norms(plan.steps, records, deltas, chosen), tv)

        return jax.jit(sq_norms)

    fn = _compiled(model, ("grad_sq_layerwise", idx), build)
    tv = _values(model.trainable_variables)
    ntv = _values(model.non_trainable_variables)
    out = fn(tv, ntv, np.asarray(x, np.float32), np.asarray(y, np.int32))
    return np.asarray(out, dtype=np.float64)


def vmap_sq_norms(model, idx, x, y) -> np.ndarray:
    """The ``"vmap"`` method of :func:`pgdl_measures.autodiff.per_example_grad_sq_norms`:
    ``jit(vmap(grad(loss)))`` over the batch (over chunks of :data:`CPU_VMAP_CHUNK` examples on
    the CPU)."""

    def build():
        grad = jax.grad(_single_example_loss(model, idx))

        def sq_norms(wrt, fixed, ntv, x, y):
            grads = jax.vmap(grad, in_axes=(None, None, None, 0, 0))(wrt, fixed, ntv, x, y)
            return sum(jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1) for g in grads)

        return jax.jit(sq_norms)

    fn = _compiled(model, ("grad_sq", idx), build)
    wrt, fixed, ntv = _split(model, idx)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int32)
    n = len(x)
    chunk = min(n, CPU_VMAP_CHUNK) if jax.default_backend() == "cpu" else n
    pad = -n % chunk if chunk else 0
    if pad:  # one shape per model: pad the last chunk with copies of the last example
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        y = np.concatenate([y, np.repeat(y[-1:], pad)])
    out = [fn(wrt, fixed, ntv, x[i:i + chunk], y[i:i + chunk]) for i in range(0, len(x), chunk)]
    return np.concatenate([np.asarray(o, dtype=np.float64) for o in out])[:n] if out else np.zeros(0)


def per_example_grad_sq_norms_loop(model, x, y, *, variables: Sequence | None = None,
                                   compiled: bool = True) -> np.ndarray:
    """The reference: ``jit(grad(loss))`` (``grad(loss)`` op by op when not `compiled`) called
    once per example from a Python loop."""
    idx = variable_indices(model, variables)

    def build():
        grad = jax.grad(_single_example_loss(model, idx))

        def sq_norm(wrt, fixed, ntv, x, y):
            return sum(jnp.sum(jnp.square(g)) for g in grad(wrt, fixed, ntv, x, y))

        return jax.jit(sq_norm) if compiled else sq_norm

    fn = _compiled(model, ("grad_sq_loop", idx, compiled), build)
    wrt, fixed, ntv = _split(model, idx)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int32)
    return np.array([float(fn(wrt, fixed, ntv, x[i], y[i])) for i in range(len(x))], dtype=np.float64)


def input_jacobian_sq_sums(model, inputs) -> np.ndarray:
    """See :func:`pgdl_measures.autodiff.input_jacobian_sq_sums`: one ``jax.vjp`` of the batch,
    its pullback ``vmap``-ed over the ``C`` one-hot cotangents, all under ``jit``."""

    def build():
        def sq_sums(tv, ntv, inputs):
            def forward(inputs):
                out, _ = model.stateless_call(tv, ntv, inputs if len(inputs) > 1 else inputs[0], training=False)
                return out

            out, pullback = jax.vjp(forward, inputs)
            classes = out.shape[-1]
            cotangents = jnp.broadcast_to(jnp.eye(classes, dtype=out.dtype)[:, None, :], (classes,) + out.shape)
            (grads,) = jax.vmap(pullback)(cotangents)  # each [C, batch, ...]
            return jnp.stack([jnp.sum(jnp.square(g).reshape(g.shape[0], g.shape[1], -1), axis=(0, 2)) for g in grads],
                             axis=1)

        return jax.jit(sq_sums)

    fn = _compiled(model, ("input_jacobian",), build)
    tv = _values(model.trainable_variables)
    ntv = _values(model.non_trainable_variables)
    out = fn(tv, ntv, [jnp.asarray(u, jnp.float32) for u in inputs])
    return np.asarray(out, dtype=np.float64)
