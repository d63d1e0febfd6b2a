"""Running the real local stack (`make run`'s entry point) from tests, on loopback only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import requests

from devtools.local_stack import free_port
from tests.conftest import ROOT, TEST_PASSWORD_HASH

__all__ = [
    "Stack",
    "free_port",
    "poll",
    "running_stack",
    "signed_in",
    "start_moto_server",
    "start_stack",
    "stop_process",
]

STARTUP_SECONDS = 60
T = TypeVar("T")


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    log: Path  # everything the stack printed; a file, since a pipe nobody reads fills and blocks it
    ws: str = ""  # the live-updates WebSocket endpoint (ws://host:WS_PORT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM to the process group, as Ctrl-C or a supervisor would; returns the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=30)


def poll(check: Callable[[], T], seconds: float = 15.0) -> T:
    """Call check() until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not done within {seconds}s")


def start_stack(env_overrides: dict[str, str], port: int | None = None, host: str = "127.0.0.1") -> Stack:
    """`make run`'s stack in a subprocess, answering /health. With no port given, a free one
    is picked and passed as PORT; give it when the stack takes its port from elsewhere (.env)."""
    if port is None:
        port = free_port()
        env_overrides = {"PORT": str(port), **env_overrides}
    # The live-updates endpoint on a free port too, so that stacks can run side by side.
    env_overrides = {"WS_PORT": str(free_port()), **env_overrides}
    env = {k: v for k, v in os.environ.items() if k not in {"DYNAMODB_ENDPOINT", "JWT_SECRET", "STAGE"}}
    # WEBHOOK_LOOPBACK_ONLY: webhooks registered by fuzzers or tests resolve no name (no DNS query leaves).
    env.update({"ENV_FILE": os.devnull, "PYTHONUNBUFFERED": "1", "WEBHOOK_LOOPBACK_ONLY": "true", **TEST_PASSWORD_HASH},
               **env_overrides)  # fmt: skip
    log = Path(tempfile.mkstemp(prefix="local-stack-", suffix=".log")[1])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.local_stack"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(process, f"http://{host}:{port}", port, log, f"ws://{host}:{env_overrides['WS_PORT']}")

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"local stack exited early:\n{stack.output()}")
        try:
            return requests.get(stack.base + "/api/v1/health", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # a first answer under load may be slow
            return False

    try:
        poll(healthy, STARTUP_SECONDS)
    except AssertionError:
        stack.stop()
        raise
    return stack


@contextmanager
def running_stack(**env: str) -> Iterator[Stack]:
    """A stack on a free port for the block, stopped afterwards."""
    stack = start_stack(env)
    try:
        yield stack
    finally:
        stack.stop()


def signed_in(base: str, username: str, password: str = "long enough") -> dict[str, str]:
    """Register `username` on the stack at `base` and sign in: the Authorization header."""
    requests.post(
        base + "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": password},
        timeout=10,
    ).raise_for_status()
    token = requests.post(
        base + "/api/v1/auth/token", data={"username": username, "password": password}, timeout=10
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def start_moto_server(port: int, log: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """moto's server as a process of its own on loopback, as an external store runs, once it
    answers. Its output goes to `log` (appended), or nowhere."""
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with log.open("ab") if log else open(os.devnull, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def answering() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"moto's server on port {port} exited")
        try:
            requests.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
        except (requests.ConnectionError, requests.Timeout):
            return False
        return True

    try:
        poll(answering, 60)
    except AssertionError:
        stop_process(process)
        raise
    return process


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)
