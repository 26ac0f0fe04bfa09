"""The Ray backend on a real multi-node cluster on this machine (Ray's own ``cluster_utils.Cluster``).

One cluster per module: a head node with no CPUs (the driver only: evaluations never run there) and
two 1-CPU worker nodes; the ``nodes`` fixture tops them up after a test removed some (the tests that
remove nodes come last, so it rarely has to). The GCS health check is tightened so a removed node
is declared dead in ~1 s instead of ~30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from evolve.archive import Archive
from evolve.config import parse_config
from evolve.errors import UserError
from evolve.run import EvolutionRun
from evolve.tasks import load_task_file
from evolve.testing import sleep_task

pytestmark = pytest.mark.slow  # a cluster takes seconds to start; the module ~75 s on a busy 2-core machine

ROOT = Path(__file__).resolve().parents[2]
SLEEP_TASK = Path(sleep_task.__file__)
WORKERS = 2


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    fast_death = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
                  "health_check_timeout_ms": 300, "health_check_failure_threshold": 3}
    # The nodes' processes inherit the environment: TMPDIR keeps what a removed node leaves behind (its
    # actor's folder, a sandbox job still sleeping) in a folder that goes with the module, not in
    # /tmp; no usage statistics are sent anywhere (the tests run offline).
    tmp = tempfile.mkdtemp(prefix="evray")
    saved = {k: os.environ.get(k) for k in ("TMPDIR", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(TMPDIR=tmp, RAY_USAGE_STATS_ENABLED="0")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                         "_system_config": fast_death})
    try:
        ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.update({key: value})
        remove_with_mounts(tmp)


def remove_with_mounts(folder: str) -> None:
    """Remove ``folder``, detaching first the job tmpfs mounts that killed actors left in it."""
    from evolve.sandbox import jail

    for line in Path("/proc/mounts").read_text().splitlines():
        mount_point = line.split()[1]
        if mount_point.startswith(folder + "/"):
            jail.unmount(mount_point)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def nodes(cluster: Any) -> list[str]:
    """The ids of the cluster's live 1-CPU worker nodes, topped up to :data:`WORKERS`."""
    while len(cluster.worker_nodes) < WORKERS:
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    return [n.node_id for n in cluster.worker_nodes]


def sleep_evaluator(cluster: Any, sleep_s: float, slots: int) -> Any:
    from evolve.parallel.ray_cluster import RayEvaluator, TaskSpec

    task = load_task_file(SLEEP_TASK)(sleep_s=sleep_s)
    return RayEvaluator(TaskSpec.of(task, str(SLEEP_TASK)), address=cluster.address, slots=slots)


def wait_until(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_evaluations_run_on_both_nodes_with_a_task_file_shipped_to_them(cluster: Any, nodes: list[str]) -> None:
    with sleep_evaluator(cluster, 0.3, slots=2) as evaluator:
        assert evaluator.slots == 2
        results = evaluator.evaluate_all([sleep_task.SEED] * 4)
    assert [(r.status, r.metrics) for r in results] == [("ok", {"error": 4 + 12.25})] * 4
    assert dict(evaluator.ran_on) == {node: 2 for node in nodes}  # one slot per node, two jobs each
    assert evaluator.retried == 0


def run_config(tmp_path: Path, name: str, backend: str, address: str, **over: Any) -> Any:
    data: dict[str, Any] = {
        "run": {"name": name, "output_dir": str(tmp_path / "runs"), "seed": 3},
        "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "mutators": [{"name": "numeric"}],
        "budget": {"max_evaluations": 10},
        "parallel": {"evaluations": 2, "backend": backend, "address": address},
    }
    data.update(over)
    return parse_config(data)


def archived(run: EvolutionRun) -> list[tuple[Any, ...]]:
    with Archive.open(run.archive_dir) as archive:
        return [(c.id, c.parents, c.source, c.result.status, c.result.metrics, c.result.feasible)
                for c in archive.candidates()]


def test_a_ray_run_archives_what_a_local_run_archives(cluster: Any, nodes: list[str], tmp_path: Path) -> None:
    """Batch mode on the deterministic toy task: same sources, parents and metrics (no timing or memory
    figure is a toy metric), wherever the evaluations ran."""
    runs = {}
    for backend in ("local", "ray"):
        runs[backend] = EvolutionRun(run_config(tmp_path, backend, backend, cluster.address))
        outcome = runs[backend].execute()
        assert outcome.counters.evaluations == 10 and outcome.counters.evaluations_retried == 0
    local, remote = archived(runs["local"]), archived(runs["ray"])
    assert len(local) == 10 and len({c[2] for c in local}) > 5
    assert remote == local


def test_close_does_not_wait_for_running_evaluations_and_frees_the_cpus(cluster: Any, nodes: list[str]) -> None:
    import ray

    evaluator = sleep_evaluator(cluster, 30.0, slots=2)
    futures = [evaluator.submit(sleep_task.SEED) for _ in range(3)]
    wait_until(lambda: all(evaluator.node_of(f) for f in futures[:2]))
    time.sleep(0.5)  # both evaluations are running
    start = time.perf_counter()
    evaluator.close()
    assert time.perf_counter() - start < 0.1
    wait_until(lambda: ray.available_resources().get("CPU", 0) == WORKERS, timeout_s=15)  # the actors are gone
    assert not any(f.done() for f in futures)  # abandoned, as locally


def driver_config(tmp_path: Path, name: str, budget: int, mode: str = "batch") -> dict[str, Any]:
    """A sleep-task run (1 s per candidate, 2 slots) for a driver in its own process."""
    seed = tmp_path / "seed.py"
    seed.write_text(sleep_task.SEED)
    return {"run": {"name": name, "output_dir": str(tmp_path / "runs"), "seed": 1},
            "task": {"file": str(SLEEP_TASK), "options": {"sleep_s": 1.0}}, "seeds": [str(seed)],
            "mutators": [{"name": "numeric"}], "budget": {"max_evaluations": budget},
            "parallel": {"evaluations": 2, "backend": "ray", "address": "", "mode": mode}}


def start_driver(cluster: Any, tmp_path: Path, data: dict[str, Any]) -> "subprocess.Popen[str]":
    """``evolve run`` on ``data`` in its own process, its stderr piped; returns once it filed 3 candidates
    (the seed and the first batch: the next children are being evaluated on the cluster)."""
    data["parallel"]["address"] = cluster.address
    (tmp_path / "c.yaml").write_text(json.dumps(data))  # JSON is YAML
    log = tmp_path / "runs" / data["run"]["name"] / "run.log"
    driver = subprocess.Popen([sys.executable, "-c", "import sys\nfrom evolve.cli import main\nsys.exit(main(sys.argv[1:]))",
                               "run", str(tmp_path / "c.yaml")], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: log.exists() and log.read_text().count('"event": "evaluation"') >= 3, timeout_s=60)
    except BaseException:
        driver.kill()
        driver.wait()
        raise
    time.sleep(0.3)
    return driver


def log_events(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "runs" / name / "run.log").read_text().splitlines()]


@pytest.mark.parametrize("mode", ["batch", "async"])
def test_a_driver_killed_with_sigkill_resumes_and_ray_ends_its_actors(cluster: Any, nodes: list[str], tmp_path: Path,
                                                                    mode: str) -> None:
    """The archive is the driver's, so a resume is a local one; Ray ends a dead driver's actors (the
    CPUs they claimed come back). In async mode too: the run finishes within its budget and files
    every child it started exactly once."""
    import ray

    data = driver_config(tmp_path, "killed", budget=7, mode=mode)
    driver = start_driver(cluster, tmp_path, data)
    driver.kill()
    driver.communicate()
    wait_until(lambda: ray.available_resources().get("CPU", 0) == WORKERS, timeout_s=30)
    with Archive.open(tmp_path / "runs" / "killed" / "archive") as archive:
        assert 3 <= len(archive.candidates()) < 7  # killed mid-run
    outcome = EvolutionRun(parse_config(data), resume=True).execute()
    assert outcome.counters.evaluations == 7
    with Archive.open(tmp_path / "runs" / "killed" / "archive") as archive:
        assert [c.id for c in archive.candidates()] == list(range(7))
        assert all(c.result.status == "ok" for c in archive.candidates())
    events = log_events(tmp_path, "killed")
    assert [e["id"] for e in events if e["event"] == "evaluation"] == list(range(7))  # each filed once, none lost
    resumed = events[next(i for i, e in enumerate(events) if e["event"] == "run.resume"):]
    if mode == "async":  # every child started in the resumed session was filed, and only once
        started = [e["child"] for e in resumed if e["event"] == "evaluation.start"]
        assert sorted(started) == sorted({e["child"] for e in resumed if e["event"] == "evaluation.end"})
        assert len(started) == sum(e["event"] == "evaluation" for e in resumed)
    else:
        assert not any(e["event"] == "evaluation.start" for e in events)


def test_a_node_that_joins_mid_run_takes_the_missing_slots(cluster: Any, nodes: list[str]) -> None:
    """Rule: RayEvaluator._dispatch looks for nodes while slots are missing (3 wanted, 2 one-CPU nodes)."""
    from evolve.parallel.ray_cluster import RayEvaluator, TaskSpec

    events: list[tuple[str, dict[str, Any]]] = []
    task = load_task_file(SLEEP_TASK)(sleep_s=0.5)
    evaluator = RayEvaluator(TaskSpec.of(task, str(SLEEP_TASK)), address=cluster.address, slots=3,
                             on_event=lambda event, **fields: events.append((event, fields)))
    joined = None
    try:
        assert evaluator.slots == 2
        futures = [evaluator.submit(sleep_task.SEED) for _ in range(3)]
        joined = cluster.add_node(num_cpus=1)
        deadline = time.monotonic() + 60
        while not evaluator.ran_on[joined.node_id]:  # keep the run going until the new node has evaluated
            assert time.monotonic() < deadline, "the joined node never evaluated"
            assert all(r.ok for r in [f.result(timeout=60) for f in futures])
            futures = [evaluator.submit(sleep_task.SEED) for _ in range(3)]
        assert evaluator.slots == 3 and evaluator.retried == 0
        assert ("ray.node_joined", {"node": joined.node_id, "slots": 1}) in events
    finally:
        evaluator.close()
        if joined is not None:
            cluster.remove_node(joined)


def test_a_replacement_that_cannot_start_does_not_keep_the_run_waiting(cluster: Any, nodes: list[str]) -> None:
    """Rule: RayEvaluator._expire_starting. Both nodes are lost mid-evaluation; the only replacement
    sits on a node whose CPU another run holds, so its evaluator never starts: after the join timeout
    the jobs fail with the every-node-lost error instead of waiting for ever."""
    import ray

    from evolve.parallel.ray_cluster import ClusterError, RayEvaluator, TaskSpec

    task = load_task_file(SLEEP_TASK)(sleep_s=5)
    evaluator = RayEvaluator(TaskSpec.of(task, str(SLEEP_TASK)), address=cluster.address, slots=2,
                             join_timeout_s=3)
    busy = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()

    @ray.remote(num_cpus=1)
    class Squatter:  # another run's actor, holding the new node's only CPU
        def ping(self) -> bool:
            return True

    strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(busy.node_id, soft=False)
    squatter = Squatter.options(scheduling_strategy=strategy).remote()  # type: ignore[attr-defined]
    try:
        ray.get(squatter.ping.remote(), timeout=60)
        futures = [evaluator.submit(sleep_task.SEED) for _ in range(2)]
        wait_until(lambda: all(evaluator.node_of(f) in nodes for f in futures))
        for node in [n for n in cluster.worker_nodes if n.node_id in nodes]:
            cluster.remove_node(node)  # both jobs are lost once and wait for the replacement
        for future in futures:
            with pytest.raises(ClusterError, match="every node of the Ray cluster"):
                future.result(timeout=60)
    finally:
        evaluator.close()
        ray.kill(squatter)
        cluster.remove_node(busy)


def test_a_node_lost_mid_run_retries_its_evaluations_elsewhere_and_counts_them(cluster: Any, nodes: list[str],
                                                                              tmp_path: Path) -> None:
    doomed = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    seed = tmp_path / "seed.py"
    seed.write_text(sleep_task.SEED)
    config = run_config(tmp_path, "lost", "ray", cluster.address, seeds=[str(seed)],
                        task={"file": str(SLEEP_TASK), "options": {"sleep_s": 1.5}},
                        budget={"max_evaluations": 9}, parallel={"evaluations": 3, "backend": "ray"})
    log = config.run_dir / "run.log"
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(EvolutionRun(config).execute()))  # the archive is the thread's
    thread.start()
    # the seed is filed: the first batch of 3 (one on each node) has just started
    wait_until(lambda: log.exists() and '"event": "evaluation"' in log.read_text())
    time.sleep(0.5)
    cluster.remove_node(doomed)
    thread.join(timeout=120)
    assert outcome, "the run did not finish"
    counters = outcome[0].counters
    assert counters.evaluations == 9 and counters.evaluations_retried >= 1
    events = [json.loads(line) for line in log.read_text().splitlines()]
    [start] = [e for e in events if e["event"] == "ray.start"]
    assert start["slots"] == 3 and doomed.node_id in start["nodes"]  # one slot on each of the three nodes
    retries = [e for e in events if e["event"] == "evaluation.retry"]
    assert len(retries) == counters.evaluations_retried and {e["node"] for e in retries} == {doomed.node_id}
    assert [e["node"] for e in events if e["event"] == "ray.node_lost"] == [doomed.node_id]
    assert events[-1]["event"] == "run.stop" and events[-1]["retried"] == counters.evaluations_retried
    with Archive.open(config.run_dir / "archive") as archive:
        assert all(c.result.status == "ok" for c in archive.candidates())  # nothing lost, nothing crashed
        assert archive.state()["evaluations_retried"] == counters.evaluations_retried


def test_an_evaluation_lost_with_two_nodes_comes_back_crashed(cluster: Any, nodes: list[str]) -> None:
    evaluator = sleep_evaluator(cluster, 10.0, slots=1)
    try:
        [future] = [evaluator.submit(sleep_task.SEED)]
        by_id = {n.node_id: n for n in cluster.worker_nodes}
        wait_until(lambda: evaluator.node_of(future) is not None)
        first = evaluator.node_of(future)
        time.sleep(0.5)
        cluster.remove_node(by_id[first])
        wait_until(lambda: evaluator.node_of(future) not in (None, first))
        time.sleep(0.5)
        cluster.remove_node(by_id[evaluator.node_of(future)])
        result = future.result(timeout=60)
    finally:
        evaluator.close()
    assert result.status == "crashed" and result.error.startswith("the evaluation was lost with its node twice")
    assert evaluator.retried == 1


def test_an_unreachable_address_is_one_line_and_leaves_no_run(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    config = run_config(tmp_path, "bad", "ray", "127.0.0.1:1")
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"^parallel.address: no Ray cluster answers at '127.0.0.1:1' .*ray start --head") as exc:
        EvolutionRun(config)
    assert "\n" not in str(exc.value) and time.perf_counter() - start < 10
    assert not config.run_dir.exists()


def test_backend_ray_without_ray_installed_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    """Rule: ParallelSection's backend check in config._check_semantics (Ray is blocked in a fresh
    interpreter the way Python blocks imports: ``sys.modules["ray"] = None``)."""
    data = {"run": {"name": "x"}, "task": {"name": "toy"}, "seeds": [str(ROOT / "seeds/toy/start.py")],
            "budget": {"max_evaluations": 2}, "parallel": {"backend": "ray"}}
    code = ("import sys; sys.modules['ray'] = None\n"
            "from evolve.config import parse_config\nfrom evolve.errors import UserError\n"
            f"try:\n    parse_config({data!r}, 'c.yaml')\nexcept UserError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120).stdout
    assert out == "c.yaml: parallel.backend: ray needs Ray, which is not installed: pip install -e '.[ray]'\n"


@pytest.mark.parametrize("address, rule", [
    ("ray://10.0.0.5:10001", r"Ray Client \(ray://\) addresses are not supported: evolve is the cluster's driver"),
    ("10.0.0.5", "expected auto or HOST:PORT"),
    ("10.0.0.5:99999", "expected auto or HOST:PORT"),
])
def test_a_malformed_address_is_a_config_error(tmp_path: Path, address: str, rule: str) -> None:
    """Rule: ParallelSection._address."""
    with pytest.raises(UserError, match=rule):
        run_config(tmp_path, "x", "local", address)


def test_every_node_lost_stops_the_run_with_one_line_and_a_resumable_archive(cluster: Any, nodes: list[str],
                                                                             tmp_path: Path) -> None:
    """Rule: RayEvaluator._fail_queued (no node left: a ClusterError, printed as one line, exit 2). What
    was filed stays filed, and --resume continues once nodes are back."""
    data = driver_config(tmp_path, "orphan", budget=7)
    driver = start_driver(cluster, tmp_path, data)
    try:
        for node in list(cluster.worker_nodes):
            cluster.remove_node(node)
        _, err = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode == 2
    line = (f"evolve: every node of the Ray cluster at {cluster.address!r} that evaluated for this run was lost "
            "(resume with --resume once the cluster is back)")
    assert err.splitlines()[-1] == line and "Traceback" not in err  # above it: the progress bar, nothing from Ray
    filed = [e["id"] for e in log_events(tmp_path, "orphan") if e["event"] == "evaluation"]
    stop = log_events(tmp_path, "orphan")[-1]  # the run log says why the run ended, after every filing
    assert stop["event"] == "run.stop" and stop["reason"] == "error" and stop["error"] == line.removeprefix("evolve: ")
    with Archive.open(tmp_path / "runs" / "orphan" / "archive") as archive:
        before = [(c.id, c.source, c.result.status) for c in archive.candidates()]
    assert len(filed) >= 3 and [c[0] for c in before] == filed == list(range(len(filed)))
    assert {c[2] for c in before} == {"ok"}
    for _ in range(WORKERS):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    data["budget"]["max_evaluations"] = budget = len(before) + 2  # one more batch is proof enough
    outcome = EvolutionRun(parse_config(data), resume=True).execute()
    assert outcome.counters.evaluations == budget
    with Archive.open(tmp_path / "runs" / "orphan" / "archive") as archive:
        after = [(c.id, c.source, c.result.status) for c in archive.candidates()]
    assert after[:len(before)] == before and [c[0] for c in after] == list(range(budget))


def test_a_ray_client_address_in_ray_address_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: ray_cluster.connect (``auto`` reads RAY_ADDRESS, which Ray would take as a Ray Client address)."""
    from evolve.parallel.ray_cluster import ClusterError, connect

    monkeypatch.setenv("RAY_ADDRESS", "ray://10.0.0.5:10001")
    with pytest.raises(ClusterError, match=r"^RAY_ADDRESS: Ray Client \(ray://\) addresses are not supported: evolve "
                                           r"is the cluster's driver and must run on one of its nodes") as exc:
        connect("auto")
    assert "\n" not in str(exc.value)
