"""Red-team cases for the sandbox that the hostile catalogue (``evolve/sandbox/hostile.py``) lacks.

A case that gets through today is marked ``xfail(strict=True)`` with the hole in its reason: it is
reported, not fixed here (the sandbox's layers are another change), and the marker must go when
the layer that closes it lands (the test then passes and strict xfail fails the suite).
"""

from __future__ import annotations

import json
import platform

import pytest
from sandbox_testlib import script

from evolve.sandbox import Limits, Sandbox


class KeyStoreHole(AssertionError):
    """The known hole the xfail test expects; any other failure of that test is a real one."""


def keyring(sandbox: Sandbox, mode: str) -> dict:
    result = sandbox.run(script("keyring.py", mode), limits=Limits(timeout_s=20))
    assert result.ok, result.error
    return json.loads(result.stdout)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the program uses x86_64 syscall numbers")
@pytest.mark.xfail(strict=True, raises=KeyStoreHole, reason="hole: the kernel key store is per uid and every job runs as uid 65534 "
                   "in the host's user namespace; add_key/keyctl are not denied, so ~20 KB outlive the job")
def test_a_key_planted_by_one_job_is_not_found_by_the_next(sandbox: Sandbox) -> None:
    try:
        keyring(sandbox, "plant")
        found = keyring(sandbox, "look")["found"]
        if found is not None:  # rule wanted: keyring syscalls refused (seccomp) or a key store private to the job
            raise KeyStoreHole(f"the next job found {found!r}")
    finally:
        keyring(sandbox, "clear")
