"""Parameter constraints, stated once and checked in one place.

A constraint is an object that says whether a value satisfies it and names itself as a noun
phrase, in the spirit of scikit-learn's ``utils/_param_validation.py``::

    rules = {"batch_size": POSITIVE_INT, "max_examples": [POSITIVE_INT, None],
             "percentile": Interval(float, 0.0, 100.0), "criterion": Options(("accuracy", "loss"))}
    check_params(rules, {"batch_size": 0, ...}, where="measure 'agn'")
    # PGDLError: measure 'agn': parameter batch_size must be a positive integer, got 0

A rule is a constraint, ``None`` (the value may be None) or a list of them (any one will do).
Measures declare theirs with :func:`pgdl_measures.measures.base.validate_params`; the zoo and
search specs test values with the same constraints and word their own messages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pgdl_measures.errors import PGDLError
from scoring.values import is_finite, is_finite_number, is_int, is_number, short_repr

__all__ = [
    "BOOL", "FRACTION", "INTEGER", "MAX_SEED", "NON_NEGATIVE", "NON_NEGATIVE_INT", "PERCENTILE", "POSITIVE",
    "POSITIVE_INT", "SEED", "Constraint", "Interval", "ListOf", "NameList", "Options", "Rule", "Text", "check_params", "describe",
    "is_finite", "is_finite_number", "is_int", "is_number", "satisfies", "short_repr",
]

_CLOSED = ("both", "left", "right", "neither")


class Constraint:
    """A rule one value must satisfy; ``str(constraint)`` says it as a noun phrase."""

    def is_satisfied_by(self, value: Any) -> bool:
        raise NotImplementedError

    def explain(self, value: Any) -> str:
        """What is wrong with `value`, to follow the parameter's name (``must be ..., got ...``)."""
        return f"must be {self}, got {short_repr(value)}"


class Interval(Constraint):
    """An integer or a number between two bounds.

    Booleans are neither integers nor numbers; NaN lies in no interval; an infinity (or an int
    too large for a float, when numbers are allowed) lies only in one that has it as a bound:
    a bound of None means no bound, and excludes the infinities.

    Args:
        type: ``int`` (integers only) or ``float`` (integers and floats).
        left: the lower bound, or None.
        right: the upper bound, or None.
        closed: which bounds belong to the interval: ``"both"``, ``"left"``, ``"right"`` or
            ``"neither"``.
        description: the noun phrase to use instead of the generated one (``"a positive integer"``).
    """

    def __init__(self, type: type, left: float | None, right: float | None, *, closed: str = "both",
                 description: str | None = None):
        if type not in (int, float):
            raise TypeError(f"Interval type must be int or float, got {type!r}")
        if closed not in _CLOSED:
            raise ValueError(f"closed must be one of {_CLOSED}, got {closed!r}")
        self.type, self.left, self.right, self.closed = type, left, right, closed
        self.description = description

    @property
    def left_closed(self) -> bool:
        return self.left is not None and self.closed in ("both", "left")

    @property
    def right_closed(self) -> bool:
        return self.right is not None and self.closed in ("both", "right")

    def is_satisfied_by(self, value: Any) -> bool:
        if not (is_int(value) if self.type is int else is_number(value)):
            return False
        if self.type is float and not is_finite(value):  # NaN, an infinity, an int beyond a float
            if value != value:
                return False
            value = math.inf if value > 0 else -math.inf
        if self.left is None:
            above = value > -math.inf
        else:
            above = value >= self.left if self.left_closed else value > self.left
        if self.right is None:
            below = value < math.inf
        else:
            below = value <= self.right if self.right_closed else value < self.right
        return bool(above and below)

    @property
    def bounds(self) -> str:
        """The bounds alone: ``"in [0.0, 1.0)"``, ``">= 1"``, ``"> 0"`` (empty when there are none)."""
        if self.left is not None and self.right is not None:
            return (f"in {'[' if self.left_closed else '('}{self.left}, "
                    f"{self.right}{']' if self.right_closed else ')'}")
        if self.left is not None:
            return f"{'>=' if self.left_closed else '>'} {self.left}"
        if self.right is not None:
            return f"{'<=' if self.right_closed else '<'} {self.right}"
        return ""

    def __str__(self) -> str:
        if self.description:
            return self.description
        kind = "an integer" if self.type is int else "a number"
        return f"{kind} {self.bounds}".rstrip()

    def __repr__(self) -> str:
        return f"Interval({self.type.__name__}, {self.left!r}, {self.right!r}, closed={self.closed!r})"


class Options(Constraint):
    """One of a fixed set of values, of the same type (``1`` is not ``True``, ``1.0`` not ``1``).

    Args:
        options: the allowed values.
        description: the noun phrase to use instead of ``"one of [...]"``.
    """

    def __init__(self, options: Iterable[Any], *, description: str | None = None):
        self.options = tuple(options)
        self.description = description

    def is_satisfied_by(self, value: Any) -> bool:
        return any(type(value) is type(o) and value == o for o in self.options)

    def __str__(self) -> str:
        return self.description or f"one of {list(self.options)}"

    def __repr__(self) -> str:
        return f"Options({self.options!r})"


class NameList(Constraint):
    """A non-empty list (or tuple) of names, each one of `known`.

    Args:
        known: the allowed names.
        what: what one name names, for the message about an unknown one (``"augmentation"``).
    """

    def __init__(self, known: Sequence[str], *, what: str = "name"):
        self.known, self.what = tuple(known), what

    def _is_names(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(n, str) for n in value)

    def is_satisfied_by(self, value: Any) -> bool:
        return self._is_names(value) and all(n in self.known for n in value)

    def explain(self, value: Any) -> str:
        if not self._is_names(value):
            return super().explain(value)
        unknown = [n for n in value if n not in self.known]
        return f"names an unknown {self.what} {', '.join(map(repr, unknown))}; known: {', '.join(self.known)}"

    def __str__(self) -> str:
        return f"a non-empty list of names among {', '.join(self.known)}"

    def __repr__(self) -> str:
        return f"NameList({self.known!r})"


class Text(Constraint):
    """A non-empty string."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value)

    def __str__(self) -> str:
        return "a non-empty string"

    def __repr__(self) -> str:
        return "Text()"


class ListOf(Constraint):
    """A non-empty list (or tuple) whose every item satisfies `item`.

    Args:
        item: the rule of one item.
        plural: what the items are, in the plural, for the message (``"positive numbers"``).
    """

    def __init__(self, item: Constraint, plural: str):
        self.item, self.plural = item, plural

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and bool(value) and all(self.item.is_satisfied_by(v) for v in value)

    def explain(self, value: Any) -> str:
        if isinstance(value, (list, tuple)) and value:
            bad = next(v for v in value if not self.item.is_satisfied_by(v))
            return f"must be {self}; item {short_repr(bad)} is not {self.item}"
        return super().explain(value)

    def __str__(self) -> str:
        return f"a non-empty list of {self.plural}"

    def __repr__(self) -> str:
        return f"ListOf({self.item!r}, {self.plural!r})"


#: A rule: a constraint, None (the value may be None), or a list of them (any one will do).
Rule = Constraint | None | Sequence[Constraint | None]

INTEGER = Interval(int, None, None)
POSITIVE_INT = Interval(int, 1, None, description="a positive integer")
NON_NEGATIVE_INT = Interval(int, 0, None, description="a non-negative integer")
POSITIVE = Interval(float, 0, None, closed="neither", description="a positive number")
NON_NEGATIVE = Interval(float, 0, None)
FRACTION = Interval(float, 0.0, 1.0)
PERCENTILE = Interval(float, 0.0, 100.0)
#: The largest seed NumPy's legacy generator and Optuna's samplers take (they need seeds below 2**32).
MAX_SEED = 2 ** 32 - 1
SEED = Interval(int, 0, MAX_SEED)
BOOL = Options((True, False), description="true or false")


def _alternatives(rule: Rule) -> tuple[Constraint | None, ...]:
    if rule is None or isinstance(rule, Constraint):
        return (rule,)
    return tuple(rule)


def satisfies(value: Any, rule: Rule) -> bool:
    """Whether `value` satisfies `rule` (one of its alternatives)."""
    return any(value is None if c is None else c.is_satisfied_by(value) for c in _alternatives(rule))


def describe(rule: Rule) -> str:
    """`rule` as a noun phrase: ``"a positive integer or None"``."""
    return " or ".join("None" if c is None else str(c) for c in _alternatives(rule))


def check_params(rules: Mapping[str, Rule], values: Mapping[str, Any], *, where: str) -> None:
    """Check each value named in `rules` against its rule, in the order of `rules`.

    Args:
        rules: parameter name -> rule; names missing from `values` are skipped.
        values: parameter name -> value.
        where: what the parameters belong to, to start the message (``"measure 'agn'"``).

    Raises:
        PGDLError: the first value that breaks its rule, in one line naming the parameter:
            ``measure 'agn': parameter batch_size must be a positive integer, got 0``.
    """
    for name, rule in rules.items():
        if name not in values:
            continue
        value = values[name]
        if satisfies(value, rule):
            continue
        alternatives = _alternatives(rule)
        if len(alternatives) == 1 and alternatives[0] is not None:
            problem = alternatives[0].explain(value)
        else:
            problem = f"must be {describe(rule)}, got {short_repr(value)}"
        raise PGDLError(f"{where}: parameter {name} {problem}")
