"""The opt-in built-ins: left out of the default run, selected by name or by `all`."""

from __future__ import annotations

from pgdl_measures.evaluate.pipeline import default_measure_names, resolve_measures
from pgdl_measures.registry import BUILTINS, FITTED, OPT_IN, available_measures


def test_opt_in_names_are_builtins_left_out_of_the_default_run():
    assert OPT_IN <= set(BUILTINS)
    defaults = default_measure_names()
    assert not OPT_IN & set(defaults) and "agn" in defaults


def test_all_selects_every_registered_measure_once():
    names = [m.name for m in resolve_measures(["agn", "all"], {"davies_bouldin": {"layer": 1}})]
    assert names[0] == "agn" and sorted(names) == sorted(set(available_measures()) - FITTED)
    assert FITTED <= set(available_measures()) and "meta_measure" in FITTED
    assert [m.name for m in resolve_measures(["meta_measure"], {})] == ["meta_measure"]  # by name, it runs
    assert len(names) == len(set(names))
    assert [m for m in resolve_measures(["all"], {"davies_bouldin": {"layer": 1}}) if m.name == "davies_bouldin"][0] \
        .layer == 1
