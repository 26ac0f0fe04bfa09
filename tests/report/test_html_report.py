"""The static HTML reports as documents: self-contained, complete, escaped, linked (no browser here;
see test_html_browser.py for the rendered page)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from evolve.archive import Archive, RunMeta
from evolve.compare import Comparison, Group
from evolve.compare.stats import compute
from evolve.config import parse_config
from evolve.candidate import Candidate
from evolve.evaluation import EvalResult
from evolve.report.html import comparison_report, run_report
from evolve.run import EvolutionRun
from evolve.tasks import Constraint, Objective

ROOT = Path(__file__).resolve().parents[2]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# --- a minimal DOM (the standard library has a parser but no tree) -------------------------------
@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list["Node | str"] = field(default_factory=list)

    def text(self, skip: str | None = None) -> str:
        """The text inside, leaving out elements of class ``skip``."""
        return "".join(c if isinstance(c, str) else c.text(skip) for c in self.children
                       if isinstance(c, str) or skip not in c.attrs.get("class", "").split())

    def all(self, tag: str | None = None, **attrs: str) -> list["Node"]:
        """Descendants with this tag and attribute values (``cls`` matches one class)."""
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            wanted = {k: v for k, v in attrs.items() if k != "cls"}
            if ((tag is None or child.tag == tag)
                    and all(child.attrs.get(k) == v for k, v in wanted.items())
                    and ("cls" not in attrs or attrs["cls"] in child.attrs.get("class", "").split())):
                found.append(child)
            found += child.all(tag, **attrs)
        return found

    def by_id(self, id: str) -> "Node":
        (node,) = self.all(id=id)
        return node

    def rows(self) -> list["Node"]:
        """The body rows of a table."""
        return [tr for tbody in self.all("tbody") for tr in tbody.all("tr")]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_dom(document: str) -> Node:
    builder = _Builder()
    builder.feed(document)
    builder.close()
    return builder.root


def assert_self_contained(document: str) -> None:
    """Nothing is fetched: no external scripts, styles, images, fonts or frames."""
    dom = parse_dom(document)
    assert not dom.all("link") and not dom.all("iframe")
    assert all("src" not in s.attrs for s in dom.all("script"))
    assert all(img.attrs["src"].startswith("data:image/png;base64,") for img in dom.all("img"))
    assert not re.search(r"url\(|@import|https?://", "".join(s.text() for s in dom.all("style")))


# --- fixtures -----------------------------------------------------------------------------------
def toy_run(output_dir: Path, name: str, evaluations: int = 8, strategy: str = "hillclimb") -> Path:
    config = parse_config({
        "run": {"name": name, "output_dir": str(output_dir), "seed": 3},
        "task": {"name": "toy", "constraints": ["error <= 12"]},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": strategy}, "mutators": [{"name": "numeric"}],
        "budget": {"max_evaluations": evaluations}, "parallel": {"evaluations": 2},
    })
    EvolutionRun(config).execute()
    return config.run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_run(tmp_path_factory.mktemp("html"), "toy")


@pytest.fixture(scope="module")
def report(run_dir: Path) -> str:
    return run_report(run_dir)


def test_run_report_is_one_self_contained_file(report: str) -> None:
    assert report.startswith("<!DOCTYPE html>")
    assert_self_contained(report)
    dom = parse_dom(report)
    # progress, constraints (the toy's seed violates its constraint), candidates
    assert len(dom.all("img")) == 3
    assert [s.attrs["id"] for s in dom.all("section")] == ["summary", "plots", "front", "candidates",
                                                           "lineage", "programs"]


def test_front_and_candidate_tables_match_the_archive(report: str, run_dir: Path) -> None:
    dom = parse_dom(report)
    with Archive.open(run_dir / "archive") as archive:
        front, everyone = archive.front(), archive.candidates()
    assert [r.attrs["data-id"] for r in dom.by_id("front-table").rows()] == [str(c.id) for c in front]
    rows = dom.by_id("candidates-table").rows()
    assert [r.attrs["data-id"] for r in rows] == [str(c.id) for c in everyone]
    for row, c in zip(rows, everyone):
        error = row.all("td")[1].attrs["data-value"]
        assert (float(error) == c.metrics["error"]) if error else "error" not in c.metrics


def test_every_program_has_an_anchor_highlighted_source_and_its_diff(report: str, run_dir: Path) -> None:
    dom = parse_dom(report)
    with Archive.open(run_dir / "archive") as archive:
        for c in archive.candidates():
            article = dom.by_id(f"cand-{c.id}")
            source = article.all("details", cls="source")[0]
            assert source.all("div", cls="hl") and source.all("span")  # pygments markup
            assert "".join(n.text(skip="linenos") for n in source.all("code")) == c.source
            diffs = article.all("details", cls="diff")
            if not c.parents:
                assert not diffs
                continue
            assert diffs[0].all("summary")[0].text() == f"Diff to parent #{c.parents[0]}"
            assert "".join(n.text() for n in diffs[0].all("pre")) == archive.diff(c.id)


def test_lineage_shows_the_ancestry_of_each_front_member(report: str, run_dir: Path) -> None:
    lineage = parse_dom(report).by_id("lineage")
    links = [a.attrs["href"] for a in lineage.all("ul", cls="tree")[0].all("a")]
    with Archive.open(run_dir / "archive") as archive:
        for member in archive.front():
            assert all(f"#cand-{c.id}" in links for c in archive.lineage(member.id))
        assert lineage.all("ul", cls="tree")[0].text().count("★") == len(archive.front())


def test_program_limit_keeps_the_front_and_says_so(run_dir: Path) -> None:
    dom = parse_dom(run_report(run_dir, max_programs=1))
    with Archive.open(run_dir / "archive") as archive:
        front = {c.id for c in archive.front()}
        total = len(archive)
    shown = {int(a.attrs["id"].removeprefix("cand-")) for a in dom.all("article", cls="program")}
    assert shown == front
    assert f"{len(front)} of {total} programs are included" in dom.by_id("programs").text()
    hidden = min(set(range(total)) - front)
    first_cell = dom.by_id("candidates-table").rows()[hidden].all("td")[0]
    assert first_cell.text() == f"#{hidden}" and not first_cell.all("a")  # no link to a missing anchor


def test_hostile_program_text_is_escaped(tmp_path: Path) -> None:
    meta = RunMeta(run="evil", task="toy", objectives=(Objective("error", "min"),),
                   constraints=(Constraint("error", "<=", 1.0),))
    evil = 'x = "</script><script>alert(1)</script>"\n'
    result = EvalResult(status="ok", metrics={"error": 0.5}, feasible=True, violation=0.0)
    with Archive.create(tmp_path / "evil" / "archive", meta) as archive:
        archive.add_batch([Candidate(source=evil, result=result, description="<b>bold</b>")], {})
    document = run_report(tmp_path / "evil")
    assert "<script>alert(1)" not in document and "<b>bold</b>" not in document
    assert len(parse_dom(document).all("script")) == 1
    assert "alert(1)" in parse_dom(document).by_id("cand-0").text()


def test_comparison_report(run_dir: Path, tmp_path: Path) -> None:
    other = toy_run(tmp_path, "islands", evaluations=6, strategy="islands")
    stats = compute(Comparison("duo", tmp_path, (Group("hill", (run_dir,)), Group("isl", (other,)))))
    document = comparison_report(stats)
    assert_self_contained(document)
    dom = parse_dom(document)
    rows = dom.by_id("compare-table").rows()
    assert [r.all("td")[0].text() for r in rows] == ["hill", "isl"]
    assert len(dom.all("img")) == 3
    assert "within noise" in dom.by_id("differences").text()
    for run in stats.runs:
        article = dom.by_id(f"run-{run.name}")
        assert len(article.all("article", cls="program")) == len(run.history.front)
    hv = next(m for m in stats.measures if m.key == "hypervolume")
    assert all(math.isfinite(hv.value(r)) for r in stats.runs)
