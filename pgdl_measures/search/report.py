"""The search report: ``report.md``, ``report.json`` and ``report.png`` in the output folder.

* One row per cell (method x objective x alpha): configurations, trials, GPU x epochs spent,
  diverged trials, the best value and configuration (among full-schedule trials), its
  validation accuracy, and the test accuracy of the best configuration trained on the full
  training set with the final seeds (mean +- std), beside the default hyper-parameters.
* Best-so-far per round: the lowest objective value among the full-schedule trials of rounds
  ``<= r`` (a table, and ``report.png``: one panel per objective, one line per method).
* For each cell with an AGN objective, what AGN was among its full-schedule trials: Spearman's
  rho of the summed AGN with the validation accuracy, and the median summed AGN of the trials
  that learned (validation accuracy at least :data:`LEARNED`) and of those that did not; this
  says whether the objective's penalty falls on learning itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.search.objectives import DIVERGED_VALUE
from pgdl_measures.search.spec import OBJECTIVES, validate

#: a trial "learned" when its validation accuracy reaches this (the report's AGN table)
LEARNED = 0.8


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _params(params: dict[str, Any] | None) -> str:
    if not params:
        return "-"
    short = {"batch_size": "bs", "learning_rate": "lr", "momentum": "m", "weight_decay": "wd"}
    return " ".join(f"{short.get(k, k)}={_fmt(float(v), 3) if isinstance(v, float) else v}"
                    for k, v in params.items())


def _acc(final: dict[str, Any]) -> str:
    mean, std = final.get("test_accuracy_mean"), final.get("test_accuracy_std")
    if mean is None:
        return "-"
    return f"{mean:.4f} +- {std:.4f} (n={len(final.get('seeds') or {})})"


def collect(out: str | Path, storage: str | None = None) -> dict[str, Any]:
    """The report's data from the output folder and the storage the search recorded
    (``storage.json``; `storage`, when given, must be that one).

    Raises:
        PGDLError: not a search folder, a storage other than the recorded one, a missing or
            damaged storage (naming the file), a storage holding none of the search's studies.
    """
    from pgdl_measures.search.folder import open_storage, search_storage, sqlite_file, storage_failure

    out = Path(out)
    spec_file = out / "spec.json"
    if not spec_file.is_file():
        raise PGDLError("not a search folder (no spec.json)", out)
    from scoring.files import read_json

    spec = validate(read_json(spec_file, "the search spec"), str(spec_file))
    url, _ = search_storage(out, storage)
    path = sqlite_file(url)
    if path is not None and not path.is_file():  # opening it would create an empty database
        raise PGDLError("no study database: the search has not started, or it used another storage", path)
    try:
        data = _collect(out, spec, open_storage(url), (out / "storage.json").is_file())
    except Exception as exc:
        reason = storage_failure(exc)
        if reason is None:
            raise
        raise PGDLError(f"cannot read the Optuna storage: {reason}", path or url) from None
    if not data["rows"]:
        raise PGDLError(f"the storage {url} holds none of this search's studies; nothing to report", out)
    return data


def _collect(out: Path, spec, store, named_by_digest: bool) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    from pgdl_measures.search.driver import final_results

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    full = int(spec.raw["epochs"])
    rows = []
    for cell in spec.cells:
        try:  # a folder of an older version (no storage.json) named its studies by the cell alone
            study = optuna.load_study(study_name=spec.study_name(cell) if named_by_digest else cell.name,
                                      storage=store)
        except KeyError:
            continue
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        finite = [t for t in trials if t.user_attrs.get("epochs") == full and t.value is not None
                  and t.value < DIVERGED_VALUE]
        best = min(finite, key=lambda t: (t.value, t.number)) if finite else None
        rounds = 1 + max((int(t.user_attrs.get("round", 0)) for t in trials), default=-1)
        so_far, current = [], math.inf
        for r in range(rounds):
            values = [t.value for t in finite if int(t.user_attrs.get("round", 0)) == r]
            current = min([current, *values])
            so_far.append(current if math.isfinite(current) else None)
        rows.append({
            "cell": cell.name, "algorithm": cell.algorithm, "objective": cell.objective, "alpha": cell.alpha,
            "weighting": cell.weighting,
            "configurations": sum(1 for t in trials if t.user_attrs.get("rung", 0) == 0),
            "trials": len(trials), "epochs": int(sum(t.user_attrs.get("epochs", 0) for t in trials)),
            "diverged": sum(1 for t in trials if t.user_attrs.get("diverged")),
            "best_value": None if best is None else best.value,
            "best_params": None if best is None else dict(best.params),
            "best_val_accuracy": None if best is None else best.user_attrs.get("val_accuracy"),
            "best_so_far": so_far, "final": final_results(out, cell.name),
            "agn_trials": _agn_trials(finite) if "agn" in cell.objective else None,
        })
    return {"spec": spec.raw, "rows": rows, "default": final_results(out, "default")}


def _agn_trials(trials) -> dict[str, Any] | None:
    """Summed AGN against validation accuracy over full-schedule trials (see the module docstring)."""
    import numpy as np
    from scipy.stats import spearmanr

    pairs = [(t.user_attrs.get("agn_sum"), t.user_attrs.get("val_accuracy")) for t in trials]
    pairs = [(float(a), float(v)) for a, v in pairs if a is not None and v is not None
             and math.isfinite(a) and math.isfinite(v)]
    if not pairs:
        return None
    agn, acc = np.array(pairs).T
    learned, other = agn[acc >= LEARNED], agn[acc < LEARNED]
    rho, p = spearmanr(agn, acc) if len(pairs) >= 3 and np.ptp(agn) > 0 and np.ptp(acc) > 0 else (math.nan, math.nan)
    return {"trials": len(pairs), "spearman_rho": _finite(rho), "p": _finite(p), "learned": int(len(learned)),
            "agn_sum_median_learned": _finite(np.median(learned)) if len(learned) else None,
            "agn_sum_median_not_learned": _finite(np.median(other)) if len(other) else None,
            "agn_sum_range": [float(agn.min()), float(agn.max())]}


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def markdown(data: dict[str, Any]) -> str:
    spec = data["spec"]
    lines = [f"# Search `{spec['name']}`", "",
             f"{spec['model']['name']} on {spec['data']['dataset']} "
             f"(searched on {spec['data'].get('train_fraction', 1)} of the training set), "
             f"{spec['epochs']}-epoch schedule, budget {spec['budget']} GPU x epochs per cell; final: the best "
             f"configuration trained on the full training set with seeds {spec['final_seeds']}.", "",
             "| method | objective | alpha | configs | trials | GPU x epochs | diverged | best value | "
             "best configuration | its val acc | test acc (full training set) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in data["rows"]:
        objective = r["objective"] + (" (convex, mean AGN)" if r.get("weighting") == "convex" else "")
        lines.append(f"| {r['algorithm']} | {objective} | {_fmt(r['alpha'])} | {r['configurations']} | "
                     f"{r['trials']} | {r['epochs']} | {r['diverged']} | {_fmt(r['best_value'])} | "
                     f"{_params(r['best_params'])} | {_fmt(r['best_val_accuracy'])} | {_acc(r['final'])} |")
    d = data["default"]
    lines.append(f"| default | - | - | 1 | - | - | - | - | {_params(d.get('params'))} | - | {_acc(d)} |")
    lines += ["", "Objectives (minimised): " + "; ".join(f"`{k}` = {v}" for k, v in OBJECTIVES.items()
                                                       if k in spec["objectives"]) + ".", "",
              "## Best so far per round", "",
              "| cell | " + " | ".join(f"round {i + 1}" for i in range(max((len(r["best_so_far"]) for r in
                                                                           data["rows"]), default=0))) + " |"]
    width = max((len(r["best_so_far"]) for r in data["rows"]), default=0)
    lines.append("| --- |" + " --- |" * width)
    for r in data["rows"]:
        cells = [_fmt(v) for v in r["best_so_far"]] + [""] * (width - len(r["best_so_far"]))
        lines.append(f"| {r['cell']} | " + " | ".join(cells) + " |")
    agn_rows = [r for r in data["rows"] if r.get("agn_trials")]
    if agn_rows:
        lines += ["", "## AGN among the full-schedule trials of each AGN cell", "",
                  f"Learned: validation accuracy >= {LEARNED}. A positive rho means the AGN term penalises "
                  "the configurations that learn.", "",
                  "| cell | trials | Spearman rho(AGN sum, val acc) | p | learned | median AGN sum, learned | "
                  "median AGN sum, not learned | AGN sum range |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in agn_rows:
            a = r["agn_trials"]
            lines.append(f"| {r['cell']} | {a['trials']} | {_fmt(a['spearman_rho'], 3)} | {_fmt(a['p'], 2)} | "
                         f"{a['learned']} | {_fmt(a['agn_sum_median_learned'])} | "
                         f"{_fmt(a['agn_sum_median_not_learned'])} | {_fmt(a['agn_sum_range'][0])}-"
                         f"{_fmt(a['agn_sum_range'][1])} |")
    return "\n".join(lines) + "\n"


def figure(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in data["rows"]:
        key = r["objective"] + ("" if r["alpha"] is None else f" (alpha {r['alpha']:g}"
                                + (", convex)" if r.get("weighting") == "convex" else ")"))
        groups.setdefault(key, []).append(r)
    n = max(1, len(groups))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (key, rows) in zip(axes[0], groups.items()):
        for r in rows:
            ys = [math.nan if v is None else v for v in r["best_so_far"]]
            ax.plot(range(1, len(ys) + 1), ys, marker="o", label=r["algorithm"])
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("best objective so far")
        ax.legend(fontsize=7)
    fig.suptitle(f"search {data['spec']['name']}: best so far per round", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: str | Path, storage: str | None = None) -> dict[str, Path]:
    """Writes ``report.md``, ``report.json`` and ``report.png`` into `out`; their paths."""
    from scoring.files import atomic_write

    out = Path(out)
    data = collect(out, storage)
    paths = {"markdown": out / "report.md", "json": out / "report.json", "png": out / "report.png"}
    try:
        atomic_write(paths["markdown"], markdown(data))
        atomic_write(paths["json"], json.dumps(data, indent=1, default=str))
        figure(data, paths["png"])
    except OSError as exc:
        raise PGDLError(f"cannot write the report: {exc.strerror or exc}", out) from None
    return paths
