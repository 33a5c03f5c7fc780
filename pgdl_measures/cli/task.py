"""`pgdl task ...`: inspect tasks."""

from __future__ import annotations

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

    from pgdl_measures.tasks.summary import describe_tasks, render_task_summary, resolve_default_task

    summaries = describe_tasks(resolve_default_task(path))
    if as_json:
        click.echo(json.dumps(summaries, indent=2, default=str))
        return
    console = Console()
    for summary in summaries:
        render_task_summary(summary, console)
