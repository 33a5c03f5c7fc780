"""One spelling of each option across `pgdl` commands, old spellings kept as hidden aliases."""

from __future__ import annotations

import click
import pytest

from pgdl_measures.cli import COMMANDS
from pgdl_measures.cli import cli as pgdl_group
from pgdl_measures.cli._options import AliasOption, split_ids


def _walk(group: click.Group, ctx: click.Context, prefix=()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _walk(command, ctx, prefix + (name,))
        else:
            yield prefix + (name,), command


def _commands():
    ctx = click.Context(pgdl_group)
    return list(_walk(pgdl_group, ctx))


def _parse(command: click.Command, args: list[str]) -> dict:
    """The parameters click gives the command for `args` (the command itself does not run)."""
    with command.make_context("pgdl", list(args)) as ctx:
        return dict(ctx.params)


def _visible_names(command: click.Command) -> set[str]:
    ctx = click.Context(command)
    names = set()
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record:
            names |= {part.strip().split(" ")[0] for part in record[0].split(",")}
    return names


def test_every_command_is_walked():
    names = {path[0] for path, _ in _commands()}
    assert names == set(COMMANDS)


@pytest.mark.parametrize("path,command", _commands(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_one_spelling_per_option(path, command):
    visible = _visible_names(command)
    # an output path is --out/-o everywhere (positional OUT_DIR / OUTPUT_DIR arguments aside)
    assert not visible & {"--output", "--dest", "--out-dir", "--no-progress"}, (path, visible)
    for param in command.params:
        if isinstance(param, click.Option) and "--models" in param.opts:
            assert param.multiple, f"{' '.join(path)}: --models must be repeatable (and accept commas)"


def _command(*path):
    command = pgdl_group
    ctx = click.Context(pgdl_group)
    for name in path:
        command = command.get_command(ctx, name)
    return command


@pytest.mark.parametrize("args", [["--out", "x.zip"], ["-o", "x.zip"], ["--output", "x.zip"]])
def test_package_out_and_its_old_spelling(args):
    command = _command("package")
    assert _parse(command, ["agn", *args])["output"] == "x.zip"
    text = command.get_help(click.Context(command))
    assert "--out" in text and "--output" not in text


@pytest.mark.parametrize("args", [["--out", "d"], ["-o", "d"], ["--dest", "d"]])
def test_data_download_out_and_its_old_spelling(args):
    command = _command("data", "download")
    assert _parse(command, ["public", *args])["dest"] == "d"
    assert _parse(command, ["public"])["dest"] == "."
    assert "--dest" not in command.get_help(click.Context(command))


@pytest.mark.parametrize("flag", ["-q", "--quiet", "--no-progress"])
def test_evaluate_quiet_and_its_old_spelling(flag):
    command = _command("evaluate")
    assert _parse(command, [flag])["no_progress"] is True
    assert _parse(command, [])["no_progress"] is False
    assert "--no-progress" not in command.get_help(click.Context(command))


@pytest.mark.parametrize("path,fixed", [(("evaluate",), []), (("run-submission",), ["SUB", "IN", "OUT"])])
def test_models_repeatable_and_comma_separated(path, fixed, tmp_path):
    command = _command(*path)
    if fixed:
        (tmp_path / "SUB").mkdir()
        (tmp_path / "IN").mkdir()
        fixed = [str(tmp_path / name) for name in fixed]
    params = _parse(command, [*fixed, "--models", "model_0,model_1", "--models", "2"])
    assert split_ids(params["models"]) == ["model_0", "model_1", "2"]
    assert split_ids(_parse(command, [*fixed, "--models", " 0 , 1,"])["models"]) == ["0", "1"]


def test_run_submission_models_repeated_through_the_cli(cli, tmp_path, monkeypatch):
    """Both spellings reach the library: comma-separated and repeated."""
    import pgdl_measures.competition.run as run_module

    seen = []

    class Result:
        tasks: list = []
        failed = 0

    def fake(submission, input_dir, output_dir, *, models, **kwargs):
        seen.append(models)
        return Result()

    monkeypatch.setattr(run_module, "run_submission", fake)
    (tmp_path / "sub").mkdir()
    (tmp_path / "in").mkdir()
    base = ["run-submission", str(tmp_path / "sub"), str(tmp_path / "in"), str(tmp_path / "out")]
    assert cli(base + ["--models", "0,1"]).exit_code == 0
    assert cli(base + ["--models", "0", "--models", "1"]).exit_code == 0
    assert seen == [["0", "1"], ["0", "1"]]


def test_alias_option_rejects_an_alias_that_is_not_a_name():
    with pytest.raises(TypeError):
        AliasOption(["--out"], hidden_aliases=("--output",))


def test_split_ids():
    assert split_ids(None) == []
    assert split_ids("a, b") == ["a", "b"]
    assert split_ids(("a,,b", " c ")) == ["a", "b", "c"]
