"""Health, registration, sign-in and refresh, sign-out, password change, and who am I."""

from __future__ import annotations

from chalice.app import Response

from chalicelib import services
from chalicelib.api.routing import ApiBlueprint, no_content
from chalicelib.errors import AppError, BadRequest, ValidationFailed
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.schemas import (
    CurrentUserOut,
    Health,
    PasswordChangeIn,
    RegisterIn,
    SignOutIn,
    TokenForm,
    TokenOut,
    UserOut,
)
from chalicelib.sessions import service as sessions
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
        "Sign in (password grant) or refresh (refresh_token grant): a bearer token and a refresh token",
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
    form = _token_form()
    if form.grant_type == "refresh_token":
        return json_response(sessions.refresh(current, form.refresh_token or "", form.workspace_id))
    return json_response(services.login(current, form.username or "", form.password or "", form.workspace_id))


# The fields each grant needs (RFC 6749 §4.3.2 and §6).
GRANT_FIELDS = {"password": ("username", "password"), "refresh_token": ("refresh_token",)}


def _token_form() -> TokenForm:
    """The token request's form; its problems carry RFC 6749 §5.2's `error` (invalid_request
    unless a more precise one applies), so OAuth clients understand them too."""
    try:
        raw = read_form(auth_api.request, settings().max_request_bytes)
        grant = raw.get("grant_type") or "password"
        if grant not in GRANT_FIELDS:
            raise BadRequest(
                "Only the password and refresh_token grants are supported.", extra={"error": "unsupported_grant_type"}
            )
        form = parse(TokenForm, {**raw, "grant_type": grant})
        missing = [name for name in GRANT_FIELDS[grant] if getattr(form, name) is None]
        if missing:
            raise ValidationFailed(
                f"The {grant} grant needs {' and '.join(missing)}.",
                errors=[{"pointer": f"#/{name}", "detail": "Field required", "type": "missing"} for name in missing],
            )
        return form
    except AppError as error:
        error.extra.setdefault("error", "invalid_request")
        raise


@auth_api.operation(
    "/auth/logout",
    ["POST"],
    Operation(
        "Sign out: revoke the sign-in a refresh token belongs to (any token: idempotent)",
        "auth",
        204,
        body=SignOutIn,
        public=True,  # the refresh token is the credential
        operation_id="signOut",
    ),
)
def logout() -> Response:
    sessions.sign_out(auth_api.body(SignOutIn).refresh_token)
    return no_content()


@auth_api.operation(
    "/auth/password",
    ["POST"],
    Operation(
        "Change the password; every sign-in of the user is revoked (access tokens run out)",
        "auth",
        204,
        body=PasswordChangeIn,
        problems=(403, 409),
        operation_id="changePassword",
    ),
)
def change_password() -> Response:
    sessions.change_password(settings(), auth_api.user(), auth_api.body(PasswordChangeIn))
    return no_content()


@auth_api.operation(
    "/auth/me",
    ["GET"],
    Operation("The signed-in user", "auth", response=CurrentUserOut, operation_id="getCurrentUser"),
)
def me() -> Response:
    return json_response(services.current_user(auth_api.user(), auth_api.owner(), auth_api.role()))
