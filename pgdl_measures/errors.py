"""The one exception type for errors a user can cause.

It is defined in :mod:`scoring.errors` (``scoring`` is the bottom layer and imports nothing
from ``pgdl_measures``) and is the same class here: ``except PGDLError`` catches errors of the
scorer and of the toolkit alike.
"""

from scoring.errors import PGDLError

__all__ = ["PGDLError"]
