"""Shared fixtures: the official sample task, the bundled mini task, a CLI runner, a fresh registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(os.environ.get("PGDL_TOY_DATA", ROOT.parent / "shared" / "pgdl_toy_data"))
MINI = ROOT / "data" / "mini"


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


@pytest.fixture
def cli():
    return invoke


@pytest.fixture
def fresh_registry():
    """The measure registry (``available_measures``) with its cache cleared before and after, so a
    fake plugin never leaks into other tests."""
    from pgdl_measures.registry import available_measures

    available_measures.cache_clear()
    yield available_measures
    available_measures.cache_clear()
