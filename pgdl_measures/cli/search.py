"""`pgdl search run SPEC --out DIR` and `pgdl search report DIR`: hyper-parameter search with
AGN objectives (CMA-ES, PSO, BOHB, random search) on Optuna, run on a Dask cluster."""

from __future__ import annotations

import click

from pgdl_measures.cli._options import AliasOption


@click.group()
def search():
    """Hyper-parameter search with AGN objectives (An et al.), on a Dask cluster."""


@search.command("run")
@click.argument("spec")
@click.option("--out", "-o", "--output", "out", required=True, cls=AliasOption, hidden_aliases=("--output",),
              type=click.Path(file_okay=False), help="Output folder (the study, plans, trials, final runs).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="An existing Dask scheduler (tcp://host:8786); default: a local cluster, one worker per GPU.")
@click.option("--storage", default=None, metavar="URL",
              help="An Optuna storage URL; default: the one OUT recorded (storage.json), else "
                   "sqlite:///OUT/study.db.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: one per GPU, else 1).")
@click.option("--connect-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to reach --scheduler.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def run(spec, out, scheduler, storage, workers, connect_timeout, quiet):
    """Search SPEC (a JSON file or a preset: ci, paper, study-cpu) into OUT; started again with the same
    command, a killed search continues where it stopped. Then writes the report."""
    from pgdl_measures.search.driver import run_search
    from pgdl_measures.search.report import write_report
    from pgdl_measures.search.spec import load_spec

    loaded = load_spec(spec)

    def progress(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    run_search(loaded, out, scheduler=scheduler, storage=storage, workers=workers, progress=progress,
               connect_timeout=connect_timeout)
    paths = write_report(out, storage=storage)
    click.echo(f"report: {paths['markdown']}")


@search.command("report")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--storage", default=None, metavar="URL",
              help="The Optuna storage URL the search used; default: the one OUT recorded.")
def report(out, storage):
    """Write OUT/report.md, report.json and report.png: method x objective x alpha, test accuracy
    mean +- std of the final trainings, best-so-far per round."""
    from pgdl_measures.search.report import write_report

    paths = write_report(out, storage=storage)
    click.echo(open(paths["markdown"]).read())
