"""`pgdl task ...`: inspect tasks."""

from __future__ import annotations

from typing import Any

import click

DEFAULT_TASK = "data/mini"


@click.group()
def task():
    """Inspect PGDL tasks (competition dataset folders)."""


@task.command("info")
@click.argument("path", required=False, default=None, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(path, as_json):
    """Show the tasks found under PATH: models, architectures, grid, data sizes, gap statistics.

    PATH is a task folder (sample layout), a public-data root (input_data/, reference_data/),
    or a folder of such; the bundled mini task data/mini when omitted.
    """
    import json

    from rich.console import Console

    from pgdl_measures.tasks.summary import describe_tasks, resolve_default_task

    summaries = describe_tasks(resolve_default_task(path))
    if as_json:
        click.echo(json.dumps(summaries, indent=2, default=str))
        return
    console = Console()
    for summary in summaries:
        render_task_summary(summary, console)


def render_task_summary(summary: dict[str, Any], console) -> None:
    """Print one task summary (from :func:`pgdl_measures.tasks.summary.describe_task`) with rich.

    Everything that comes from the task (names, paths, errors, hyper-parameter values) is
    printed as plain text, never read as rich markup.
    """
    from rich.table import Table
    from rich.text import Text

    def say(text: str, style: str = "") -> None:  # soft_wrap: a long path stays on one line
        console.print(Text(text, style=style), highlight=False, soft_wrap=True)

    console.rule(Text(summary["task"], style="bold"))
    say(f"input: {summary['input_dir']}")
    say(f"reference: {summary['reference'] or 'absent (no model_configs.json)'}")
    models = summary["models"]
    p = models["parameters"]
    say(f"models: {models['count']} ({models['loaded']} loaded), classes: {models['num_classes']}, "
        + (f"parameters {p['min']:.0f}..{p['max']:.0f}" if p else "no parameters"))
    if models["without_initial_weights"]:
        say(f"without weights_init.hdf5: {', '.join(models['without_initial_weights'])}")
    for model_id, err in models["errors"].items():
        say(f"  {model_id}: {err}", "red")
    for sig, count in models["architectures"].items():
        say(f"  {count:4d} x {sig}")
    data = summary["data"]
    if "error" in data:
        say(f"data: {data['error']}", "red")
    else:
        say(f"data: train {data['train_examples']} examples in {data['train_shards']} shards, "
            f"test {data.get('test_examples', 'absent')}, input shape {data['input_shape']}")
    grid = summary.get("grid")
    if grid is None:
        return
    if "error" in grid:
        say(f"grid: {grid['error']}", "red")
        return
    table = Table("hyper-parameter", "possible values", title=None)
    for name, values in grid["hparams"].items():
        table.add_row(Text(str(name)), Text(", ".join(map(str, values))))
    console.print(table)
    say(f"grid: {grid['models']} models over {grid['cells']} cells; complete: "
        f"{'yes' if grid['complete'] else 'NO'}; unique: {'yes' if grid['unique'] else 'NO'}")
    for problem in grid["problems"]:
        say(f"  {problem}", "yellow")
    gaps = summary["gaps"]
    for key in ("gen_gap", "train_acc", "test_acc"):
        s = gaps[key]
        if s:
            say(f"{key}: mean {s['mean']:.4f}  std {s['std']:.4f}  min {s['min']:.4f}  max {s['max']:.4f}")
