"""Values read from JSON files and parameters: what counts as a number, and how a value is
shown in a one-line message; defined once for every layer.

A boolean is neither an integer nor a number here (``True`` is an ``int`` to Python, but
``"batch_size": true`` in a spec is a mistake), and NumPy scalars are not JSON numbers.
"""

from __future__ import annotations

import math
from typing import Any


def is_int(value: Any) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` (NaN and infinities included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """``math.isfinite``, but False (not OverflowError) for an int too large for a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_finite_number(value: Any) -> bool:
    """A number (:func:`is_number`) that is neither NaN nor infinite."""
    return is_number(value) and is_finite(value)


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line, cut to `limit` characters (a malformed file may hold huge
    values; an int too long for ``str`` is named by its size)."""
    try:
        text = repr(value)
    except ValueError:  # an int over Python's digit limit for str()
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."
