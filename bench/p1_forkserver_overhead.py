"""P1: per-candidate overhead of the forkserver, before vs after a change, side by side in one run.

The candidate is a call job that builds a tiny ``nn.Linear`` and runs one forward, so almost all of
the time measured is sandbox overhead. Each variant runs in its own measuring process, driven in
interleaved rounds so that load drifts on a shared machine hit all of them alike:

- ``before``: the sandbox of ``--baseline`` (a git revision, extracted with ``git archive``);
- ``after``: the sandbox of this checkout;

each with every layer (private namespaces, uid 65534, cgroups, tmpfs workdir) and without the
private namespaces. Figures per candidate: the parent's wall time per ``Sandbox.run`` (median, min)
and the CPU time of the variant's whole process tree (parent, zygote, supervisors, workers: a
cpuacct cgroup, where the host has one) divided by the jobs run -- on a busy 2-core machine wall
time mostly measures the queue for a core, CPU time what the sandbox costs. Fresh mode (a new
interpreter importing torch per candidate) is measured once for scale.

    python bench/p1_forkserver_overhead.py [--baseline f930866] [--jobs 40] [--fresh 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANDIDATE = """
import torch

def run():
    model = torch.nn.Linear(8, 4)
    with torch.no_grad():
        return model(torch.ones(1, 8)).shape[-1]
"""
ROUND = 5  # jobs per variant per round
_CPUACCT = Path("/sys/fs/cgroup/cpuacct")


# --- the measuring process (one per variant) -----------------------------------------------------
def _own_cpuacct(name: str) -> Path | None:
    """Move this process (and so everything it starts) into a new cpuacct cgroup."""
    group = _CPUACCT / name
    try:
        group.mkdir()
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return None
    return group


def _measure(mode: str, namespaces: bool, name: str) -> None:
    """Serve rounds on stdin ("N" -> run N jobs, print wall times and CPU ns)."""
    group = _own_cpuacct(name)
    from evolve.sandbox import Job, Limits, Sandbox

    limits = Limits(timeout_s=120)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.py"
        path.write_text(CANDIDATE)
        job = Job.call("candidate:run", files={"candidate.py": str(path)})
        with Sandbox(mode, preload=("torch",), private_namespaces=namespaces) as box:  # type: ignore[arg-type]
            start = time.perf_counter()
            box.run(job, limits=limits)  # starts the zygote (imports torch once); not counted
            print(json.dumps({"startup_s": time.perf_counter() - start}), flush=True)
            for line in sys.stdin:
                before = _usage(group)
                walls = []
                for _ in range(int(line)):
                    t = time.perf_counter()
                    result = box.run(job, limits=limits)
                    walls.append(time.perf_counter() - t)
                    if result.value != 4:
                        raise SystemExit(f"candidate failed: {result.status}: {result.error}")
                cpu = None if group is None else _usage(group) - before
                print(json.dumps({"wall": walls, "cpu_ns": cpu}), flush=True)


def _usage(group: Path | None) -> int:
    return int((group / "cpuacct.usage").read_text()) if group is not None else 0


# --- the driver ----------------------------------------------------------------------------------
class Variant:
    def __init__(self, label: str, tree: Path, mode: str, namespaces: bool) -> None:
        self.label = label
        self.name = f"evolve-p1-{os.getpid()}-{len(label)}-{abs(hash(label)) % 10**6}"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        args = [sys.executable, __file__, "--measure", mode, str(int(namespaces)), self.name]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, cwd=tree)
        self.startup = json.loads(self._read())["startup_s"]
        self.walls: list[float] = []
        self.cpu_ns: list[int] = []
        self.jobs = 0

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.label}: the measuring process died")
        return line

    def round(self, jobs: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{jobs}\n")
        self.proc.stdin.flush()
        data = json.loads(self._read())
        self.walls += data["wall"]
        self.jobs += jobs
        if data["cpu_ns"] is not None:
            self.cpu_ns.append(data["cpu_ns"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()
        try:
            (_CPUACCT / self.name).rmdir()
        except OSError:
            pass

    def row(self) -> str:
        cpu = f"{sum(self.cpu_ns) / self.jobs / 1e6:>9.1f}" if self.cpu_ns else f"{'n/a':>9}"
        walls = [w * 1000 for w in self.walls]
        return f"{self.label:<34} {len(walls):>4} {statistics.median(walls):>10.1f} {min(walls):>8.1f} {cpu}"


def _extract(revision: str, into: Path) -> Path:
    """The baseline's packages, from git (``git archive``), in a directory of their own."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "evolve", "evaluators"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="f930866", help="git revision measured as 'before' (default f930866)")
    parser.add_argument("--jobs", type=int, default=40, help="forkserver jobs per variant (default 40)")
    parser.add_argument("--fresh", type=int, default=3, help="fresh-mode jobs, for scale (default 3; 0 skips)")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        mode, namespaces, name = args.measure
        _measure(mode, namespaces == "1", name)
        return
    with tempfile.TemporaryDirectory() as tmp:
        before = _extract(args.baseline, Path(tmp))
        variants = [Variant(f"{when}, {layers}", tree, "forkserver", ns)
                    for when, tree in ((f"before ({args.baseline})", before), ("after (this checkout)", ROOT))
                    for layers, ns in (("all layers", True), ("no namespaces", False))]
        try:
            for _ in range(max(1, args.jobs // ROUND)):
                for variant in variants:
                    variant.round(ROUND)
            fresh = None
            if args.fresh:
                fresh = Variant("fresh (after), all layers", ROOT, "fresh", True)
                fresh.round(args.fresh)
        finally:
            for variant in variants + ([fresh] if fresh else []):
                variant.close()
    print(f"zygote start-up + first job (paid once per task): {variants[2].startup * 1000:.0f} ms")
    print(f"{'variant':<34} {'n':>4} {'median ms':>10} {'min ms':>8} {'CPU ms':>9}")
    for variant in variants + ([fresh] if fresh else []):
        print(variant.row())
    old, new = (statistics.median(v.walls) for v in (variants[0], variants[2]))
    print(f"after/before, all layers (medians of wall): {new / old:.2f}x")
    if variants[0].cpu_ns and variants[2].cpu_ns:
        old_cpu, new_cpu = (sum(v.cpu_ns) / v.jobs for v in (variants[0], variants[2]))
        print(f"after/before, all layers (CPU per candidate): {new_cpu / old_cpu:.2f}x")
    verdict = "PASS" if new <= 0.015 else "MISS"
    print(f"target: forkserver with every layer <= 15 ms per candidate (median wall) -> {verdict}")


if __name__ == "__main__":
    main()
