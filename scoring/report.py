"""Ranking of measures across tasks, and the report of `pgdl evaluate`.

:func:`rank_measures` scores every measure on every task with every ranker of
:data:`scoring.rankers.RANKERS` (with seeded bootstrap confidence intervals) and keeps each
ranker's breakdown (the value of each conditioning set, and the set that gave the minimum).
:func:`write_report` writes ``report.md`` (plots as PNG files beside it) and a self-contained
``report.html`` (plots embedded as base64 PNG): the ranking tables with confidence intervals,
per task a scatter plot of each measure against the generalization gap, and the per
hyper-parameter breakdown. :func:`rich_ranking_table` and :func:`rich_summary_table` render the
tables for a terminal.

Measures are oriented before ranking: a measure whose ``direction`` is -1 (a larger value
predicts a *smaller* gap) is ranked by ``-value``, so that for every ranker larger is better.

Importing this module is cheap; matplotlib and rich are imported by the functions that draw.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import PGDLError
from scoring.files import atomic_write
from scoring.predictions import generalization_gap, normalize_model_id
from scoring.rankers import RANKERS, Ranker, bootstrap_ci_grid, prepare_values

#: The ranker shown first (and alone in the per-task console table).
MAIN_RANKER = "competition_cmi"


@dataclass
class TaskValues:
    """What is ranked on one task.

    Attributes:
        name: the task's name.
        model_specs: the task's ``model_configs.json`` mapping, or None when the task has no
            reference data (then it is not ranked).
        values: measure -> model id -> value (finite, as the measure computed it; models
            without a value are left out).
        n_models: how many models of the task were evaluated (a measure with fewer values is
            marked as ranked on part of the models).
    """

    name: str
    model_specs: Mapping[str, Any] | None
    values: dict[str, dict[str, float]]
    n_models: int = 0

    def gaps(self) -> dict[str, float]:
        """Model id (normalized) -> generalization gap, from the reference data."""
        if not self.model_specs:
            return {}
        return {normalize_model_id(mid): float(generalization_gap(spec["metrics"]))
                for mid, spec in self.model_specs.items()}


@dataclass(frozen=True)
class Score:
    """One ranker's score of one measure on one task, with its bootstrap interval."""

    value: float
    low: float
    high: float
    n_models: int
    n_total: int

    @property
    def partial(self) -> bool:
        return self.n_models < self.n_total

    def to_dict(self) -> dict[str, Any]:
        return {"value": _json_float(self.value), "ci": [_json_float(self.low), _json_float(self.high)],
                "models": self.n_models, "models_evaluated": self.n_total}


@dataclass
class Ranking:
    """Scores of measures on tasks by every ranker (see :func:`rank_measures`).

    Attributes:
        rankers: ranker name -> its one-line description.
        measures: the measures, in the order given.
        directions: measure -> +1 or -1 (see the module docstring).
        tasks: what was ranked, per task.
        scores: ranker -> measure -> task -> :class:`Score` (absent: not ranked).
        breakdowns: ranker -> task -> measure -> conditioning set -> value.
        selected: ranker -> task -> measure -> the set behind the score (or None).
        confidence: the coverage of the intervals.
        n_resamples: the number of bootstrap resamples.
        notes: why a measure or task was not ranked, and warnings of the scores.
    """

    rankers: dict[str, str]
    measures: list[str]
    directions: dict[str, int]
    tasks: list[TaskValues]
    scores: dict[str, dict[str, dict[str, Score]]] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, dict[str, dict[tuple, float]]]] = field(default_factory=dict)
    selected: dict[str, dict[str, dict[str, tuple | None]]] = field(default_factory=dict)
    confidence: float = 0.95
    n_resamples: int = 1000
    notes: list[str] = field(default_factory=list)

    @property
    def ranked_tasks(self) -> list[str]:
        """The tasks with at least one score."""
        names = {t for by_measure in self.scores.values() for by_task in by_measure.values() for t in by_task}
        return [t.name for t in self.tasks if t.name in names]

    def average(self, ranker: str, measure: str) -> float:
        """The mean of the measure's finite scores over tasks (NaN when there is none)."""
        found = [s.value for s in self.scores.get(ranker, {}).get(measure, {}).values() if math.isfinite(s.value)]
        return float(np.mean(found)) if found else math.nan

    def ordered_measures(self, ranker: str = MAIN_RANKER) -> list[str]:
        """The measures by decreasing average score of `ranker` (unscored ones last)."""
        def key(item):
            index, name = item
            avg = self.average(ranker, name)
            return (math.isnan(avg), -avg if not math.isnan(avg) else 0.0, index)
        return [name for _, name in sorted(enumerate(self.measures), key=key)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view: scores with intervals, averages, breakdowns."""
        out: dict[str, Any] = {"confidence": self.confidence, "n_resamples": self.n_resamples,
                               "directions": self.directions, "tasks": [t.name for t in self.tasks],
                               "rankers": {}, "notes": self.notes}
        for ranker, description in self.rankers.items():
            out["rankers"][ranker] = {
                "description": description,
                "scores": {m: {t: s.to_dict() for t, s in by_task.items()}
                           for m, by_task in self.scores.get(ranker, {}).items()},
                "average": {m: _json_float(self.average(ranker, m)) for m in self.measures},
                "breakdown": {t: {m: {_set_name(k): _json_float(v) for k, v in sets.items()}
                                  for m, sets in by_measure.items()}
                              for t, by_measure in self.breakdowns.get(ranker, {}).items()},
                "selected": {t: {m: None if k is None else _set_name(k) for m, k in by_measure.items()}
                             for t, by_measure in self.selected.get(ranker, {}).items()},
            }
        return out


def _json_float(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _set_name(key: Any) -> str:
    if isinstance(key, tuple):
        return " | ".join(map(str, key)) if key else "(none)"
    return str(key)


def rank_measures(tasks: Sequence[TaskValues], directions: Mapping[str, int], *,
                  rankers: Mapping[str, Ranker] | None = None, n_resamples: int = 1000,
                  confidence: float = 0.95, seed: int = 0) -> Ranking:
    """Score every measure on every task with every ranker, with bootstrap intervals.

    For task t, measure m and ranker r: ``r(direction_m * values, model_specs_t)`` over the
    models that have a value, and the percentile bootstrap interval of
    :func:`scoring.rankers.bootstrap_ci` (seed `seed`, the same for every cell, so results
    repeat exactly). Tasks without reference data are not ranked (a note says so); a
    :class:`scoring.cmi.CMIWarning` or a :class:`PGDLError` of a score becomes a note.

    Args:
        tasks: the values per task.
        directions: measure -> +1 or -1; the measures ranked, in this order.
        rankers: name -> ranker (all of :data:`scoring.rankers.RANKERS` by default).
        n_resamples: bootstrap resamples per score (0: no interval).
        confidence: coverage of the intervals.
        seed: seed of the bootstrap.

    Returns:
        A :class:`Ranking`.
    """
    rankers = dict(RANKERS if rankers is None else rankers)
    ranking = Ranking(rankers={name: r.description for name, r in rankers.items()},
                      measures=list(directions), directions=dict(directions), tasks=list(tasks),
                      confidence=confidence, n_resamples=n_resamples)
    for task in tasks:
        if not task.model_specs:
            ranking.notes.append(f"{task.name}: no reference data (model_configs.json), so no ranking")
            continue
        for measure, sign in directions.items():
            values = task.values.get(measure) or {}
            if not values:
                continue
            oriented = {mid: sign * v for mid, v in values.items()}
            try:
                array, grid = prepare_values(oriented, task.model_specs)
            except PGDLError as exc:
                ranking.notes.append(f"{task.name}, {measure}: not ranked: {exc}")
                continue
            for name, ranker in rankers.items():
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        value = ranker.score_grid(array, grid)
                        breakdown = ranker.breakdown_grid(array, grid)
                        low, high = (bootstrap_ci_grid(ranker, array, grid, n_resamples=n_resamples,
                                                       confidence=confidence, seed=seed)
                                     if n_resamples > 0 else (math.nan, math.nan))
                    except PGDLError as exc:
                        ranking.notes.append(f"{task.name}, {measure}, {name}: not ranked: {exc}")
                        continue
                for item in caught:
                    note = f"{task.name}, {measure}, {name}: {item.message}"
                    if note not in ranking.notes:
                        ranking.notes.append(note)
                ranking.scores.setdefault(name, {}).setdefault(measure, {})[task.name] = Score(
                    float(value), low, high, len(array), max(task.n_models, len(array)))
                if breakdown:
                    ranking.breakdowns.setdefault(name, {}).setdefault(task.name, {})[measure] = breakdown
                    ranking.selected.setdefault(name, {}).setdefault(task.name, {})[measure] = \
                        ranker.selected_set(breakdown)
    return ranking


# ----------------------------------------------------------------------------- formatting


def format_score(score: Score | None, *, with_ci: bool = True) -> str:
    """``0.222 [0.130, 0.556]`` (``*`` when ranked on part of the models), ``-`` when absent."""
    if score is None:
        return "-"
    text = _num(score.value)
    if with_ci and math.isfinite(score.low):
        text += f" [{_num(score.low)}, {_num(score.high)}]"
    return text + ("*" if score.partial else "")


def _num(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    return f"{value:.3f}"


def ranking_rows(ranking: Ranking, ranker: str, *, with_ci: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the measure x task table of one ranker (plus the average column)."""
    tasks = ranking.ranked_tasks
    header = ["measure"] + tasks + ["average"]
    rows = []
    for measure in ranking.ordered_measures(ranker):
        by_task = ranking.scores.get(ranker, {}).get(measure, {})
        rows.append([measure] + [format_score(by_task.get(t), with_ci=with_ci) for t in tasks]
                    + [_num(ranking.average(ranker, measure)) if by_task else "-"])
    return header, rows


def summary_rows(ranking: Ranking) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the measure x ranker table of averages over tasks."""
    header = ["measure"] + list(ranking.rankers)
    rows = []
    for measure in ranking.ordered_measures():
        rows.append([measure] + [_num(ranking.average(r, measure)) if ranking.scores.get(r, {}).get(measure)
                                 else "-" for r in ranking.rankers])
    return header, rows


def selected_rows(ranking: Ranking, ranker: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (measure x task) of the conditioning set behind each score of `ranker`."""
    by_task = ranking.selected.get(ranker, {})
    tasks = [t for t in ranking.ranked_tasks if t in by_task]
    rows = []
    for measure in ranking.ordered_measures(ranker):
        cells = [by_task[t].get(measure, "-") if measure in by_task[t] else "-" for t in tasks]
        if any(c != "-" for c in cells):
            rows.append([measure] + ["none (all NaN)" if c is None else c if c == "-" else _set_name(c)
                                     for c in cells])
    return ["measure"] + tasks, rows


def breakdown_rows(ranking: Ranking, ranker: str, task: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (measure x conditioning set) of one ranker's breakdown on one task.

    The set behind the score is marked ``<value> <``.
    """
    by_measure = ranking.breakdowns.get(ranker, {}).get(task, {})
    sets: list = []
    for breakdown in by_measure.values():
        for key in breakdown:
            if key not in sets:
                sets.append(key)
    header = ["measure"] + [_set_name(k) for k in sets]
    rows = []
    for measure in ranking.measures:
        if measure not in by_measure:
            continue
        chosen = ranking.selected.get(ranker, {}).get(task, {}).get(measure)
        row = [measure]
        for key in sets:
            value = by_measure[measure].get(key)
            cell = "-" if value is None else _num(value)
            row.append(cell + (" <" if key == chosen and chosen is not None else ""))
        rows.append(row)
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(text):
        return str(text).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td>{html.escape(str(c))}</td>" if i else f"<th scope=row>{html.escape(str(c))}</th>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def rich_ranking_table(ranking: Ranking, ranker: str = MAIN_RANKER, *, with_ci: bool = True):
    """A rich Table: measure x task (and average) scores of one ranker, with intervals."""
    from rich.table import Table
    from rich.text import Text

    header, rows = ranking_rows(ranking, ranker, with_ci=with_ci)
    table = Table(title=f"{ranker}: score per task [{ranking.confidence:.0%} bootstrap CI]")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def rich_summary_table(ranking: Ranking):
    """A rich Table: the average over tasks of every ranker, per measure."""
    from rich.table import Table
    from rich.text import Text

    header, rows = summary_rows(ranking)
    table = Table(title="average over tasks, by ranker")
    for i, h in enumerate(header):
        if i == 0:
            table.add_column(h, justify="left", no_wrap=True)
        else:  # let long ranker names wrap at their underscores
            table.add_column(h.replace("_", " "), justify="right", min_width=6)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


# ----------------------------------------------------------------------------- plots


def scatter_png(task: TaskValues, directions: Mapping[str, int], *, dpi: int = 90) -> bytes | None:
    """PNG of one scatter plot per measure: its value (x) against the gap (y) on one task.

    Returns None when the task has no reference data or no measure has a value. The x axis is
    logarithmic when every value is positive and they span more than three decades.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gaps = task.gaps()
    panels = []
    for measure in directions:
        values = task.values.get(measure) or {}
        pairs = [(v, gaps[normalize_model_id(m)]) for m, v in values.items() if normalize_model_id(m) in gaps]
        if pairs:
            panels.append((measure, np.array(pairs, dtype=float)))
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    for index, (measure, xy) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, index + 1)
        ax.scatter(xy[:, 0], xy[:, 1], s=18, alpha=0.75, edgecolors="none")
        x = xy[:, 0]
        if (x > 0).all() and x.max() / x.min() > 1e3:
            ax.set_xscale("log")
        sign = directions[measure]
        ax.set_title(f"{measure}" + (" (direction -1)" if sign < 0 else ""), fontsize=10)
        ax.set_xlabel("measure value", fontsize=9)
        ax.set_ylabel("generalization gap", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    shown = {normalize_model_id(m) for values in task.values.values() for m in values} & set(gaps)
    fig.suptitle(f"{task.name}: measure vs. generalization gap ({len(shown)} models)", fontsize=11)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the report


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;font-variant-numeric:tabular-nums}
th[scope=row],thead th:first-child{text-align:left}
thead th{background:#f2f2f2}
img{max-width:100%}
code{background:#f4f4f4;padding:0 .2em}
.note{color:#555;font-size:.92em}
"""


def _sections(ranking: Ranking, meta: Mapping[str, Any], status: tuple[list[str], list[list[str]]] | None,
              notes: Sequence[str], plots: Mapping[str, bytes]) -> list[tuple]:
    """The report as a list of blocks: ("h", level, text), ("p", text), ("table", header, rows),
    ("list", items), ("img", task, png bytes)."""
    blocks: list[tuple] = [("h", 1, meta.get("title", "PGDL evaluation"))]
    blocks.append(("table", ["", ""], [[str(k), str(v)] for k, v in meta.items() if k != "title"]))
    if ranking.ranked_tasks:
        blocks.append(("h", 2, "Ranking"))
        blocks.append(("p", f"Scores per task with {ranking.confidence:.0%} percentile bootstrap intervals "
                            f"over models ({ranking.n_resamples} resamples, seed 0); larger is better for every "
                            "ranker. Measures with direction -1 are ranked by their negation. "
                            "`*`: ranked on part of the task's models (the others failed or exceeded "
                            "the time budget)."))
        blocks.append(("h", 3, "Average over tasks, by ranker"))
        blocks.append(("table",) + summary_rows(ranking))
        for ranker, description in ranking.rankers.items():
            blocks.append(("h", 3, ranker))
            blocks.append(("p", description))
            blocks.append(("table",) + ranking_rows(ranking, ranker))
            header, rows = selected_rows(ranking, ranker)
            informative = any(k for by_m in ranking.selected.get(ranker, {}).values() for k in by_m.values())
            if rows and informative and ranker != "granulated_kendall":
                blocks.append(("p", "The conditioning set that gave the minimum, per task:"))
                blocks.append(("table", header, rows))
    else:
        blocks.append(("h", 2, "Ranking"))
        blocks.append(("p", "No task with reference data (model_configs.json) and measure values: nothing to rank."))
    if status is not None:
        blocks.append(("h", 2, "Results"))
        blocks.append(("p", "Models per measure and task: computed (ok), failed (error), over the time budget "
                            "(exceeded)."))
        blocks.append(("table",) + status)
    for task in ranking.tasks:
        if task.name not in plots and task.name not in ranking.ranked_tasks:
            continue
        blocks.append(("h", 2, f"Task {task.name}"))
        if task.name in plots:
            blocks.append(("img", task.name, plots[task.name]))
        for ranker in ranking.rankers:
            if task.name not in ranking.breakdowns.get(ranker, {}):
                continue
            blocks.append(("h", 3, f"{ranker}: breakdown by conditioning set"))
            blocks.append(("p", "The value of each conditioning set (hyper-parameters); `<` marks the set "
                                "that gave the score (the minimum)." if ranker != "granulated_kendall" else
                                "Kendall's tau among models that differ only in each hyper-parameter; the score "
                                "is their mean."))
            blocks.append(("table",) + breakdown_rows(ranking, ranker, task.name))
    all_notes = list(notes) + ranking.notes
    if all_notes:
        blocks.append(("h", 2, "Notes"))
        blocks.append(("list", all_notes))
    return blocks


def render_markdown(blocks: list[tuple], plot_files: Mapping[str, str]) -> str:
    """Markdown of the report blocks; plots link to `plot_files` (task -> relative path)."""
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            out.append(_md_table(block[1], block[2]))
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "img" and block[1] in plot_files:
            out.append(f"![{block[1]}: measure vs. gap]({plot_files[block[1]]})")
    return "\n\n".join(out) + "\n"


def render_html(blocks: list[tuple]) -> str:
    """A self-contained HTML page of the report blocks (plots embedded as base64 PNG)."""
    title = next((b[2] for b in blocks if b[0] == "h"), "PGDL evaluation")
    body = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif kind == "p":
            text = html.escape(block[1])
            parts = text.split("`")
            text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
            body.append(f"<p class=note>{text}</p>")
        elif kind == "table":
            body.append(_html_table(block[1], block[2]))
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in block[1]) + "</ul>")
        elif kind == "img":
            data = base64.b64encode(block[2]).decode("ascii")
            body.append(f'<img alt="{html.escape(block[1])}: measure vs. gap" src="data:image/png;base64,{data}">')
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(ranking: Ranking, out_dir: str | os.PathLike, *, meta: Mapping[str, Any] | None = None,
                 status: tuple[list[str], list[list[str]]] | None = None,
                 notes: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``report.md`` (with ``plots/<task>.png``), ``report.html`` and ``ranking.json``.

    Args:
        ranking: from :func:`rank_measures`.
        out_dir: the output folder.
        meta: key -> value rows shown first (``title`` is the heading).
        status: an extra (header, rows) table of results per measure and task.
        notes: lines for the Notes section (missing predictions, errors, ...).

    Returns:
        The paths of ``report.md`` and ``report.html``.

    Raises:
        PGDLError: the folder cannot be written.
    """
    out = Path(out_dir)
    meta = dict(meta or {})
    try:
        plots: dict[str, bytes] = {}
        plot_files: dict[str, str] = {}
        for task in ranking.tasks:
            png = scatter_png(task, ranking.directions)
            if png is None:
                continue
            plots[task.name] = png
            path = out / "plots" / f"{task.name}.png"
            atomic_write(path, png)
            plot_files[task.name] = path.relative_to(out).as_posix()
        blocks = _sections(ranking, meta, status, notes, plots)
        md_path, html_path = out / "report.md", out / "report.html"
        atomic_write(md_path, render_markdown(blocks, plot_files).encode("utf-8"))
        atomic_write(html_path, render_html(blocks).encode("utf-8"))
        atomic_write(out / "ranking.json", (json.dumps(ranking.to_dict(), indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise PGDLError(f"cannot write the report: {exc}", out) from None
    return md_path, html_path
