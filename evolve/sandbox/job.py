"""What the sandbox is asked to run (Job, Limits) and what it reports back (ProcessResult).

These are plain data: they cross process boundaries as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

ProcessStatus = Literal["ok", "error", "timeout", "limit", "crashed", "invalid"]


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process. ``None`` leaves a limit unset."""

    timeout_s: float = 120.0  # wall clock; the whole process group is killed when it passes
    cpu_s: int | None = None  # RLIMIT_CPU; defaults to the timeout rounded up, plus 1
    memory_mb: int | None = 4096  # memory cgroup (every page the job holds) and RLIMIT_AS (address space)
    disk_mb: int | None = 256  # total size of the working directory (a tmpfs; its pages count as memory)
    file_size_mb: int | None = 64  # RLIMIT_FSIZE
    open_files: int | None = 256  # RLIMIT_NOFILE
    processes: int | None = 64  # pids cgroup when writable (root), else RLIMIT_NPROC
    output_bytes: int = 64_000  # stdout and stderr are each kept up to this many bytes

    def with_(self, **changes: Any) -> "Limits":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Job:
    """One unit of sandboxed work.

    - ``kind="call"``: import ``target`` (``"package.module:function"``) in the sandboxed process,
      call it with ``**args`` (JSON values) in the job's working directory, and return its JSON-able
      result on a dedicated pipe (never via stdout).
    - ``kind="script"``: exec ``python target *argv`` directly (no bootstrap code in the process, so
      its peak RSS is the program's own); the result is the exit status and the captured output.

    ``files`` maps a file name in the working directory to a source path to copy there first.
    """

    kind: Literal["call", "script"]
    target: str
    args: dict[str, Any] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None

    @classmethod
    def call(cls, target: str, files: dict[str, str] | None = None, **args: Any) -> "Job":
        return cls("call", target, args=args, files=files or {})

    @classmethod
    def script(cls, path: str, *argv: str, files: dict[str, str] | None = None, stdin: str | None = None) -> "Job":
        return cls("script", path, argv=tuple(argv), files=files or {}, stdin=stdin)


@dataclass
class ProcessResult:
    """How one sandboxed process ended, with its measured figures."""

    status: ProcessStatus
    value: Any = None  # the call's return value (call jobs, status ok)
    error: str | None = None  # one line
    traceback: str | None = None  # tail of the traceback or of stderr
    exit_code: int | None = None
    signal: int | None = None
    limit: str | None = None  # which limit was hit: memory, cpu, file_size, disk, output, processes, time
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0  # ru_maxrss of the worker process (absolute)
    baseline_rss_mib: float = 0.0  # forkserver: the worker's RSS just before the job (zygote heap); fresh: 0
    #: Every page the job held at its peak, from a source it cannot dodge (see ``memory_source``):
    #: anonymous memory, tmpfs files, memfd and shared memory included. The figure to minimise.
    peak_memory_mib: float = 0.0
    #: "cgroup": the job's memory cgroup peak; "rss+disk": no cgroup here, so peak RSS above the
    #: baseline plus the working directory's size at the end (memfd_create is refused instead).
    memory_source: str = ""
    disk_used_mib: float = 0.0  # the working directory's size when the job ended
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    containment: dict[str, bool] = field(default_factory=dict)  # which protections were active

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def peak_rss_delta_mib(self) -> float:
        """Peak RSS above the forkserver baseline (equals the absolute figure in fresh mode)."""
        return max(0.0, self.peak_rss_mib - self.baseline_rss_mib)

    def summary(self) -> dict[str, Any]:
        """The figures worth archiving (no captured output)."""
        return {
            "status": self.status,
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "peak_rss_mib": round(self.peak_rss_mib, 3),
            "peak_rss_delta_mib": round(self.peak_rss_delta_mib, 3),
            "peak_memory_mib": round(self.peak_memory_mib, 3),
            "memory_source": self.memory_source,
            "limit": self.limit,
            "exit_code": self.exit_code,
            "signal": self.signal,
        }
