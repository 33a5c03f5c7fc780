"""Keras 3 models for training (both backends): input shape and class count come from the data.

Every model outputs logits (no softmax) and ends with a ``Dense`` classifier, so the AGN
trackers apply. :data:`MODELS` maps a name to a builder ``(input_shape, num_classes, **options)``:

* ``mlp``: ``Flatten``, ``depth`` hidden ``Dense(width)`` layers, ``Dense`` head (the PGDL
  ``mlp`` family; options ``depth``, ``width``, ``activation``, ``dropout``, ``batch_norm``).
* ``vgg``, ``nin``, ``allconv``: the PGDL-style families of the zoo (:mod:`pgdl_measures.training.families`),
  built from their competition layer list; options are the family's hyper-parameters.
* ``lenet5``: LeCun et al. 1998 as usually reimplemented: 5x5 convolutions with 6 (``same``
  padding) and 16 (``valid``) filters, each followed by 2x2 max-pooling, then ``Dense`` 120,
  84 and the classifier; ReLU (``activation`` option). 61,706 parameters on 28x28x1, 10 classes.
* ``resnet20``, ``resnet56``, ``resnet110`` (and ``resnet`` with ``depth = 6n + 2``): the CIFAR
  ResNets of He et al. 2016, Sec. 4.2: a 3x3 convolution with 16 filters, three stages of ``n``
  basic blocks (two 3x3 convolutions with batch norm) with 16, 32, 64 filters, the first block
  of stages 2 and 3 with stride 2, global average pooling and the classifier. Convolutions have
  no bias (batch norm follows). ``shortcut="A"`` (default, the paper's CIFAR choice): identity
  shortcuts, where the shape changes the input is subsampled by 2 and zero-padded to the new
  channel count (no parameters): 0.27M, 0.85M, 1.7M parameters on CIFAR-10 as published.
  ``shortcut="B"``: a 1x1 convolution with stride 2 and batch norm where the shape changes.
* ``densenet100x24`` (and ``densenet_bc`` with ``depth``, ``growth_rate``): DenseNet-BC of Huang
  et al. 2017 for CIFAR: a 3x3 convolution with ``2k`` filters, three dense blocks of
  ``(depth - 4) / 6`` bottleneck layers (BN-ReLU-1x1 conv with ``4k`` filters - BN-ReLU-3x3
  conv with ``k``), transitions with compression 0.5 (BN-ReLU-1x1 conv-2x2 average pooling),
  BN-ReLU, global average pooling and the classifier; no convolution biases. Depth 100 and
  ``k = 24`` is the study's "DenseNet100x24".

Parameter counts are trainable parameters (batch norm's moving statistics excluded), as the
papers count them.

References:
    K. He, X. Zhang, S. Ren, J. Sun. "Deep residual learning for image recognition", CVPR 2016.
    G. Huang, Z. Liu, L. van der Maaten, K. Weinberger. "Densely connected convolutional
    networks", CVPR 2017.
    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. "Gradient-based learning applied to document
    recognition", Proc. IEEE 1998.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from pgdl_measures.errors import PGDLError


def _check_image(input_shape: Sequence[int], name: str) -> None:
    if len(input_shape) != 3:
        raise PGDLError(f"model {name!r} needs image inputs [height, width, channels], got input shape "
                        f"{list(input_shape)}")


def _from_family(family: str):
    def build(input_shape: Sequence[int], num_classes: int, **hp) -> Any:
        from pgdl_measures.tasks.model_config import build_model
        from pgdl_measures.training.families import FAMILIES, model_config

        unknown = set(hp) - {h.name for h in FAMILIES[family].hparams}
        if unknown:
            raise PGDLError(f"model {family!r} has no option(s) {', '.join(sorted(unknown))}; options: "
                            f"{', '.join(h.name for h in FAMILIES[family].hparams)}")
        try:
            config = model_config(family, hp, input_shape, num_classes)
        except ValueError as exc:
            raise PGDLError(f"model {family!r}: {exc}") from None
        return build_model(config)

    build.__doc__ = f"The PGDL {family!r} family (see :mod:`pgdl_measures.training.families`)."
    return build


def lenet5(input_shape: Sequence[int], num_classes: int, *, activation: str = "relu") -> Any:
    """LeNet-5 (see the module docstring)."""
    _check_image(input_shape, "lenet5")
    import keras

    layers = keras.layers
    x = inputs = keras.Input(shape=tuple(input_shape))
    x = layers.Conv2D(6, 5, padding="same", activation=activation)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 5, padding="valid", activation=activation)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(120, activation=activation)(x)
    x = layers.Dense(84, activation=activation)(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name="lenet5")


def _conv_bn(x, filters: int, kernel: int, stride: int = 1):
    import keras

    layers = keras.layers
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal")(x)
    return layers.BatchNormalization()(x)


def resnet(input_shape: Sequence[int], num_classes: int, *, depth: int = 20, shortcut: str = "A") -> Any:
    """The CIFAR ResNet of depth ``6n + 2`` (see the module docstring).

    Raises:
        PGDLError: a depth not of the form ``6n + 2``, or a shortcut other than ``"A"``/``"B"``.
    """
    _check_image(input_shape, "resnet")
    if depth < 8 or (depth - 2) % 6:
        raise PGDLError(f"resnet depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
    if shortcut not in ("A", "B"):
        raise PGDLError(f"resnet shortcut must be 'A' (zero-padding identity) or 'B' (projection), got {shortcut!r}")
    import keras

    from pgdl_measures.training.layers import ZeroPadShortcut

    layers = keras.layers
    n = (depth - 2) // 6
    x = inputs = keras.Input(shape=tuple(input_shape))
    x = layers.Activation("relu")(_conv_bn(x, 16, 3))
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            y = layers.Activation("relu")(_conv_bn(x, filters, 3, stride))
            y = _conv_bn(y, filters, 3)
            if stride != 1 or x.shape[-1] != filters:
                x = (ZeroPadShortcut(filters, stride)(x) if shortcut == "A"
                     else _conv_bn(x, filters, 1, stride))
            x = layers.Activation("relu")(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name=f"resnet{depth}{shortcut.lower()}")


def densenet_bc(input_shape: Sequence[int], num_classes: int, *, depth: int = 100, growth_rate: int = 24,
                compression: float = 0.5) -> Any:
    """DenseNet-BC (see the module docstring).

    Raises:
        PGDLError: a depth not of the form ``6n + 4``.
    """
    _check_image(input_shape, "densenet_bc")
    if depth < 10 or (depth - 4) % 6:
        raise PGDLError(f"densenet_bc depth must be 6n + 4 (40, 100, 190, ...), got {depth}")
    import keras

    layers = keras.layers
    k = int(growth_rate)
    n = (depth - 4) // 6

    def bn_relu_conv(x, filters, kernel):
        x = layers.Activation("relu")(layers.BatchNormalization()(x))
        return layers.Conv2D(filters, kernel, padding="same", use_bias=False, kernel_initializer="he_normal")(x)

    x = inputs = keras.Input(shape=tuple(input_shape))
    x = layers.Conv2D(2 * k, 3, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
    for block in range(3):
        for _ in range(n):
            y = bn_relu_conv(bn_relu_conv(x, 4 * k, 1), k, 3)
            x = layers.Concatenate()([x, y])
        if block < 2:
            x = bn_relu_conv(x, int(x.shape[-1] * compression), 1)
            x = layers.AveragePooling2D(2)(x)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name=f"densenet_bc{depth}x{k}")


#: model name -> builder ``(input_shape, num_classes, **options) -> keras.Model``.
MODELS: dict[str, Callable[..., Any]] = {
    "mlp": _from_family("mlp"),
    "vgg": _from_family("vgg"),
    "nin": _from_family("nin"),
    "allconv": _from_family("allconv"),
    "lenet5": lenet5,
    "resnet": resnet,
    "resnet20": functools.partial(resnet, depth=20),
    "resnet56": functools.partial(resnet, depth=56),
    "resnet110": functools.partial(resnet, depth=110),
    "densenet_bc": densenet_bc,
    "densenet100x24": functools.partial(densenet_bc, depth=100, growth_rate=24),
}


def build(name: str, input_shape: Sequence[int], num_classes: int, **options) -> Any:
    """Build model `name` of :data:`MODELS` for inputs of `input_shape` and `num_classes` classes.

    Raises:
        PGDLError: an unknown name (listing the known ones), an option the builder does not take,
            or an input shape it cannot handle.
    """
    if name not in MODELS:
        raise PGDLError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    try:
        return MODELS[name](list(input_shape), int(num_classes), **options)
    except TypeError as exc:
        raise PGDLError(f"model {name!r}: {exc}") from None


def count_params(model) -> int:
    """The number of trainable parameters (as the papers count them)."""
    return int(sum(int(_prod(v.shape)) for v in model.trainable_variables))


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out
