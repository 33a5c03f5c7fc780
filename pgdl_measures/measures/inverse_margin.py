"""Inverse squared margin (Jiang et al. 2019): ``1 / gamma^2``, gamma the 10th-percentile output margin."""

from __future__ import annotations

from pgdl_measures.measures import _norms


class InverseMargin(_norms.MarginMeasure):
    """One over the squared 10th-percentile output margin on the training set::

        gamma = percentile_q( f(x_i)_{y_i} - max_{j != y_i} f(x_i)_j ),  inverse_margin = 1 / gamma^2

    over the first `max_examples` training examples (``q = 10``, the paper's choice: a robust
    stand-in for the minimum margin), ``gamma`` floored at `min_margin` (a model misclassifying
    more than ``q`` per cent of its training set gets ``1 / min_margin^2``). Not scale
    invariant: it compares models by the raw scale of their logits. Larger values predict a
    larger gap.

    Args:
        percentile: ``q``.
        min_margin: the floor of ``gamma``.
        max_examples: training examples used.
        batch_size: examples per forward pass.

    References:
        Y. Jiang, B. Neyshabur, H. Mobahi, D. Krishnan, S. Bengio. "Fantastic generalization
        measures and where to find them", ICLR 2020 (arXiv:1912.02178), Appendix C:
        inverse margin.
    """

    name = "inverse_margin"
    summary = "Jiang et al. 2019: 1 / gamma^2, gamma the 10th-percentile output margin on the training set"
    direction = 1
    needs_train_data = True
    needs_initial_weights = False
    reference = ("Jiang et al., 'Fantastic generalization measures and where to find them', ICLR 2020, "
                 "arXiv:1912.02178, inverse margin 1/gamma^2, gamma the 10th percentile of "
                 "f(x)_y - max_{j != y} f(x)_j")

    def compute(self, trained) -> float:
        return 1.0 / self.gamma(trained) ** 2
