"""The one exception family services raise; rendered as RFC 9457 problems in chalicelib.web."""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "urn:contact-notes:problem:"


class AppError(Exception):
    """Base of every error a client may see. The HTTP status lives on the class."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


class BadRequest(AppError):
    status, slug, title = 400, "bad-request", "Bad request"


class MalformedJson(BadRequest):
    slug, title = "malformed-json", "Malformed JSON"


class InvalidCursor(BadRequest):
    slug, title = "invalid-cursor", "Invalid pagination cursor"


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidGrant(Unauthorized):
    """The token endpoint's refusal of a password or refresh token: RFC 6749 §5.2's
    `invalid_grant`, kept at 401 (what a wrong password has always answered here)."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.extra = {"error": "invalid_grant"}


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(AppError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(AppError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(AppError):
    status, slug, title = 422, "validation-error", "Validation failed"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


class MethodNotAllowed(AppError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Misconfigured(AppError):
    slug, title = "misconfigured", "Service misconfigured"


# Errors Chalice answers by itself before a view runs, re-rendered as problems.
BY_STATUS: dict[int, type[AppError]] = {
    400: BadRequest,
    415: UnsupportedMediaType,
}


class TooManyRequests(AppError):
    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, headers={**(headers or {}), "Retry-After": str(max(1, retry_after))})
