"""`make run` against an external store that stops and comes back with new tables (issue 11)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from devtools.local_stack import STREAM_CONSUMERS
from tests.conftest import ROOT
from tests.stack import free_port, poll, signed_in, start_moto_server, start_stack, stop_process

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
# Chalice's local server logs one access line per request, whatever its outcome.
ACCESS_LINE = re.compile(r'^127\.0\.0\.1 - - \[.*\] "[A-Z]+ \S+ HTTP/1\.1" \d{3} ')


def _note_processed(api: str, headers: dict[str, str]) -> None:
    contact = requests.post(api + "/contacts", json={"first_name": "Ada"}, headers=headers, timeout=10).json()
    note = requests.post(f"{api}/contacts/{contact['id']}/notes", json={"body": "a  b"}, headers=headers, timeout=10)
    assert note.status_code == 201, note.text

    def processed() -> bool:
        reply = requests.get(f"{api}/notes/{note.json()['id']}", headers=headers, timeout=10).json()
        return bool(reply["processing_status"] == "processed")

    poll(processed, 30)


def _failed_requests(api: str, headers: dict[str, str]) -> list[requests.Response]:
    return [
        requests.get(api + "/contacts", headers=headers, timeout=10),
        requests.post(api + "/contacts", json={"first_name": "X"}, headers=headers, timeout=10),
        requests.get(api + "/auth/me", headers=headers, timeout=10),
        requests.post(api + "/auth/token", data={"username": "before", "password": "long enough"}, timeout=10),
        requests.get(api + "/health", timeout=10),
    ]


def test_store_stopped_then_back_with_new_tables(tmp_path: Path) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"DYNAMODB_ENDPOINT": endpoint, "DEAD_LETTER_FILE": str(tmp_path / "dead.jsonl"), **CREDENTIALS}
    store = start_moto_server(port, tmp_path / "store.log", CREDENTIALS)
    stack = None
    try:
        stack = start_stack(env)
        api = stack.base + "/api/v1"
        headers = signed_in(stack.base, "before")
        _note_processed(api, headers)

        stop_process(store)
        seen = len(stack.output())
        failed = _failed_requests(api, headers)
        for reply in failed:
            assert reply.status_code == 503, (reply.request.method, reply.request.url, reply.text)
            assert reply.headers["Content-Type"] == "application/problem+json"
            assert int(reply.headers["Retry-After"]) >= 1
            assert reply.json()["type"] == "urn:contact-notes:problem:service-unavailable"
        during = stack.output()[seen:]
        assert "Traceback" not in during
        background = ("stream pump", "queue worker")  # the stand-ins' own lines (they back off while it is down)
        app_lines = [line for line in during.splitlines()
                     if not ACCESS_LINE.match(line) and not any(name in line for name in background)]  # fmt: skip
        assert len(app_lines) == len(failed), app_lines  # one line per failed request, besides the access log
        assert all("DynamoDB unavailable (EndpointConnectionError)" in line for line in app_lines), app_lines

        store = start_moto_server(port, tmp_path / "store.log", CREDENTIALS)  # back, empty, on the same port
        subprocess.run(
            [sys.executable, "-m", "devtools.tables"],  # `make tables`, as a user would
            cwd=ROOT,
            env={**os.environ, **env, "ENV_FILE": os.devnull},
            check=True,
            capture_output=True,
            timeout=60,
        )
        headers = signed_in(stack.base, "after")  # a new store: a new account
        _note_processed(api, headers)  # the pump found the new stream
        output = stack.output()
        assert "Traceback" not in output
        pump_lines = [line for line in output.splitlines() if "stream pump" in line]
        assert any("has a new stream" in line for line in pump_lines), pump_lines
        # One per change of state, not one per poll, for each of the two pumps (notes, workspaces).
        assert len(pump_lines) <= 6 * len(STREAM_CONSUMERS), pump_lines
    finally:
        if stack is not None:
            stack.stop()
        stop_process(store)
