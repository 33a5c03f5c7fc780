"""Exact per-example gradient norms from one batched forward and backward pass (backend-neutral).

For a chain of layers whose parameters sit in Dense, Conv2D and BatchNormalization layers, the
per-example gradient of a parameter is a sum over positions of an outer product of what the
layer reads and what flows back into its output (Goodfellow, arXiv:1510.01799; Rochette et
al., arXiv:1912.06015). With ``a`` the layer input as patches ``[b, P, K]`` and
``delta = d(sum_i l_i)/dz`` the gradient of the *batch-summed* loss with respect to the layer's
pre-activation output ``z`` ``[b, P, C]`` (row ``b`` is example ``b``'s own gradient, since
examples do not interact in inference mode)::

    ||dl_b/dW||^2 = ||sum_p a_bp (x) delta_bp||^2
                  = sum_{p,q} (a_bp . a_bq)(delta_bp . delta_bq)      (the Gram form)
    ||dl_b/db||^2 = ||sum_p delta_bp||^2

computed per layer by the cheaper of the two forms (``P K C`` against ``P^2 (K + C)``
multiply-adds). A Dense layer on a flat input has ``P = 1``: ``||a_b||^2 ||delta_b||^2``.
BatchNormalization (inference) ``y = gamma x_hat + beta`` gives
``||dl_b/dgamma||^2 = ||sum_p delta_bp * x_hat_bp||^2`` and ``||dl_b/dbeta||^2 = ||sum_p delta_bp||^2``.

This module only plans and evaluates the forward pass and the norms with ``keras.ops``; the
backend modules supply the one backward pass (``tf.GradientTape`` / ``jax.grad``) that yields
every ``delta``. :func:`plan` returns None for a model it cannot handle (a layer type with
weights it does not know, a grouped or dilated convolution, a non-chain model), and the caller
then falls back to vmapped per-example gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pgdl_measures.autodiff.layers import PreActivation
from pgdl_measures.autodiff.model_graph import layer_chain
from pgdl_measures.errors import PGDLError


@dataclass
class Step:
    """One layer of the chain.

    Attributes:
        kind: ``"apply"`` (a layer without weights, called as is), ``"dense"``, ``"conv"`` or ``"bn"``.
        layer: the Keras layer (for ``"dense"`` possibly a pre-activation wrapper's Dense).
        refs: weight name -> ``("t" | "n", index)`` into the model's trainable / non-trainable variables.
        activation: applied after the pre-activation of a dense or conv step (None: linear).
        gram: (conv) use the Gram form for the kernel norm.
    """

    kind: str
    layer: object
    refs: dict = field(default_factory=dict)
    activation: Callable | None = None
    gram: bool = False


@dataclass
class Plan:
    steps: list
    covered: set  # trainable indices whose norms the plan computes


def _chain(model):
    """The layers of `model` in call order when they form a chain, else None
    (:func:`pgdl_measures.autodiff.model_graph.layer_chain`)."""
    try:
        return layer_chain(model)
    except PGDLError:
        return None


def _same_or_valid_pads(size: int, k: int, s: int, padding: str) -> tuple[int, int, int]:
    """(pad before, pad after, output size) of one spatial axis, as TensorFlow/XLA pad."""
    if padding == "valid":
        return 0, 0, (size - k) // s + 1
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


def _plain(layer) -> bool:
    """Computes in float32, without LoRA or quantization (what :func:`forward` reproduces)."""
    return (getattr(layer, "compute_dtype", "float32") == "float32" and not getattr(layer, "lora_enabled", False)
            and not getattr(layer, "quantization_mode", None))


def plan(model) -> Plan | None:
    """The layer-by-layer plan of `model` (logits output), or None where it does not apply."""
    import keras

    chain = _chain(model)
    if chain is None:
        return None
    trainable = {id(v): i for i, v in enumerate(model.trainable_variables)}
    frozen = {id(v): i for i, v in enumerate(model.non_trainable_variables)}

    def ref(variable):
        if id(variable) in trainable:
            return ("t", trainable[id(variable)])
        if id(variable) in frozen:
            return ("n", frozen[id(variable)])
        raise KeyError(variable)

    L = keras.layers
    steps, covered = [], set()
    try:
        for layer in chain:
            if not _plain(layer):
                return None
            if isinstance(layer, PreActivation):
                dense = layer.dense
                if type(dense) is not L.Dense or not _plain(dense):
                    return None
                refs = {"kernel": ref(dense.kernel)}
                if dense.use_bias:
                    refs["bias"] = ref(dense.bias)
                steps.append(Step("dense", dense, refs, None))
            elif type(layer) is L.Dense:
                refs = {"kernel": ref(layer.kernel)}
                if layer.use_bias:
                    refs["bias"] = ref(layer.bias)
                steps.append(Step("dense", layer, refs, layer.activation))
            elif type(layer) is L.Conv2D:
                if (layer.data_format != "channels_last" or layer.groups != 1
                        or tuple(layer.dilation_rate) != (1, 1) or layer.padding not in ("same", "valid")):
                    return None
                refs = {"kernel": ref(layer.kernel)}
                if layer.use_bias:
                    refs["bias"] = ref(layer.bias)
                _, h, w, cin = layer.input.shape
                kh, kw, _, cout = layer.kernel.shape
                ho = _same_or_valid_pads(h, kh, layer.strides[0], layer.padding)[2]
                wo = _same_or_valid_pads(w, kw, layer.strides[1], layer.padding)[2]
                positions, k = ho * wo, kh * kw * cin
                gram = positions * positions * (k + cout) < positions * k * cout
                steps.append(Step("conv", layer, refs, layer.activation, gram))
            elif type(layer) is L.BatchNormalization:
                axis = layer.axis if isinstance(layer.axis, int) else None
                ndim = len(layer.input.shape)
                if axis is None or axis % ndim != ndim - 1:
                    return None
                refs = {"mean": ref(layer.moving_mean), "variance": ref(layer.moving_variance)}
                if layer.scale:
                    refs["gamma"] = ref(layer.gamma)
                if layer.center:
                    refs["beta"] = ref(layer.beta)
                steps.append(Step("bn", layer, refs))
            elif not layer.weights:
                steps.append(Step("apply", layer))
                continue
            else:
                return None
            covered.update(i for kind, i in steps[-1].refs.values() if kind == "t")
    except (KeyError, AttributeError, TypeError, ValueError):
        return None
    if covered != set(range(len(model.trainable_variables))):
        return None
    return Plan(steps, covered)


def _windows(a, layer):
    """The kernel-offset windows of a ``[b, H, W, Cin]`` input for `layer` (a Conv2D): one
    ``[b, P, Cin]`` tensor per offset ``(i, j)``, in the kernel's ``(kh, kw)`` order; their
    concatenation along the last axis is the layer's patch matrix."""
    from keras import ops

    _, h, w, cin = a.shape
    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    top, bottom, ho = _same_or_valid_pads(h, kh, sh, layer.padding)
    left, right, wo = _same_or_valid_pads(w, kw, sw, layer.padding)
    if top or bottom or left or right:
        a = ops.pad(a, [[0, 0], [top, bottom], [left, right], [0, 0]])
    return [ops.reshape(a[:, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :], (-1, ho * wo, int(cin)))
            for i in range(kh) for j in range(kw)]


def _patches(a, layer):
    """Patches of a ``[b, H, W, Cin]`` input for `layer` (a Conv2D): ``[b, P, kh*kw*Cin]``."""
    from keras import ops

    pieces = _windows(a, layer)
    return ops.concatenate(pieces, axis=-1) if len(pieces) > 1 else pieces[0]


def forward(steps, trainable, frozen, x, perturb):
    """The logits of the chain, and what each parametrised step needs for its norms.

    Args:
        trainable, frozen: the model's trainable / non-trainable values (lists).
        perturb: ``perturb(i, z) -> z``, applied to the output ``z`` whose gradient ``delta_i``
            the norms of step ``i`` need (identity, or ``z + e_i`` with ``e_i = 0``).

    Returns:
        (logits, records): ``records[i]`` is step ``i``'s layer input (dense, conv) or ``x_hat`` (bn).
    """
    from keras import ops

    def value(r):
        kind, i = r
        return (trainable if kind == "t" else frozen)[i]

    h = x
    records = {}
    for i, step in enumerate(steps):
        if step.kind == "apply":
            h = step.layer(h, training=False)
            continue
        refs = step.refs
        if step.kind == "dense":
            records[i] = h
            z = ops.matmul(h, value(refs["kernel"]))
        elif step.kind == "conv":
            records[i] = h
            layer = step.layer
            z = ops.conv(h, value(refs["kernel"]), strides=layer.strides, padding=layer.padding,
                         data_format="channels_last", dilation_rate=layer.dilation_rate)
        else:  # bn
            layer = step.layer
            x_hat = (h - value(refs["mean"])) * ops.rsqrt(value(refs["variance"]) + layer.epsilon)
            records[i] = x_hat
            z = x_hat
            if "gamma" in refs:
                z = z * value(refs["gamma"])
            if "beta" in refs:
                z = z + value(refs["beta"])
            h = perturb(i, z)
            continue
        if "bias" in refs:
            z = z + value(refs["bias"])
        z = perturb(i, z)
        h = step.activation(z) if step.activation is not None else z
    return h, records


def _positions(t):
    """``t`` ``[b, ..., c]`` as ``[b, P, c]``, with ``P`` static (only the batch size may be unknown)."""
    from keras import ops

    positions = 1
    for size in t.shape[1:-1]:
        positions *= int(size)
    return ops.reshape(t, (-1, positions, int(t.shape[-1])))


def _row_sq(t):
    """Per-example sum of squares of ``t`` ``[b, ...]``."""
    from keras import ops

    return ops.sum(ops.reshape(ops.square(t), (ops.shape(t)[0], -1)), axis=1)


def sq_norms(steps, records, deltas, chosen: set):
    """Per-example ``sum_v ||dl_b/dv||^2`` over the trainable indices in `chosen` (``[b]``).

    Args:
        records: from :func:`forward`.
        deltas: step index -> gradient of the batch-summed loss w.r.t. that step's perturbed output.
    """
    from keras import ops

    total = None

    def add(term):
        nonlocal total
        total = term if total is None else total + term

    for i, step in enumerate(steps):
        if step.kind == "apply":
            continue
        refs = step.refs
        wanted = {name for name, (kind, j) in refs.items() if kind == "t" and j in chosen}
        if not wanted:
            continue
        delta = deltas[i]
        d = _positions(delta)  # [b, P, C]
        if step.kind == "bn":
            if "gamma" in wanted:
                x_hat = _positions(records[i])
                add(_row_sq(ops.sum(d * x_hat, axis=1)))
            if "beta" in wanted:
                add(_row_sq(ops.sum(d, axis=1)))
            continue
        if "bias" in wanted:
            add(_row_sq(ops.sum(d, axis=1)))
        if "kernel" not in wanted:
            continue
        if step.kind == "conv" and step.gram:
            a = _patches(records[i], step.layer)  # [b, P, K]
            add(ops.sum(ops.einsum("bpk,bqk->bpq", a, a) * ops.einsum("bpc,bqc->bpq", d, d), axis=(1, 2)))
        elif step.kind == "conv":
            # The kernel gradient one offset at a time: kh*kw products [b, Cin, C] (the same
            # multiply-adds as one product with the patch matrix, without building it).
            for window in _windows(records[i], step.layer):
                add(_row_sq(ops.einsum("bpk,bpc->bkc", window, d)))
        else:
            a = _positions(records[i])  # [b, P, K]
            if d.shape[1] == 1:  # one position: ||a||^2 ||delta||^2
                add(_row_sq(a) * _row_sq(d))
            else:
                add(_row_sq(ops.einsum("bpk,bpc->bkc", a, d)))
    return total


def nan_unless_finite(norms, trainable):
    """`norms` where every trainable value is finite, else NaN for every example.

    A NaN weight does not always reach the output (TensorFlow's ``relu(NaN)`` is 0); the
    per-example gradients then stay finite, and so would these norms. NaN makes such a model's
    gradient norm visibly undefined, as the vectorized per-example gradients do.
    """
    from keras import ops

    finite = ops.all(ops.stack([ops.all(ops.isfinite(w)) for w in trainable]))
    return ops.where(finite, norms, ops.full_like(norms, float("nan")))

