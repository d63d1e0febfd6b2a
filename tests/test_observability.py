"""Logs (JSON, request and user id on every line, nothing sensitive), metrics (EMF), tracing."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import observability
from tests.conftest import Api
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


def test_tracer_is_set_up_once_and_only_inside_lambda(alice: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools import Tracer

    observability._state.clear()
    alice.get("/contacts")
    assert observability._state["tracer"] is None  # no X-Ray SDK import outside Lambda
    observability._state.clear()
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "contact-notes-dev")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")  # nothing to send traces to in a test
    alice.get("/contacts")
    tracer = observability._state["tracer"]
    assert isinstance(tracer, Tracer)
    alice.get("/contacts")
    assert observability._state["tracer"] is tracer
