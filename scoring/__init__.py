"""Ranking of complexity measures against the generalization gap.

* :mod:`scoring.cmi` -- the PGDL competition's conditional mutual information, reproduced to
  the last quirk and vectorized (:func:`conditional_mutual_information`, :func:`cmi_breakdown`).
* :mod:`scoring.rankers` -- better-behaved rankers (Jiang et al. 2019's CMI, Kendall's tau,
  the granulated Kendall coefficient) behind one small interface (:data:`RANKERS`), with
  seeded bootstrap confidence intervals.
* :mod:`scoring.predictions` -- reading and validating ``.predict`` files and
  ``model_configs.json`` and scoring a whole submission (:func:`score_submission`), as the
  competition's scoring program did.
* :mod:`scoring.rules` -- the competition's small rules every layer shares, each defined once:
  model ids (:func:`~scoring.rules.normalize_model_id`), natural order, the ``"EXCEEDED"``
  marker, the time budget per model.

Importing this package is cheap: the names below are imported on first use.

This package is the bottom layer of the project and imports nothing from ``pgdl_measures``:
the project's exception type (:mod:`scoring.errors`), reading JSON with errors naming the file
and atomic writes (:mod:`scoring.files`) live here and ``pgdl_measures`` uses them.
"""

from __future__ import annotations

from typing import Any

#: public name -> the module defining it; imported on first use, so ``import scoring.errors``
#: (what every toolkit module does) loads nothing else
_EXPORTS = {
    "CMIWarning": "cmi", "cmi_breakdown": "cmi", "competition_min": "cmi",
    "conditional_mutual_information": "cmi",
    "ScoringGrid": "predictions", "load_model_specs": "predictions", "load_prediction": "predictions",
    "score_submission": "submission",
    "RANKERS": "rankers", "Ranker": "rankers", "bootstrap_ci": "rankers", "get_ranker": "rankers",
    "PGDLError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
