"""Mixup margin (Natekar & Sharma): the normalised margin distribution on label-wise mixtures
of training examples, the winners' final margin submission."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _common
from pgdl_measures.measures import _margin_distribution as md
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import FRACTION, POSITIVE_INT, SEED

#: the largest batch the authors mix in (``10 x classes``, at most this many)
MAX_MIXUP_BATCH = 100


def mixup_margin_summary(model, x: np.ndarray, y: np.ndarray, *, batch: int, lam: float, mix_seed: int,
                         layer: int | None, batch_size: int) -> float:
    """The mean of the Tukey summary (:func:`~pgdl_measures.measures._margin_distribution.tukey_summary`)
    of the normalised margins at layer `layer` (None: the first conv/dense layer) on the
    label-wise mixtures of ``(x, y)`` cut into consecutive batches of `batch` examples, each
    mixed with the legacy NumPy generator seeded `mix_seed`."""
    mixed = [md.labelwise_mixup_batch(x[s:s + batch], y[s:s + batch], lam, mix_seed) for s in range(0, len(x), batch)]
    xm, ym = np.concatenate([m[0] for m in mixed]), np.concatenate([m[1] for m in mixed])
    index = md.first_weighted_layer(model) if layer is None else layer
    return float(np.mean(md.tukey_summary(md.normalized_margins(model, xm, ym, index, batch_size))))


class MixupMargin(Measure):
    """The normalised margins of a model on label-wise mixtures of its training examples,
    summarised, as the PGDL winners' final margin submission computed them.

    Read ``examples`` training examples through a shuffle buffer of ``shuffle_buffer`` over the
    repeated training set (drawn with `seed`) and cut them into batches of
    ``min(10 K, 100)`` (``K`` classes). In each batch, replace the ``n_k`` examples of class
    ``k`` by ``n_k`` mixtures ``(x_i + x_j)/2`` drawn with replacement from all its pairs
    ``i < j``. With ``h`` the first conv/dense layer's output, ``z`` the logits, ``(a, b)`` the
    top two classes (the label and the top class when misclassified)::

        g_i = (z_a - z_b) / ||d(z_a - z_b)/dh||_2 / sqrt(trimmed mean_features var_i h)
        mixup_margin = mean(f_l, q1, q2, q3, f_u)   (quartiles and Tukey fences of the g_i)

    Wide normalised margins on interpolations mean wide, convex class regions; larger values
    predict a smaller gap (direction -1). The authors' submission returns the negative.

    This follows the authors' code (``complexitymeasures.py``, ``complexity_but_simple`` with
    ``augment='mixup'``, and ``computecomplexityfinal.py``, ``CustomComplexityFinal`` with
    ``computeOver=5000``, of their commit 8e1134e "Final Solutions"). Their batches come from
    TensorFlow's ``shuffle(5000, seed=1)`` of the repeated training set, which NumPy cannot
    reproduce; ours come from the same shuffle buffer with NumPy's generator
    (:func:`~pgdl_measures.measures._representations.shuffle_buffer_order`); on the authors' own
    batches our value is theirs
    (``tests/measures/test_winners_reference.py``). The pairs drawn in each batch are theirs
    (NumPy's legacy generator reseeded with 1 per batch).

    Args:
        lam: the mixing coefficient (the authors': 0.5).
        examples: training examples drawn (the authors': 5,000).
        shuffle_buffer: the size of the shuffle buffer the examples are drawn through (the
            training set read over and over, as the authors' ``shuffle(5000)``).
        seed: the seed of the draw.
        mix_seed: the seed of the legacy NumPy generator that picks each batch's pairs.
        batch_size: examples per forward and backward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020): the mixup margin; their
        code, github.com/parthnatekar/pgdl at 8e1134e (``complexitymeasures.py``,
        ``computecomplexityfinal.py``).
    """

    name: ClassVar[str] = "mixup_margin"
    revision: ClassVar[int] = 2  # the authors' computation; values of revision 1 are not reused
    summary: ClassVar[str] = ("Natekar & Sharma: Tukey summary of the gradient- and spread-normalised margins on"
                              " label-wise mixup examples")
    direction: ClassVar[int] = -1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Natekar & Sharma, arXiv:2012.02775, mixup margin, and their code (8e1134e, "
                                "complexity_but_simple, CustomComplexityFinal): mean of the quartiles and Tukey fences of "
                                "(z_a - z_b)/||grad_h(z_a - z_b)|| / sqrt(trimmed mean var h) on label-wise mixtures")

    @validate_params({"lam": FRACTION, "examples": POSITIVE_INT, "shuffle_buffer": POSITIVE_INT, "seed": SEED,
                      "mix_seed": SEED, "batch_size": POSITIVE_INT})
    def __init__(self, *, lam: float = 0.5, examples: int = 5000, shuffle_buffer: int = 5000, seed: int = 0,
                 mix_seed: int = 1, batch_size: int = 250):
        self.lam = lam
        self.examples = examples
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.mix_seed = mix_seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        x, y = rep.shuffled_examples(trained.train, self.examples, self.shuffle_buffer, np.random.default_rng(self.seed))
        _common.check_labels(y, trained.num_classes)
        batch = min(10 * trained.num_classes, MAX_MIXUP_BATCH)
        return mixup_margin_summary(trained.model, x, y, batch=batch, lam=self.lam, mix_seed=self.mix_seed,
                                    layer=None, batch_size=self.batch_size)


