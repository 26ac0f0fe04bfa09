"""The archive's write-behind thread: git and index writes in order, off the caller's thread.

Filing a child used to keep the run's scheduling thread busy for the whole write: ~11 ms on an
idle machine (4 ms of it waiting for ``git update-ref``, 3 ms of loose objects), 34 ms in the P6
bench, where the LLM threads and evaluations compete for the two cores: 1.4 s of a 2.1 s steady
state, with the mutations that finished meanwhile waiting for it. The archive now builds a batch
(documents, commits, shas) on the caller's thread and hands the writing to this thread.

Jobs run one at a time in the order given. After a job fails no later job runs (each batch's ref
transaction expects the previous one's refs) and every later :meth:`WriteBehind.submit` and
:meth:`WriteBehind.flush` raises that failure. At most ``depth`` jobs wait, so a run killed with
SIGKILL loses at most that many filed batches besides what was in flight; the archive on disk is
then at an earlier checkpoint, which is exactly where a resume starts.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

#: Batches that may wait for the disk. The thread needs ~10 ms a batch alone; on a loaded machine it
#: fell behind a P6 run at times, and the run then waits for it rather than queue more.
DEPTH = 4


class WriteBehind:
    """One daemon thread running write jobs in order; :meth:`flush` waits for all of them."""

    def __init__(self, depth: int = DEPTH) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None  # started by the first job

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` (waits while ``depth`` jobs are queued); raises an earlier job's failure."""
        self.check()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="evolve-archive-writer", daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def flush(self) -> None:
        """Wait until every queued job has run; raises the first failure."""
        if self._thread is not None:
            self._jobs.join()
        self.check()

    def close(self) -> None:
        """Let the queued jobs run, then end the thread (without waiting for it); idempotent."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def check(self) -> None:
        """Raise the failure of a job that has run, if one failed."""
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._failure is None:
                    job()
            except BaseException as exc:  # handed to the caller's next submit or flush
                self._failure = exc
            finally:
                del job  # a job holds its archive: an archive dropped without close must still go
                self._jobs.task_done()
