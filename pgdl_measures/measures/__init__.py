"""Built-in complexity measures, one module each; see :mod:`pgdl_measures.registry`."""

from pgdl_measures.measures.base import Measure, MeasureError

__all__ = ["Measure", "MeasureError"]
