"""`pgdl meta fit`: learn a combination of measures from tasks with reference data."""

from __future__ import annotations

import click

from pgdl_measures.cli._options import AliasOption


@click.group()
def meta():
    """Meta-measures: combinations of measures fitted on a benchmark of tasks."""


@meta.command("fit")
@click.argument("reference_dir", type=click.Path(file_okay=False))
@click.argument("prediction_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "-o", "--output", "out", default="results/meta", show_default=True, cls=AliasOption,
              hidden_aliases=("--output",), type=click.Path(file_okay=False), help="Output folder.")
@click.option("--measure", "measures", multiple=True, metavar="NAME",
              help="A candidate component (repeatable; default: every measure with values on the models of "
                   "every task).")
@click.option("--loto/--no-loto", default=True, show_default=True,
              help="Also judge the fit leave-one-task-out against the best single measure (needs 2+ tasks).")
@click.option("--resamples", "n_resamples", default=1000, show_default=True, type=click.IntRange(min=0),
              metavar="N", help="Half-samples of the models behind each interval of the leave-one-task-out table.")
@click.option("--permutations", "n_permutations", default=1000, show_default=True, type=click.IntRange(min=0),
              metavar="N", help="Permutations behind each p-value of that table.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the paths written.")
def fit(reference_dir, prediction_dirs, out, measures, loto, n_resamples, n_permutations, quiet):
    """Fit a meta-measure on the tasks under REFERENCE_DIR from the .predict files of PREDICTION_DIRS.

    REFERENCE_DIR holds tasks' reference data (<task>/model_configs.json, searched recursively,
    as `pgdl score` finds them, e.g. data/); each PREDICTION_DIR is a folder as `pgdl evaluate`
    writes, <measure>/<task>.predict. The fit is a pairwise ranking model (L1-regularised logistic
    regression on the differences of signed-log measure values between two models of one task,
    its strength chosen by leave-one-task-out cross-validation inside the training tasks).

    Writes OUT/meta_measure.json: the weights, and the --param values that make the built-in
    measure `meta_measure` this fit in `pgdl evaluate` and `pgdl package` (printed below). With
    --loto (2+ tasks): OUT/loto.md and loto.json, each task scored by every ranker by a fit on the
    others, beside the best single measure chosen on the same others.
    """
    from pgdl_measures.meta.benchmark import read_benchmark
    from pgdl_measures.meta.fit import fit_meta
    from pgdl_measures.meta.loto import leave_one_task_out
    from pgdl_measures.meta.report import commands, write_outputs

    tasks = read_benchmark(reference_dir, prediction_dirs, measures=list(measures) or None)
    fitted = fit_meta(tasks, measures=list(measures) or None)
    result = None
    if loto and len(tasks) >= 2:
        result = leave_one_task_out(tasks, n_resamples=n_resamples, n_permutations=n_permutations)
    elif loto and not quiet:
        click.echo(f"one task ({tasks[0].name}): no leave-one-task-out table", err=True)
    paths = write_outputs(out, fitted, result)
    if not quiet:
        names = ", ".join(t.name for t in tasks)
        click.echo(f"fitted on {len(tasks)} tasks ({names}); C = {fitted.c:g}")
        if fitted.components:
            for name in fitted.components:
                click.echo(f"  {name}: weight {fitted.weights[fitted.measures.index(name)]:+.4g}")
            for label, line in commands(fitted.params()).items():
                click.echo(f"{label}: {line}")
        else:
            click.echo("the fit kept no component (every weight is 0)")
        if result is not None:
            for row in result.rows("kendall_tau"):
                meta_value, best_value = row["meta"][0], row["best"][0]
                click.echo(f"  held out {row['task']}: kendall tau meta {_num(meta_value)}, best single "
                           f"({row['best_measure'] or 'chosen per task'}) {_num(best_value)}")
    for path in paths.values():
        click.echo(f"wrote {path}")


def _num(value):
    return "-" if value is None else f"{value:.3f}"
