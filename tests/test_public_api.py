"""The public names the README documents are importable from `pgdl_measures` directly and are
the library's own classes and functions."""

from __future__ import annotations

import subprocess
import sys

import pgdl_measures
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.base import Measure, MeasureError
from pgdl_measures.registry import get_measure, list_measures
from pgdl_measures.tasks.task import Task, find_tasks
from pgdl_measures.tasks.trained import TrainedModel
from pgdl_measures.testing import MeasureContract
from scoring.errors import PGDLError as ScoringPGDLError


def test_public_names_are_the_library_objects():
    assert pgdl_measures.Measure is Measure and pgdl_measures.MeasureError is MeasureError
    assert pgdl_measures.get_measure is get_measure and pgdl_measures.list_measures is list_measures
    assert pgdl_measures.find_tasks is find_tasks and pgdl_measures.Task is Task
    assert pgdl_measures.TrainedModel is TrainedModel and pgdl_measures.MeasureContract is MeasureContract
    assert pgdl_measures.PGDLError is PGDLError is ScoringPGDLError
    assert set(pgdl_measures.__all__) >= {"Measure", "MeasureError", "get_measure", "list_measures", "find_tasks",
                                          "Task", "TrainedModel", "MeasureContract", "PGDLError"}


def test_list_measures_names_the_builtins():
    names = list_measures()
    assert names == sorted(names) and {"agn", "gradient_norm", "vc_dimension"} <= set(names)
    assert isinstance(get_measure("vc_dimension"), Measure)


def test_importing_the_package_is_cheap():
    code = ("import sys, pgdl_measures; from pgdl_measures import TrainedModel; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'pandas', 'pytest') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
