"""Health, registration, sign-in and who am I."""

from __future__ import annotations

from chalice.app import Response

from chalicelib import services
from chalicelib.api.routing import ApiBlueprint
from chalicelib.errors import BadRequest
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.schemas import CurrentUserOut, Health, RegisterIn, TokenForm, TokenOut, UserOut
from chalicelib.web import FORM_TYPES, json_response, parse, read_form

auth_api = ApiBlueprint(__name__)


@auth_api.operation(
    "/health",
    ["GET"],
    Operation("Is the service up?", "service", response=Health, public=True, operation_id="getHealth"),
)
def health() -> Response:
    return json_response({"status": "ok"})


@auth_api.operation(
    "/auth/register",
    ["POST"],
    Operation(
        "Register a user", "auth", 201, UserOut, RegisterIn, public=True, problems=(409,), operation_id="register"
    ),
)
def register() -> Response:
    return json_response(services.register(auth_api.body(RegisterIn)), 201)


@auth_api.operation(
    "/auth/token",
    ["POST"],
    Operation(
        "Sign in: password for a bearer token",
        "auth",
        200,
        TokenOut,
        TokenForm,
        "form",
        public=True,
        problems=(401, 403),  # 403: workspace_id names a workspace the user is not a member of
        operation_id="signIn",
    ),
    content_types=FORM_TYPES,
)
def token() -> Response:
    current = settings()
    form = parse(TokenForm, read_form(auth_api.request, current.max_request_bytes))
    if form.grant_type not in (None, "", "password"):
        raise BadRequest("Only the password grant is supported.", extra={"error": "unsupported_grant_type"})
    return json_response(services.login(current, form.username, form.password, form.workspace_id))


@auth_api.operation(
    "/auth/me",
    ["GET"],
    Operation("The signed-in user", "auth", response=CurrentUserOut, operation_id="getCurrentUser"),
)
def me() -> Response:
    return json_response(services.current_user(auth_api.user(), auth_api.owner(), auth_api.role()))
