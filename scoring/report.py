"""The report of `pgdl evaluate`: Markdown, HTML and plots of a :class:`scoring.ranking.Ranking`.

:func:`write_report` writes ``report.md`` (plots as PNG files beside it), a self-contained
``report.html`` (plots embedded as base64 PNG) and ``ranking.json``: the ranking tables with
confidence intervals, per task a scatter plot of each measure against the generalization gap,
and the per hyper-parameter breakdown. The numbers come from :mod:`scoring.ranking`; the
terminal tables are drawn by the CLI.

Importing this module is cheap; matplotlib is imported by the function that draws.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import PGDLError
from scoring.files import atomic_write
from scoring.predictions import normalize_model_id
from scoring.ranking import Ranking, TaskValues
from scoring.tables import (
    breakdown_rows,
    ranker_label,
    ranking_rows,
    selected_rows,
    summary_rows,
    tests_legend,
    ties_legend,
)

__all__ = ["render_html", "render_markdown", "scatter_png", "write_report"]


# ----------------------------------------------------------------------------- tables


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(text):
        return str(text).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _breakable(name: Any) -> str:
    """HTML of a name that may break after its underscores (``task1_<wbr>digits_<wbr>vgg``)."""
    return html.escape(str(name)).replace("_", "_<wbr>")


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    """A table inside a box that scrolls sideways when the table is wider than the page (so the
    page itself never is). A header of empty cells makes a key-value table (the run summary):
    full width, values left-aligned and wrapped anywhere (long parameter strings have no spaces)."""
    body = "".join("<tr>" + "".join(
        f"<td>{html.escape(str(c))}</td>" if i else f"<th scope=row>{_breakable(c)}</th>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    if not any(str(h) for h in header):
        return f"<div class=scroll><table class=meta><tbody>{body}</tbody></table></div>"
    head = "".join(f"<th>{_breakable(h)}</th>" for h in header)
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


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


# Nothing may make the page wider than the window (checked in Chromium by bench/report_html.py):
# long unbroken words (paths, parameter strings, task names) wrap anywhere, and a table wider
# than the page scrolls inside its own box.
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;overflow-wrap:anywhere}
.scroll{max-width:100%;overflow-x:auto;margin:.6em 0 1.4em}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;font-variant-numeric:tabular-nums}
th[scope=row],thead th:first-child{text-align:left}
table{overflow-wrap:normal}
thead th{background:#f2f2f2}
td{white-space:nowrap}
table.meta{width:100%;table-layout:fixed}
table.meta th{width:13em;text-align:left;vertical-align:top}
table.meta td{text-align:left;white-space:normal;overflow-wrap:anywhere;font-variant-numeric:normal}
img{max-width:100%;height:auto}
code{background:#f4f4f4;padding:0 .2em}
.note{color:#555;font-size:.92em}
"""


def _tall(header: list[str], rows: list[list[str]], *, corner: str) -> tuple[list[str], list[list[str]]]:
    """The table transposed when it has more value columns than rows (a breakdown over 20
    conditioning sets reads, and fits the page, better with a row per set)."""
    if len(header) - 1 <= len(rows):
        return header, rows
    return [corner] + [row[0] for row in rows], [[h] + [row[i + 1] for row in rows] for i, h in enumerate(header[1:])]


def _scale_sentence(ranking: Ranking) -> str:
    scaled = [ranker_label(ranking, r) for r in ranking.rankers if ranking.scale(r) != 1]
    if not scaled:
        return ""
    return (f" Shown multiplied by a scale: {', '.join(scaled)} (the competition's CMI on the competition's "
            "scale, as `pgdl score` and the leaderboard show it).")


def _sections(ranking: Ranking, meta: Mapping[str, Any], status: tuple[list[str], list[list[str]]] | None,
              notes: Sequence[str], plots: Mapping[str, bytes]) -> list[tuple]:
    """The report as a list of blocks: ("h", level, text), ("p", text), ("table", header, rows),
    ("list", items), ("img", task, png bytes)."""
    blocks: list[tuple] = [("h", 1, meta.get("title", "PGDL evaluation"))]
    blocks.append(("table", ["", ""], [[str(k), str(v)] for k, v in meta.items() if k != "title"]))
    if ranking.ranked_tasks:
        blocks.append(("h", 2, "Ranking"))
        scheme = ("half-samples of the models (half of them, without replacement; see scoring/resampling.py)"
                  if ranking.scheme == "halfsample" else "bootstrap resamples of the models")
        lower = ", ".join(sorted(ranking.lower_is_better))
        blocks.append(("p", f"Scores per task with {ranking.confidence:.0%} intervals from {ranking.n_resamples} "
                            f"{scheme}, seed 0; larger is better for every ranker"
                            + (f" but {lower} (smaller is better)" if lower else "") + ". "
                            + (tests_legend(ranking) + ". " if tests_legend(ranking) else "")
                            + "Measures with direction -1 are ranked by their negation. "
                            "`*`: ranked on part of the task's models (the others failed or exceeded "
                            "the time budget)." + _scale_sentence(ranking)
                            + (" `~`" + ties_legend(ranking)[1:] + "." if ties_legend(ranking) else "")))
        blocks.append(("h", 3, "Average over tasks, by ranker"))
        blocks.append(("table",) + summary_rows(ranking))
        for ranker, description in ranking.rankers.items():
            blocks.append(("h", 3, ranker_label(ranking, ranker)))
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
            blocks.append(("h", 3, f"{ranker_label(ranking, ranker)}: breakdown by conditioning set"))
            blocks.append(("p", {
                "granulated_kendall": "Kendall's tau among models that differ only in each hyper-parameter; the "
                                      "score is their mean.",
                "robust_sign_error": "Per hyper-parameter, the worst sign-error among the environments of models "
                                     "that differ only in it (`<`: the worst of all, the score); then the median, "
                                     "75% and 90% quantiles of the sign-error over every environment.",
            }.get(ranker, "The value of each conditioning set (hyper-parameters); `<` marks the set that gave the "
                          "score (the minimum).")))
            blocks.append(("table",) + _tall(*breakdown_rows(ranking, ranker, task.name), corner="conditioning set"))
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
