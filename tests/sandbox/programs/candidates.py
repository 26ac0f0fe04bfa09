"""Call-job targets for the sandbox tests: well-behaved, failing and hostile candidates."""

import ctypes
import os
import signal
import socket
import sys
import time


def add(a, b=0):
    print("adding", a, b)
    return {"sum": a + b, "cwd": os.getcwd()}


def environment():
    return dict(os.environ)


def raise_value_error():
    raise ValueError("boom from the candidate")


def not_json():
    return object()


def exit_with(code):
    sys.exit(code)


def hard_exit(code):
    os._exit(code)


def forge_result():
    os.write(3, b"this is not json")
    os._exit(0)


def forge_nested_result(depth):
    os.write(3, b'{"status": "ok", "value": ' + b"[" * depth + b"]" * depth + b"}")
    os._exit(0)


def segfault():
    ctypes.string_at(0)  # a real fault


def raise_signal(name):
    """A fatal signal the job sends itself (abort(), faulthandler, kill(getpid())): a pid 1 would ignore it."""
    if name == "SIGSEGV":
        import faulthandler

        faulthandler._sigsegv()
    elif name == "SIGABRT":
        os.abort()
    else:
        os.kill(os.getpid(), getattr(signal, name))
    return "carried on"


def own_pid():
    return os.getpid()


def sleep_forever():
    time.sleep(3600)


def spin_forever():
    while True:
        pass


def escape_and_sleep():
    """Leave a double-forked setsid grandchild behind, then sleep until the deadline."""
    _spawn_daemon("escapee.pid")
    time.sleep(3600)


def orphan_and_return():
    """Leave a setsid daemon behind and return at once: the supervisor must still kill it."""
    _spawn_daemon("daemon.pid")
    return "left a daemon"


def _spawn_daemon(pid_file):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open(pid_file + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(pid_file + ".tmp", pid_file)
            time.sleep(3600)
        os._exit(0)
    deadline = time.time() + 10
    while not os.path.exists(pid_file) and time.time() < deadline:
        time.sleep(0.01)


def allocate(mb):
    block = b"\x01" * (mb << 20)
    return len(block)


def memory_bomb():
    blocks = []
    while True:
        blocks.append(b"\x01" * (64 << 20))


def fork_bomb():
    while True:
        try:
            os.fork()
        except OSError:
            pass


def write_file(mb):
    with open("big.bin", "wb") as f:
        for _ in range(mb):
            f.write(b"\0" * (1 << 20))
    return mb


def try_write(paths):
    outcome = {}
    for path in paths:
        try:
            with open(path, "w") as f:
                f.write("escaped")
            outcome[path] = "written"
        except OSError as exc:
            outcome[path] = type(exc).__name__
    return outcome


def try_read(paths):
    outcome = {}
    for path in paths:
        try:
            if os.path.isdir(path):
                os.listdir(path)
            else:
                with open(path, "rb") as f:
                    f.read(1)
            outcome[path] = "read"
        except OSError as exc:
            outcome[path] = type(exc).__name__
    return outcome


def try_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return "connected"
    except OSError as exc:
        return type(exc).__name__


def try_signal(pid):
    try:
        os.kill(pid, 0)
        return "allowed"
    except OSError as exc:
        return type(exc).__name__


def process_state():
    libc = ctypes.CDLL(None)
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f)
    return {
        "dumpable": libc.prctl(3, 0, 0, 0, 0),  # PR_GET_DUMPABLE
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "sid_is_self": os.getsid(0) == os.getpid(),
    }


def read_stdin():
    return sys.stdin.read()


def is_tracing():
    import tracemalloc

    return tracemalloc.is_tracing()


def echo_after(value, delay):
    time.sleep(delay)
    return value


def torch_forward():
    import torch

    model = torch.nn.Linear(4, 2)
    with torch.no_grad():
        out = model(torch.ones(1, 4))
    return {"shape": list(out.shape), "threads": torch.get_num_threads()}


def torch_export():
    import torch

    model = torch.nn.Linear(4, 2)
    program = torch.export.export(model, (torch.ones(1, 4),))
    torch.export.save(program, "model.pt2")
    return os.path.getsize("model.pt2")


def try_sysv_shm(key):
    """Whether a SysV shared memory segment with this key is visible."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.shmget(key, 0, 0) >= 0


def read_text(path):
    with open(path) as f:
        return f.read()


def create_sysv_shm():
    """Whether a new SysV shared memory segment could be created (and removes it again)."""
    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(0, 4096, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    if segment >= 0:
        libc.shmctl(segment, 0, None)  # IPC_RMID
    return segment >= 0


def fork_children(n):
    """Fork up to ``n`` sleeping children; returns how many forks succeeded (the children are killed)."""
    pids = []
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.kill(pid, 9)
    return len(pids)


def try_exec(commands):
    """Run each argv; a copy of /usr/bin/true made executable in the working directory is tried as
    "./true". Returns what each printed, or how it was refused."""
    import shutil
    import subprocess

    shutil.copyfile("/usr/bin/true", "true")
    os.chmod("true", 0o755)
    outcome = {}
    for argv in [*commands, ["./true"]]:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            outcome[argv[0]] = f"ran: {done.stdout.strip()}"
        except OSError as exc:
            outcome[argv[0]] = type(exc).__name__
    return outcome


def load_library_copy(source):
    """Copy a shared library into the working directory and load it with ctypes."""
    import shutil

    shutil.copyfile(source, "smuggled.so")
    try:
        ctypes.CDLL(os.path.abspath("smuggled.so"))
        return "loaded"
    except OSError as exc:
        return type(exc).__name__
