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
def score(reference_dir, prediction_dir, as_json):
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
    if as_json:
        payload = {"scale": 100,
                   "tasks": {name: _finite_or_none(None if value is None else 100 * value)
                             for name, value in result.tasks.items()},
                   "average": _finite_or_none(result.average)}
        click.echo(json.dumps(payload, indent=2))
        return
    for name, value in result.tasks.items():
        if value is not None:
            click.echo(f"task_{name}_score: {value:0.12f}")
    click.echo(f"task_average_score: {result.average:0.12f}")
