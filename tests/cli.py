"""Running the `contact-notes` CLI as a user does: its console script, in a process of its own,
with its config folder in a temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.conftest import ROOT

PASSWORD = "long enough"


def command() -> list[str]:
    """The console script `make`'s bootstrap installs; the module itself where it is not
    installed (a virtualenv made before the CLI existed)."""
    script = Path(sys.executable).parent / "contact-notes"
    return [str(script)] if script.exists() else [sys.executable, "-m", "contactnotes_client.cli"]


@dataclass
class Cli:
    api: str
    home: Path  # XDG_CONFIG_HOME

    @property
    def credentials_file(self) -> Path:
        return self.home / "contact-notes" / "credentials.json"

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 60, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            # This checkout's code, whichever checkout the installed script was made from.
            "PYTHONPATH": str(ROOT),
            "XDG_CONFIG_HOME": str(self.home),
            "CONTACT_NOTES_API": self.api,
            "COLUMNS": "200",
            **env,
        }
        return subprocess.run(
            [*command(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            cwd=self.home,
            check=False,
        )

    def login(self, username: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
        return self.run("login", "--username", username, "--password-stdin", stdin=password + "\n")

    def stored(self) -> dict[str, Any]:
        stored: dict[str, Any] = json.loads(self.credentials_file.read_text())
        return stored

    def store(self, **changes: str) -> None:
        self.credentials_file.write_text(json.dumps({**self.stored(), **changes}))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stored()['access_token']}"}


def register(api: str, username: str, password: str = PASSWORD) -> None:
    requests.post(
        api + "/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": password},
        timeout=10,
    ).raise_for_status()


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """A failure's whole stderr: exactly one line, starting with 'error: '."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]
