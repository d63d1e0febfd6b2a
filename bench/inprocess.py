"""The API over moto in this process: the harness the in-process benchmarks share."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.api import Api

ROOT = Path(__file__).resolve().parent.parent
API = PREFIX = "/api/v1"
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "STAGE": "local",
    "JWT_SECRET": "bench-only-secret-0123456789abcdef0123456789",
    # Many requests from one user in a tight loop: the figures are the service's, not the limiter's.
    "RATE_LIMIT_BURST": "100000",
    "RATE_LIMIT_PER_SECOND": "100000",
    "LOG_LEVEL": "WARNING",
}


def proxy_event(method: str, resource: str, path: str, params: dict[str, str] | None, body: Any = None,
                authorizer: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """An API Gateway REST (v1) proxy event, as the handler receives it."""
    headers = {"accept": "application/json", "content-type": "application/json", "host": "api.example.com"}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": "/api" + path,
            "stage": "api",
            "requestId": "bench",
            "identity": {"sourceIp": "203.0.113.9"},
            "authorizer": authorizer or {},
        },
    }


def authorizer_event(token: str) -> dict[str, Any]:
    """What API Gateway sends a TOKEN authorizer."""
    return {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {token}",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef/api/GET/api/v1/contacts",
    }


class LambdaCaller:
    """Invokes the app as Lambda does: the authorizer on every request (uncached: the worst
    case), then the API handler with an API Gateway proxy event carrying its context."""

    def __init__(self, token: str) -> None:
        import app

        self.app = app
        self.auth_event = authorizer_event(token)

    def authorize(self) -> dict[str, Any]:
        return dict(self.app.jwt_auth(self.auth_event, None)["context"])

    def __call__(self, method: str, resource: str, path: str, params: dict[str, str] | None, body: Any = None) -> int:
        event = proxy_event(method, PREFIX + resource, PREFIX + path, params, body, self.authorize())
        return int(self.app.app(event, None)["statusCode"])


@contextmanager
def environment() -> Iterator[None]:
    """The benchmark environment, restored afterwards."""
    saved = dict(os.environ)
    os.environ.update(ENV)
    os.environ.pop("DYNAMODB_ENDPOINT", None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def moto_api() -> Iterator[Api]:
    """Fresh moto tables in this process and an anonymous caller of the real app."""
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import runtime
    from chalicelib.models import create_tables
    from devtools import moto_transactions
    from tests.api import Api

    moto_transactions.install()  # as `make run` and the tests run it
    with environment(), mock_aws():
        runtime.reset()
        create_tables(runtime.settings())
        from app import app

        with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
            yield Api(client)
        runtime.reset()
