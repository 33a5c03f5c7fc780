"""The competition winners' combined measure: the Davies-Bouldin index times the label-wise
mixup error (Natekar & Sharma)."""

from __future__ import annotations

from typing import ClassVar

from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.measures.davies_bouldin import sampled_davies_bouldin
from pgdl_measures.measures.mixup_accuracy import winners_mixup_accuracy
from pgdl_measures.params import FRACTION, INTEGER, POSITIVE_INT, SEED


def combine(dbi: float, accuracy: float) -> float:
    """``DB x (1 - acc)``: large when the classes cluster poorly *and* mixtures are misclassified."""
    return float(dbi) * (1.0 - float(accuracy))


class DaviesBouldinMixup(Measure):
    """The Davies-Bouldin index of a layer's per-class clusters times the label-wise mixup error,
    the PGDL winners' submission::

        DB x mixup = DB(pooled h_layer) * (1 - acc_mixup)

    with ``DB`` as :class:`~pgdl_measures.measures.davies_bouldin.DaviesBouldin` (mean over
    random draws, 4x4-max-pooled first-layer maps) and ``acc_mixup`` as
    :class:`~pgdl_measures.measures.mixup_accuracy.MixupAccuracy` (every same-class pair of 10
    unshuffled batches), each on its own sample as in the authors' code (``complexity.py``,
    ``complexity`` with ``measure='DBI, Mixup'``). Both factors grow as the model's
    representations and interpolations get worse; larger values predict a larger gap, the
    authors' orientation (the competition's score, a mutual information, ignores it), kept
    although on ``data/mnist_conv`` the product's rank correlation with the gap is -0.67 (the
    mixup error's, see ``mixup_accuracy``). A model that classifies every mixture correctly
    scores 0 (a tie with every such model).

    Args:
        layer, pool_size, draws, examples_per_draw, shuffle_buffer, seed: the Davies-Bouldin
            index's (see ``davies_bouldin``).
        lam, batches, per_class_in_batch: the mixup accuracy's (see ``mixup_accuracy``).
        batch_size: examples per forward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020) (the combined
        DBI x mixup submission); their code, github.com/parthnatekar/pgdl (``complexity.py``).
    """

    name: ClassVar[str] = "davies_bouldin_mixup"
    revision: ClassVar[int] = 2  # the authors' computation; values of revision 1 are not reused
    summary: ClassVar[str] = "Natekar & Sharma (PGDL winners): Davies-Bouldin index x label-wise mixup error"
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Natekar & Sharma, arXiv:2012.02775, the winning DBI x mixup measure, and their "
                                "code (complexity.py): DB(pooled h_layer) * (1 - label-wise mixup accuracy)")

    @validate_params({"layer": INTEGER, "pool_size": POSITIVE_INT, "draws": POSITIVE_INT,
                      "examples_per_draw": POSITIVE_INT, "shuffle_buffer": POSITIVE_INT, "seed": SEED, "lam": FRACTION,
                      "batches": POSITIVE_INT, "per_class_in_batch": POSITIVE_INT, "batch_size": POSITIVE_INT})
    def __init__(self, *, layer: int = 0, pool_size: int = 4, draws: int = 10, examples_per_draw: int = 120,
                 shuffle_buffer: int = 5000, seed: int = 0, lam: float = 0.5, batches: int = 10,
                 per_class_in_batch: int = 10, batch_size: int = 256):
        self.layer = layer
        self.pool_size = pool_size
        self.draws = draws
        self.examples_per_draw = examples_per_draw
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.lam = lam
        self.batches = batches
        self.per_class_in_batch = per_class_in_batch
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        dbi = sampled_davies_bouldin(trained, layer=self.layer, pool_size=self.pool_size, draws=self.draws,
                                     examples_per_draw=self.examples_per_draw, shuffle_buffer=self.shuffle_buffer,
                                     seed=self.seed, batch_size=self.batch_size)
        accuracy = winners_mixup_accuracy(trained, batches=self.batches, per_class_in_batch=self.per_class_in_batch,
                                          lam=self.lam, batch_size=self.batch_size)
        return combine(dbi, accuracy)
