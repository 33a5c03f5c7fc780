"""Ranking of complexity measures against the generalization gap.

* :mod:`scoring.cmi` -- the PGDL competition's conditional mutual information, reproduced to
  the last quirk and vectorized (:func:`conditional_mutual_information`, :func:`cmi_breakdown`).
* :mod:`scoring.rankers` -- better-behaved rankers (Jiang et al. 2019's CMI, Kendall's tau,
  the granulated Kendall coefficient) behind one small interface (:data:`RANKERS`), with
  seeded bootstrap confidence intervals.
* :mod:`scoring.predictions` -- reading and validating ``.predict`` files and
  ``model_configs.json`` and scoring a whole submission (:func:`score_submission`), as the
  competition's scoring program did.

Importing this package is cheap (numpy only).
"""

from scoring.cmi import CMIWarning, cmi_breakdown, competition_min, conditional_mutual_information
from scoring.predictions import (
    ScoringGrid,
    load_model_specs,
    load_prediction,
    score_submission,
)
from scoring.rankers import RANKERS, Ranker, bootstrap_ci, get_ranker

__all__ = [
    "CMIWarning",
    "RANKERS",
    "Ranker",
    "ScoringGrid",
    "bootstrap_ci",
    "cmi_breakdown",
    "competition_min",
    "conditional_mutual_information",
    "get_ranker",
    "load_model_specs",
    "load_prediction",
    "score_submission",
]
