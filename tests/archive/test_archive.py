"""The git-backed archive: identity, commits and trailers, front, queries, lineage/diff, state."""

from __future__ import annotations

import json
import math
import subprocess

import pytest
from archive_helpers import META, record
from hypothesis import given, settings
from hypothesis import strategies as st

from evolve.archive import Archive, ArchiveError, RunMeta
from evolve.pareto import non_dominated
from evolve.usage import Usage


def git(archive: Archive, *args: str) -> str:
    return subprocess.run(["git", "-C", str(archive.path), *args], check=True, capture_output=True,
                          text=True).stdout


def test_open_rejects_what_is_not_an_archive(tmp_path):
    with pytest.raises(ArchiveError, match="no such directory"):
        Archive.open(tmp_path / "missing")
    with pytest.raises(ArchiveError, match="not a git repository"):
        Archive.open(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path / "plain")], check=True)
    with pytest.raises(ArchiveError, match="not an evolve archive"):
        Archive.open(tmp_path / "plain")


def test_create_refuses_an_existing_path_and_empty_objectives(tmp_path, archive):
    with pytest.raises(ArchiveError, match="already exists"):
        Archive.create(archive.path, META)
    with pytest.raises(ArchiveError, match="at least one objective"):
        Archive.create(tmp_path / "other", RunMeta(run="r", task="t", objectives=()))
    assert not (tmp_path / "other").exists()
    assert [p.name for p in archive.path.parent.iterdir() if p.name.startswith(".")] == []


def test_meta_round_trips_and_is_readable_without_the_task(archive):
    with Archive.open(archive.path) as again:
        assert again.meta == archive.meta
        assert again.meta.objectives == META.objectives and again.meta.constraints == META.constraints
        assert again.meta.created_at is not None
    meta_json = json.loads(git(archive, "show", "refs/evolve/meta:meta.json"))
    assert meta_json["task"] == "toy" and meta_json["constraints"][0]["op"] == ">="


def test_meta_for_task_copies_what_the_task_declares():
    from evolve.plugins import Params as PluginParams
    from evolve.tasks import Task

    class Toy(Task):
        name = "toy"
        objectives = META.objectives
        constraints = META.constraints

        class Params(PluginParams):
            digits: int = 10

    meta = RunMeta.for_task("r1", Toy(digits=3), program_file="model.py", config={"seed": 1})
    assert (meta.run, meta.task, meta.task_options) == ("r1", "toy", {"digits": 3})
    assert meta.objectives == META.objectives and meta.constraints == META.constraints
    assert (meta.program_file, meta.config) == ("model.py", {"seed": 1})
    assert meta.point({"params_unique": 3, "peak_rss_mib": 2.5}) == (3.0, 2.5)
    assert meta.point({"params_unique": 3, "peak_rss_mib": float("nan")}) is None


def test_ids_are_sequential_and_lookups_accept_id_or_sha_prefix(archive):
    first = archive.add_batch([record(50), record(40, parents=(0,))], {})
    second = archive.add_batch([record(30, parents=(1,))], {})
    assert [c.id for c in first + second] == [0, 1, 2]
    c = second[0]
    assert archive.get(2) == c and archive.get("2") == c and archive.get("#2") == c
    assert archive.get(c.sha[:7]) == c and archive.get(c.sha.upper()[:10]) == c
    assert len(archive) == 3
    with pytest.raises(ArchiveError, match="no candidate #7"):
        archive.get(7)
    with pytest.raises(ArchiveError, match="4\\+ hex digits"):
        archive.get("zz")
    with pytest.raises(ArchiveError, match="no candidate has a sha"):
        archive.get("0000000")


def test_commit_parents_tree_and_trailers(archive):
    a, b = archive.add_batch([record(50), record(60, rss=10.0)], {})
    child, = archive.add_batch([record(45, parents=(a.id, b.id), mutator="llm-diff",
                                       description="share the embedding", usage=Usage(900, 120, 0.002, "qwen"),
                                       generation=1,
                                       island=0)], {})
    assert git(archive, "rev-list", "--parents", "-n1", a.sha).split() == [a.sha]  # seed: root
    assert git(archive, "rev-list", "--parents", "-n1", child.sha).split() == [child.sha, a.sha, b.sha]
    assert git(archive, "show", f"{child.sha}:program.py") == child.source
    stored = json.loads(git(archive, "show", f"{child.sha}:metrics.json"))
    assert stored["metrics"] == child.metrics and stored["parents"] == [0, 1]
    assert stored["status"] == "ok" and stored["mutator"] == "llm-diff" and stored["id"] == 2
    message = git(archive, "log", "-1", "--format=%B", f"refs/evolve/candidates/{child.id}")
    assert message.splitlines()[0] == "#2 llm-diff: share the embedding"
    trailers = git(archive, "log", "-1", "--format=%(trailers:only,unfold)", child.sha)
    for line in ("Evolve-Id: 2", "Evolve-Status: ok", "Evolve-Feasible: yes", "Evolve-Params-Unique: 45",
                 "Evolve-Accuracy: 1", "Evolve-Peak-Rss-Mib: 20", "Evolve-Mutator: llm-diff",
                 "Evolve-Model: qwen", "Evolve-Parents: 0 1", "Evolve-Generation: 1",
                 "Evolve-Island: 0", "Evolve-Prompt-Tokens: 900", "Evolve-Cost-Usd: 0.002"):
        assert line in trailers.splitlines(), line


def test_failed_candidates_are_archived_with_their_error(archive):
    crashed, = archive.add_batch([record(status="crashed")], {})
    assert archive.get(0).status == "crashed" and not crashed.feasible
    assert math.isinf(archive.get(0).violation)
    trailers = git(archive, "log", "-1", "--format=%(trailers:only)", crashed.sha)
    assert "Evolve-Status: crashed" in trailers and "Evolve-Error: RuntimeError: boom" in trailers
    assert "Evolve-Feasible: no" in trailers
    assert archive.front() == []


def test_front_excludes_infeasible_and_keeps_duplicates(archive):
    archive.add_batch([
        record(50, 30.0),                  # 0 front
        record(40, 40.0),                  # 1 front
        record(10, 10.0, accuracy=0.5),    # 2 dominates all but infeasible
        record(60, 50.0),                  # 3 dominated by 0
        record(status="error"),            # 4 failed
        record(40, 40.0),                  # 5 duplicate of 1: also on the front
        record(None, 5.0),                 # 6 feasible but an objective is missing
    ], {})
    assert [c.id for c in archive.front()] == [0, 1, 5]
    archive.add_batch([record(40, 30.0)], {})  # 7 dominates 0, 1 and 5
    assert [c.id for c in archive.front()] == [7]


small = st.integers(1, 5)  # few distinct values: ties and duplicates are common
candidate = st.tuples(small, small, st.sampled_from([0.5, 0.95, 1.0]),
                      st.sampled_from(["ok", "ok", "ok", "error"]))


@given(st.lists(st.lists(candidate, max_size=4), min_size=1, max_size=6))
@settings(max_examples=25, deadline=None)
def test_incremental_front_is_the_non_dominated_set_of_all_feasible_candidates(tmp_path_factory, batches):
    with Archive.create(tmp_path_factory.mktemp("front") / "archive", META) as archive:
        for batch in batches:
            archive.add_batch([record(p, float(r), a, status=s) for p, r, a, s in batch], {})
        feasible = [c for c in archive.candidates() if c.result.ok and c.feasible]
        expected = non_dominated([META.point(c.metrics) for c in feasible])
        assert [c.id for c in archive.front()] == [feasible[i].id for i in expected]
        listed = git(archive, "for-each-ref", "--format=%(refname)", "refs/front/").split()
        assert sorted(listed) == sorted(f"refs/front/{feasible[i].id}" for i in expected)


def test_front_branch_checks_out_the_best_programs(archive):
    archive.add_batch([record(50, 30.0), record(40, 40.0)], {})
    archive.add_batch([record(60, 60.0)], {})  # dominated: front unchanged, no new front commit
    archive.add_batch([record(30, 40.0)], {})  # replaces #1
    front = archive.front()
    assert [c.id for c in front] == [0, 3]
    git(archive, "checkout", "-q", "front")
    files = sorted(p.name for p in archive.path.iterdir() if p.name != ".git")
    assert files == ["0.py", "3.py", "front.json"]
    for c in front:
        assert (archive.path / f"{c.id}.py").read_text() == c.source
    listed = json.loads((archive.path / "front.json").read_text())
    assert [e["id"] for e in listed["candidates"]] == [0, 3]
    assert listed["objectives"] == ["params_unique", "peak_rss_mib"]
    history = git(archive, "log", "--format=%H %P %s", "front").splitlines()
    assert len(history) == 2  # one commit per change of the front, each parented on the last
    assert history[0].split()[1] == history[1].split()[0]
    assert history[0].endswith("Front after #3: 2 candidates")
    refs = git(archive, "for-each-ref", "--format=%(refname) %(objectname)", "refs/front/")
    assert refs.splitlines() == [f"refs/front/{c.id} {c.sha}" for c in front]


def test_lineage_and_diffs(archive):
    seed = "def f(x):\n    return x + 1\n"
    mid = "def f(x):\n    return x + 2\n"
    leaf = "def f(x):\n    y = x\n    return y + 2\n"
    archive.add_batch([record(50, source=seed), record(51, source="other = 1\n")], {})
    archive.add_batch([record(45, parents=(0,), source=mid)], {})
    archive.add_batch([record(44, parents=(2, 1), source=leaf)], {})
    assert [c.id for c in archive.lineage(3)] == [3, 2, 0]  # first parents down to the seed
    assert [c.id for c in archive.lineage(0)] == [0]
    assert archive.diff(3) == (
        "--- #2/program.py\n+++ #3/program.py\n@@ -1,2 +1,3 @@\n"
        " def f(x):\n-    return x + 2\n+    y = x\n+    return y + 2\n")
    assert archive.diff_seed(3) == (
        "--- #0/program.py\n+++ #3/program.py\n@@ -1,2 +1,3 @@\n"
        " def f(x):\n-    return x + 1\n+    y = x\n+    return y + 2\n")
    assert archive.diff(3, 1).startswith("--- #1/program.py\n+++ #3/program.py\n")
    assert archive.diff(0) == ("--- /dev/null\n+++ #0/program.py\n@@ -0,0 +1,2 @@\n"
                               "+def f(x):\n+    return x + 1\n")
    assert archive.diff_seed(0) == ""


def test_state_round_trips_with_its_batch(archive):
    assert archive.state() == {}
    archive.add_batch([record()], {"rng": [3, [1, 2]], "counters": {"evaluations": 1}})
    archive.add_batch([], {"rng": [3, [4, 5]], "counters": {"evaluations": 1}})  # state only
    with Archive.open(archive.path) as again:
        assert again.state() == {"rng": [3, [4, 5]], "counters": {"evaluations": 1}}
        assert len(again) == 1


def test_a_rejected_batch_leaves_the_archive_unchanged(archive):
    archive.add_batch([record()], {"n": 1})
    with pytest.raises(ArchiveError, match="parent 5 is not an earlier candidate id"):
        archive.add_batch([record(), record(parents=(5,))], {"n": 2})
    with pytest.raises(ArchiveError, match="state is not JSON-serialisable"):
        archive.add_batch([record()], {"n": object()})
    assert len(archive) == 1 and archive.state() == {"n": 1}
    assert [c.id for c in archive.add_batch([record(parents=(0,)), record(parents=(1,))], {})] == [1, 2]


def test_sorting_limits_and_direction(archive):
    archive.add_batch([record(30, accuracy=0.95), record(10, accuracy=0.5), record(20, accuracy=1.0),
                       record(status="timeout")], {})
    assert [c.id for c in archive.candidates("params_unique")] == [1, 2, 0, 3]  # missing last
    assert [c.id for c in archive.candidates("params_unique", limit=2)] == [1, 2]
    assert [c.id for c in archive.candidates("accuracy")] == [2, 0, 1, 3]  # >= constraint: high first
    assert [c.id for c in archive.candidates("params_unique", descending=True)] == [0, 2, 1, 3]
    assert [c.id for c in archive.candidates("params_unique", feasible_only=True)] == [2, 0]
    assert [c.id for c in archive.front("params_unique")] == [2]
    with pytest.raises(ArchiveError, match="unknown sort key 'speed'"):
        archive.candidates("speed")


def test_summary(archive):
    archive.add_batch([record(30, 25.0, usage=Usage(100, 10, 0.5)),
                       record(20, 40.0, usage=Usage(50, 5, 0.25)),
                       record(5, 5.0, accuracy=0.1), record(status="error")], {})
    s = archive.summary()
    assert (s.evaluations, s.feasible, s.front_size) == (4, 2, 2)
    assert s.feasible_pct == 50.0 and s.statuses == {"error": 1, "ok": 3}
    assert s.best == {"params_unique": {"id": 1, "value": 20}, "peak_rss_mib": {"id": 0, "value": 25.0}}
    assert s.spent == Usage(150, 15, 0.75)
    assert s.eval_wall_s == 2.0 and s.elapsed_s >= 0


def test_git_log_tells_the_story_and_fsck_is_clean(archive):
    archive.add_batch([record(50)], {})
    archive.add_batch([record(40, parents=(0,), mutator="rewrite", description="smaller")], {})
    log = git(archive, "log", "--format=%s", "refs/evolve/candidates/1")
    assert log.splitlines() == ["#1 rewrite: smaller", "#0 seed: params=50 rss=20.0 acc=1.0"]
    assert "Checkpoint: 2 candidates (+#1..#1)" in git(archive, "log", "-1", "--format=%s",
                                                       "refs/evolve/state")
    fsck = subprocess.run(["git", "-C", str(archive.path), "fsck", "--full", "--strict"],
                          capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_summary_spend_is_the_runs_counters_when_saved(archive):
    """Rejected mutations and agent turns cost tokens no candidate carries: the run's counters,
    saved with each batch, are the totals; the candidates' sum was short by 5-48 %."""
    archive.add_batch([record(30, 25.0, usage=Usage(100, 10, 0.5))],
                      {"counters": {"prompt_tokens": 400, "completion_tokens": 60, "cost_usd": 2.0, "rejected": 3}})
    s = archive.summary()
    assert (s.spent, s.rejected) == (Usage(400, 60, 2.0), 3)
    assert (s.other_tokens, s.other_cost_usd) == (350, 1.5)
