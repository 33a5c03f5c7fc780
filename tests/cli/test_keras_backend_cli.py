"""An unknown or missing Keras backend: one line and exit status 2 from every command that imports Keras."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pgdl(args, backend):
    env = dict(os.environ, KERAS_BACKEND=backend)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, "-c", "from pgdl_measures.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


MISSING = [name for name in ("torch", "openvino") if importlib.util.find_spec(name) is None]


@pytest.mark.parametrize("backend", ["banana"] + MISSING[:1])
def test_task_info_with_an_unusable_backend_says_so_in_one_line(backend):
    proc = _pgdl(["task", "info"], backend)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot import Keras"), proc.stderr
    assert f"KERAS_BACKEND={backend!r}" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["measures", "list"], ["evaluate", "--quiet", "--out", "{tmp}/out"],
                                  ["zoo", "{tmp}/spec.json", "{tmp}/zoo"],
                                  ["package", "vc_dimension", "-o", "{tmp}/s.zip"]])
def test_every_keras_command_with_an_unknown_backend_exits_2(args, tmp_path):
    proc = _pgdl([a.format(tmp=tmp_path) for a in args], "banana")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "cannot import Keras" in proc.stderr
