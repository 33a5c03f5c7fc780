"""report.html fits the browser window: long words wrap, wide tables scroll in their own box.

The browser check runs headless Chromium (Debian's ``chromium``) and skips where it is absent;
``bench/report_html.py`` is the full check with screenshots at several widths.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("report_html", ROOT / "bench" / "report_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def page(tmp_path_factory, mini_path):
    # one task (a plot takes seconds; the bench checks three), intervals from two resamples
    return _bench().build_report(tmp_path_factory.mktemp("report"), n_tasks=1, n_resamples=2)


def test_tables_scroll_in_their_own_box_and_the_run_summary_wraps(page):
    html = page.read_text()
    tables = html.count("<table")
    assert tables > 5 and html.count("<div class=scroll><table") == tables
    assert html.count("<table class=meta>") == 1  # the run summary: no empty header row, values wrap
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    assert ".scroll{max-width:100%;overflow-x:auto" in css and "overflow-wrap:anywhere" in css
    assert "task1_<wbr>digits_<wbr>vgg" in html  # long names break at their underscores


def test_a_breakdown_over_many_sets_has_a_row_per_set(page):
    text = page.with_name("report.md").read_text()
    assert "| conditioning set | agn | gradient_norm |" in text


def test_report_fits_a_1280_pixel_window_in_chromium(page):
    bench = _bench()
    binary = bench.find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    result = bench.measure(page, 1280, binary=binary)
    assert result["scrollWidth"] <= result["clientWidth"], result
    assert not result["overflowing"] and not [box for box in result["scrolling"] if box["meta"]], result
