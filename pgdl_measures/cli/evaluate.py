"""`pgdl evaluate`: compute measures on tasks, rank them, write a report."""

from __future__ import annotations

import click

from pgdl_measures.cli._options import AliasOption
from pgdl_measures.cli._options import split_ids as _split
from scoring.rules import COMPETITION_TIME_BUDGET


@click.command()
@click.argument("tasks", nargs=-1, type=click.Path(file_okay=False))
@click.option("--measure", "-m", "measures", multiple=True, metavar="NAME",
              help="A measure to compute (repeat, or separate with commas); default: the built-in measures.")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME.key=value",
              help="A parameter of a measure, e.g. agn.max_examples=500 (value read by the parameter's type).")
@click.option("--out", "-o", "out_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: results store, .predict files, report.")
@click.option("--time-budget", default=COMPETITION_TIME_BUDGET, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Time budget per model across its measures; past it, EXCEEDED.")
@click.option("--models", "models", multiple=True, metavar="IDS",
              help="Only these models, e.g. model_0,model_1 (repeat or separate with commas).")
@click.option("--retry-errors", is_flag=True, help="Compute again the results stored as errors or EXCEEDED.")
@click.option("--resamples", "--bootstrap", "n_resamples", cls=AliasOption, hidden_aliases=("--bootstrap",),
              default=1000, show_default=True, type=click.IntRange(min=0), metavar="N",
              help="Resamples of the models behind each interval and paired comparison (0: none).")
@click.option("--scheme", type=click.Choice(["halfsample", "bootstrap"]), default="halfsample", show_default=True,
              help="How models are resampled: half of them without replacement (intervals valid on a grid), "
                   "or Efron's bootstrap (duplicates models).")
@click.option("--permutations", "n_permutations", default=1000, show_default=True, type=click.IntRange(min=0),
              metavar="N", help="Permutations of the values behind each 'better than unrelated' p-value (0: none).")
@click.option("--workers", default=None, metavar="N|auto",
              help="Compute N models at a time on a local Dask cluster of N worker processes, each pinned to its "
                   "share of the cores (auto: one per GPU, else one per core); default: one model at a time "
                   "in one process. Needs the [dask] extra.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Compute on an existing Dask cluster (tcp://host:8786). Its workers read each task's files "
                   "from the same path when they can see it (a shared filesystem); otherwise the task's data "
                   "is shipped once per worker and each model's files with the model.")
@click.option("--max-tries", default=3, show_default=True, type=click.IntRange(min=1), metavar="N",
              help="On a cluster: a model whose computation kills N worker processes is recorded as failed.")
@click.option("--connect-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Seconds to reach --scheduler.")
@click.option("--quiet", "-q", "--no-progress", "no_progress", cls=AliasOption, hidden_aliases=("--no-progress",),
              is_flag=True, help="No progress bar.")
def evaluate(tasks, measures, params, out_dir, time_budget, models, retry_errors, n_resamples, scheme, n_permutations,
             workers, scheduler, max_tries, connect_timeout, no_progress):
    """Compute measures on tasks, rank them, write a report.

    Computes each measure (default: the built-in ones) on each model of each TASK (a task
    folder, a public-data root, or a folder of such; the bundled data/mini when omitted), in a
    child process with a time budget per model. Results go to OUT/results.sqlite as they are
    produced: run the same command again after an interruption and only what is missing is
    computed. Writes OUT/<measure>/<task>.predict (the competition's format), ranks the
    measures on tasks with reference data (model_configs.json) with every ranker, prints the
    ranking and writes OUT/report.md and OUT/report.html.

    With --workers or --scheduler the models are spread over a Dask cluster, one model per
    task, each worker supervising its own child process with the same budget; this process
    stays the only writer of the store, so the results are the same as one at a time, and a
    worker that dies has its model run again on another (up to --max-tries).

    \b
    Exit status:
      0    every result is a value
      1    some results are errors or EXCEEDED (counted on the last line; they are
           kept in the store, the .predict files and the report: --retry-errors
           computes them again)
      2    bad input or an unusable output folder (one line naming it)
      130  interrupted (Ctrl-C); what was computed is kept

    \b
    Examples:
      pgdl evaluate
      pgdl evaluate ../pgdl_toy_data -m vc_dimension -m distance_from_init --out results/toy
      pgdl evaluate public_data/ -m agn -p agn.max_examples=500 --time-budget 600
      pgdl evaluate --workers 2
      pgdl evaluate public_data/ --scheduler tcp://head-node:8786
    """
    from rich.console import Console
    from rich.text import Text

    from pgdl_measures.cli._progress import EvaluateProgress
    from pgdl_measures.cli._tables import ranking_table, summary_table
    from pgdl_measures.evaluate.pipeline import evaluate as run
    from pgdl_measures.evaluate.pipeline import resolve_measures
    from pgdl_measures.registry import parse_param_options
    from pgdl_measures.tasks.summary import resolve_default_task
    from scoring.ranking import MAIN_RANKER

    console = Console()
    paths = list(tasks) or [resolve_default_task(None)]
    workers = _workers(workers)
    chosen = resolve_measures(_split(measures), parse_param_options(params))
    result = run(paths, chosen, out_dir, time_budget=time_budget, models=_split(models) or None,
                 retry_errors=retry_errors, n_resamples=n_resamples, scheme=scheme, n_permutations=n_permutations,
                 progress=None if no_progress else EvaluateProgress(console), workers=workers,
                 scheduler=scheduler, max_tries=max_tries, connect_timeout=connect_timeout)
    stats = result.stats
    done = ", ".join(f"{n} {status}" for status, n in sorted(stats.computed.items())) or "nothing new"
    console.print(f"computed {stats.total_computed} results ({done}); {stats.reused} already stored",
                  markup=False, highlight=False)
    ranking = result.ranking
    if ranking.ranked_tasks:
        console.print(ranking_table(ranking, MAIN_RANKER))
        console.print(summary_table(ranking))
    else:
        console.print(result.why_nothing_ranked(), markup=False, highlight=False)
    for note in result.notes:
        console.print(Text(note, style="yellow"))
    console.print(f"results: {result.store_path}\npredictions: {len(result.predictions)} .predict files "
                  f"under {result.out_dir}\nreport: {result.report[0]} and {result.report[1]}", markup=False,
                  highlight=False, soft_wrap=True)  # paths whole on their line, as they are
    failed = result.failed_counts()
    if failed:
        shown = ", ".join(f"{n} {status}" for status, n in sorted(failed.items()))
        click.echo(f"{sum(failed.values())} results are not values ({shown}); they are kept, "
                   "--retry-errors computes them again", err=True)
        raise click.exceptions.Exit(1)


def _workers(value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise click.BadParameter(f"expected a number of workers (1 or more) or auto, got {value!r}",
                                 param_hint="--workers")
    return number
