"""`pgdl run-submission`: run a competition submission (a thin shell over
:mod:`pgdl_measures.competition.run`)."""

from __future__ import annotations

import click

from pgdl_measures.cli._options import split_ids
from pgdl_measures.competition.run import BUDGET_RULES, KERAS_MODES
from scoring.rules import COMPETITION_TIME_BUDGET


@click.command("run-submission")
@click.argument("submission", type=click.Path(exists=True))
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True),
              default=COMPETITION_TIME_BUDGET, show_default=True, metavar="SECONDS",
              help="Time per model (loading it and computing the measure); a model over it is "
                   "killed and recorded as EXCEEDED.")
@click.option("--budget-rule", type=click.Choice(BUDGET_RULES), default="per-model",
              show_default=True,
              help="per-model: each model gets --time-budget. per-task: the competition's rule, "
                   "the models of a task share --time-budget times their number (a slow first "
                   "model is paid for by the others); once spent, the models left are EXCEEDED.")
@click.option("--keras", type=click.Choice(KERAS_MODES), default="2", show_default=True,
              help="2: legacy Keras 2 (tf_keras, TF_USE_LEGACY_KERAS=1), where 2020 idioms work; "
                   "3: Keras 3.")
@click.option("--models", multiple=True, metavar="IDS",
              help="Only these models, e.g. model_0,model_1 or 0,1 (repeat or separate with commas).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Child processes run at once.")
@click.option("--reuse-process", is_flag=True,
              help="One child process per task and job, running its models in turn (as the "
                   "competition's single process did): TensorFlow starts once, so it is faster; "
                   "a model over budget or crashing costs a restart.  [default: one process "
                   "per model]")
@click.option("--setup-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS",
              help="Time for a child's start-up (TensorFlow, data, importing the submission) "
                   "before the model's clock starts  [default: the budget, at least 120].")
@click.option("--restart", is_flag=True,
              help="Run every selected model again and start OUTPUT_DIR's files afresh.  "
                   "[default: continue, skipping the models a .predict file already holds]")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary and errors.")
def run_submission(submission, input_dir, output_dir, time_budget, budget_rule, keras, models,
                   jobs, reuse_process, setup_timeout, restart, quiet):
    """Run SUBMISSION on the tasks under INPUT_DIR as the competition's ingestion program did.

    SUBMISSION is a folder or a zip holding complexity.py, which defines
    complexity(model, dataset) (and may take a third parameter program_dir: its own folder).
    INPUT_DIR is a task folder, a public-data root (input_data/<task>/) or a folder of tasks.
    For each task, OUTPUT_DIR/<task>.predict maps each model id to the value complexity
    returned, or to "EXCEEDED" past the time budget. Each model runs in its own process
    (--reuse-process: one per task and job) on legacy Keras 2 (tf_keras) unless --keras 3; a
    model that fails is left out of the .predict file and listed, with its error and the end
    of its stderr, in OUTPUT_DIR/<task>.errors.json, and the command exits with status 1 (a
    value that is NaN or infinite counts as a failure).

    The files are rewritten as each model finishes, so an interrupted run keeps what it did;
    run the command again to continue (models already in a .predict file are skipped; a
    .predict file of another submission or Keras mode is refused, see OUTPUT_DIR/<task>.run.json;
    a value computed on other model files or data, e.g. another task of the same name, is run
    again) or pass --restart. One run at a time writes OUTPUT_DIR: a second one waits for the
    first, then continues. Whatever a model's process started, even in a new session, is
    killed with it.

    Example: pgdl run-submission sample_submission ~/pgdl_data/public out --models 0,1
    """
    from pgdl_measures.competition.run import run_submission as run

    def report(task, outcome):
        if outcome.status == "error":
            click.echo(f"{task}/{outcome.model_id}: ERROR at {outcome.stage}: {outcome.error}",
                       err=True)
            if "Traceback (most recent call last)" in outcome.stderr_tail:  # not a file's fault
                for line in outcome.traceback.strip().splitlines()[-20:]:
                    click.echo(f"    {line}", err=True)
        elif not quiet:
            value = outcome.value if outcome.status == "exceeded" else f"{outcome.value:.6g}"
            seconds = ("not run: the task's time was spent" if outcome.seconds is None
                       else f"{outcome.seconds:.1f} s")
            click.echo(f"{task}/{outcome.model_id}: {value}  ({seconds})")

    ids = split_ids(models) or None
    result = run(submission, input_dir, output_dir, time_budget=time_budget, keras=keras,
                 models=ids, jobs=jobs, reuse_process=reuse_process,
                 setup_timeout=setup_timeout, budget_rule=budget_rule, restart=restart,
                 on_outcome=report, on_wait=lambda folder: click.echo(
                     f"another run-submission is writing {folder}; waiting for it to finish, "
                     "then continuing what it wrote", err=True))
    for task in result.tasks:
        counts = {s: sum(o.status == s for o in task.outcomes.values())
                  for s in ("ok", "exceeded", "error")}
        line = (f"{task.predict_path}: {counts['ok']} values, {counts['exceeded']} EXCEEDED, "
                f"{counts['error']} errors")
        if task.skipped:
            line += f", {len(task.skipped)} kept from an earlier run"
        if task.other_contents:
            line += (f", {len(task.other_contents)} earlier values dropped (computed on other "
                     "contents of a task with this name)")
        if task.errors_path:
            line += f" (see {task.errors_path})"
        click.echo(line)
    if result.failed:
        total = sum(len(t.outcomes) for t in result.tasks)
        raise click.ClickException(f"{result.failed} of {total} models failed (listed in the "
                                   f"errors files above); the .predict files hold the others")
