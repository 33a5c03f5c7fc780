"""`pgdl measures list|new`: the listing, plugin warnings, and a scaffold that installs and passes
its own contract tests."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pgdl_measures.registry import ENTRY_POINT_GROUP, available_measures
from pgdl_measures.scaffold import PluginNames, template_files

ROOT = Path(__file__).resolve().parents[2]


def _can_build_without_isolation() -> bool:
    """setuptools (and, before setuptools 70.1, wheel) in this environment: what
    `pip install --no-build-isolation` needs to build a setup.cfg project offline."""
    import importlib.util

    if importlib.util.find_spec("setuptools") is None:
        return False
    from importlib.metadata import version

    major, minor = (int(part) for part in version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


needs_build_tools = pytest.mark.skipif(not _can_build_without_isolation(),
                                       reason="building offline needs setuptools (and wheel) in this environment")


def add_distribution(root: Path, dist: str, entry_points: dict[str, str], monkeypatch) -> None:
    """Put an installed-looking distribution (dist-info with entry points) on sys.path."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    monkeypatch.syspath_prepend(str(root))
    available_measures.cache_clear()


def scaffold_entry_points(directory: Path) -> dict[str, str]:
    """The entry points a scaffold's setup.cfg declares."""
    cfg = configparser.ConfigParser()
    cfg.read(directory / "setup.cfg")
    lines = cfg["options.entry_points"][ENTRY_POINT_GROUP].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


# -- help ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["measures"], ["measures", "list"], ["measures", "new"]])
def test_help(cli, args):
    from pgdl_measures.cli.measures import measures

    command = measures if len(args) == 1 else measures.commands[args[1]]
    result = cli(args + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: pgdl " + " ".join(args) in result.output
    assert command.help.split("\n")[0].strip() in " ".join(result.output.split())  # the docstring is the help


# -- list ---------------------------------------------------------------------------------
def test_list_table(cli):
    result = cli(["measures", "list"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for name in ("vc_dimension", "distance_from_init"):
        assert name in result.output
    assert "init weights" in result.output and "arXiv:2012.07976" in result.output


def test_list_json(cli):
    result = cli(["measures", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(available_measures())
    vc = rows["vc_dimension"]
    assert vc["params"] == {"use_input_size": False} and vc["direction"] == 1 and vc["origin"] == "built-in"
    assert vc["needs_train_data"] is False and vc["backends"] == ["tensorflow", "jax"]
    assert rows["distance_from_init"]["needs_initial_weights"] is True
    for row in rows.values():
        assert row["summary"] and row["reference"]


def test_list_shows_plugins_and_warns_about_broken_ones(cli, tmp_path, monkeypatch, fresh_registry):
    names = PluginNames.for_measure("weight_norm_cli")
    from pgdl_measures.scaffold import write_plugin

    write_plugin(names.name, tmp_path / "plugin")
    add_distribution(tmp_path / "plugin", names.dist_name,
                     {**scaffold_entry_points(tmp_path / "plugin"), "broken_one": "no_such_module_xyz:Broken"},
                     monkeypatch)
    result = cli(["measures", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert "Warning: measure plugin 'broken_one' from package 'pgdl-weight-norm-cli' failed to load" in result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert "broken_one" not in rows
    assert rows["weight_norm_cli"]["origin"] == names.dist_name  # the distribution that registered it
    assert rows["weight_norm_cli"]["params"] == {"include_biases": False}
    available_measures.cache_clear()
    table = cli(["measures", "list"], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "weight_norm_cli" in table.stdout


# -- new ----------------------------------------------------------------------------------
def test_new_writes_a_plugin_package(cli, tmp_path):
    target = tmp_path / "pgdl-weight-norm"
    result = cli(["measures", "new", "weight_norm", str(target)])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == [target]  # no staging folder left beside it
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask  # a folder's usual mode
    expected = {"setup.cfg", "pyproject.toml", "README.md", "pgdl_weight_norm/__init__.py",
                "pgdl_weight_norm/weight_norm.py", "tests/test_weight_norm.py"}
    assert {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} == expected
    assert scaffold_entry_points(target) == {"weight_norm": "pgdl_weight_norm.weight_norm:WeightNorm"}
    test_source = (target / "tests/test_weight_norm.py").read_text()
    assert "class TestWeightNorm(MeasureContract):\n    measure_class = WeightNorm" in test_source
    for path in target.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    assert "$" not in "".join(p.read_text() for p in target.rglob("*") if p.is_file())  # every placeholder filled
    assert "pip install" in result.output


def test_new_with_package_option(cli, tmp_path):
    result = cli(["measures", "new", "weight_norm", str(tmp_path / "p"), "--package", "my_measures"])
    assert result.exit_code == 0, result.output
    assert scaffold_entry_points(tmp_path / "p") == {"weight_norm": "my_measures.weight_norm:WeightNorm"}
    assert (tmp_path / "p/my_measures/weight_norm.py").is_file()


@pytest.mark.parametrize("name, message", [
    ("WeightNorm", "must be a snake_case noun"),
    ("weight-norm", "must be a snake_case noun"),
    ("vc_dimension", "already registered"),
    ("all", "measure name 'all' is reserved"),
    ("measures", "package name 'pgdl_measures' would shadow the importable module 'pgdl_measures'"),
])
def test_new_rejects_bad_names(cli, tmp_path, name, message):
    result = cli(["measures", "new", name, str(tmp_path / "p")])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("package, message", [
    ("os", "package name 'os' would shadow the standard library's module 'os'"),
    ("scoring", "package name 'scoring' would shadow the importable module 'scoring'"),
    ("pgdl_measures", "would shadow the importable module 'pgdl_measures'"),
])
def test_new_rejects_packages_that_shadow_modules(cli, tmp_path, package, message):
    result = cli(["measures", "new", "weight_norm", str(tmp_path / "p"), "--package", package])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert message in line
    assert list(tmp_path.iterdir()) == []


def test_new_writes_nothing_when_a_file_cannot_be_written(cli, tmp_path):
    """A package name too long for the file system failed after README.md was written."""
    package = "p" * 300
    result = cli(["measures", "new", "weight_norm", str(tmp_path / "a" / "p"), "--package", package])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "cannot write the plugin here" in line and package in line
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_a_non_empty_folder(cli, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = cli(["measures", "new", "weight_norm", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not an empty folder" in result.output and str(tmp_path) in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_new_into_an_unwritable_folder_is_one_line(cli, tmp_path):
    (tmp_path / "file").write_text("not a folder")  # below a file: no user can write there
    result = cli(["measures", "new", "weight_norm", str(tmp_path / "file" / "plugin")])
    assert result.exit_code == 2
    assert "cannot write the plugin here" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_scaffold_keeps_the_contract_in_process(cli, tmp_path, monkeypatch, fresh_registry):
    """The generated measure, registered through its setup.cfg entry point, passes every check
    of the contract suite (run here without a sub-process; the next test runs it for real)."""
    from pgdl_measures.testing import MODEL_KINDS, MeasureContract

    target = tmp_path / "plugin"
    assert cli(["measures", "new", "contract_demo", str(target)]).exit_code == 0
    add_distribution(target, "pgdl-contract-demo", scaffold_entry_points(target), monkeypatch)
    cls = available_measures()["contract_demo"]
    assert cls.__module__ == "pgdl_contract_demo.contract_demo"
    suite = type("TestDemo", (MeasureContract,), {"measure_class": cls})()
    ran = 0
    for attr in dir(suite):
        if attr.startswith("test_"):
            method = getattr(suite, attr)
            for args in ([(kind,) for kind in MODEL_KINDS] if "kind" in method.__code__.co_varnames else [()]):
                try:
                    method(*args)
                    ran += 1
                except pytest.skip.Exception:
                    pass
    assert ran >= 12


@needs_build_tools
def test_scaffold_pip_installs_and_passes_its_tests(tmp_path):
    """`pgdl measures new`, `pip install` (into a --target folder, not the shared venv), then the
    scaffold's own test file in a fresh interpreter, on the current Keras backend."""
    from pgdl_measures.scaffold import write_plugin

    source, site = tmp_path / "src", tmp_path / "site"
    write_plugin("installed_demo", source)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--disable-pip-version-check", "--no-input", "-q", "--target", str(site), str(source)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (site / "pgdl_installed_demo" / "installed_demo.py").is_file()
    assert any((site / d / "entry_points.txt").is_file() for d in os.listdir(site) if d.endswith(".dist-info"))
    shutil.rmtree(source / "pgdl_installed_demo")  # the tests must import the installed copy
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed[1]) >= 10 and not re.search(r"\d+ (failed|error)", summary), summary


@needs_build_tools
def test_templates_are_packaged(tmp_path):
    """setup.cfg's package_data ships every template, nested folders included, in the wheel."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pgdl_measures", src / "pgdl_measures",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-q", "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = ROOT / "pgdl_measures" / "templates"
    expected = {p.relative_to(ROOT).as_posix() for p in templates.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert {f"pgdl_measures/templates/plugin/{rel}" for rel, _ in template_files()} <= expected
    assert expected <= shipped, sorted(expected - shipped)
