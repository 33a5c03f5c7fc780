"""Trainers for tests that fail on the Dask workers (imported there by ``module:function``)."""

from __future__ import annotations

from pgdl_measures.errors import PGDLError


def spec_error(task):
    """What keras_trial raises for a model that does not fit its data: a spec error met on a worker."""
    raise PGDLError(f"model {task['spec']['model']['name']!r} cannot be built for digits (8, 8, 1): too deep")
