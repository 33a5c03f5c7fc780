"""`pgdl zoo SPEC.json OUT_DIR`: train a hyper-parameter grid and write a PGDL task."""

from __future__ import annotations

import json

import click


def _progress_bar(console):
    """A :class:`pgdl_measures.zoo.ZooProgress` drawn as a rich bar of models done, with elapsed
    time and time left (on `console`)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from pgdl_measures.zoo import ZooProgress

    class ZooProgressBar(ZooProgress):
        def __init__(self):
            self.progress = Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("models"), TimeElapsedColumn(),
                                     TextColumn("left"), TimeRemainingColumn(), console=console)
            self.task_id = None

        def __enter__(self):
            self.progress.start()
            return self

        def __exit__(self, *exc):
            self.progress.stop()

        def start(self, total: int, finished: int) -> None:
            # completed= at creation records no speed sample: the estimate counts only this run.
            self.task_id = self.progress.add_task("training", total=total, completed=finished)

        def model_done(self, model_id, record, model) -> None:
            metrics = record["metrics"]
            self.progress.update(self.task_id, advance=1, description=(
                f"model_{model_id}: train {metrics['train_acc']:.3f} test {metrics['test_acc']:.3f}"))

    return ZooProgressBar()


def _hparams_epilog() -> str:
    from pgdl_measures.training.families import FAMILIES
    from pgdl_measures.zoo.train import TRAINING_HPARAMS

    lines = ["\b", "Hyper-parameters (grid or fixed; default in brackets):"]
    seen = set()
    for family in FAMILIES.values():
        for h in family.hparams + TRAINING_HPARAMS:
            if h.name not in seen:
                seen.add(h.name)
                only = [f.name for f in FAMILIES.values() if h.name in {x.name for x in f.hparams}]
                scope = "" if h in TRAINING_HPARAMS or len(only) == len(FAMILIES) else f" ({', '.join(only)})"
                lines.append(f"  {h.name} [{json.dumps(h.default)}]{scope}: {h.doc}")
    import inspect

    from pgdl_measures.training.datasets import DATASETS

    lines += ["", "\b", "Datasets and their options (plus num_shards, TFRecord files per split [1]):"]
    for name, loader in DATASETS.items():
        options = ", ".join(p for p in inspect.signature(loader).parameters)
        lines.append(f"  {name}: {options}")
    return "\n".join(lines)


@click.command("zoo", epilog=_hparams_epilog())
@click.argument("spec", type=click.Path(dir_okay=False, path_type=str))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def zoo(spec, out_dir, quiet):
    """Train every model of SPEC's hyper-parameter grid and write a PGDL task to OUT_DIR.

    SPEC is a JSON file naming the dataset (digits or an .npz file), the architecture family
    (vgg, nin, allconv, mlp) and the grid, e.g.

    \b
      {"task": "digits_vgg", "dataset": {"name": "digits", "train_size": 300},
       "architecture": "vgg",
       "grid": {"depth": [1, 2], "width": [8, 32], "batch_size": [16, 64]},
       "fixed": {"epochs": 40, "learning_rate": 0.05}}

    The task is written in the competition's public-data layout: OUT_DIR/input_data/<task>/
    (model_<k>/ and dataset_1/) and OUT_DIR/reference_data/<task>/model_configs.json.
    Rerunning the command skips the models already finished.
    """
    import numpy as np
    from rich.console import Console

    from pgdl_measures.zoo import generate_task, load_spec

    parsed = load_spec(spec)
    err = Console(stderr=True)
    if quiet:
        report = generate_task(parsed, out_dir)
    else:
        with _progress_bar(err) as progress:
            report = generate_task(parsed, out_dir, progress=progress)
    gaps = np.array([r["metrics"]["train_acc"] - r["metrics"]["test_acc"] for r in report.records.values()])
    click.echo(f"task {parsed.task}: {len(report.records)} models in {report.task_dir} "
               f"({len(report.trained)} trained, {len(report.skipped)} already done) "
               f"in {report.seconds:.0f} s")
    if len(gaps):
        click.echo(f"generalization gap (train_acc - test_acc): mean {gaps.mean():.4f}, "
                   f"std {gaps.std():.4f}, min {gaps.min():.4f}, max {gaps.max():.4f}")
    diverged = [f"model_{m}" for m, r in report.records.items() if r.get("history", {}).get("finite_weights") is False]
    if diverged:
        click.echo(f"warning: {len(diverged)} models diverged (non-finite weights): {', '.join(diverged)}; they are "
                   "kept (the grid must be complete) and measures that read their weights give an error on them")
    click.echo(f"reference: {report.model_configs}")
