"""The two-phase evaluation the torch tasks share: untrusted build, then a clean check.

The build job imports the candidate and writes an artefact (data, no code) into its working
directory; only regular files of the expected names and size cross over to the check job, which
never ran candidate code and alone decides the metrics. Tasks supply the two jobs and turn the check's
value into metrics; everything about how phases fail is decided here, once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from evolve.evaluation import EvalResult
from evolve.sandbox import Job, Limits, ProcessResult, Sandbox

CANDIDATE_FILE = "candidate.py"
#: The torch artefact a build phase writes (format: ``evaluators/_torch_model.py``).
PROGRAM_FILE = "program.json"
TENSORS_FILE = "tensors.pt"
ARTEFACT_FILES = (PROGRAM_FILE, TENSORS_FILE)
MAX_ARTEFACT_BYTES = 64 << 20


class ArtefactFileError(Exception):
    """The build left no usable artefact (missing, not a regular file, too big)."""


@dataclass
class Checked:
    """Both phases ran and the check returned ``status: ok``."""

    built: ProcessResult
    checked: ProcessResult
    value: dict[str, Any]
    phases: dict[str, Any]
    digest: str = ""  # of the checked artefact (artefact_digest): what a timed repeat must rebuild


# --- inside the build process -----------------------------------------------------------------------
def import_candidate(path: Path) -> ModuleType:
    """Execute the candidate file as module ``candidate`` (build process only: this runs its code)."""
    spec = importlib.util.spec_from_file_location("candidate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["candidate"] = module
    spec.loader.exec_module(module)
    return module


def invalid(reason: str) -> dict[str, Any]:
    """The build's answer for a program that does not implement the task's interface."""
    return {"status": "invalid", "error": reason}


# --- inside the check process -----------------------------------------------------------------------
REFUSED = "the checker refused the graph"


def refused(exc: BaseException) -> dict[str, Any]:
    """The check's answer for an artefact that broke a rule or failed while it ran."""
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return invalid(f"{REFUSED}: {reason}"[:300])


# --- in the parent ----------------------------------------------------------------------------------
def build_and_check(
    sandbox: Sandbox,
    build: Job,
    check: Callable[[dict[str, str]], Job],
    artefact: Sequence[str],
    *,
    build_timeout_s: float,
    check_timeout_s: float,
) -> Checked | EvalResult:
    """Run ``build``, then ``check(artefact_files)``; an evaluation that ends early is an EvalResult."""
    with sandbox.workdir() as build_dir:
        built = sandbox.run(build, limits=Limits(timeout_s=build_timeout_s), workdir=build_dir)
        phases: dict[str, Any] = {"build": built.summary()}
        if not built.ok:
            return EvalResult.failed(built, "build")
        if isinstance(built.value, dict) and built.value.get("status") == "invalid":
            return EvalResult(status="invalid", error=str(built.value.get("error"))[:300], phases=phases)
        try:
            files = artefact_files(build_dir, artefact)
        except ArtefactFileError as exc:
            return EvalResult(status="error", error=str(exc), phases=phases)
        digest = artefact_digest(files)
        checked = sandbox.run(check(files), limits=Limits(timeout_s=check_timeout_s))
    phases["check"] = checked.summary()
    if not checked.ok:  # a crashed or killed checker: its input, the candidate's artefact, is to blame
        error = f"{REFUSED}: the check {checked.status}: {checked.error or 'no reason given'}"
        return EvalResult(status="invalid", error=error[:300], traceback=checked.traceback, phases=phases)
    value = checked.value
    if not isinstance(value, dict) or value.get("status") != "ok":
        error = value.get("error") if isinstance(value, dict) else f"the check returned {value!r:.80}"
        status = value.get("status", "error") if isinstance(value, dict) else "error"
        return EvalResult(status=status, error=str(error)[:300], phases=phases)
    return Checked(built, checked, value, phases, digest)


def artefact_files(build_dir: Path, names: Sequence[str]) -> dict[str, str]:
    """The artefact files to hand to the checker: regular files (no links, no FIFOs), size-capped."""
    files, total = {}, 0
    for name in names:
        path = build_dir / name
        try:
            st = os.lstat(path)
        except OSError:
            raise ArtefactFileError(f"the build produced no {name}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ArtefactFileError(f"{name} is not a regular file")
        total += st.st_size
        files[name] = str(path)
    if total > MAX_ARTEFACT_BYTES:
        raise ArtefactFileError(f"the artefact is {total >> 20} MiB, more than the {MAX_ARTEFACT_BYTES >> 20} MiB allowed")
    return files


def artefact_digest(files: dict[str, str]) -> str:
    """SHA-256 of the artefact files' names and bytes. A deterministic build writes the same bytes
    every time (measured: the sorter seed's ``tensors.pt`` and ``program.json`` are byte-identical
    across builds in separate workers), so a repeat with another digest built another model."""
    h = hashlib.sha256()
    for name in sorted(files):
        data = Path(files[name]).read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()
