"""`pgdl package`: package a measure as a competition submission zip (a thin shell over
:mod:`pgdl_measures.competition.package`)."""

from __future__ import annotations

import click

from pgdl_measures.cli._options import AliasOption


@click.command("package")
@click.argument("measure")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter of the measure, frozen into the submission (repeat for several); "
                   "the value is read by the parameter's type (true/false, an integer, a number, "
                   "text, a JSON list).")
@click.option("--out", "-o", "--output", "output", cls=AliasOption, hidden_aliases=("--output",),
              type=click.Path(dir_okay=False), default=None,
              help="The zip to write, replaced atomically.  [default: MEASURE_submission.zip]")
def package(measure, params, output):
    """Package MEASURE as a competition submission zip.

    MEASURE is any registered measure, built-in or plugin (see `pgdl measures list`). The zip
    holds complexity.py and metadata at its top level, as the competition required, and the
    toolkit code the measure needs (plus a plugin's own module or package) vendored beside
    them, so it runs where only TensorFlow is installed. complexity(model, dataset) rebuilds
    the competition's model in Keras 3 and, under `pgdl run-submission`, gives the value
    `pgdl evaluate` gives for the same measure and parameters (both read the training shards
    in natural sorted order). Under the organisers' unchanged ingestion program the shards
    come in unsorted `glob` order, so a measure that depends on the order of the data (one
    that reads only the first batches, e.g. jacobian_norm: 1% on the official sample) can give
    a different value there. Try it with `pgdl run-submission`.

    \b
    Examples:
      pgdl package agn
      pgdl package agn --param max_examples=500 --out agn500.zip
      pgdl run-submission agn_submission.zip ../pgdl_toy_data out
    """
    from pgdl_measures.competition.package import package_submission
    from pgdl_measures.registry import parse_param_options

    result = package_submission(measure, parse_param_options(params, measure=measure), output)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    settings = ", ".join(f"{k}={v!r}" for k, v in result.params.items()) or "default parameters"
    vendored = f"{len(result.modules)} toolkit modules"
    if result.plugin:
        vendored += f" and the plugin {result.plugin!r}"
    click.echo(f"{result.path}: {measure} ({settings}); {vendored} vendored, "
               f"{result.path.stat().st_size / 1024:.0f} KiB")
