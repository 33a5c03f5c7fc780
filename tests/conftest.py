"""Shared fixtures: the official sample task, the bundled mini task, a CLI runner, a fresh registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(os.environ.get("PGDL_TOY_DATA", ROOT.parent / "shared" / "pgdl_toy_data"))
MINI = ROOT / "data" / "mini"


def pytest_configure(config):
    """One JAX compilation cache on disk for the whole run: the workers, and the child processes
    they start, compile each program once (models of one architecture give the same program).
    The process that starts the run makes it (the xdist workers inherit its environment) and
    removes it at the end; a cache the caller set is left alone."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    cache = tempfile.mkdtemp(prefix="pgdl-tests-jax-cache-")
    # a size limit turns on JAX's file lock around each entry, so no process reads one half written
    os.environ.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", JAX_COMPILATION_CACHE_MAX_SIZE=str(2**31))
    config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))


def pytest_addoption(parser):
    parser.addoption("--every-builtin", action="store_true",
                     help="also run every built-in measure through `pgdl run-submission` (tests/competition/test_package.py: "
                          "one child process each)")


@pytest.fixture(scope="session")
def toy_path() -> Path:
    """The official PGDL sample task (../shared/pgdl_toy_data); skips where it is absent."""
    if not (TOY / "model_configs.json").is_file():
        pytest.skip(f"official sample task not found at {TOY} (set PGDL_TOY_DATA or add ../shared)")
    return TOY


@pytest.fixture(scope="session")
def mini_path() -> Path:
    """The bundled mini task data/mini."""
    if not MINI.is_dir():
        pytest.skip("data/mini has not been generated (see data/README.md)")
    return MINI


def invoke(args, **kwargs):
    """Run the `pgdl` CLI in-process through click's CliRunner, mapping PGDLError to exit 2."""
    from click.testing import CliRunner

    from pgdl_measures.cli import main

    runner = CliRunner()
    return runner.invoke(_MainWrapper(main), args, catch_exceptions=False, **kwargs)


class _MainWrapper:
    """Adapt `main(argv)` (which calls sys.exit) to what CliRunner.invoke expects."""

    name = "pgdl"

    def __init__(self, main):
        self.main_fn = main

    def main(self, args=None, prog_name=None, **_):
        self.main_fn(list(args or []))


@pytest.fixture(scope="session")
def cli():
    """:func:`invoke` (session-scoped, so module-scoped fixtures can run the CLI too)."""
    return invoke


@pytest.fixture
def fresh_registry():
    """The measure registry (``available_measures``) with its cache cleared before and after, so a
    fake plugin never leaks into other tests."""
    from pgdl_measures.registry import available_measures

    available_measures.cache_clear()
    yield available_measures
    available_measures.cache_clear()


class TmpfsMounts:
    """Small tmpfs file systems for full-disk tests (:func:`tmpfs`)."""

    def __init__(self, root: Path):
        self.root = root
        self.mounted: list[Path] = []

    def mount(self, size: str) -> Path:
        """A fresh folder with a tmpfs of `size` (``"160k"``, ``"4m"``) mounted on it."""
        disk = self.root / f"disk{len(self.mounted)}"
        disk.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                          capture_output=True).returncode != 0:
            pytest.skip("mounting a tmpfs is not allowed here")
        self.mounted.append(disk)
        return disk

    def resize(self, disk: Path, size: str) -> None:
        """Grow (or shrink) a mounted tmpfs, keeping its files."""
        subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True, capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """Mounts small tmpfs file systems (root only: skipped otherwise, or where mount is not
    allowed); each is unmounted lazily at the end, so a file still open cannot keep it mounted."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounts = TmpfsMounts(tmp_path)
    yield mounts
    for disk in mounts.mounted:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
