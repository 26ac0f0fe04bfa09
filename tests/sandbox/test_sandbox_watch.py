"""The zygote's watch over its jailed workers (evolve/sandbox/watch.py): one loop supervising every
job of a zygote, so each rule a per-job supervisor kept must hold for many jobs at once."""

from __future__ import annotations

import threading
import time

import psutil
import pytest
from sandbox_testlib import call, children_whose, wait_until

from evolve.sandbox import Limits, Sandbox
from evolve.sandbox.zygote import SPARES_AHEAD, ForkServer


@pytest.fixture
def box() -> Sandbox:
    with Sandbox("forkserver", preload=("json",)) as sandbox:
        if not sandbox.run(call("add", a=1)).containment.get("private_view"):
            pytest.skip("no private namespaces on this host: unjailed workers keep a supervisor each")
        yield sandbox


def test_concurrent_jobs_keep_their_own_deadlines_and_reports(box: Sandbox) -> None:
    # Rule: one loop, a deadline per job -- a job past its timeout is killed without touching the
    # others, and each report reaches its own job.
    jobs = {
        "hung": (call("sleep_forever"), Limits(timeout_s=1)),
        "slow": (call("echo_after", value="slow", delay=2.0), Limits(timeout_s=30)),
        "quick": (call("add", a=7), Limits(timeout_s=30)),
    }
    results: dict[str, object] = {}

    def run(name: str) -> None:
        job, limits = jobs[name]
        results[name] = box.run(job, limits=limits)

    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    hung, slow, quick = (results[name] for name in ("hung", "slow", "quick"))
    assert hung.status == "timeout", (hung.status, hung.error)
    assert (slow.status, slow.value) == ("ok", "slow")
    assert (quick.status, quick.value["sum"]) == ("ok", 7)


def test_a_job_that_ends_before_the_zygote_hears_of_it_is_reported_with_its_own_wall(
        box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule: the parent hands the job to the worker first and tells the zygote after; a job that has
    # ended by then is reaped at once and reported when the zygote hears of it, timed from the
    # hand-over to its end -- not to when the zygote heard.
    tell = ForkServer._tell

    def late(self: ForkServer, message: bytes, fds: list[int]) -> None:
        if message.startswith(b"J"):
            time.sleep(1.0)
        tell(self, message, fds)

    monkeypatch.setattr(ForkServer, "_tell", late)
    result = box.run(call("add", a=5))
    assert (result.status, result.value["sum"]) == ("ok", 5)
    assert 0 < result.wall_s < 1.0  # from the hand-over (the parent's clock) to the reaping


def test_the_zygote_keeps_nothing_of_finished_jobs(box: Sandbox) -> None:
    # Rule: every worker is reaped (wait4) and every init killed and reaped: after jobs that end in
    # every way -- ok, error, timeout, leaving a daemon behind -- the zygote's children are the next
    # spares and their inits, and not one zombie.
    for job, limits in [
        (call("add", a=1), Limits()),
        (call("raise_value_error"), Limits()),
        (call("sleep_forever"), Limits(timeout_s=0.5)),
        (call("orphan_and_return"), Limits()),
        (call("hard_exit", code=3), Limits()),
    ]:
        box.run(job, limits=limits)
    (zygote,) = children_whose("-m evolve.sandbox.zygote")

    def settled() -> bool:
        kids = psutil.Process(zygote).children()
        names = sorted(kid.name() for kid in kids if kid.status() != psutil.STATUS_ZOMBIE)
        zombies = [kid for kid in kids if kid.status() == psutil.STATUS_ZOMBIE]
        return not zombies and names == sorted(["evolve-spare"] * SPARES_AHEAD + ["cat"] * SPARES_AHEAD)

    assert wait_until(settled), [(k.pid, k.name(), k.status()) for k in psutil.Process(zygote).children()]


ENDINGS = {  # how a job may end, and how its result must read
    "ok": (lambda i: call("add", a=i), Limits(timeout_s=30), lambda r, i: r.ok and r.value["sum"] == i),
    "error": (lambda i: call("raise_value_error"), Limits(timeout_s=30), lambda r, i: r.status == "error"),
    "timeout": (lambda i: call("sleep_forever"), Limits(timeout_s=0.3), lambda r, i: r.status == "timeout"),
    "orphan": (lambda i: call("orphan_and_return"), Limits(timeout_s=30), lambda r, i: r.ok),
    "exit": (lambda i: call("hard_exit", code=3), Limits(timeout_s=30), lambda r, i: r.exit_code == 3),
    "segfault": (lambda i: call("segfault"), Limits(timeout_s=30), lambda r, i: r.status == "crashed"),
}


def test_many_concurrent_jobs_ending_every_way_each_get_their_own_report(box: Sandbox) -> None:
    # Rule: one loop watches them all -- descriptors closed and reused, jobs ending before the zygote
    # hears of them, deadlines and orphans interleaved -- and every report reaches its own job
    # (each ok job returns its own number), with nothing left in the zygote afterwards.
    wrong: list[tuple[str, str, object]] = []

    def run(seed: int) -> None:
        for j in range(25):
            ending = list(ENDINGS)[(seed + j) % len(ENDINGS)]
            make, limits, right = ENDINGS[ending]
            result = box.run(make(seed * 100 + j), limits=limits)
            if not right(result, seed * 100 + j):
                wrong.append((ending, result.status, result.error))

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong, wrong[:5]
    (zygote,) = children_whose("-m evolve.sandbox.zygote")
    assert wait_until(lambda: sorted(kid.name() for kid in psutil.Process(zygote).children())
                      == sorted(["evolve-spare"] * SPARES_AHEAD + ["cat"] * SPARES_AHEAD))


def test_a_setup_message_cut_short_fails_its_job_not_the_watch() -> None:
    # Rule: the zygote's loop watches every job, so nothing a worker wrote may raise in it -- a worker
    # killed while writing its setup line (a timeout during set-up) leaves half a JSON line.
    from evolve.sandbox import watch

    worker = watch._Watched(pid=0, pidfd=-1, setup_r=-1, init=0, init_pipe=-1,
                            setup=bytearray(b'{"prepared": true}\n{"containment": {"land'))
    assert watch._setup(worker) == {"setup_error": "the worker's setup message was cut short"}
    worker.setup = bytearray()
    assert watch._setup(worker) == {"setup_error": "the worker died during set-up"}
