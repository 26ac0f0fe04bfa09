"""Red-team cases for the sandbox, as a hostile program would try them (the catalogue in
``evolve/sandbox/hostile.py`` has the short form of each, run by ``evolve doctor``)."""

from __future__ import annotations

import json
import platform

import pytest
from sandbox_testlib import script

from evolve.sandbox import Limits, Sandbox


def keyring(sandbox: Sandbox, mode: str) -> dict:
    result = sandbox.run(script("keyring.py", mode), limits=Limits(timeout_s=20))
    assert result.ok, result.error
    return json.loads(result.stdout)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the program uses x86_64 syscall numbers")
def test_a_key_planted_by_one_job_is_not_found_by_the_next(sandbox: Sandbox) -> None:
    """Rule seccomp-no-key-store: the key store belongs to the uid (65534 for every job), so a key
    would outlive its job; add_key and keyctl are refused."""
    try:
        assert keyring(sandbox, "plant")["planted"] == "Operation not permitted"
        assert keyring(sandbox, "look")["found"] is None
    finally:
        keyring(sandbox, "clear")
