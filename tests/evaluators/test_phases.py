"""What crosses from the untrusted build to the clean check (regular artefact files, size-capped), and
how a refused artefact is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluators._phases import MAX_ARTEFACT_BYTES, REFUSED, ArtefactFileError, artefact_files, build_and_check, refused
from evaluators._torch_model import RuleError
from evolve.evaluation import EvalResult
from evolve.sandbox import Job, Sandbox

NAMES = ("program.json", "tensors.pt", "format.json")


def test_the_expected_regular_files_are_handed_over(tmp_path: Path) -> None:
    for name in NAMES:
        (tmp_path / name).write_text("{}")
    (tmp_path / "extra.txt").write_text("not part of the artefact")
    assert artefact_files(tmp_path, NAMES) == {name: str(tmp_path / name) for name in NAMES}


def test_missing_linked_or_oversized_artefacts_are_refused(tmp_path: Path) -> None:
    for name in NAMES[:2]:
        (tmp_path / name).write_text("{}")
    with pytest.raises(ArtefactFileError, match="no format.json"):
        artefact_files(tmp_path, NAMES)
    (tmp_path / "format.json").symlink_to("/etc/passwd")
    with pytest.raises(ArtefactFileError, match="not a regular file"):
        artefact_files(tmp_path, NAMES)
    (tmp_path / "format.json").unlink()
    with open(tmp_path / "format.json", "wb") as f:
        f.truncate(MAX_ARTEFACT_BYTES)
    with pytest.raises(ArtefactFileError, match="MiB"):
        artefact_files(tmp_path, NAMES)


def test_a_refused_artefact_is_invalid_with_a_one_line_reason() -> None:
    answer = refused(RuleError("token-lookup", "aten.pow computes on token ids"))
    assert answer == {"status": "invalid", "error": f"{REFUSED}: token-lookup: aten.pow computes on token ids"}
    assert refused(MemoryError())["error"] == f"{REFUSED}: MemoryError"
    assert "\n" not in refused(RuntimeError("first line\nsecond line"))["error"]


@pytest.mark.parametrize(("crash", "args"), [("os:abort", {}), ("ctypes:string_at", {"ptr": 8})])
def test_a_checker_that_crashes_refuses_the_candidate(crash: str, args: dict[str, int]) -> None:
    """A real check process dying of SIGABRT / SIGSEGV (a read of address 8; what a loader crash on a hostile artefact
    looks like) makes the candidate ``invalid``, never an honest failure."""
    with Sandbox(mode="forkserver") as box:
        r = build_and_check(box, Job.call("os:getpid"), lambda files: Job.call(crash, **args), (),
                            build_timeout_s=30.0, check_timeout_s=30.0)
    assert isinstance(r, EvalResult) and r.status == "invalid" and not r.feasible
    assert r.error.startswith(f"{REFUSED}: the check crashed"), r.error
    assert r.phases["check"]["status"] == "crashed"
