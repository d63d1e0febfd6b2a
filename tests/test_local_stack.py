"""The real local stack (`make run`'s entry point) over HTTP on loopback: the README's curl flow."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import requests.adapters

from devtools.local_stack import embedded_dynamodb
from devtools.prereqs import CURL
from tests.conftest import ROOT, TEST_PASSWORD_HASH
from tests.stack import Stack, free_port, poll, running_stack, signed_in, start_stack
from tests.system import system_tool


@pytest.fixture
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running


@pytest.fixture
def curl() -> str:
    return system_tool(CURL)


def readme_curl_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if b.lstrip().startswith("curl")]


def run_curl(command: str, port: int, token: str = "") -> dict[str, object]:
    command = command.replace("localhost:8000", f"localhost:{port}").replace("your_access_token", token)
    done = subprocess.run(
        ["bash", "-c", command.rstrip() + " -s -w '\\n%{http_code}'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return {"status": int(status), "body": json.loads(body)}


def test_readme_curl_flow_works_verbatim(curl: str, stack: Stack) -> None:
    register, token, create = readme_curl_commands()
    registered = run_curl(register, stack.port)
    assert registered["status"] == 201
    issued = run_curl(token, stack.port)
    assert issued["status"] == 200
    access_token = issued["body"]["access_token"]  # type: ignore[index]
    created = run_curl(create, stack.port, access_token)
    assert created["status"] == 201
    contact = created["body"]
    assert contact["first_name"] == "John" and contact["phone"] == "1234567890"  # type: ignore[index]

    headers = {"Authorization": f"Bearer {access_token}"}
    listed = requests.get(stack.base + "/api/v1/contacts/", headers=headers, timeout=5).json()
    assert [c["id"] for c in listed["items"]] == [contact["id"]]  # type: ignore[index]
    note = requests.post(
        f"{stack.base}/api/v1/contacts/{contact['id']}/notes",
        json={"body": "hello"},
        headers=headers,
        timeout=5,  # type: ignore[index]
    )
    assert note.status_code == 201


def test_local_401s_match_api_gateway(stack: Stack) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        reply = requests.get(stack.base + "/api/v1/contacts", headers=headers, timeout=5)
        assert reply.status_code == 401


def test_sigterm_stops_server_and_store(stack: Stack) -> None:
    assert stack.stop() == 0
    output = stack.output()
    assert "stopped" in output
    assert "Traceback" not in output
    with pytest.raises(requests.ConnectionError):
        requests.get(stack.base + "/api/v1/health", timeout=2)


def test_external_endpoint_and_dotenv_are_honoured(tmp_path: Path) -> None:
    api_port = free_port()
    with embedded_dynamodb() as endpoint:
        dotenv = tmp_path / ".env"
        dotenv.write_text(f"HOST=127.0.0.2\nPORT={api_port}\nCONTACTS_TABLE=from-dotenv-contacts\n")
        creds = {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        running = start_stack({"DYNAMODB_ENDPOINT": endpoint, "ENV_FILE": str(dotenv), **creds}, api_port, "127.0.0.2")
        try:
            with pytest.raises(requests.ConnectionError):  # bound to HOST only
                requests.get(f"http://127.0.0.1:{api_port}/api/v1/health", timeout=2)
            reply = requests.post(
                running.base + "/api/v1/auth/register",
                json={"username": "zed", "email": "zed@example.com", "password": "long enough"},
                timeout=10,
            )
            assert reply.status_code == 201
        finally:
            assert running.stop() == 0
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        tables = client.list_tables()["TableNames"]
        assert "from-dotenv-contacts" in tables
        assert client.scan(TableName="contact-notes-users")["Count"] == 3  # user + 2 claims, kept by the store

        tables_run = subprocess.run(
            [sys.executable, "-m", "devtools.tables"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **creds, "DYNAMODB_ENDPOINT": endpoint, "ENV_FILE": str(dotenv)},
            check=True,
        )
        assert "none (all exist)" in tables_run.stdout  # idempotent


def test_deployed_stage_without_secret_refuses_to_start() -> None:
    env = {**os.environ, "STAGE": "prod", "ENV_FILE": os.devnull, "DYNAMODB_ENDPOINT": "http://127.0.0.1:9"}
    for name in ("JWT_SECRET", *TEST_PASSWORD_HASH):  # only the missing secret is to be refused
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "devtools.local_stack"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "JWT_SECRET" in done.stderr


def run_local_stack(**env: str) -> subprocess.CompletedProcess[str]:
    """`make run`'s entry point until it exits by itself (it fails to start)."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DYNAMODB_ENDPOINT", "JWT_SECRET", "STAGE"}}
    command = [sys.executable, "-m", "devtools.local_stack"]
    environ = {**clean, "ENV_FILE": os.devnull, **env}
    return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=False)


def test_a_taken_port_is_one_line_naming_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_local_stack(PORT=str(port))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"contact-notes: cannot listen on HOST=127.0.0.1 PORT={port}: Address already in use; set PORT to a free port"
    ]
    assert "Traceback" not in done.stdout + done.stderr
    assert "serving" not in done.stdout


def test_a_port_that_is_not_a_number_is_one_line() -> None:
    done = run_local_stack(PORT="80a")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "contact-notes: invalid configuration: PORT: '80a' is not a port number (1-65535)"
    ]


def _processed(url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    note: dict[str, Any] = requests.get(url, headers=headers, timeout=5).json()
    return note if note["processing_status"] == "processed" else None


def test_messy_note_is_normalized_end_to_end(stack: Stack) -> None:
    headers = signed_in(stack.base, "writer")
    api = stack.base + "/api/v1"
    contact = requests.post(api + "/contacts/", json={"first_name": "Ada"}, headers=headers, timeout=5).json()
    messy = (
        "\u00a0 Lunch\twith  Ada \u2014 #Design  #design\r\n\r\n\r\n\r\ne\u0301t\u00e9 👩🏽‍💻 \x07done #Next-Steps  "
    )
    created = requests.post(
        f"{api}/contacts/{contact['id']}/notes", json={"noteBody": messy}, headers=headers, timeout=5
    ).json()
    assert created["processing_status"] == "pending"

    note = poll(lambda: _processed(f"{api}/notes/{created['id']}", headers))
    assert note == {
        **created,
        "body": "Lunch with Ada \u2014 #Design #design\n\n\u00e9t\u00e9 👩🏽‍💻 done #Next-Steps",
        "original_body": messy,
        "tags": ["design", "next-steps"],
        "processing_status": "processed",
        "processed_at": note["processed_at"],
        "normalizer_version": "1",
        "failure_reason": None,
        "version": 2,
    }
    assert note["processed_at"] >= created["created_at"]


def test_poison_record_ends_in_the_dead_letter_file(tmp_path: Path) -> None:
    dead_letters = tmp_path / "dead.jsonl"
    creds = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    with (
        embedded_dynamodb() as endpoint,
        running_stack(DYNAMODB_ENDPOINT=endpoint, DEAD_LETTER_FILE=str(dead_letters), **creds) as running,
    ):
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        poison = {"owner_id": {"S": "someone"}, "note_id": {"S": "poison"}, "processing_status": {"S": "pending"},
                  "version": {"S": "not-a-number"}, "body": {"S": "x"}}  # fmt: skip
        client.put_item(TableName="contact-notes-notes", Item=poison)
        headers = signed_in(running.base, "after_poison")
        api = running.base + "/api/v1"
        contact = requests.post(api + "/contacts", json={"first_name": "B"}, headers=headers, timeout=5).json()
        good = requests.post(f"{api}/contacts/{contact['id']}/notes", json={"body": "a  b"}, headers=headers,
                             timeout=5).json()  # fmt: skip

        # Both readers of the notes stream fail on it: the normalizer, and the search index and
        # change events (an item it cannot read is no event it can record).
        poll(lambda: dead_letters.exists() and len(dead_letters.read_text().splitlines()) >= 2)
        entries = [json.loads(line) for line in dead_letters.read_text().splitlines()]
        assert sorted(entry["consumer"] for entry in entries) == ["index_notes", "normalize_notes"]
        for entry in entries:
            assert entry["record"]["dynamodb"]["Keys"]["note_id"] == {"S": "poison"}
            assert entry["retries"] == 3
        # The shard moved on: the good note behind the poison record was processed.
        note = poll(lambda: _processed(f"{api}/notes/{good['id']}", headers))
        assert note["body"] == "a b"


class _FromAddress(requests.adapters.HTTPAdapter):
    """Connections that leave from a given loopback address, as a second caller would."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self._address, 0), **kwargs)


def test_rate_limits_through_the_local_stack() -> None:
    running = start_stack({"RATE_LIMIT_BURST": "3", "RATE_LIMIT_PER_SECOND": "0.5"})
    try:
        # The readiness probe spent tokens of 127.0.0.1's bucket (how many depends on how fast
        # the stack came up); a caller from another address has a bucket of its own.
        caller = requests.Session()
        caller.mount("http://", _FromAddress("127.0.0.2"))
        replies = [caller.get(running.base + "/api/v1/health", timeout=5) for _ in range(4)]
        statuses = [r.status_code for r in replies]
        assert statuses == [200, 200, 200, 429]
        limited = replies[-1]
        assert limited.headers["Content-Type"] == "application/problem+json"
        assert limited.json()["status"] == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["RateLimit-Policy"] == '"default";q=3;w=6'
        assert re.fullmatch(r'"default";r=0;t=\d+', limited.headers["RateLimit"])
        assert replies[0].headers["RateLimit"].startswith('"default";r=2;')
    finally:
        running.stop()
