"""Error boundary: problem+json everywhere, generic 500s, refusing to run misconfigured."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import jwt
import pytest
from chalice.test import Client

from chalicelib import runtime
from chalicelib.auth import issue_token
from chalicelib.config import ConfigError, load_settings
from tests.conftest import ROOT, TEST_PASSWORD_HASH, Api, dynamodb_error, problem
from tests.stack import poll


@pytest.fixture(autouse=True)
def deployed_password_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests here serve as the dev stage, which refuses the suite's cheap hashing (conftest)."""
    for name in TEST_PASSWORD_HASH:
        monkeypatch.delenv(name)


def test_problem_carries_request_id_and_instance(alice: Api) -> None:
    reply = alice.get("/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH")
    body = problem(reply, 404)
    assert body["instance"] == "/api/v1/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH"
    assert reply.header("x-request-id") == body["request_id"]


def test_every_response_has_a_request_id(alice: Api) -> None:
    assert alice.get("/health").header("x-request-id")
    assert alice.get("/contacts").header("x-request-id")


def test_unsupported_method_is_a_problem(alice: Api) -> None:
    reply = alice.delete("/contacts")
    body = problem(reply, 405)
    assert "DELETE" in body["detail"]
    assert "GET" in (reply.header("allow") or "")


def test_unhandled_error_is_a_generic_500(alice: Api, caplog: pytest.LogCaptureFixture) -> None:
    contact = alice.post("/contacts", {"first_name": "Doomed"}).json
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName="contact-notes-contacts")
    with caplog.at_level(logging.ERROR, logger="contact_notes"):
        reply = alice.get(f"/contacts/{contact['id']}")
    body = problem(reply, 500)
    assert body["detail"] == "An unexpected error occurred."
    text = reply.body.decode()
    for leak in ("ResourceNotFound", "pynamodb", "Traceback", "contact-notes-contacts", 'File "'):
        assert leak not in text
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert logged and logged[0].exc_info is not None
    assert logged[0].request_id == body["request_id"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("secret", [None, "too-short"])
def test_deployed_stage_refuses_to_serve_without_a_secret(
    dynamodb: object, monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    from app import app

    if secret is None:
        monkeypatch.delenv("JWT_SECRET")
    else:
        monkeypatch.setenv("JWT_SECRET", secret)
    runtime.reset()
    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        reply = client.http.get("/api/v1/health")
        assert reply.status_code == 500
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert b"JWT_SECRET" not in reply.body  # the reason is logged, not shown
        event = {"type": "TOKEN", "authorizationToken": "Bearer x", "methodArn": "arn:x"}
        with pytest.raises(ConfigError, match="JWT_SECRET"):
            client.lambda_.invoke("jwt_auth", event)


def test_settings_explain_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET: required on stage prod"):
        _ = load_settings({"STAGE": "prod"}).signing_secret
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_settings({"STAGE": "dev", "JWT_SECRET": "short"})
    with pytest.raises(ConfigError, match="STAGE"):
        load_settings({"STAGE": "staging", "JWT_SECRET": "x" * 40})
    local = load_settings({})
    assert local.stage == "local" and len(local.signing_secret) >= 32
    assert local.signing_secret not in repr(local) and "jwt_secret=" not in repr(local)


def _throttle_next_call(counter: object) -> object:
    """A botocore before-call hook that answers the next DynamoDB call with a throttling error.

    This injects the fault at the SDK boundary (what DynamoDB itself would answer),
    without touching our code.
    """

    def hook(**_: object) -> tuple[object, dict[str, Any]]:
        return dynamodb_error("ProvisionedThroughputExceededException", "slow down")

    return hook


def test_dynamodb_throttling_is_a_retryable_503(alice: Api) -> None:
    from chalicelib.models import dynamodb_client

    contact = alice.post("/contacts", {"first_name": "Busy"}).json
    events = dynamodb_client().meta.events
    hook = _throttle_next_call(None)
    events.register_first("before-call.dynamodb.GetItem", hook)
    try:
        reply = alice.get(f"/contacts/{contact['id']}")
    finally:
        events.unregister("before-call.dynamodb.GetItem", hook)
    body = problem(reply, 503)
    assert reply.header("retry-after") == "1"
    assert "slow down" not in body["detail"]
    assert alice.get(f"/contacts/{contact['id']}").status == 200


def test_many_bad_fields_give_a_bounded_error_list(alice: Api) -> None:
    body = {f"k{i}": 0 for i in range(5000)}
    reply = alice.post("/contacts", body)
    problem_body = problem(reply, 422)
    assert len(problem_body["errors"]) == 21
    assert problem_body["errors"][-1]["type"] == "truncated"
    assert len(reply.body) < 10_000


@pytest.mark.parametrize("value", ['"²"', 'W/"³"', '"1.0"', '"-1"', '"' + "9" * 19 + '"', "", "a, b"])
def test_malformed_if_match_is_400_not_500(alice: Api, value: str) -> None:
    contact = alice.post("/contacts", {"first_name": "Etag"}).json
    problem(alice.put(f"/contacts/{contact['id']}", {"first_name": "X"}, headers={"if-match": value}), 400)


def test_bodiless_requests_ignore_their_content_type(alice: Api) -> None:
    assert alice.get("/contacts", headers={"content-type": "text/plain"}).status == 200
    assert alice.get("/health", headers={"content-type": "application/xml"}).status == 200


def _cancel_transactions(times: int, reasons: list[str]) -> object:
    """Answer the next `times` TransactWriteItems as DynamoDB does when they are cancelled."""
    remaining = [times]

    def hook(**_: object) -> object:
        if remaining[0] <= 0:
            return None
        remaining[0] -= 1
        cancelled = [{"Code": code} for code in reasons]
        return dynamodb_error("TransactionCanceledException", "Transaction cancelled", CancellationReasons=cancelled)

    return hook


@pytest.mark.parametrize(("times", "status"), [(1, 201), (2, 201), (3, 503)])
def test_conflicting_note_transactions_are_retried_then_503(alice: Api, times: int, status: int) -> None:
    from chalicelib.models import dynamodb_client

    contact = alice.post("/contacts", {"first_name": "Busy"}).json
    events = dynamodb_client().meta.events
    hook = _cancel_transactions(times, ["None", "TransactionConflict"])
    events.register_first("before-call.dynamodb.TransactWriteItems", hook)
    try:
        reply = alice.post(f"/contacts/{contact['id']}/notes", {"body": "at the same time"})
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", hook)
    assert reply.status == status, reply.body
    if status == 503:
        assert problem(reply, 503) and reply.header("retry-after") == "1"
    notes = alice.get(f"/contacts/{contact['id']}/notes").json["items"]
    assert len(notes) == (1 if status == 201 else 0)


def test_throttled_registration_is_503_not_500(anon: Api) -> None:
    from chalicelib.models import dynamodb_client

    events = dynamodb_client().meta.events
    hook = _cancel_transactions(3, ["ThrottlingError", "None", "None"])
    events.register_first("before-call.dynamodb.TransactWriteItems", hook)
    try:
        reply = anon.register("throttled")
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", hook)
    problem(reply, 503)
    assert anon.register("throttled").status == 201


def test_expired_token_in_a_cached_authorizer_answer_is_401(alice: Api) -> None:
    """API Gateway reuses an authorizer's Allow for ttl_seconds; the API still checks exp."""
    import time

    def event(expires: int) -> dict[str, object]:
        return {
            "resource": "/api/v1/auth/me",
            "path": "/api/v1/auth/me",
            "httpMethod": "GET",
            "headers": {"accept": "application/json"},
            "multiValueHeaders": {},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/api/v1/auth/me",
                "httpMethod": "GET",
                "path": "/api/api/v1/auth/me",
                "requestId": "cached-auth-test",
                "identity": {"sourceIp": "203.0.113.9"},
                "authorizer": {"principalId": alice.user["id"], "user_id": alice.user["id"],
                               "owner_id": alice.user["id"], "tier": "default", "exp": str(expires)},
            },
            "body": None,
            "isBase64Encoded": False,
        }  # fmt: skip

    from chalice.local import LambdaContext

    from app import app

    # The API function's Lambda entry point is the Chalice app object itself ("app.app").
    fresh = app(event(int(time.time()) + 60), LambdaContext("api_handler", 512))
    assert fresh["statusCode"] == 200
    stale = app(event(int(time.time()) - 1), LambdaContext("api_handler", 512))
    assert stale["statusCode"] == 401
    assert stale["headers"]["WWW-Authenticate"] == "Bearer"
    assert "expired" in stale["body"]


def test_deployed_stage_reads_its_secret_from_secrets_manager(
    dynamodb: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS the template passes only the secret's ARN; the key itself never sits in the environment."""
    from app import app

    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="contact-notes/jwt", SecretString="k" * 64
    )
    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("JWT_SECRET_ARN", secret["ARN"])
    runtime.reset()
    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        api = Api(client)
        assert api.register("secret_user").status == 201
        token = api.login("secret_user").json["access_token"]
        assert jwt.decode(token, "k" * 64, algorithms=["HS256"], audience="contact-notes-api")["sub"]
        assert Api(client, token=token).get("/auth/me").status == 200


def test_a_rotated_secret_is_used_once_the_one_in_hand_is_older_than_its_max_age(
    dynamodb: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The secret is cached for JWT_SECRET_MAX_AGE_SECONDS, then read again: rotating it in
    Secrets Manager takes effect in running containers, no new process needed."""
    from app import app

    old_key, new_key = "o" * 64, "n" * 64
    secrets_manager = boto3.client("secretsmanager", region_name="us-east-1")
    secret = secrets_manager.create_secret(Name="contact-notes/jwt", SecretString=old_key)
    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("JWT_SECRET_ARN", secret["ARN"])
    monkeypatch.setenv("JWT_SECRET_MAX_AGE_SECONDS", "1")
    runtime.reset()
    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        api = Api(client)
        user = api.register("rotating").json
        old_token = api.login("rotating").json["access_token"]
        assert jwt.decode(old_token, old_key, algorithms=["HS256"], audience="contact-notes-api")["sub"]
        secrets_manager.put_secret_value(SecretId=secret["ARN"], SecretString=new_key)
        new_token, _ = issue_token(load_settings({"JWT_SECRET": new_key}), user["id"])

        def signed_with_the_new_key_accepted() -> bool:
            return Api(client, token=new_token).get("/auth/me").status == 200

        poll(signed_with_the_new_key_accepted, 15)
        assert Api(client, token=old_token).get("/auth/me").status == 401
        assert jwt.decode(api.login("rotating").json["access_token"], new_key, algorithms=["HS256"],
                          audience="contact-notes-api")["sub"] == user["id"]  # fmt: skip


def test_a_secret_that_cannot_be_read_again_is_kept_until_it_can(
    dynamodb: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once read, an outage of Secrets Manager does not stop the API: the key in hand is used.

    A deployed stage logs JSON lines to stdout (observability), not through the root logger."""
    from app import app

    secrets_manager = boto3.client("secretsmanager", region_name="us-east-1")
    secret = secrets_manager.create_secret(Name="contact-notes/jwt", SecretString="k" * 64)
    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("JWT_SECRET_ARN", secret["ARN"])
    monkeypatch.setenv("JWT_SECRET_MAX_AGE_SECONDS", "1")
    runtime.reset()
    logged: list[str] = []
    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        api = Api(client)
        assert api.register("kept").status == 201
        token = api.login("kept").json["access_token"]
        secrets_manager.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)

        def refresh_failed_and_still_serving() -> bool:
            assert Api(client, token=token).get("/auth/me").status == 200
            logged.append(capsys.readouterr().out)
            return "keeping the signing secret in hand" in "".join(logged)

        poll(refresh_failed_and_still_serving, 15)


def test_unreadable_secret_refuses_to_serve(dynamodb: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import app

    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("JWT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf")
    runtime.reset()
    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        reply = client.http.get("/api/v1/health")
    assert reply.status_code == 500
    assert b"misconfigured" in reply.body


def test_an_unreachable_secrets_manager_on_first_read_is_a_503(
    dynamodb: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No key in hand yet and Secrets Manager cannot be reached: a 503 the client may retry,
    one line in the log, not a 500 with a traceback."""
    from botocore.exceptions import EndpointConnectionError

    from app import app
    from chalicelib.models import aws_session

    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("JWT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf")
    runtime.reset()

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")

    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        runtime.settings()  # the models' botocore session exists; the secret's client is made from it
        session = aws_session()
        session.register("before-send.secrets-manager.GetSecretValue", unreachable)
        try:
            reply = Api(client).get("/health", auth=False)
        finally:
            session.unregister("before-send.secrets-manager.GetSecretValue", unreachable)
    body = problem(reply, 503)
    assert reply.header("retry-after") == "5"
    assert "Secrets Manager" in body["detail"]
    # JSON lines on stdout once a deployed stage's logging is set up; through the root logger
    # (caplog) or Python's last-resort stderr otherwise: wherever it went, once, no traceback.
    captured = capsys.readouterr()
    logged = captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records)
    assert logged.count("Secrets Manager unavailable (EndpointConnectionError)") == 1, logged
    assert "Traceback" not in logged
