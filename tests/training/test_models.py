"""Models: parameter counts against the published figures, input shapes from the data, bad names."""

from __future__ import annotations

import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.training.models import MODELS, build, count_params


def densenet_bc_params(depth: int, k: int, classes: int = 10, channels: int = 3) -> int:
    """DenseNet-BC's trainable parameters counted by hand (Huang et al. 2017, CIFAR variant).

    Every convolution has no bias; each BatchNormalization over c channels has 2c (gamma, beta):
        stem 3x3 conv: 9 * channels * 2k
        dense layer on c inputs: BN(c) 2c + 1x1 conv c*4k + BN(4k) 8k + 3x3 conv 9*4k*k; c += k
        transition on c: BN(c) 2c + 1x1 conv c*(c//2); c = c//2
        head: BN(c) 2c + Dense c*classes + classes
    Conv weights grow with k^2 and BN/Dense with k, so doubling k (12 -> 24) multiplies the
    count by a bit less than 4: 769,162 (the published "0.8M") -> 3,020,506 ("3.0M").
    """
    n = (depth - 4) // 6
    c = 2 * k
    total = 9 * channels * 2 * k
    for block in range(3):
        for _ in range(n):
            total += 2 * c + c * 4 * k + 2 * 4 * k + 9 * 4 * k * k
            c += k
        if block < 2:
            total += 2 * c + c * (c // 2)
            c //= 2
    return total + 2 * c + c * classes + classes


def test_densenet_derivation_matches_published_k12():
    assert round(densenet_bc_params(100, 12) / 1e6, 1) == 0.8  # Huang et al. Table 2: DenseNet-BC (L=100, k=12) 0.8M
    assert densenet_bc_params(100, 12) == 769_162
    assert densenet_bc_params(100, 24) == 3_020_506


@pytest.mark.parametrize("name, published", [("resnet20", 0.27e6), ("resnet56", 0.85e6), ("resnet110", 1.7e6)])
def test_resnet_parameter_counts_are_the_published_ones(name, published):
    n = count_params(build(name, [32, 32, 3], 10))
    digits = 2 if published < 1e6 else 1
    assert round(n / 1e6, digits) == round(published / 1e6, digits)
    if name == "resnet20":
        assert n == 269_722  # option A: 16/32/64 filters, no conv biases, BN gamma/beta


@pytest.mark.one_backend  # the layers' shape arithmetic; under JAX each of its 99 conv shapes compiles an initializer
def test_densenet100x24_has_the_derived_count():
    model = build("densenet100x24", [32, 32, 3], 10)
    assert count_params(model) == densenet_bc_params(100, 24)


def test_option_b_adds_projection_shortcuts():
    a = count_params(build("resnet", [32, 32, 3], 10, depth=20, shortcut="A"))
    b = count_params(build("resnet", [32, 32, 3], 10, depth=20, shortcut="B"))
    # two projections: 1x1 conv 16->32 + BN(32), 1x1 conv 32->64 + BN(64)
    assert b - a == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64


def test_lenet5_and_pgdl_families_take_shapes_from_the_data():
    import numpy as np

    assert count_params(build("lenet5", [28, 28, 1], 10)) == 61_706
    for name, shape, options in [("mlp", [8, 8, 1], {"depth": 1, "width": 8}), ("vgg", [8, 8, 1], {"width": 4}),
                                 ("nin", [8, 8, 1], {"width": 4}), ("lenet5", [16, 16, 3], {})]:
        model = build(name, shape, 7, **options)
        assert tuple(model.outputs[0].shape[1:]) == (7,)
        assert np.asarray(model(np.zeros([2] + shape, np.float32))).shape == (2, 7)


def test_bad_model_names_and_options_are_one_line_errors():
    with pytest.raises(PGDLError, match="unknown model 'resnet21'; known: mlp"):
        build("resnet21", [32, 32, 3], 10)
    with pytest.raises(PGDLError, match="6n \\+ 2"):
        build("resnet", [32, 32, 3], 10, depth=21)
    with pytest.raises(PGDLError, match="no option"):
        build("mlp", [8], 10, depht=2)
    with pytest.raises(PGDLError, match="image inputs"):
        build("lenet5", [64], 10)
    assert {"mlp", "lenet5", "resnet20", "resnet56", "resnet110", "densenet100x24", "vgg", "nin", "allconv"} <= set(MODELS)
