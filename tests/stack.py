"""Running the real local stack (`make run`'s entry point) from tests, on loopback only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import requests

from tests.conftest import ROOT

STARTUP_SECONDS = 60
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    log: Path  # everything the stack printed; a file, since a pipe nobody reads fills and blocks it

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM to the process group, as Ctrl-C or a supervisor would; returns the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=30)


def start_stack(env_overrides: dict[str, str], port: int, host: str = "127.0.0.1") -> Stack:
    env = {k: v for k, v in os.environ.items() if k not in {"DYNAMODB_ENDPOINT", "JWT_SECRET", "STAGE"}}
    env.update({"ENV_FILE": os.devnull, "PYTHONUNBUFFERED": "1"}, **env_overrides)
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
    stack = Stack(process, f"http://{host}:{port}", port, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"local stack exited early:\n{stack.output()}")
        try:
            if requests.get(stack.base + "/api/v1/health", timeout=1).status_code == 200:
                return stack
        except requests.ConnectionError:
            time.sleep(0.1)
    stack.stop()
    raise AssertionError("local stack did not answer /health in time")


def poll(check: Callable[[], T], seconds: float = 15.0) -> T:
    """Call check() until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not done within {seconds}s")


def signed_in(base: str, username: str) -> dict[str, str]:
    requests.post(
        base + "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": "long enough"},
        timeout=10,
    ).raise_for_status()
    token = requests.post(
        base + "/api/v1/auth/token", data={"username": username, "password": "long enough"}, timeout=10
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
