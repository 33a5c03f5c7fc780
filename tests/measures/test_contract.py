"""The contract suite (pgdl_measures.testing.MeasureContract) over every registered built-in.

One test class per available built-in is generated below, so a failure names the measure
(``TestContract_agn::test_value[conv]``). Built-ins whose module does not import yet
are skipped by the registry; ``test_all_builtins_registered`` fails until every one does.
"""

from __future__ import annotations

import importlib
import warnings

import pytest

from pgdl_measures.registry import BUILTINS, available_measures
from pgdl_measures.testing import MeasureContract

with warnings.catch_warnings():  # third-party plugins that fail to load are not under test here
    warnings.simplefilter("ignore")
    _AVAILABLE = available_measures()

for _name in BUILTINS:
    if _name in _AVAILABLE:
        _test_class = type(f"TestContract_{_name}", (MeasureContract,), {
            "measure_class": _AVAILABLE[_name],
            "__doc__": f"The measure contract for the built-in {_name!r}.",
            "__module__": __name__,
        })
        globals()[_test_class.__name__] = _test_class
del _name


def test_registered_name_matches_class_name():
    """The registry key of a built-in is its class's `name` (what results are recorded under)."""
    for name, cls in available_measures().items():
        if name in BUILTINS:
            assert cls.name == name, f"BUILTINS[{name!r}] points to a class named {cls.name!r}"


def test_all_builtins_registered():
    """Every name in registry.BUILTINS imports and is available (fails while one is unwritten)."""
    missing = {}
    for name, target in BUILTINS.items():
        if name not in available_measures():
            module, _, attr = target.partition(":")
            try:
                getattr(importlib.import_module(module), attr)
            except Exception as exc:  # noqa: BLE001 - report why, whatever it is
                missing[name] = f"{target}: {type(exc).__name__}: {exc}"
            else:
                missing[name] = f"{target}: imports now (registry cache was filled earlier)"
    if missing:
        pytest.fail("built-in measures not available:\n" + "\n".join(f"  {k}: {v}" for k, v in missing.items()),
                    pytrace=False)
