"""Per-candidate cost of a script job (the toy task's seed), fresh vs forked, side by side in one run.

- ``fresh``: a new interpreter per candidate (``python -s program.py`` exec'd in the sandbox);
- ``forked``: the script zygote's worker runs it in-process (``Sandbox("forkserver")``, which the
  toy task uses), with the same layers (namespaces, uid, seccomp, Landlock, cgroups, rlimits);
- ``plain subprocess``: ``python program.py`` with no isolation and no measurement, which is what an
  OpenEvolve evaluator typically does, for scale.

Each variant runs in its own measuring process, driven in interleaved rounds so that load drifts hit
all alike; figures per candidate: the parent's wall time (median, min) and the CPU time of the
variant's whole process tree (a cpuacct cgroup, where the host has one) divided by the candidates.

    python bench/script_isolation.py [--jobs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "toy" / "start.py"
ROUND = 5
_CPUACCT = Path("/sys/fs/cgroup/cpuacct")
VARIANTS = ("fresh", "forked", "plain subprocess")


def _measure(variant: str, name: str) -> None:
    """Serve rounds on stdin ("N" -> run N candidates, print wall times and CPU ns)."""
    group = _CPUACCT / name
    try:
        group.mkdir()
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        group = None  # type: ignore[assignment]
    from evolve.sandbox import Job, Limits, Sandbox

    limits = Limits(timeout_s=10, memory_mb=1024)  # the toy task's
    job = Job.script("program.py", files={"program.py": str(SEED)})
    mode = "fresh" if variant == "fresh" else "forkserver"
    with Sandbox(mode) as box:  # type: ignore[arg-type]

        def once() -> None:
            if variant == "plain subprocess":
                done = subprocess.run([sys.executable, str(SEED)], capture_output=True, timeout=10)
                ok = done.returncode == 0
            else:
                ok = box.run(job, limits=limits).ok
            if not ok:
                raise SystemExit(f"{variant}: the candidate failed")

        once()  # starts a zygote where there is one; not counted
        print("{}", flush=True)
        for line in sys.stdin:
            before = _usage(group)
            walls = []
            for _ in range(int(line)):
                t = time.perf_counter()
                once()
                walls.append(time.perf_counter() - t)
            print(json.dumps({"wall": walls, "cpu_ns": None if group is None else _usage(group) - before}), flush=True)


def _usage(group: Path | None) -> int:
    return int((group / "cpuacct.usage").read_text()) if group is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="candidates per variant (default 40)")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(*args.measure)
        return
    procs, walls, cpu = {}, {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    names = {v: f"evolve-scripts-{os.getpid()}-{i}" for i, v in enumerate(VARIANTS)}
    try:
        for variant in VARIANTS:
            procs[variant] = subprocess.Popen([sys.executable, __file__, "--measure", variant, names[variant]],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            assert procs[variant].stdout is not None
            procs[variant].stdout.readline()
        for _ in range(max(1, args.jobs // ROUND)):
            for variant, proc in procs.items():
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{ROUND}\n")
                proc.stdin.flush()
                data = json.loads(proc.stdout.readline())
                walls[variant] += data["wall"]
                if data["cpu_ns"] is not None:
                    cpu[variant].append(data["cpu_ns"])
    finally:
        for variant, proc in procs.items():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait()
            try:
                (_CPUACCT / names[variant]).rmdir()
            except OSError:
                pass
    print(f"{'variant':<18} {'n':>4} {'median ms':>10} {'min ms':>8} {'CPU ms':>8}")
    for variant in VARIANTS:
        ms = [w * 1000 for w in walls[variant]]
        per = f"{sum(cpu[variant]) / len(ms) / 1e6:>8.1f}" if cpu[variant] else f"{'n/a':>8}"
        print(f"{variant:<18} {len(ms):>4} {statistics.median(ms):>10.1f} {min(ms):>8.1f} {per}")
    fresh, forked = statistics.median(walls["fresh"]), statistics.median(walls["forked"])
    print(f"fresh/forked (medians of wall): {fresh / forked:.1f}x")
    if cpu["fresh"] and cpu["forked"]:
        print(f"fresh/forked (CPU per candidate): {sum(cpu['fresh']) / sum(cpu['forked']):.1f}x")


if __name__ == "__main__":
    main()
