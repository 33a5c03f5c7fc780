"""What ``pgdl meta fit`` writes: the fitted meta-measure, and its leave-one-task-out table."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from pgdl_measures.meta.fit import MetaFit
from pgdl_measures.meta.loto import META, LotoResult
from scoring.files import atomic_write, check_writable
from scoring.ranking import AVERAGE


def param_options(params: dict[str, Any], *, prefix: str = "") -> list[str]:
    """``--param`` values giving the meta-measure these parameters (``prefix``: ``meta_measure.``)."""
    return [f"{prefix}{key}={json.dumps(value)}" for key, value in params.items()]


def commands(params: dict[str, Any]) -> dict[str, str]:
    """The commands that evaluate and package the fitted meta-measure."""
    evaluate = " ".join(f"-p {shlex.quote(o)}" for o in param_options(params, prefix=f"{META}."))
    package = " ".join(f"-p {shlex.quote(o)}" for o in param_options(params))
    return {"evaluate": f"pgdl evaluate TASK --measure {META} {evaluate}",
            "package": f"pgdl package {META} {package} -o meta_measure.zip"}


def loto_markdown(loto: LotoResult) -> str:
    """The leave-one-task-out table, a section per ranker."""
    lines = ["# A meta-measure judged on tasks it never saw (leave one task out)", "",
             "Each row: fitted on every other task, scored on this one; the best single measure chosen on "
             "the same other tasks by the same ranker. Score [95% half-sample interval]; the paired "
             "difference meta - best on the same half-samples, its interval and p-value. `meta_rank` "
             "(rank features within the task) is a reading, not a measure one model can be given.", ""]
    for ranker in loto.ranking.rankers:
        better = "smaller" if ranker in loto.ranking.lower_is_better else "larger"
        scale = loto.ranking.scale(ranker)
        lines += [f"## {ranker}" + (f" (x{scale:g})" if scale != 1 else "") + f": {better} is better", "",
                  "| held-out task | meta_measure | meta_rank | best single (chosen on the others) | "
                  "meta - best | p |", "| --- | --- | --- | --- | --- | --- |"]
        for row in loto.rows(ranker):
            best = row["best_measure"] or ("mean of the chosen ones" if row["task"] == AVERAGE else "-")
            lines.append(f"| {row['task']} | {_cell(row['meta'])} | {_cell(row['meta_rank'])} | {best}: "
                         f"{_cell(row['best'])} | {_cell(row.get('meta_minus_best'))} | {_num(row.get('p'))} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_outputs(out_dir: str | os.PathLike, fit: MetaFit, loto: LotoResult | None) -> dict[str, Path]:
    """Write ``meta_measure.json`` (the fit, its parameters, the commands) and ``loto.json``/``loto.md``.

    Raises:
        PGDLError: the folder cannot be written.
    """
    out = Path(out_dir)
    check_writable(out)
    paths = {"fit": out / "meta_measure.json"}
    payload: dict[str, Any] = {"measure": META, "fit": fit.to_dict()}
    if fit.components:
        payload["params"] = fit.params()
        payload["commands"] = commands(payload["params"])
    atomic_write(paths["fit"], json.dumps(payload, indent=1))
    if loto is not None:
        paths["loto"], paths["loto_markdown"] = out / "loto.json", out / "loto.md"
        atomic_write(paths["loto"], json.dumps(loto.to_dict(), indent=1))
        atomic_write(paths["loto_markdown"], loto_markdown(loto))
    return paths


def _num(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _cell(triple) -> str:
    if not triple or triple[0] is None:
        return "-"
    value, low, high = triple
    interval = f" [{_num(low)}, {_num(high)}]" if low is not None else ""
    return f"{value:.3g}{interval}"
