"""Hostile program: keep data in the kernel's key store, which belongs to the uid, not to the job.

``plant`` stores a key in the user keyring; ``look`` searches that keyring for it and prints what
it found; ``clear`` empties the user keyring (the test's cleanup). Keys of a uid outlive its processes, so
a job that finds a key planted by an earlier job has a channel across jobs, evaluations and runs:
a sorter build could read the weights an earlier build trained, a microgpt run an output computed
before. Prints one JSON object.
"""

import ctypes
import json
import os
import sys

SYS_ADD_KEY, SYS_KEYCTL = 248, 250  # x86_64
KEYCTL_CLEAR, KEYCTL_SEARCH, KEYCTL_READ = 7, 10, 11
USER_KEYRING = -4
DESCRIPTION = b"evolve-redteam-planted"
PAYLOAD = b"trained weights from an earlier job"

libc = ctypes.CDLL(None, use_errno=True)


def call(number, *args):
    result = libc.syscall(number, *args)
    return result if result >= 0 else os.strerror(ctypes.get_errno())


mode = sys.argv[1]
if mode == "plant":
    print(json.dumps({"planted": call(SYS_ADD_KEY, b"user", DESCRIPTION, PAYLOAD, len(PAYLOAD), USER_KEYRING)}))
elif mode == "look":
    key = call(SYS_KEYCTL, KEYCTL_SEARCH, USER_KEYRING, b"user", DESCRIPTION, 0)
    found = None
    if isinstance(key, int):
        buf = ctypes.create_string_buffer(256)
        size = call(SYS_KEYCTL, KEYCTL_READ, key, buf, 256)
        found = buf.raw[:size].decode() if isinstance(size, int) else size
    print(json.dumps({"found": found, "search": key if isinstance(key, str) else "ok"}))
else:
    print(json.dumps({"clear": call(SYS_KEYCTL, KEYCTL_CLEAR, USER_KEYRING)}))
