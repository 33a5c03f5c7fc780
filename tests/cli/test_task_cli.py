"""`pgdl task info`, `--help` on every command, and the CLI's handling of user errors."""

from __future__ import annotations

import json

import click

from pgdl_measures.cli import COMMANDS
from pgdl_measures.cli import cli as root


def _walk(group, ctx, prefix):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield prefix + [name], command
        if isinstance(command, click.Group):
            yield from _walk(command, ctx, prefix + [name])


def test_every_command_has_help(cli):
    result = cli(["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output, f"command {name} is not available"
    ctx = click.Context(root)
    walked = list(_walk(root, ctx, []))
    assert len(walked) >= len(COMMANDS)
    for path, command in walked:
        result = cli(path + ["--help"])
        assert result.exit_code == 0, (path, result.output)
        assert command.help and command.help.split("\n")[0].strip() in " ".join(result.output.split())


def test_task_info_on_sample(cli, toy_path):
    result = cli(["task", "info", str(toy_path)])
    assert result.exit_code == 0, result.output
    assert "18 (18 loaded)" in result.output
    assert "complete: yes; unique: yes" in result.output
    result = cli(["task", "info", str(toy_path), "--json"])
    summary = json.loads(result.output)
    assert summary[0]["grid"]["complete"] and summary[0]["data"]["train_examples"] == 200


def test_task_info_bad_path_exits_2(cli, tmp_path):
    result = cli(["task", "info", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no such task folder" in result.output
    assert "Traceback" not in result.output


def test_task_info_prints_nothing_on_stderr(mini_path):
    """The console script, in a fresh process on the default backend: no TensorFlow start-up
    notices (oneDNN, CUDA stubs, "failed call to cuInit" on machines without a GPU driver)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    proc = subprocess.run([sys.executable, "-c", "from pgdl_measures.cli import main; main()",
                           "task", "info", str(mini_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "32 (32 loaded)" in proc.stdout
    assert proc.stderr == ""


def test_task_info_prints_paths_as_plain_text(cli, mini_path, tmp_path):
    """A folder name holding rich markup ([/x], [bold]) is printed as it is, not read as markup."""
    import shutil

    root = tmp_path / "a[/x]b[bold]c"
    keep = {"model_0", "model_1", "dataset_1"}  # two models are enough, and quick to load
    shutil.copytree(mini_path, root, ignore=lambda folder, names: [
        n for n in names if n.startswith(("model_", "dataset_")) and n not in keep])
    result = cli(["task", "info", str(root)])
    assert result.exit_code == 0, result.output
    assert f"input: {root / 'input_data' / 'digits_vgg'}" in result.output
    assert "2 (2 loaded)" in result.output


def test_task_summary_data_has_no_rendering():
    """The library gives the data; rendering (rich) lives in the CLI."""
    import pgdl_measures.tasks.summary as summary

    assert not hasattr(summary, "render_task_summary")
    assert "rich" not in open(summary.__file__).read()


def test_task_info_reports_a_reference_score_refuses(cli, toy_path, tmp_path):
    """A model_configs.json that `pgdl score` refuses: `task info` shows the same message, no crash."""
    import shutil

    task = tmp_path / "pgdl_toy_data"
    shutil.copytree(toy_path / "dataset_1", task / "dataset_1")
    shutil.copytree(toy_path / "model_0", task / "model_0")
    specs = json.loads((toy_path / "model_configs.json").read_text())
    specs["3"]["hparams"] = ["not", "an", "object"]
    (task / "model_configs.json").write_text(json.dumps(specs))
    result = cli(["task", "info", str(task), "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert summary["grid"]["error"].endswith("model '3' needs 'hparams' and 'metrics' objects")
    score = cli(["score", str(task), str(tmp_path)])
    assert score.exit_code == 2 and "model '3' needs 'hparams' and 'metrics' objects" in score.output
