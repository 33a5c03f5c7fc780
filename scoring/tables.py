"""The tables of a ranking as text cells (header, rows), shared by every renderer: Markdown and HTML
in :mod:`scoring.report`, the terminal in the CLI, the lines of ``pgdl score --rankers``.

The numbers come from :class:`scoring.ranking.Ranking`; each ranker's scores are shown multiplied by
its scale (the competition's CMI x100), labelled so (:func:`ranker_label`).
"""

from __future__ import annotations

import math

from scoring.ranking import AVERAGE, FEW_UNTIED, Ranking, Score, set_label

__all__ = ["breakdown_rows", "format_score", "ranker_label", "ranker_rows", "ranking_rows", "selected_rows",
           "summary_rows", "tests_legend", "ties_legend"]


def format_score(score: Score | None, *, with_ci: bool = True, scale: float = 1.0) -> str:
    """``0.222 [0.130, 0.556]`` (``*`` when ranked on part of the models, ``~`` when the measure
    is tied on most pairs, :data:`FEW_UNTIED`), ``-`` when absent.

    With ``scale=100``: ``22.2 [13.0, 55.6]`` (the same three significant decimals).
    """
    if score is None:
        return "-"
    text = _num(score.value, scale)
    if with_ci and math.isfinite(score.low):
        text += f" [{_num(score.low, scale)}, {_num(score.high, scale)}]"
    return text + ("*" if score.partial else "") + ("~" if score.mostly_tied else "")


def ties_legend(ranking: Ranking) -> str:
    """The legend of the ``~`` mark, or "" when no score of the ranking has it."""
    marked = any(score.mostly_tied for by_measure in ranking.scores.values()
                 for by_task in by_measure.values() for score in by_task.values())
    return (f"~: the measure's values are tied on more than {1 - FEW_UNTIED:.0%} of the pairs of models with "
            "different gaps, so the score rests on few pairs (see the notes)") if marked else ""


def _num(value: float, scale: float = 1.0) -> str:
    """`value` x `scale` with three decimals of the unscaled value (``0.222`` -> ``22.2`` x100)."""
    if value is None or not math.isfinite(value):
        return "nan"
    decimals = max(0, 3 - round(math.log10(scale))) if scale > 0 else 3
    return f"{value * scale:.{decimals}f}"


def ranker_label(ranking: Ranking, ranker: str) -> str:
    """The ranker's name with its scale when it is not 1: ``competition_cmi (x100)``."""
    scale = ranking.scale(ranker)
    return ranker if scale == 1 else f"{ranker} (x{scale:g})"


def _group_mark(status: str | None) -> str:
    return "a" if status in ("leader", "tied") else ""


def _p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def ranking_rows(ranking: Ranking, ranker: str, *, with_ci: bool = True, with_tests: bool = True,
                 task_tests: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the measure x task table of one ranker (plus the average column), on the
    ranker's scale (see :func:`ranker_label`), best first.

    With `with_tests`, each task column is followed by ``p null`` (the permutation p-value,
    :attr:`Score.p_null`) and ``grp`` (``a`` when the measure is not distinguishable from the
    task's leader by a paired test, Holm-adjusted: :meth:`Ranking.leader_group`), and the average
    by its interval and its ``grp`` (``task_tests=False``: on the average only, for narrow
    terminals).
    """
    tasks = ranking.ranked_tasks
    tests = with_tests and (ranking.n_resamples > 0 or ranking.n_permutations > 0)
    per_task = tests and task_tests
    header = ["measure"]
    for t in tasks:
        header += [t] + (["p null", "grp"] if per_task else [])
    header += ["average"] + (["grp"] if tests else [])
    groups = {scope: ranking.leader_group(ranker, scope) for scope in tasks + [AVERAGE]} if tests else {}
    rows = []
    scale = ranking.scale(ranker)
    for measure in ranking.ordered_measures(ranker):
        by_task = ranking.scores.get(ranker, {}).get(measure, {})
        row = [measure]
        for t in tasks:
            row.append(format_score(by_task.get(t), with_ci=with_ci, scale=scale))
            if per_task:
                row += [_p(by_task[t].p_null) if t in by_task else "-", _group_mark(groups[t].get(measure))]
        average = _num(ranking.average(ranker, measure), scale) if by_task else "-"
        low, high = ranking.average_ci.get(ranker, {}).get(measure, (math.nan, math.nan))
        if with_ci and by_task and math.isfinite(low) and len(tasks) > 1:
            average += f" [{_num(low, scale)}, {_num(high, scale)}]"
        row.append(average)
        if tests:
            row.append(_group_mark(groups[AVERAGE].get(measure)))
        rows.append(row)
    return header, rows


def tests_legend(ranking: Ranking, *, with_p: bool = True, with_grp: bool = True) -> str:
    """What the ``p null`` (with `with_p`) and ``grp`` (with `with_grp`) columns mean, for a table's
    caption ("" without resamples and permutations)."""
    if not ranking.n_resamples and not ranking.n_permutations:
        return ""
    level = 1.0 - ranking.confidence
    parts = []
    if with_p:
        parts.append(f"p null: permutation p-value ({ranking.n_permutations} permutations of the values) of 'no "
                     "better than a measure unrelated to the gap'")
    if with_grp:
        parts.append(f"grp a: not distinguishable from the leader (paired test on the same {ranking.n_resamples} "
                     f"{ranking.scheme} resamples, Holm-adjusted over every pair, level {level:g})")
    return "; ".join(parts)


def ranker_rows(ranking: Ranking, measure: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (ranker x task, then the average) of one measure's scores by every ranker,
    with intervals and permutation p-values (``pgdl score --rankers``)."""
    tasks = ranking.ranked_tasks
    header = ["ranker"] + [c for t in tasks for c in (t, "p null")] + ["average"]
    rows = []
    for ranker in ranking.rankers:
        by_task = ranking.scores.get(ranker, {}).get(measure, {})
        scale = ranking.scale(ranker)
        row = [ranker_label(ranking, ranker) + (" (smaller is better)" if ranker in ranking.lower_is_better else "")]
        for t in tasks:
            row += [format_score(by_task.get(t), scale=scale), _p(by_task[t].p_null) if t in by_task else "-"]
        average = _num(ranking.average(ranker, measure), scale) if by_task else "-"
        low, high = ranking.average_ci.get(ranker, {}).get(measure, (math.nan, math.nan))
        if by_task and math.isfinite(low) and len(tasks) > 1:
            average += f" [{_num(low, scale)}, {_num(high, scale)}]"
        rows.append(row + [average])
    return header, rows


def summary_rows(ranking: Ranking, *, marks: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the measure x ranker table of averages over tasks (each ranker on its
    scale, named in the header: ``competition_cmi (x100)``); with `marks`, ``a`` marks the
    measures not distinguishable from that ranker's leader (:meth:`Ranking.leader_group`)."""
    header = ["measure"] + [ranker_label(ranking, r) for r in ranking.rankers]
    groups = {r: ranking.leader_group(r) for r in ranking.rankers}
    rows = []
    for measure in ranking.ordered_measures():
        cells = [measure]
        for r in ranking.rankers:
            if not ranking.scores.get(r, {}).get(measure):
                cells.append("-")
                continue
            mark = _group_mark(groups[r].get(measure)) if marks and ranking.n_resamples else ""
            cells.append(_num(ranking.average(r, measure), ranking.scale(r)) + (f" {mark}" if mark else ""))
        rows.append(cells)
    return header, rows


def selected_rows(ranking: Ranking, ranker: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (measure x task) of the conditioning set behind each score of `ranker`."""
    by_task = ranking.selected.get(ranker, {})
    tasks = [t for t in ranking.ranked_tasks if t in by_task]
    rows = []
    for measure in ranking.ordered_measures(ranker):
        cells = [by_task[t].get(measure, "-") if measure in by_task[t] else "-" for t in tasks]
        if any(c != "-" for c in cells):
            rows.append([measure] + ["none (all NaN)" if c is None else c if c == "-" else set_label(c)
                                     for c in cells])
    return ["measure"] + tasks, rows


def breakdown_rows(ranking: Ranking, ranker: str, task: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (measure x conditioning set) of one ranker's breakdown on one task.

    The set behind the score is marked ``<value> <``; values on the ranker's scale.
    """
    by_measure = ranking.breakdowns.get(ranker, {}).get(task, {})
    sets: list = []
    for breakdown in by_measure.values():
        for key in breakdown:
            if key not in sets:
                sets.append(key)
    header = ["measure"] + [set_label(k) for k in sets]
    rows = []
    for measure in ranking.measures:
        if measure not in by_measure:
            continue
        chosen = ranking.selected.get(ranker, {}).get(task, {}).get(measure)
        row = [measure]
        for key in sets:
            value = by_measure[measure].get(key)
            cell = "-" if value is None else _num(value, ranking.scale(ranker))
            row.append(cell + (" <" if key == chosen and chosen is not None else ""))
        rows.append(row)
    return header, rows
