"""Ctrl-C at any point of a command is one line and exit status 130, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _loaded(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the import start")
def test_ctrl_c_while_tensorflow_imports_is_one_line_and_exit_130():
    pytest.importorskip("tensorflow")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    child = subprocess.Popen([sys.executable, "-c", "from pgdl_measures.cli import main; main()",
                              "task", "info", str(ROOT / "data" / "mini")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # SIGINT as soon as TensorFlow's shared library is mapped: the import is under way
        while child.poll() is None and not _loaded(child.pid, "libtensorflow"):
            time.sleep(0.01)
        assert child.poll() is None, "the command ended before TensorFlow was imported"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert "Traceback" not in err
    assert child.returncode == 130, err
    assert err.strip().splitlines() == ["Aborted."]
