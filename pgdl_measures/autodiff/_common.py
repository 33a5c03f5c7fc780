"""What the backend modules share: the one per-model cache and variable positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_CACHE_ATTRIBUTE = "_pgdl_measures_cache"


def model_cache(model) -> dict[Any, Any]:
    """A dict stored on `model` for compiled functions and derived models.

    It lives as a plain attribute (bypassing Keras attribute tracking), so it is collected with
    the model, and never holds the model alive from outside.
    """
    cache = model.__dict__.get(_CACHE_ATTRIBUTE)
    if cache is None:
        cache = {}
        object.__setattr__(model, _CACHE_ATTRIBUTE, cache)
    return cache


def cached(model, key: tuple, build, *, backend: str):
    """``build()`` computed once per `model`, `backend` and `key`, kept in :func:`model_cache`.

    The backend is part of the key, so a model is never handed a function compiled for another
    backend.
    """
    cache = model_cache(model)
    key = (backend,) + tuple(key)
    if key not in cache:
        cache[key] = build()
    return cache[key]


def variable_indices(model, variables: Sequence | None) -> tuple[int, ...]:
    """Positions in ``model.trainable_variables`` of `variables` (all of them when None).

    Raises:
        ValueError: a variable is not a trainable variable of `model`.
    """
    trainable = model.trainable_variables
    if variables is None:
        return tuple(range(len(trainable)))
    position = {id(v): i for i, v in enumerate(trainable)}
    missing = [v.path if hasattr(v, "path") else repr(v) for v in variables if id(v) not in position]
    if missing:
        raise ValueError(f"not trainable variables of model {model.name!r}: {', '.join(missing)}")
    return tuple(sorted(position[id(v)] for v in variables))
