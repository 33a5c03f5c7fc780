"""The parameter-constraint vocabulary (pgdl_measures.params) and the measures' use of it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import (
    BOOL,
    FRACTION,
    INTEGER,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    PERCENTILE,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Interval,
    NameList,
    Options,
    check_params,
    describe,
    is_finite_number,
    is_int,
    is_number,
    satisfies,
)
from pgdl_measures.registry import BUILTINS, available_measures

NUMERIC = [INTEGER, POSITIVE_INT, NON_NEGATIVE_INT, POSITIVE, NON_NEGATIVE, FRACTION, PERCENTILE, SEED]
#: values no numeric rule accepts
malformed = st.one_of(
    st.booleans(), st.none(), st.text(max_size=6), st.sampled_from([math.nan, math.inf, -math.inf]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def test_primitives_refuse_booleans():
    assert is_int(3) and not is_int(True) and not is_int(3.0)
    assert is_number(3) and is_number(2.5) and is_number(math.nan) and not is_number(False)
    assert is_finite_number(1.5) and not is_finite_number(math.inf) and not is_finite_number(math.nan)
    assert not is_finite_number(10 ** 400)  # beyond a float: no OverflowError


@given(malformed)
def test_numeric_rules_refuse_malformed_values(value):
    for rule in NUMERIC:
        assert not satisfies(value, rule), (rule, value)


@given(malformed)
def test_check_params_says_what_is_wrong_in_one_line(value):
    with pytest.raises(PGDLError) as info:
        check_params({"batch_size": POSITIVE_INT}, {"batch_size": value}, where="measure 'm'")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("measure 'm': parameter batch_size must be a positive integer, got ")


@given(st.integers(min_value=1))
def test_positive_ints_are_accepted(value):
    assert satisfies(value, POSITIVE_INT) and satisfies(value, NON_NEGATIVE_INT) and satisfies(value, INTEGER)
    assert satisfies(value, POSITIVE) and satisfies(value, NON_NEGATIVE)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_interval_bounds(value):
    assert satisfies(value, FRACTION) == (0 <= value <= 1)
    assert satisfies(value, POSITIVE) == (value > 0)
    assert satisfies(value, Interval(float, 0, 1, closed="neither")) == (0 < value < 1)
    assert satisfies(value, Interval(float, 0, 1, closed="left")) == (0 <= value < 1)
    assert not satisfies(value, POSITIVE_INT)  # a float is never an integer


def test_infinity_lies_only_in_an_interval_bounded_by_it():
    assert not satisfies(math.inf, NON_NEGATIVE) and not satisfies(10 ** 400, POSITIVE)
    assert satisfies(math.inf, Interval(float, 0.0, math.inf))
    assert not satisfies(math.inf, Interval(float, 0.0, math.inf, closed="left"))
    assert satisfies(10 ** 400, POSITIVE_INT)  # an int need not fit a float


def test_descriptions_are_the_messages_words():
    assert [str(r) for r in (POSITIVE_INT, POSITIVE, NON_NEGATIVE, FRACTION, PERCENTILE, SEED, INTEGER)] == [
        "a positive integer", "a positive number", "a number >= 0", "a number in [0.0, 1.0]",
        "a number in [0.0, 100.0]", "an integer in [0, 4294967295]", "an integer"]
    assert str(Interval(int, 2, None)) == "an integer >= 2"
    assert Interval(float, 0.0, 1.0, closed="left").bounds == "in [0.0, 1.0)"
    assert Interval(float, 0, None, closed="neither").bounds == "> 0"
    assert describe([POSITIVE_INT, None]) == "a positive integer or None"
    assert str(BOOL) == "true or false" and str(Options(("sgd", "adam"))) == "one of ['sgd', 'adam']"


def test_options_compare_types():
    assert satisfies(True, BOOL) and not satisfies(1, BOOL) and not satisfies(0, BOOL)
    assert not satisfies(1.0, Options((1, 2))) and satisfies(2, Options((1, 2)))
    assert not satisfies(["a"], Options(("a",)))  # unhashable values are refused, not a TypeError


def test_name_list():
    names = NameList(("flip", "shift"), what="augmentation")
    assert satisfies(["flip"], names) and satisfies(("shift", "flip"), names)
    for bad in ("flip", [], [["flip"]], None, ["flip", 3]):
        assert not satisfies(bad, names)
    assert names.explain(["flip", "rotate"]) == "names an unknown augmentation 'rotate'; known: flip, shift"
    assert names.explain("flip").startswith("must be a non-empty list of names among flip, shift, got 'flip'")


def test_check_params_alternatives_order_and_missing_names():
    rules = {"a": [POSITIVE_INT, None], "b": FRACTION}
    check_params(rules, {"a": None, "b": 0.5}, where="x")
    check_params(rules, {}, where="x")  # names not given are not checked
    with pytest.raises(PGDLError, match=r"^x: parameter a must be a positive integer or None, got 0$"):
        check_params(rules, {"a": 0, "b": 2.0}, where="x")  # the first broken rule, in the rules' order
    with pytest.raises(PGDLError, match=r"<an integer of about \d+ digits>"):
        check_params({"s": SEED}, {"s": 10 ** 5000}, where="x")  # too long to print: named by its size


def test_validate_params_keeps_the_signature_and_records_the_rules():
    class Toy(Measure):
        name = "toy"

        @validate_params({"k": POSITIVE_INT, "scale": [POSITIVE, None]})
        def __init__(self, *, k: int = 1, scale: float | None = None):
            self.k, self.scale = k, scale

    class Child(Toy):
        name = "child"

        def __init__(self, *, k: int = 2, scale: float | None = 1.0):
            super().__init__(k=k, scale=scale)

    assert Toy.param_names() == ["k", "scale"] and Toy(k=3).params == {"k": 3, "scale": None}
    assert Child.param_rules() == {"k": POSITIVE_INT, "scale": [POSITIVE, None]}
    with pytest.raises(PGDLError, match=r"^measure 'child': parameter scale must be a positive number or None, got -1$"):
        Child(scale=-1)
    with pytest.raises(TypeError):
        Toy(j=1)
    with pytest.raises(TypeError, match="no parameter"):
        validate_params({"nope": POSITIVE_INT})(Toy.__init__.__wrapped__)


CANDIDATES = [None, True, "x", -1, 0, 1.5, math.nan, math.inf, [], ["no_such_name"], 10 ** 400]


def _bad_value(rule):
    return next(v for v in CANDIDATES if not satisfies(v, rule))


@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_builtin_measure_refuses_a_bad_value_of_each_parameter(name):
    cls = available_measures()[name]
    rules = cls.param_rules()
    assert set(rules) == set(cls.param_names()), f"{name}: parameters without a rule"
    for param, rule in rules.items():
        value = _bad_value(rule)
        with pytest.raises(PGDLError) as info:
            cls(**{param: value})
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"measure {name!r}: parameter {param} "), message
