"""API Gateway's own answers, for the local server (`make run`) and the tests' client.

On AWS some requests never reach the API Lambda: API Gateway answers them itself with a
"gateway response" (no route or method: MISSING_AUTHENTICATION_TOKEN; no token on a route
with an authorizer, or the authorizer failing it: UNAUTHORIZED; a body over its payload
limit: REQUEST_TOO_LARGE ...). The deployed stack shapes those answers in infra/template.json.
Chalice's local gateway answers the same cases with API Gateway's raw defaults instead
(`403 {"message": "Missing Authentication Token"}` and the like).

`ParityGateway` puts the deployed behaviour in front of Chalice's: it decides which gateway
response API Gateway would give, and renders it from the very template that is deployed, so
there is one source for both. Written by hand: no library emulates API Gateway's gateway
responses (moto's apigateway does not render them, and Chalice's local gateway hard-codes
its own bodies).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalice.app import Chalice
from chalice.local import ForbiddenError, LocalGateway, LocalGatewayAuthorizer, NotAuthorizedError, RouteMatcher

from chalicelib.web import HTTP_METHODS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.json"

# API Gateway (REST) refuses payloads over 10 MB with REQUEST_TOO_LARGE before any Lambda runs.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# Default status codes of the response types we may render (API Gateway's documentation).
DEFAULT_STATUS = {
    "ACCESS_DENIED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "REQUEST_TOO_LARGE": 413,
    "UNAUTHORIZED": 401,
    "AUTHORIZER_FAILURE": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
}
logger = logging.getLogger("contact_notes.gateway")
_TEMPLATE_VARIABLE = re.compile(r"\$(?:context\.[A-Za-z.]+|\{[^}]*\})")


@lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    return dict(json.loads(TEMPLATE.read_text()))


def gateway_responses() -> dict[str, dict[str, Any]]:
    """The deployed API's gateway responses, as infra/template.json defines them."""
    definition = _template()["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    return dict(definition["x-amazon-apigateway-gateway-responses"])


def render(response_type: str, request_id: str, message: str = "", request_headers: Any = None) -> dict[str, Any]:
    """A gateway response as API Gateway renders it: the type's own entry, else DEFAULT_4XX or
    DEFAULT_5XX by its default status."""
    responses = gateway_responses()
    default_status = DEFAULT_STATUS[response_type]
    fallback = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
    entry = responses.get(response_type) or responses.get(fallback) or {}
    return render_entry(entry, default_status, request_id, message, request_headers)


def render_entry(
    entry: dict[str, Any], default_status: int, request_id: str, message: str, request_headers: Any = None
) -> dict[str, Any]:
    """One gateway response entry rendered: header values static ('...') or taken from a request
    header (method.request.header.Name), either possibly under the template's Fn::If on a
    condition; and the application/json template with $context.requestId and
    $context.error.messageString."""
    sent = {str(name).lower(): str(value) for name, value in dict(request_headers or {}).items()}
    headers: dict[str, str] = {}
    for name, source in entry.get("responseParameters", {}).items():
        value = _header_value(_resolved(source), sent)
        if value is not None:
            headers[name.removeprefix("gatewayresponse.header.")] = value
    body = entry.get("responseTemplates", {}).get("application/json", json.dumps({"message": message}))
    variables = {"$context.requestId": request_id, "$context.error.messageString": json.dumps(message)}
    rendered = _TEMPLATE_VARIABLE.sub(lambda found: _variable(variables, found.group(0)), body)
    return {
        "statusCode": int(entry.get("statusCode") or default_status),
        "headers": headers,
        "multiValueHeaders": {},
        "body": rendered,
    }


def _resolved(source: Any) -> str | None:
    """A mapping value with the template's Fn::If settled as the deployed stack settles it
    (None: AWS::NoValue, the header is left out)."""
    if isinstance(source, str):
        return source
    if isinstance(source, dict) and set(source) == {"Fn::If"}:
        condition, then, otherwise = source["Fn::If"]
        return _resolved(then if _condition(condition) else otherwise)
    if source == {"Ref": "AWS::NoValue"}:
        return None
    raise ValueError(f"the gateway response mapping {source!r} is not emulated")


def _condition(name: str) -> bool:
    """A template condition, evaluated with the parameters a deployed stack would be given for
    this process's settings (HasCorsOrigins: CORS_ALLOWED_ORIGINS is not empty)."""
    return bool(_evaluate(_template()["Conditions"][name], _parameters()))


def _parameters() -> dict[str, str]:
    from chalicelib import runtime
    from chalicelib.config import ConfigError

    try:
        origins = runtime.settings().cors_allowed_origins
    except ConfigError:
        origins = ()
    return {"CorsAllowedOrigins": ",".join(origins)}


def _evaluate(expression: Any, parameters: dict[str, str]) -> Any:
    """The few condition functions the template uses: Fn::Not, Fn::Equals, Ref."""
    if not isinstance(expression, dict):
        return expression
    ((function, argument),) = expression.items()
    if function == "Ref":
        return parameters[argument]
    if function == "Fn::Not":
        return not _evaluate(argument[0], parameters)
    if function == "Fn::Equals":
        return _evaluate(argument[0], parameters) == _evaluate(argument[1], parameters)
    raise ValueError(f"the template condition function {function} is not emulated")


def _header_value(source: str | None, sent: dict[str, str]) -> str | None:
    if source is None:
        return None
    if source.startswith("method.request.header."):
        return sent.get(source.removeprefix("method.request.header.").lower())  # absent: left out
    if not (len(source) >= 2 and source[0] == source[-1] == "'"):
        raise ValueError(f"the gateway response mapping {source!r} is not emulated")
    return source[1:-1]


def _variable(variables: dict[str, str], name: str) -> str:
    if name not in variables:
        raise ValueError(f"the gateway response template uses {name}, which is not emulated")
    return variables[name]


def _resource(app: Chalice, path: str) -> str | None:
    """The resource (route template) a path matches, as API Gateway matches it, or None."""
    try:
        return str(RouteMatcher(list(app.routes)).match_route(path).route)
    except ValueError:
        return None


def _route(app: Chalice, method: str, path: str) -> Any | None:
    """The route entry API Gateway would match, or None (no such resource or method)."""
    resource = _resource(app, path)
    return None if resource is None else app.routes[resource].get(method)


def _has_authorization(headers: dict[str, Any]) -> bool:
    return any(name.lower() == "authorization" and str(value).strip() for name, value in headers.items())


def gateway_verdict(app: Chalice, method: str, path: str, headers: dict[str, Any], body_bytes: int) -> str | None:
    """The gateway response API Gateway answers this request with, or None if it reaches the API."""
    if body_bytes > MAX_PAYLOAD_BYTES:
        return "REQUEST_TOO_LARGE"
    if method not in HTTP_METHODS:
        # No REST API resource can have it, so it never reaches an API on AWS, and what the
        # front door answers is not ours to shape. Locally the app answers 405 with Allow (RFC 9110).
        return None if _resource(app, path) is not None else "MISSING_AUTHENTICATION_TOKEN"
    entry = _route(app, method, path)
    if entry is None:
        return "MISSING_AUTHENTICATION_TOKEN"
    if entry.authorizer is not None and not _has_authorization(headers):
        return "UNAUTHORIZED"  # a TOKEN authorizer's identity source is missing: 401, no Lambda runs
    return None


class _GatewayAnswer(Exception):
    def __init__(self, response_type: str, message: str = "") -> None:
        super().__init__(response_type)
        self.response_type, self.message = response_type, message


class _ParityAuthorizer(LocalGatewayAuthorizer):
    """Runs the authorizer as Chalice does; its outcomes become API Gateway's gateway responses."""

    def authorize(self, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        try:
            return super().authorize(raw_path, lambda_event, lambda_context)
        except NotAuthorizedError:  # our authorizer's local 401 (chalicelib.web.unauthorized_error)
            raise _GatewayAnswer("UNAUTHORIZED") from None
        except ForbiddenError:  # a Deny policy
            raise _GatewayAnswer("ACCESS_DENIED", "User is not authorized to access this resource") from None
        except Exception as exc:
            if exc.args == ("Unauthorized",):  # API Gateway's documented way to answer 401
                raise _GatewayAnswer("UNAUTHORIZED") from None
            logger.exception("the authorizer failed")  # as on AWS, where the authorizer's log has it
            raise _GatewayAnswer("AUTHORIZER_FAILURE", "Internal server error") from None


class ParityGateway(LocalGateway):
    """Chalice's local gateway, answering every gateway-level case as the deployed stack does."""

    def __init__(self, app_object: Chalice, config: Any) -> None:
        super().__init__(app_object, config)
        self._authorizer = _ParityAuthorizer(app_object)

    def handle_request(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        verdict = gateway_verdict(self._app_object, method, path, dict(headers), len(body or b""))
        if verdict is not None:
            return render(verdict, str(uuid.uuid4()), request_headers=headers)
        try:
            return super().handle_request(method, path, headers, body)
        except _GatewayAnswer as answer:
            return render(answer.response_type, str(uuid.uuid4()), answer.message, headers)
