"""Check ``report.html`` in a real browser: headless Chromium, screenshots, no horizontal overflow.

Renders a report (a given ``report.html``, or one built here from the bundled mini task with the
run summary ``pgdl evaluate`` writes: long measure parameters, several tasks) in Debian's
``chromium`` (``apt-get install chromium``) at each window width, and checks that the document
is no wider than the window (``document.documentElement.scrollWidth <= innerWidth``) and that
the run summary wraps: long words wrap, and a table wider than the page scrolls inside its own
box (listed under ``scrolling``), so no value is off-screen. It saves a screenshot per width (look
at them) and prints one JSON line per width; exit status 1 when a page overflows, 2 when
Chromium is missing.

    python bench/report_html.py --out /tmp/report-check            # build a report and check it
    python bench/report_html.py --report results/report.html        # check an existing one

The widths are measured by a script added to a copy of the page, whose result Chromium's
``--dump-dom`` prints (the report itself holds no script).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIDTHS = (1280, 800)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")

_PROBE = """<script>
addEventListener("load", () => {
  const view = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > view + 0.5 && !el.closest(".scroll")) {
      wide.push(el.tagName.toLowerCase() + ":" + Math.round(box.right) + ":" + (el.textContent || "").slice(0, 60));
    }
  }
  const scrolling = [];
  for (const box of document.querySelectorAll(".scroll")) {
    if (box.scrollWidth > box.clientWidth + 0.5) {
      scrolling.push({meta: !!box.querySelector("table.meta"), scrollWidth: box.scrollWidth,
                      text: (box.textContent || "").slice(0, 60)});
    }
  }
  const out = document.createElement("pre");
  out.id = "pgdl-widths";
  out.textContent = JSON.stringify({scrollWidth: document.documentElement.scrollWidth,
                                    clientWidth: view, innerWidth: innerWidth, overflowing: wide.slice(0, 10),
                                    scrolling: scrolling});
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(binary: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-dev-shm-usage", "--virtual-time-budget=5000"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=timeout)


def measure(report: Path, width: int, *, binary: str, height: int = 900, screenshot: Path | None = None) -> dict:
    """Widths of `report` rendered in a `width` x `height` window (and a screenshot, if asked)."""
    page = report.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
        done = _chromium(binary, f"--window-size={width},{height}", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="pgdl-widths">(.*?)</pre>', done.stdout, re.S)
    if not found:
        raise RuntimeError(f"chromium printed no widths (exit {done.returncode}): {done.stderr[-2000:]}")
    import html

    result = json.loads(html.unescape(found.group(1)))
    result["width"] = width
    if screenshot is not None:
        _chromium(binary, f"--window-size={width},{height}", f"--screenshot={screenshot}", report.as_uri())
        result["screenshot"] = str(screenshot)
    return result


def check(report: Path, out: Path, widths=WIDTHS, *, binary: str) -> list[dict]:
    """Measure `report` at every width (screenshots into `out`); each result has ``ok``."""
    results = []
    for width in widths:
        result = measure(report, width, binary=binary, screenshot=out / f"report-{width}.png")
        full = measure(report, width, binary=binary, height=4000, screenshot=out / f"report-{width}-tall.png")
        result["tall_screenshot"] = full["screenshot"]
        # the page is no wider than the window, and the run summary wraps (never scrolls);
        # a wide ranking table may scroll inside its own box (listed in "scrolling")
        result["ok"] = (result["scrollWidth"] <= result["clientWidth"] and full["scrollWidth"] <= full["clientWidth"]
                        and not any(box["meta"] for box in result["scrolling"] + full["scrolling"]))
        results.append(result)
    return results


def build_report(out: Path, *, n_tasks: int = 3, n_resamples: int = 20) -> Path:
    """A report as ``pgdl evaluate`` writes it, from the mini task's reference data copied under
    `n_tasks` names, measures made of the gap plus noise, and the run summary's long parameters."""
    import numpy as np

    from scoring.predictions import generalization_gap, load_model_specs, normalize_model_id
    from scoring.ranking import TaskValues, rank_measures
    from scoring.report import write_report

    specs = load_model_specs(ROOT / "data" / "mini" / "reference_data" / "digits_vgg")
    gaps = {normalize_model_id(k): generalization_gap(v["metrics"]) for k, v in specs.items()}
    rng = np.random.default_rng(0)
    names = ["agn", "gradient_norm", "jacobian_norm", "sharpness", "sharpness_pgdl_v1", "sharpness_pgdl_v2",
             "distance_from_init", "vc_dimension"]
    tasks = []
    for t in range(n_tasks):
        values = {m: {mid: g + rng.normal(scale=0.02 * (i + 1)) for mid, g in gaps.items()}
                  for i, m in enumerate(names)}
        tasks.append(TaskValues(f"task{t + 1}_digits_vgg_with_a_long_name", specs, values, n_models=len(gaps)))
    ranking = rank_measures(tasks, {m: 1 for m in names}, n_resamples=n_resamples)
    params = {"agn": '{"batch_size":512,"max_examples":2000,"seed":0}',
              "sharpness": '{"batch_size":128,"epsilon":0.001,"max_examples":5000,"seed":0,"steps":20,'
                           '"target_deviation":0.1,"upper_bound":1.0}',
              "sharpness_pgdl_v1": '{"batch_size":128,"iterations":20,"num_batches":10,"noise_std":0.01,'
                                   '"seed":0,"stream":"shuffled_training_set","target_deviation":0.1}'}
    meta = {"title": "PGDL evaluation", "tasks": ", ".join(t.name for t in tasks),
            "measures": ", ".join(f"{m} {params.get(m, '{}')}" for m in names),
            "models": "all", "backend": "tensorflow", "time budget per model": "300 s",
            "toolkit version": "0", "results store": "results.sqlite",
            "computed in this run": "768 results (0 already stored)"}
    status = (["measure (ok / error / exceeded)"] + [t.name for t in tasks],
              [[m] + ["32 / 0 / 0"] * n_tasks for m in names])
    notes = [f"/a/very/long/path/without/spaces/{'x' * 150}/worker.log: a note with a long path"]
    md, page = write_report(ranking, out, meta=meta, status=status, notes=notes)
    return page


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, help="an existing report.html (default: build one)")
    parser.add_argument("--out", type=Path, default=Path("report-html-check"), help="screenshots (and the report)")
    parser.add_argument("--width", type=int, action="append", help="window widths (default: 1280 and 800)")
    args = parser.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print(json.dumps({"error": "no chromium found (apt-get install chromium)"}))
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.report or build_report(args.out)
    results = check(report, args.out, tuple(args.width or WIDTHS), binary=binary)
    for result in results:
        print(json.dumps(result))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
