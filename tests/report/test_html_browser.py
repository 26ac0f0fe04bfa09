"""The reports rendered for real in headless Chromium: the DOM after the script ran, and a screenshot.

Skipped (with the reason) only when Chromium is not installed; CI installs it (see .ci/run).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image
from test_html_report import parse_dom, toy_run

from evolve.archive import Archive
from evolve.compare import Comparison, Group
from evolve.compare.stats import compute
from evolve.report.html import comparison_report, run_report, write_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="headless Chromium not installed (/usr/bin/chromium; "
                                       "apt-get install chromium, as .ci/run does)")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def rendered_dom(tmp_path: Path, url: str):
    return parse_dom(chromium(tmp_path, "--dump-dom", url).stdout)


def assert_screenshot(tmp_path: Path, url: str) -> None:
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    picture = Image.open(shot)
    assert picture.size == (1280, 2000)
    assert shot.stat().st_size > 20_000
    colours = picture.convert("RGB").getcolors(maxcolors=10_000_000)
    assert len(colours) > 100  # text, tables and plots, not one flat colour
    assert max(n for n, _ in colours) < 0.95 * 1280 * 2000


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_run(tmp_path_factory.mktemp("browser"), "toy", evaluations=10)


@pytest.fixture(scope="module")
def run_page(run_dir: Path) -> Path:
    return write_report(run_dir / "report.html", run_report(run_dir))


def test_run_report_renders_with_front_programs_and_diffs(run_page: Path, run_dir: Path, tmp_path: Path) -> None:
    dom = rendered_dom(tmp_path, run_page.as_uri())
    with Archive.open(run_dir / "archive") as archive:
        front, everyone = archive.front(), archive.candidates()
        child = next(c for c in everyone if c.parents)
        diff = archive.diff(child.id)
    assert [r.attrs["data-id"] for r in dom.by_id("front-table").rows()] == [str(c.id) for c in front]
    table = dom.by_id("candidates-table")
    assert table.attrs.get("data-sortable") == "ready"  # the script ran without an error
    assert len(table.rows()) == len(everyone)
    assert all(th.all("button") for th in table.all("th"))
    program = dom.by_id(f"cand-{child.id}")
    assert child.source.splitlines()[0] in program.text()
    shown = program.all("details", cls="diff")[0]
    assert "".join(p.text() for p in shown.all("pre")) == diff
    assert any(line.startswith("+") for line in diff.splitlines()[2:])
    graph = dom.by_id("lineage-graph")  # the SVG survived the browser's parser, links intact
    (svg,) = graph.all("svg")
    hrefs = {a.attrs.get("xlink:href") or a.attrs.get("href") for a in svg.all("a")}
    assert {f"#cand-{c.id}" for c in front} <= hrefs
    assert_screenshot(tmp_path, run_page.as_uri())


def test_sorting_in_the_browser_orders_by_the_metric(run_page: Path, run_dir: Path, tmp_path: Path) -> None:
    dom = rendered_dom(tmp_path, run_page.as_uri() + "?sort=error&order=desc")
    with Archive.open(run_dir / "archive") as archive:
        by_error = archive.candidates("error", descending=True)  # missing values last, like the page
    assert [c.id for c in by_error] != sorted(c.id for c in by_error)  # the page starts in id order
    table = dom.by_id("candidates-table")
    assert [r.attrs["data-id"] for r in table.rows()] == [str(c.id) for c in by_error]
    header = next(th for th in table.all("th") if th.attrs.get("data-key") == "error")
    assert header.attrs.get("aria-sort") == "descending"


def test_comparison_report_renders(run_dir: Path, tmp_path: Path) -> None:
    other = toy_run(tmp_path, "isl", evaluations=6, strategy="islands")
    stats = compute(Comparison("duo", tmp_path, (Group("hill", (run_dir,)), Group("isl", (other,)))))
    page = write_report(tmp_path / "duo.html", comparison_report(stats))
    dom = rendered_dom(tmp_path, page.as_uri())
    assert [r.all("td")[0].text() for r in dom.by_id("compare-table").rows()] == ["hill", "isl"]
    assert dom.all("h1")[0].text() == "evolve comparison: duo: hill vs isl"
    assert len(dom.by_id("plots").all("img")) == 3
    assert_screenshot(tmp_path, page.as_uri())
