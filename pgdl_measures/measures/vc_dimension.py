"""VC-dimension bound: the PGDL competition's parameter-counting baseline.

The measure depends only on the architecture (the shapes of the kernels), not on the trained
weights or the data, so it ranks all models of one architecture alike: it is the baseline a
useful measure has to beat.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import BOOL

#: The spatial size the competition's baseline used for every task: 32 x 32 pixels (CIFAR-10
#: and SVHN), whatever the task's real input size.
COMPETITION_SPATIAL_SIZE = 32 * 32

#: Names (in ``keras.layers``) of the layers whose ``kernel`` counts: dense and convolutions.
KERNEL_LAYERS = ("Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
                 "Conv3DTranspose")


def vc_dimension_bound(kernel_shapes: Sequence[Sequence[int]], spatial_size: int = COMPETITION_SPATIAL_SIZE) -> float:
    """The competition's VC-dimension bound from the kernel shapes of a network.

    .. math::

        \\mathrm{VC} = d + 2\\, d\\, P \\, \\ln(22\\, d\\, s)

    with :math:`d` the number of kernel arrays (one per dense or convolutional layer),
    :math:`P = \\sum_k \\prod \\mathrm{shape}_k` their total number of entries (biases
    excluded) and :math:`s` the input's spatial size.

    Args:
        kernel_shapes: the shape of each kernel array (e.g. ``(3, 3, 16, 32)`` for a 3x3
            convolution from 16 to 32 channels, ``(512, 10)`` for a dense layer).
        spatial_size: :math:`s`, the number of spatial positions of the input (height x
            width for images). The competition used ``32 * 32`` for every task.

    Returns:
        The bound, a float.

    Raises:
        ValueError: no kernel, an empty kernel, or a spatial size below 1.

    References:
        Jiang, Foret, Yak, Roy, Mobahi, Dziugaite, Bengio, Gunasekar, Guyon, Neyshabur,
        "NeurIPS 2020 Competition: Predicting Generalization in Deep Learning",
        arXiv:2012.07976 (the VC-dimension baseline of the starting kit); after Bartlett,
        Harvey, Liaw, Mehrabian, "Nearly-tight VC-dimension and pseudodimension bounds for
        piecewise linear neural networks", JMLR 20(63), 2019.
    """
    shapes = [tuple(int(n) for n in shape) for shape in kernel_shapes]
    if not shapes:
        raise ValueError("the model has no dense or convolutional kernel: the VC-dimension bound is undefined")
    if spatial_size < 1:
        raise ValueError(f"spatial_size must be at least 1, got {spatial_size}")
    d = len(shapes)
    p = sum(math.prod(shape) for shape in shapes)
    if p == 0:
        raise ValueError(f"the kernels {shapes} have no entries")
    return float(d + 2 * d * p * math.log(22 * d * spatial_size))


def spatial_size_of(input_shape: Iterable[int | None]) -> int:
    """The number of spatial positions of an input of shape `input_shape` (batch axis excluded).

    Every axis but the last (channels) is spatial: ``(32, 32, 3)`` -> 1024, ``(28, 28, 1)``
    -> 784, a feature vector ``(3,)`` -> 1.

    Raises:
        ValueError: an unknown (None) spatial dimension.
    """
    dims = tuple(input_shape)[:-1]
    if any(n is None for n in dims):
        raise ValueError(f"input shape {tuple(input_shape)} has an unknown spatial dimension")
    return math.prod(int(n) for n in dims)


def kernel_shapes(model) -> list[tuple[int, ...]]:
    """The kernel shapes of every dense and convolutional layer of a Keras model, in order.

    Nested models are walked; biases, batch-norm and other weights are left out.
    """
    import keras

    classes = tuple(getattr(keras.layers, name) for name in KERNEL_LAYERS if hasattr(keras.layers, name))
    shapes = []
    for layer in model.layers:
        if isinstance(layer, classes):
            shapes.append(tuple(int(n) for n in layer.kernel.shape))
        elif hasattr(layer, "layers"):
            shapes.extend(kernel_shapes(layer))
    return shapes


class VCDimension(Measure):
    """VC-dimension bound :math:`d + 2 d P \\ln(22 d s)` (see :func:`vc_dimension_bound`).

    Args:
        use_input_size: take :math:`s` from the model's input shape (every axis but the last,
            see :func:`spatial_size_of`). False (the default) uses the competition's constant
            ``s = 32 * 32`` for every task, so values compare with the competition's.
    """

    name = "vc_dimension"
    summary = "VC-dimension bound d + 2dP ln(22ds) from the kernel shapes (competition baseline)"
    direction = 1
    needs_train_data = False
    needs_initial_weights = False
    reference = ("Jiang et al., NeurIPS 2020 PGDL competition (arXiv:2012.07976), VC-dimension baseline; "
                 "Bartlett et al., JMLR 20(63), 2019")

    @validate_params({"use_input_size": BOOL})
    def __init__(self, *, use_input_size: bool = False):
        self.use_input_size = use_input_size

    def compute(self, trained) -> float:
        model = trained.model
        spatial = spatial_size_of(model.inputs[0].shape[1:]) if self.use_input_size else COMPETITION_SPATIAL_SIZE
        return vc_dimension_bound(kernel_shapes(model), spatial)
