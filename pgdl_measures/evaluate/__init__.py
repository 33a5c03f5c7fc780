"""Evaluating measures on tasks: the pipeline (:mod:`~pgdl_measures.evaluate.pipeline`: compute,
store, write ``.predict`` files, rank, report) over its steps (:mod:`~.inputs`, :mod:`~.compute`
with :mod:`~.runner` here or :mod:`~.cluster` on Dask, :mod:`~.outputs`), the results store
(:mod:`~pgdl_measures.evaluate.store`) and the worker process that computes measures on one
model at a time under a time budget (:mod:`~pgdl_measures.evaluate.worker`).
"""

from pgdl_measures.evaluate.pipeline import (
    DEFAULT_OUT,
    Evaluation,
    collect_results,
    compute_measures,
    evaluate,
    rank_results,
    resolve_measures,
    write_predictions,
)

__all__ = [
    "DEFAULT_OUT",
    "Evaluation",
    "collect_results",
    "compute_measures",
    "evaluate",
    "rank_results",
    "resolve_measures",
    "write_predictions",
]
