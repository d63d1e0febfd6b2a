"""Logs (JSON, request and user id on every line, nothing sensitive), metrics (EMF), tracing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import boto3
import pytest
from chalice.test import Client

from tests.conftest import ROOT, Api
from tests.streams import event, record, stored

SECRET_TEXT = "the-private-note-text-4711"
PASSWORD = "correct horse battery"


@pytest.fixture
def deployed_like(limits: Any) -> None:
    """JSON logs and metrics, as on the deployed stages."""
    limits(log_format="json", metrics_enabled=1)


def _lines(out: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    parsed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    metrics = [p for p in parsed if "_aws" in p]
    logs = [p for p in parsed if "_aws" not in p]
    return logs, metrics


def test_json_logs_carry_request_and_user_ids_and_no_secrets(
    deployed_like: None, alice: Api, chalice_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    contact = alice.post("/contacts", {"first_name": "Logged"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": SECRET_TEXT + "  #tag"}).json
    capsys.readouterr()
    chalice_client.lambda_.invoke("normalize_notes", event(record("INSERT", new=stored(alice.user["id"], note["id"]))))
    alice.login("alice", "wrong password!")  # a failed sign-in
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName="contact-notes-contacts")
    failed = alice.get(f"/contacts/{contact['id']}")  # an unhandled error, logged with its traceback
    assert failed.status == 500
    out = capsys.readouterr().out
    logs, _ = _lines(out)
    assert logs, "no JSON log lines"
    for line in logs:
        assert line["service"] == "contact-notes" and line["level"] and line["message"]
        assert "request_id" in line and "user_id" in line
    errors = [line for line in logs if line["message"] == "unhandled error"]
    assert errors and errors[0]["request_id"] == failed.json["request_id"]
    assert errors[0]["user_id"] == alice.user["id"]
    assert "Traceback" in errors[0]["exception"]
    for secret in (SECRET_TEXT, PASSWORD, "wrong password!", alice.token or "-"):
        assert secret not in out


def test_metrics_by_route_and_status(deployed_like: None, alice: Api, capsys: pytest.CaptureFixture[str],
                                     limits: Any) -> None:  # fmt: skip
    capsys.readouterr()
    alice.get("/contacts")
    alice.get("/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH")
    limits(rate_limit_burst=1, rate_limit_per_second=0.1)
    alice.get("/contacts")
    alice.get("/contacts")  # limited
    _, metrics = _lines(capsys.readouterr().out)
    requests = [(m["route"], m["status"]) for m in metrics if "Requests" in m]
    assert ("GET /api/v1/contacts", "200") in requests
    assert ("GET /api/v1/contacts/{contact_id}", "404") in requests
    assert ("GET /api/v1/contacts", "429") in requests
    assert any("RateLimited" in m for m in metrics)
    for metric in metrics:
        assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ContactNotes"


def test_normalizer_outcomes_are_counted(deployed_like: None, alice: Api, chalice_client: Client,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    contact = alice.post("/contacts", {"first_name": "M"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "a  b"}).json
    delivery = record("INSERT", new=stored(alice.user["id"], note["id"]))
    capsys.readouterr()
    chalice_client.lambda_.invoke("normalize_notes", event(delivery))
    chalice_client.lambda_.invoke("normalize_notes", event(delivery))  # a replay: skipped
    _, metrics = _lines(capsys.readouterr().out)
    names = [name for m in metrics for name in ("NotesNormalized", "StaleRecordsSkipped") if name in m]
    assert names == ["NotesNormalized", "StaleRecordsSkipped"]


# A fresh interpreter answering one request the way the API function does, over moto:
# whether the X-Ray SDK was loaded at all, and what reached the daemon's address.
FIRST_REQUEST = """
import json, sys
from moto import mock_aws
from bench.inprocess import proxy_event
with mock_aws():
    from chalicelib import runtime
    from chalicelib.models import create_tables
    create_tables(runtime.settings())
    import app
    event = proxy_event("GET", "/api/v1/contacts", "/api/v1/contacts", None, authorizer={
        "user_id": "01M8FP1CYTGFW5FGC7TXSJ3ETH", "owner_id": "01M8FP1CYTGFW5FGC7TXSJ3ETH", "exp": "9999999999"})
    assert app.app(event, None)["statusCode"] == 200
print(json.dumps("aws_xray_sdk" in sys.modules))
"""
TRACE_HEADER = "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"


LAMBDA_ONLY = {"AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "_X_AMZN_TRACE_ID"}
# A deployed stage, as every function on AWS has (the local stage is refused inside Lambda).
DEPLOYED = {"STAGE": "dev", "JWT_SECRET": "s" * 40, "PASSWORD_HASH_MEMORY_KIB": "19456", "PASSWORD_HASH_ROUNDS": "2"}


def _first_request(env: dict[str, str]) -> bool:
    clean = {k: v for k, v in os.environ.items() if k not in LAMBDA_ONLY}
    done = subprocess.run([sys.executable, "-c", FIRST_REQUEST], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**clean, "PYTHONPATH": str(ROOT), **env})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return bool(json.loads(done.stdout.strip().splitlines()[-1]))


def test_no_xray_sdk_is_loaded_where_tracing_is_off() -> None:
    assert _first_request({}) is False  # outside Lambda
    lambda_env = {"LAMBDA_TASK_ROOT": str(ROOT), "AWS_LAMBDA_FUNCTION_NAME": "contact-notes-dev", **DEPLOYED}
    assert _first_request({**lambda_env, "POWERTOOLS_TRACE_DISABLED": "true"}) is False


def test_dynamodb_calls_are_traced_inside_lambda() -> None:
    """Inside Lambda every DynamoDB call is an X-Ray subsegment sent to the daemon (here a
    socket of this test on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(10)
        address = f"127.0.0.1:{daemon.getsockname()[1]}"
        env = {"LAMBDA_TASK_ROOT": str(ROOT), "AWS_LAMBDA_FUNCTION_NAME": "contact-notes-dev",
               "_X_AMZN_TRACE_ID": TRACE_HEADER, "AWS_XRAY_DAEMON_ADDRESS": address, **DEPLOYED}  # fmt: skip
        assert _first_request(env) is True
        operations = set()
        daemon.settimeout(0.5)
        try:
            while True:
                _, document = daemon.recv(65536).decode().split("\n", 1)
                segment = json.loads(document)
                if segment.get("namespace") == "aws" and segment.get("name") == "dynamodb":
                    operations.add(segment["aws"]["operation"])
        except TimeoutError:
            pass
    assert {"UpdateItem", "Query"} <= operations, operations
