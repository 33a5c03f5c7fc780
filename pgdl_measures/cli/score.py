"""`pgdl score`: the competition's scoring program as a command."""

from __future__ import annotations

import math

import click


def _finite_or_none(value):
    return value if value is not None and math.isfinite(value) else None


@click.command()
@click.argument("reference_dir", type=click.Path(file_okay=False))
@click.argument("prediction_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help='Print {"scale": 100, "tasks": {task: score}, "average": x} as JSON on stdout, '
                   'every score x100 (the competition\'s scale, as pgdl evaluate shows it).')
@click.option("--rankers", "with_rankers", is_flag=True,
              help="Also rank the predictions with every ranker (Jiang et al.'s CMI, Kendall's tau, granulated "
                   "Kendall, Dziugaite et al.'s robust sign-error) with 95% half-sample intervals and "
                   "permutation p-values.")
@click.option("--resamples", "n_resamples", default=1000, show_default=True, type=click.IntRange(min=0),
              metavar="N", help="With --rankers: half-samples of the models behind each interval.")
@click.option("--permutations", "n_permutations", default=1000, show_default=True, type=click.IntRange(min=0),
              metavar="N", help="With --rankers: permutations behind each p-value.")
def score(reference_dir, prediction_dir, as_json, with_rankers, n_resamples, n_permutations):
    """Score .predict files against reference data with the competition's CMI.

    For every <task>/model_configs.json under REFERENCE_DIR (searched recursively;
    REFERENCE_DIR may itself hold one), read <task>.predict from PREDICTION_DIR (a JSON object
    model id -> float, or "EXCEEDED") and compute the competition's conditional mutual
    information. Prints each task's score (a fraction) and 100 x their mean, exactly as the
    competition's scores.txt did:

    \b
        task_<task>_score: 0.123456789012
        task_average_score: 12.345678901234

    With --json every score is on the competition's scale (x100, labelled "scale": 100), the
    scale of `pgdl evaluate`'s tables and report. Any "EXCEEDED" value makes the average 0.
    Invalid files stop with exit status 2 and a message naming the file; quirks of the
    competition's score that changed a result are reported as warnings on stderr.

    With --rankers, the predictions are also ranked by every ranker of `pgdl evaluate` (per
    task: score [95% interval] and the permutation p-value of "no better than a measure unrelated
    to the gap"; then the average over tasks with its interval); in --json under "rankers".
    """
    import json
    import warnings

    from scoring.submission import score_submission

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = score_submission(reference_dir, prediction_dir)
    for item in caught:
        click.echo(f"Warning: {item.message}", err=True)
    for name in result.exceeded:
        click.echo(f'Note: {name}.predict holds "EXCEEDED" (time budget exceeded): the '
                   "competition scored the whole submission 0", err=True)
    ranking = _rank(result, n_resamples, n_permutations) if with_rankers else None
    if as_json:
        payload = {"scale": 100,
                   "tasks": {name: _finite_or_none(None if value is None else 100 * value)
                             for name, value in result.tasks.items()},
                   "average": _finite_or_none(result.average)}
        if ranking is not None:
            payload["rankers"] = ranking.to_dict()["rankers"]
        click.echo(json.dumps(payload, indent=2))
        return
    for name, value in result.tasks.items():
        if value is not None:
            click.echo(f"task_{name}_score: {value:0.12f}")
    click.echo(f"task_average_score: {result.average:0.12f}")
    if ranking is not None:
        from scoring.tables import ranker_rows, tests_legend

        header, rows = ranker_rows(ranking, _MEASURE)
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        click.echo("")
        for row in [header] + rows:
            click.echo("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        click.echo(tests_legend(ranking, with_grp=False))


_MEASURE = "prediction"


def _rank(result, n_resamples, n_permutations):
    """Every ranker's scores of the predictions `score_submission` read (tasks whose prediction holds
    EXCEEDED left out)."""
    import warnings

    from scoring.ranking import TaskValues, rank_measures

    tasks = [TaskValues(name, specs, {_MEASURE: {k: float(v) for k, v in prediction.items()}}, len(specs))
             for name, (specs, prediction) in result.inputs.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rank_measures(tasks, {_MEASURE: 1}, n_resamples=n_resamples, n_permutations=n_permutations)
