"""`pgdl experiment NAME --preset ci|paper|study-cpu|smoke --out DIR`: the study's measurement experiments."""

from __future__ import annotations

import sys

import click


@click.command("experiment")
@click.argument("name", metavar="NAME")
@click.option("--preset", default="ci", show_default=True, metavar="ci|paper|study-cpu|smoke",
              help="ci: offline MNIST digits on a CPU in minutes; paper: the study's settings (needs the "
                   "datasets and a GPU); study-cpu: the study's protocol (epochs, model counts, search "
                   "space, GN at every iteration) on the offline MNIST digits, hours on a CPU; smoke: "
                   "seconds, for tests.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: NAME.json, NAME.png and NAME/runs/ (a rerun resumes).")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Folder of local dataset files (default: Keras's cache, ~/.keras/datasets).")
@click.option("--quiet", "-q", is_flag=True, help="No line per trained model.")
@click.option("--finished-only", is_flag=True,
              help="Train nothing: write NAME.json and NAME.png over the runs finished so far (gn-vs-agn, "
                   "fit-regimes); the JSON's unfinished_runs counts the others.")
def experiment(name, preset, out_dir, data_dir, quiet, finished_only):
    """Run one of the study's measurement experiments and write its JSON and figure.

    \b
    gn-vs-agn    Figure 1: Pearson r of GN (Eq. 4) with AGN (Eq. 5), and of each with the gap.
    timing       Figure 2: seconds per epoch with validation only, exact AGN, online AGN, GN.
    fit-regimes  Figure 3: AGN against the gap in the upper and lower half by training accuracy.

    An et al., "Can we use gradient norm as a measure of generalization error for model selection
    in practice?" (ICLR 2021 submission). See pgdl_measures.training.experiments.
    """
    import json

    from pgdl_measures.training.experiments import run_experiment

    result = run_experiment(name, preset, out_dir, data_dir=data_dir, progress=None if quiet else sys.stderr,
                            finished_only=finished_only)
    summary = {k: result[k] for k in ("per_model", "halves", "all") if k in result}
    click.echo(json.dumps(summary, indent=1))
    click.echo(f"wrote {out_dir}/{name}.json and {out_dir}/{name}.png ({result['seconds']} s)", err=True)
