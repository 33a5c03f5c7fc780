"""Terminal tables of a ranking (rich), drawn by ``pgdl evaluate``; the numbers come from
:mod:`scoring.ranking` and :mod:`scoring.tables`. Every cell is plain text (a task or measure name may hold ``[/x]``)."""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from scoring.ranking import MAIN_RANKER, Ranking
from scoring.tables import ranker_label, ranking_rows, summary_rows, tests_legend, ties_legend

__all__ = ["ranking_table", "summary_table"]


def ranking_table(ranking: Ranking, ranker: str = MAIN_RANKER, *, with_ci: bool = True) -> Table:
    """Measure x task (and average) scores of one ranker, with intervals, on the ranker's scale."""
    # one task: its tests beside it; more: the tests of the average only (the report has them all)
    one_task = len(ranking.ranked_tasks) == 1
    header, rows = ranking_rows(ranking, ranker, with_ci=with_ci, task_tests=one_task)
    table = Table(title=Text(f"{ranker_label(ranking, ranker)}: score per task "
                             f"[{ranking.confidence:.0%} {ranking.scheme} interval]"))
    for i, h in enumerate(header):
        table.add_column(Text(h), justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    legend = "\n".join(x for x in (tests_legend(ranking, with_p=one_task), ties_legend(ranking)) if x)
    if legend:
        table.caption = Text(legend)
    return table


def summary_table(ranking: Ranking) -> Table:
    """The average over tasks of every ranker (each on its scale), per measure."""
    # 7 rankers in 80 columns: no vertical rules, and the leader groups in bold rather than a letter
    header, rows = summary_rows(ranking, marks=False)
    groups = [ranking.leader_group(r) for r in ranking.rankers]
    table = Table(title="average over tasks, by ranker", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  caption="bold: not distinguishable from the ranker's leader" if ranking.n_resamples else None)
    for i, h in enumerate(header):
        if i == 0:
            table.add_column(Text(h), justify="left", no_wrap=True)
        else:  # let long ranker names wrap at their underscores
            table.add_column(Text(h.replace("_", " ")), justify="right", min_width=6)
    for row in rows:
        styles = [""] + ["bold" if ranking.n_resamples and g.get(row[0]) in ("leader", "tied") else "" for g in groups]
        table.add_row(*(Text(cell, style=style) for cell, style in zip(row, styles)))
    return table
