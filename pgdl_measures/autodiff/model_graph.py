"""A model's graph, backend-neutral: its chain of layers, its last linear layer, its logits, and
sub-models built from the same layers (so they share the trained weights).

Measures use these to look inside a model; the autodiff modules of this package use
:func:`layer_chain` and :class:`~pgdl_measures.autodiff.layers.PreActivation` to plan per-example gradients layer by layer
(:mod:`pgdl_measures.autodiff._layerwise`). Derived models are cached on the model with
:func:`pgdl_measures.autodiff.cached`, the one per-model cache of the toolkit.

Logits. A PGDL model outputs logits. A model that ends in a softmax -- a ``Softmax`` layer,
``Activation("softmax")``, or a ``Dense(activation="softmax")`` -- is read as "logits, then
softmax": trailing softmax layers are dropped and a softmax ``Dense`` is replaced by its
pre-activation ``h @ W + b`` (sharing ``W`` and ``b``). Any other model's output is taken as
its logits.

No autodiff here and no framework import: only ``keras``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgdl_measures.autodiff._common import cached
from pgdl_measures.errors import PGDLError

#: the key under which derived models are cached: they are Keras models, valid on any backend
_ANY_BACKEND = "any"


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def is_softmax(layer) -> bool:
    """A ``Softmax`` layer over the last axis, or ``Activation("softmax")``."""
    import keras

    if isinstance(layer, keras.layers.Softmax):
        axis = layer.axis
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                return False
            axis = axis[0]
        if axis == -1:
            return True
        try:
            return axis == len(layer.input.shape) - 1
        except (AttributeError, ValueError):
            return False
    return isinstance(layer, keras.layers.Activation) and _activation_name(layer) == "softmax"


def layer_chain(model) -> list:
    """The layers of `model` in call order (no ``InputLayer``), which must form a chain.

    A ``keras.Sequential`` is a chain by construction. A functional model is one when it has one
    input and one output and, followed back from its output through its own graph, every layer
    reads the output of the one before it and the walk reaches its input through all of its
    layers. Following the graph back (rather than ``model.layers`` forward) also finds layers a
    derived model shares with another model (:func:`logits_model`).

    Raises:
        PGDLError: `model` is not built, or is not a chain of layers.
    """
    import keras

    name = getattr(model, "name", "model")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers:
        raise PGDLError(f"model {name!r} has no layers")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise PGDLError(f"model {name!r} is not built: build it with an input shape (keras.Input) first")
    if isinstance(model, keras.Sequential):
        return layers
    if len(inputs) != 1 or len(outputs) != 1:
        raise PGDLError(f"model {name!r} has {len(inputs)} inputs and {len(outputs)} outputs; "
                        "measures that look inside a model need one input, one output and a chain of layers")
    chain, tensor = [], outputs[0]
    try:
        while tensor is not inputs[0]:
            operation, node_index, _ = tensor._keras_history
            if isinstance(operation, keras.layers.InputLayer):
                raise PGDLError(f"model {name!r} is not a chain of layers (its output does not "
                                "depend on its input through one path)")
            node = operation._inbound_nodes[node_index]
            if len(node.input_tensors) != 1 or len(node.output_tensors) != 1:
                raise PGDLError(f"model {name!r} is not a chain of layers (layer {operation.name!r} "
                                f"has {len(node.input_tensors)} inputs and {len(node.output_tensors)} outputs)")
            chain.append(operation)
            tensor = node.input_tensors[0]
    except (AttributeError, ValueError, IndexError, TypeError) as exc:
        raise PGDLError(f"model {name!r}: cannot follow its layers as a chain ({exc})") from None
    chain.reverse()
    if len(chain) != len(layers) or any(a is not b for a, b in zip(chain, layers)):
        raise PGDLError(f"model {name!r} is not a chain of layers (its layers are not one path "
                        "from its input to its output)")
    return chain


@dataclass
class LogitLayers:
    """The layers computing a model's logits (see the module docstring).

    Attributes:
        layers: the callables, in order; the last may be a pre-activation wrapper.
        source: the model's layers they come from (same length, same order).
    """

    layers: list
    source: list


def logit_layers(model) -> LogitLayers:
    """The chain of `model` without its final softmax, as layers to call (see module docstring)."""
    import keras

    from pgdl_measures.autodiff.layers import PreActivation

    chain = layer_chain(model)
    while chain and is_softmax(chain[-1]):
        chain = chain[:-1]
    if not chain:
        raise PGDLError(f"model {model.name!r} has no layer before its softmax")
    layers = list(chain)
    last = chain[-1]
    if isinstance(last, keras.layers.Dense) and _activation_name(last) == "softmax":
        layers[-1] = PreActivation(last)
    return LogitLayers(layers, chain)


@dataclass
class FinalDense:
    """The last linear layer of a model, whose pre-activation is the model's logits.

    Either a ``Dense`` (linear or softmax) on a flat input, or -- the head of the NiN and
    all-convolutional families -- a linear 1x1 ``Conv2D`` followed by ``GlobalAveragePooling2D``.
    The second is a Dense on the pooled features: with ``h_p`` the conv's input at position
    ``p`` of ``P``, ``mean_p(h_p W + b) = (mean_p h_p) W + b``, and the loss gradient with
    respect to the 1x1 kernel ``W`` is the Dense one, ``mean_p(h_p) delta^T``.

    Attributes:
        layer: the ``keras.layers.Dense``, or the 1x1 ``keras.layers.Conv2D``.
        index: its position in :func:`layer_chain`.
        use_bias: whether it has a bias.
        pooled: whether it is the 1x1 Conv2D read through the global average pooling after it.
    """

    layer: object
    index: int
    use_bias: bool
    pooled: bool = False


def _pooled_head(parts, name: str) -> FinalDense | None:
    """The 1x1 Conv2D + GlobalAveragePooling2D head of `parts`, or None (errors when it is
    almost one: a conv that is not linear or not 1x1)."""
    import keras

    if len(parts.source) < 2:
        return None
    pool, conv = parts.source[-1], parts.source[-2]
    if not (isinstance(pool, keras.layers.GlobalAveragePooling2D) and isinstance(conv, keras.layers.Conv2D)):
        return None
    if getattr(pool, "data_format", "channels_last") != "channels_last" or getattr(pool, "keepdims", False) \
            or getattr(conv, "data_format", "channels_last") != "channels_last":
        return None
    if tuple(conv.kernel_size) != (1, 1) or tuple(conv.strides) != (1, 1) or tuple(conv.dilation_rate) != (1, 1) \
            or getattr(conv, "groups", 1) != 1:
        return None
    activation = _activation_name(conv)
    if activation != "linear":
        raise PGDLError(f"the final 1x1 Conv2D layer {conv.name!r} of model {name!r} before the global average "
                        f"pooling has activation {activation!r}; it must be linear (its pooled output is the logits)")
    return FinalDense(conv, len(parts.source) - 2, bool(conv.use_bias), pooled=True)


def final_dense(model) -> FinalDense:
    """The linear layer producing `model`'s logits: a linear or softmax Dense at the end, or a
    linear 1x1 Conv2D followed by GlobalAveragePooling2D (see :class:`FinalDense`).

    Raises:
        PGDLError: the logits come from neither, the layer has another activation (relu,
            sigmoid...), or the Dense's input is not a flat ``[batch, features]``.
    """
    import keras

    parts = logit_layers(model)
    last = parts.source[-1]
    pooled = _pooled_head(parts, model.name)
    if pooled is not None:
        return pooled
    if not isinstance(last, keras.layers.Dense):
        raise PGDLError(f"model {model.name!r} has no final Dense layer: its logits come from layer "
                        f"{last.name!r} ({type(last).__name__}); a final Dense (linear or softmax), or a linear "
                        "1x1 Conv2D followed by GlobalAveragePooling2D, is needed")
    activation = _activation_name(last)
    if activation not in ("linear", "softmax"):
        raise PGDLError(f"the final Dense layer {last.name!r} of model {model.name!r} has activation "
                        f"{activation!r}; it must output logits (linear) or probabilities (softmax)")
    if len(last.input.shape) != 2:
        raise PGDLError(f"the final Dense layer {last.name!r} of model {model.name!r} has a "
                        f"{len(last.input.shape)}-d input {tuple(last.input.shape)}; a flat [batch, features] input is needed")
    return FinalDense(last, len(parts.source) - 1, bool(last.use_bias))


def _derived(model, key: str, build):
    return cached(model, (key,), build, backend=_ANY_BACKEND)


def _input(model):
    import keras

    spec = model.inputs[0]
    return keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype)


def logits_model(model):
    """A Keras model sharing `model`'s layers whose output is its logits (cached).

    When `model` already outputs logits, it is returned unchanged.
    """
    parts = logit_layers(model)
    if len(parts.layers) == len(layer_chain(model)) and parts.layers[-1] is parts.source[-1]:
        return model

    def build():
        import keras

        x = _input(model)
        h = x
        for layer in parts.layers:
            h = layer(h)
        return keras.Model(x, h, name=f"{model.name}_logits")

    return _derived(model, "logits_model", build)


def features_model(model):
    """A Keras model with outputs ``[h, z]``: the input and pre-activation of the final Dense
    (for a pooled 1x1 Conv2D head, ``h`` is the conv's input averaged over positions and ``z``
    the pooled logits: the Dense it equals, see :class:`FinalDense`).

    Raises:
        PGDLError: as :func:`final_dense`.
    """
    dense = final_dense(model)

    def build():
        import keras

        from pgdl_measures.autodiff.layers import PreActivation

        parts = logit_layers(model)
        x = _input(model)
        h = x
        if dense.pooled:
            for layer in parts.layers[:-2]:
                h = layer(h)
            z = parts.layers[-1](parts.layers[-2](h))
            h = keras.layers.GlobalAveragePooling2D(name="pooled_features")(h)
        else:
            for layer in parts.layers[:-1]:
                h = layer(h)
            z = PreActivation(dense.layer)(h)
        return keras.Model(x, [h, z], name=f"{model.name}_features")

    return _derived(model, "features_model", build)


def perturbed_logits_model(model):
    """The logits as a function of every layer's input: ``f(x, e_1, ..., e_{L-1})``.

    Layer 0 reads ``x``; layer ``i >= 1`` reads ``h_i + e_i``, where ``h_i`` is the previous
    layer's output. At ``e = 0`` this is the model, and the derivative with respect to ``e_i`` is
    the derivative of the logits with respect to layer ``i``'s input (``x`` for layer 0). The
    layers are those of :func:`logit_layers`. Cached.
    """
    def build():
        import keras

        parts = logit_layers(model)
        x = _input(model)
        inputs = [x]
        h = x
        for i, layer in enumerate(parts.layers):
            if i > 0:
                e = keras.Input(shape=tuple(h.shape[1:]), dtype=h.dtype, name=f"perturbation_{i}")
                inputs.append(e)
                h = keras.ops.add(h, e)
            h = layer(h)
        return keras.Model(inputs, h, name=f"{model.name}_perturbed_logits")

    return _derived(model, "perturbed_logits_model", build)


def num_outputs(model) -> int:
    """The number of classes (last axis of the model's output)."""
    return int(model.outputs[0].shape[-1])
