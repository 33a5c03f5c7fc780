"""PGDL architecture families (the zoo's, and training's): pure functions from hyper-parameters to layers.

Each builder takes the architecture's hyper-parameters, the input shape and the number of
classes, and returns the competition's ``model_config`` list (see
:func:`pgdl_measures.tasks.model_config.layer_spec`), which :func:`~pgdl_measures.tasks.model_config.build_model`
and the competition's own loader turn into a Keras model. Builders import no Keras: they are
cheap to call for a whole grid (the spec is validated by building every cell's list) and can be
reused by the training module. Every model outputs logits (no softmax), as in the competition.

Families (:data:`FAMILIES`):

* ``vgg``: PGDL-style VGG-like conv net. ``depth`` blocks; block ``i`` is ``convs_per_block``
  3x3 convolutions with ``width * 2**i`` filters (``padding="same"``, then optional batch
  norm), a 2x2 max-pooling and optional dropout; then ``Flatten`` and a ``Dense`` classifier.
* ``nin``: Network-in-Network (Lin et al., 2014). ``depth`` blocks of a 3x3 convolution and two
  1x1 convolutions with ``width`` filters, a 2x2 max-pooling between blocks and optional
  dropout; the head is a 1x1 convolution to one channel per class and global average pooling.
* ``allconv``: the all-convolutional net (Springenberg et al., 2015), the competition's
  fully-convolutional kind: ``depth`` blocks of a 3x3 convolution with ``width * 2**i`` filters,
  each block but the last ending in a 3x3 convolution with stride 2 in place of pooling, optional
  dropout; the head is a 1x1 convolution to one channel per class and global average pooling
  (no pooling layer, no dense layer).
* ``mlp``: ``Flatten`` (for inputs of rank > 1), ``depth`` hidden ``Dense(width)`` layers with
  optional batch norm and dropout, and a ``Dense`` classifier.

References:
    Jiang et al., "NeurIPS 2020 Competition: Predicting Generalization in Deep Learning",
    arXiv:2012.07976 (the VGG-like and NiN task families).
    Lin, Chen, Yan, "Network In Network", ICLR 2014.
    Springenberg, Dosovitskiy, Brox, Riedmiller, "Striving for Simplicity: The All Convolutional
    Net", ICLR 2015 workshop (arXiv:1412.6806).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pgdl_measures.params import Interval, Options, is_number
from pgdl_measures.tasks.model_config import layer_spec

ACTIVATIONS = ("relu", "tanh", "elu", "sigmoid", "softplus")
#: (low open, high open) -> Interval's `closed`
_CLOSED = {(False, False): "both", (False, True): "left", (True, False): "right", (True, True): "neither"}


@dataclass(frozen=True)
class HParam:
    """One hyper-parameter a spec may set.

    Attributes:
        name: its name in the spec and in model_configs.json.
        default: the value when the spec does not set it.
        check: returns an error message for an invalid value, or None.
        doc: one line shown in errors and docs.
    """

    name: str
    default: Any
    check: Callable[[Any], str | None]
    doc: str


def int_at_least(low: int) -> Callable[[Any], str | None]:
    """A check: an integer >= `low`."""
    rule = Interval(int, low, None)
    return lambda v: None if rule.is_satisfied_by(v) else f"must be {rule}"


def number_in(low: float, high: float, *, low_open: bool = False, high_open: bool = True):
    """A check: a number in the interval from `low` to `high` (NaN is in none)."""
    rule = Interval(float, low, high, closed=_CLOSED[low_open, high_open])

    def check(v):
        if rule.is_satisfied_by(v):
            return None
        return f"must be {rule.bounds}" if is_number(v) else "must be a number"
    return check


def one_of(*choices) -> Callable[[Any], str | None]:
    """A check: one of `choices` (of the same type: ``1`` is not ``True``)."""
    rule = Options(choices)
    return lambda v: None if rule.is_satisfied_by(v) else f"must be {rule}"


COMMON_HPARAMS = (
    HParam("depth", 2, int_at_least(1), "number of blocks (vgg, nin, allconv) or hidden layers (mlp)"),
    HParam("width", 16, int_at_least(1), "filters of the first block (vgg, allconv), of every block (nin), "
           "or units of every hidden layer (mlp)"),
    HParam("dropout", 0.0, number_in(0.0, 1.0), "dropout rate after each block; 0 adds no Dropout layer"),
    HParam("batch_norm", False, one_of(True, False), "batch normalization after each convolution or hidden layer"),
    HParam("activation", "relu", one_of(*ACTIVATIONS), "activation of the hidden layers"),
)


def _block_end(layers: list, dropout: float) -> None:
    if dropout > 0:
        layers.append(layer_spec("Dropout", rate=dropout))


def _conv(layers: list, filters: int, kernel_size: int, hp: Mapping[str, Any]) -> None:
    layers.append(layer_spec("Conv2D", filters=filters, kernel_size=kernel_size, padding="same",
                             activation=hp["activation"]))
    if hp["batch_norm"]:
        layers.append(layer_spec("BatchNormalization"))


def _check_image(input_shape: Sequence[int], family: str) -> None:
    if len(input_shape) != 3:
        raise ValueError(f"the {family} family needs image inputs [height, width, channels], "
                         f"got input shape {list(input_shape)}")


def _pool(size: list[int], depth_index: int) -> None:
    if min(size) < 2:
        raise ValueError(f"depth {depth_index + 1} pools the input below 1x1 "
                         f"(it is {size[0]}x{size[1]} before block {depth_index + 1}); use a smaller depth")
    size[0] //= 2
    size[1] //= 2


def vgg(hp: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """VGG-like conv net: ``depth`` x [conv x convs_per_block, max-pool, dropout], dense head.

    Block ``i`` has ``width * 2**i`` filters.

    Raises:
        ValueError: the input is not an image, or ``depth`` pools it below 1x1.
    """
    _check_image(input_shape, "vgg")
    size = list(input_shape[:2])
    layers: list[dict] = []
    for i in range(hp["depth"]):
        for _ in range(hp["convs_per_block"]):
            _conv(layers, hp["width"] * 2 ** i, 3, hp)
        _pool(size, i)
        layers.append(layer_spec("MaxPooling2D", pool_size=2))
        _block_end(layers, hp["dropout"])
    layers.append(layer_spec("Flatten"))
    layers.append(layer_spec("Dense", units=num_classes))
    return layers


def nin(hp: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """Network-in-Network: ``depth`` x [3x3 conv, 1x1 conv, 1x1 conv], pooling between blocks,
    a 1x1 convolution to ``num_classes`` channels and global average pooling.

    Raises:
        ValueError: the input is not an image, or ``depth`` pools it below 1x1.
    """
    _check_image(input_shape, "nin")
    size = list(input_shape[:2])
    layers: list[dict] = []
    for i in range(hp["depth"]):
        _conv(layers, hp["width"], 3, hp)
        _conv(layers, hp["width"], 1, hp)
        _conv(layers, hp["width"], 1, hp)
        if i < hp["depth"] - 1:
            _pool(size, i)
            layers.append(layer_spec("MaxPooling2D", pool_size=2))
        _block_end(layers, hp["dropout"])
    layers.append(layer_spec("Conv2D", filters=num_classes, kernel_size=1, padding="same"))
    layers.append(layer_spec("GlobalAveragePooling2D"))
    return layers


def allconv(hp: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """All-convolutional net: ``depth`` x [3x3 conv (``width * 2**i`` filters), then, but in the
    last block, a stride-2 3x3 conv], a 1x1 convolution to ``num_classes`` channels and global
    average pooling.

    Raises:
        ValueError: the input is not an image, or ``depth`` strides it below 1x1.
    """
    _check_image(input_shape, "allconv")
    size = list(input_shape[:2])
    layers: list[dict] = []
    for i in range(hp["depth"]):
        filters = hp["width"] * 2 ** i
        _conv(layers, filters, 3, hp)
        if i < hp["depth"] - 1:
            if min(size) < 2:
                raise ValueError(f"depth {i + 2} strides the input below 1x1 (it is {size[0]}x{size[1]} "
                                 f"before block {i + 2}); use a smaller depth")
            layers.append(layer_spec("Conv2D", filters=filters, kernel_size=3, strides=2, padding="same",
                                     activation=hp["activation"]))
            if hp["batch_norm"]:
                layers.append(layer_spec("BatchNormalization"))
            size = [-(-size[0] // 2), -(-size[1] // 2)]
        _block_end(layers, hp["dropout"])
    layers.append(layer_spec("Conv2D", filters=num_classes, kernel_size=1, padding="same"))
    layers.append(layer_spec("GlobalAveragePooling2D"))
    return layers


def mlp(hp: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """Multi-layer perceptron: ``depth`` x [Dense(width), batch norm, dropout], dense head."""
    layers: list[dict] = []
    if len(input_shape) > 1:
        layers.append(layer_spec("Flatten"))
    for _ in range(hp["depth"]):
        layers.append(layer_spec("Dense", units=hp["width"], activation=hp["activation"]))
        if hp["batch_norm"]:
            layers.append(layer_spec("BatchNormalization"))
        _block_end(layers, hp["dropout"])
    layers.append(layer_spec("Dense", units=num_classes))
    return layers


@dataclass(frozen=True)
class Family:
    """An architecture family: its builder and the hyper-parameters it reads."""

    name: str
    build: Callable[[Mapping[str, Any], Sequence[int], int], list[dict]]
    hparams: tuple[HParam, ...]
    doc: str

    def defaults(self) -> dict[str, Any]:
        return {h.name: h.default for h in self.hparams}


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("vgg", vgg, COMMON_HPARAMS + (
            HParam("convs_per_block", 1, int_at_least(1), "3x3 convolutions per block"),),
            "PGDL-style VGG-like conv net"),
        Family("nin", nin, COMMON_HPARAMS, "Network-in-Network"),
        Family("allconv", allconv, COMMON_HPARAMS, "all-convolutional net (strided convolutions, no pooling)"),
        Family("mlp", mlp, tuple(h if h.name != "depth" else HParam(
            "depth", 2, int_at_least(0), "number of hidden layers") for h in COMMON_HPARAMS),
            "multi-layer perceptron"),
    )
}


def model_config(family: str, hp: Mapping[str, Any], input_shape: Sequence[int],
                 num_classes: int) -> dict[str, Any]:
    """The config.json content of one model: ``{"model_config": [...], "input_shape": [...]}``.

    Args:
        family: a key of :data:`FAMILIES`.
        hp: the family's hyper-parameters (missing ones take their defaults; others are ignored).
        input_shape: the shape of one example, without the batch dimension.
        num_classes: the number of output logits.

    Raises:
        KeyError: unknown family.
        ValueError: hyper-parameters the input shape cannot take (see the builders).
    """
    fam = FAMILIES[family]
    values = fam.defaults()
    values.update({k: v for k, v in hp.items() if k in values})
    return {"model_config": fam.build(values, list(input_shape), int(num_classes)),
            "input_shape": [int(d) for d in input_shape]}
