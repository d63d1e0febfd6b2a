"""Typed settings, read from the environment on first use (never at import time)."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Stage = Literal["local", "dev", "prod"]

# Environment variable names, in one place.
ENV_JWT_SECRET = "JWT_SECRET"  # noqa: S105 (the variable's name)
ENV_JWT_SECRET_ARN = "JWT_SECRET_ARN"  # noqa: S105 (the variable's name)

MIN_SECRET_BYTES = 32
# OWASP's argon2id minimum (Password Storage Cheat Sheet): m=19 MiB, t=2, p=1.
OWASP_ARGON2_MEMORY_KIB = 19 * 1024
OWASP_ARGON2_ROUNDS = 2


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


class Settings(BaseModel):
    """Everything the service reads from its environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Stage = "local"
    aws_region: str = "us-east-1"
    dynamodb_endpoint: str | None = None
    users_table: str = "contact-notes-users"
    contacts_table: str = "contact-notes-contacts"
    contact_emails_table: str = "contact-notes-contact-emails"
    notes_table: str = "contact-notes-notes"
    rate_limits_table: str = "contact-notes-rate-limits"
    workspaces_table: str = "contact-notes-workspaces"
    memberships_table: str = "contact-notes-memberships"
    sessions_table: str = "contact-notes-sessions"
    search_table: str = "contact-notes-search"
    idempotency_table: str = "contact-notes-idempotency"
    deletion_marks_table: str = "contact-notes-deletion-marks"
    audit_table: str = "contact-notes-audit"
    # #17: the live-updates WebSocket connections (chalicelib.live).
    connections_table: str = "contact-notes-connections"
    # Where the live-updates fan-out posts to connections: API Gateway's Management API for the
    # WebSocket API (https://{api id}.execute-api.{region}.amazonaws.com/{stage}, set by the
    # template), or `make run`'s plain-HTTP stand-in on loopback. Unset: nothing is posted.
    websocket_management_endpoint: str | None = None
    # A live connection is kept at most this long (API Gateway closes any after 2 hours), and
    # never past its access token's expiry.
    live_connection_max_seconds: int = Field(default=7200, ge=60, le=7200)
    webhooks_table: str = "contact-notes-webhooks"
    webhook_deliveries_table: str = "contact-notes-webhook-deliveries"
    # The signing key: JWT_SECRET (local runs, tests), or on the deployed stages the Secrets
    # Manager secret JWT_SECRET_ARN names, read when first needed and again once it is older
    # than jwt_secret_max_age_seconds (so a rotated key is used without new containers).
    # Optional here so that functions which sign nothing (the stream normalizer) can run;
    # everything that signs or verifies goes through `signing_secret`, which refuses.
    jwt_secret: str | None = Field(default=None, repr=False)
    jwt_secret_arn: str | None = None
    jwt_secret_max_age_seconds: int = Field(default=300, ge=1, le=86_400)
    jwt_issuer: str = "contact-notes"
    jwt_audience: str = "contact-notes-api"
    # Access tokens cannot be revoked (the authorizer reads no table): their lifetime bounds how
    # long one stays good after sign-out, removal from a workspace or a password change.
    access_token_minutes: int = Field(default=15, ge=1, le=1440)
    # A refresh token family (a sign-in) ends after this many days without a refresh.
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    # How long one DynamoDB call may wait for its answer (chalicelib.models: the request's
    # time budget rests on it). `make run` raises it for its embedded DynamoDB, which answers a
    # Query over 10,000 items in about a second where DynamoDB takes milliseconds.
    dynamodb_read_timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    default_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # A search makes up to 9 store calls (8 terms and the page), each up to about 4 s when the
    # store is at its slowest (models.py: 2 attempts of 0.5 + 1 s, and a pause): no call is
    # started once the search has spent this long on the store, so that it answers (503) with
    # the limiter's call within the 20 s every other route keeps to, under the Lambda's 25 s.
    search_store_seconds: float = Field(default=12.0, ge=0, le=12)
    # argon2id's cost for new password hashes (a stored hash keeps the cost it was made
    # with and verifies whatever these are). OWASP's minimum by default, and refused below it
    # on a deployed stage; only the local stage may go lower, which the test suite does: its
    # thousand-odd sign-ups would otherwise spend about 40 s of CPU hashing.
    password_hash_memory_kib: int = Field(default=OWASP_ARGON2_MEMORY_KIB, ge=8, le=1_048_576)
    password_hash_rounds: int = Field(default=OWASP_ARGON2_ROUNDS, ge=1, le=20)
    # Transactions an import or a batch sends at once (chalicelib.transfer.bulk): a 10,000-row
    # import is about 300 of them, which must fit in the API function's 25 s. Default 8; 1 on
    # the local stage, whose embedded DynamoDB (moto) cannot run two transactions at once.
    bulk_write_workers: int | None = Field(default=None, ge=1, le=16)
    # An import or a batch starts no transaction once it has spent this long on the store (a
    # slow or failing DynamoDB): the rows not yet written are reported ("import them again") and
    # the answer comes before the function's 25 s, each transaction in flight taking at most
    # about 12 s more (models.py's retries). Default 12; none on the local stage, whose embedded
    # DynamoDB is far slower than DynamoDB (a 10,000-row import takes longer than 12 s there).
    bulk_store_seconds: float | None = Field(default=None, ge=0, le=12)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # JSON lines on deployed stages (CloudWatch Logs Insights), text locally; see observability.
    log_format: Literal["json", "text"] | None = None
    metrics_enabled: bool | None = None
    # Per caller (user, or client IP when anonymous): a bucket of `burst` requests refilled
    # at `per_second`. A caller that keeps sending while limited waits twice as long each time.
    rate_limit_burst: int = Field(default=60, ge=1, le=100_000)
    rate_limit_per_second: float = Field(default=10.0, gt=0, le=100_000)
    rate_limit_backoff_max_seconds: int = Field(default=300, ge=1, le=86_400)
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_backoff_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    login_backoff_max_seconds: int = Field(default=900, ge=1, le=86_400)
    # API Gateway usage plans: tier name -> the API key value the authorizer names for it
    # (API key source AUTHORIZER). Empty locally, where no gateway enforces plans.
    usage_plan_keys: dict[str, str] = Field(default_factory=dict, repr=False)
    # Browser pages on these origins may call the API (comma-separated); none by default.
    cors_allowed_origins: tuple[str, ...] = ()
    # How long the answer to a POST sent with an Idempotency-Key is kept and replayed (issue
    # #16: 24 hours). IDEMPOTENCY_SECONDS, when set, replaces it (tests watch a key expire).
    idempotency_hours: int = Field(default=24, ge=1, le=24 * 30)
    idempotency_seconds: int | None = Field(default=None, ge=1, le=30 * 86_400)
    # Contacts per page of GET /exports: 1,000 (the most), or fewer (tests page through a few).
    # How long the audit log keeps an event (DynamoDB TTL on AuditTable).
    audit_retention_days: int = Field(default=365, ge=1, le=3650)
    export_page_size: int = Field(default=1000, ge=1, le=1000)
    # Webhooks (chalicelib.webhooks). The delivery queue: its URL (deployed: the template's), or
    # on the local stage looked up by name on SQS_ENDPOINT (default: DYNAMODB_ENDPOINT, whose
    # moto server serves SQS too).
    webhook_queue_url: str | None = None
    webhook_queue_name: str = "contact-notes-webhook-deliveries"
    sqs_endpoint: str | None = None
    # One delivery attempt: connecting and the answer together, by the wall clock. At most 20 s:
    # the delivery function (30 s) must record the outcome after it.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=20)
    # The pauses before each retry (comma-separated seconds, each stretched by up to ±20 %
    # jitter): 6 retries over about 17.6 hours. Zeros in tests.
    webhook_retry_seconds: tuple[float, ...] = Field(default=(5, 300, 1800, 7200, 18000, 36000), max_length=20)
    # An endpoint is disabled once this many deliveries in a row failed for good (each after all
    # its retries; a 410 Gone disables at once). A success resets the count.
    webhook_disable_after: int = Field(default=5, ge=1, le=1000)
    webhook_delivery_retention_days: int = Field(default=30, ge=1, le=365)
    # Only loopback endpoints, never a name resolved: the test suite's stacks (no DNS query may
    # leave the machine).
    webhook_loopback_only: bool = False

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _origins_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            from chalicelib.cors import parse_origins

            return parse_origins(value)
        return value

    @field_validator("webhook_retry_seconds", mode="before")
    @classmethod
    def _pauses_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _pauses_in_range(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= pause <= 86_400 for pause in value):
            raise ValueError("each pause must be between 0 and 86400 seconds")
        return value

    @field_validator("usage_plan_keys", mode="before")
    @classmethod
    def _keys_from_json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError("must be a JSON object of tier name to API key") from exc
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _secret_long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @property
    def write_workers(self) -> int:
        if self.bulk_write_workers is not None:
            return self.bulk_write_workers
        return 1 if self.stage == "local" else 8

    @property
    def idempotency_expires_after_seconds(self) -> int:
        if self.idempotency_seconds is not None:
            return self.idempotency_seconds
        return self.idempotency_hours * 3600

    @property
    def bulk_deadline_seconds(self) -> float | None:
        if self.bulk_store_seconds is not None:
            return self.bulk_store_seconds
        return None if self.stage == "local" else 12.0

    @property
    def signing_secret(self) -> str:
        """The key for tokens and cursors; a deployed stage without one refuses to serve.

        Never stored in the settings: a secret from Secrets Manager comes from the process's
        cache, which reads it again once it is older than jwt_secret_max_age_seconds.
        """
        if self.jwt_secret is not None:
            return self.jwt_secret
        if self.jwt_secret_arn is not None:
            return _SECRETS.get(self.jwt_secret_arn, self.jwt_secret_max_age_seconds, self.aws_region)
        raise ConfigError(f"invalid configuration: {ENV_JWT_SECRET}: required on stage {self.stage}")

    @property
    def is_local(self) -> bool:
        return self.stage == "local"

    @model_validator(mode="after")
    def _stage_defaults(self) -> Settings:
        weak = (
            self.password_hash_memory_kib < OWASP_ARGON2_MEMORY_KIB or self.password_hash_rounds < OWASP_ARGON2_ROUNDS
        )
        if weak and not self.is_local:
            raise ValueError(
                f"PASSWORD_HASH_MEMORY_KIB and PASSWORD_HASH_ROUNDS: below OWASP's argon2id minimum "
                f"({OWASP_ARGON2_MEMORY_KIB} KiB, {OWASP_ARGON2_ROUNDS} rounds) on stage {self.stage}"
            )
        if self.log_format is None:
            object.__setattr__(self, "log_format", "text" if self.is_local else "json")
        if self.metrics_enabled is None:
            object.__setattr__(self, "metrics_enabled", not self.is_local)
        return self


# Each setting is read from the variable of its name in capitals (STAGE, JWT_SECRET, ...).
_FIELDS_FROM_ENV = {name: name.upper() for name in Settings.model_fields}

# The local stage may run without a configured secret: one is made per process, so
# tokens simply stop working when the local server restarts.
_LOCAL_SECRET = secrets.token_urlsafe(48)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from an environment mapping; raise ConfigError when unusable."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for field, name in _FIELDS_FROM_ENV.items():
        raw = env.get(name, "").strip()
        if raw:
            values[field] = raw
    if "aws_region" not in values and env.get("AWS_DEFAULT_REGION"):
        values["aws_region"] = env["AWS_DEFAULT_REGION"]
    if env.get("AWS_LAMBDA_FUNCTION_NAME") and values.get("stage", "local") == "local":
        # The local stage's conveniences (a built-in signing key, cheap hashing, webhooks to
        # loopback) must never reach AWS because a function lost its STAGE.
        raise ConfigError("invalid configuration: STAGE: must be dev or prod inside AWS Lambda")
    if values.get("stage", "local") == "local" and "jwt_secret_arn" not in values:
        values.setdefault("jwt_secret", _LOCAL_SECRET)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(_problem(err["loc"], err["msg"]) for err in exc.errors(include_input=False))
        raise ConfigError(f"invalid configuration: {problems}") from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """One validation error as a line: the variable's name, or (an error about several
    settings together) pydantic's message, which names them, without its prefix."""
    if not loc:
        return message.removeprefix("Value error, ")
    return f"{_FIELDS_FROM_ENV.get(str(loc[0]), loc[0])}: {message}"


class _SecretCache:
    """Secrets Manager values, each read on first use and again once older than its max age.

    A plain botocore client made from the models' botocore session: a session of its own
    costs a cold start about 35 ms, and Powertools' parameters utility about 25 ms more for
    importing boto3 (measured, BENCHMARKS.md). Should a refresh fail, the value in hand is
    kept for another max age (an outage of Secrets Manager must not stop the API); with no
    value yet, the service refuses to serve.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float]] = {}  # secret id -> (value, read at, monotonic)
        self._client: Any = None

    def get(self, secret_id: str, max_age: float, region: str) -> str:
        cached = self._values.get(secret_id)
        if cached is not None and time.monotonic() - cached[1] < max_age:
            return cached[0]
        with self._lock:
            cached = self._values.get(secret_id)
            if cached is None or time.monotonic() - cached[1] >= max_age:
                cached = (self._read(secret_id, region, cached), time.monotonic())
                self._values[secret_id] = cached
            return cached[0]

    def _read(self, secret_id: str, region: str, cached: tuple[str, float] | None) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            value = str(self._secrets_manager(region).get_secret_value(SecretId=secret_id)["SecretString"])
        except (BotoCoreError, ClientError, KeyError) as exc:
            if cached is not None:
                _log_stale_secret(exc)
                return cached[0]
            from chalicelib.outage import as_service_unavailable

            unavailable = as_service_unavailable(exc, "Secrets Manager", "SecretUnavailable")
            if unavailable is not None:  # unreachable or throttling: a 503 the client may retry
                raise unavailable from None
            raise ConfigError(f"invalid configuration: {ENV_JWT_SECRET_ARN}: cannot read the secret ({exc})") from None
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"invalid configuration: {ENV_JWT_SECRET_ARN}: must be at least {MIN_SECRET_BYTES} bytes")
        return value

    def _secrets_manager(self, region: str) -> Any:
        if self._client is None:
            from botocore.config import Config

            from chalicelib.models import aws_session  # the session the DynamoDB client shares

            # Bounded like the DynamoDB client (models.py): a slow Secrets Manager must become a
            # 503 well inside the functions' timeouts (the authorizer's is 5 s), not a hang.
            bounds = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2})
            self._client = aws_session().create_client("secretsmanager", region_name=region, config=bounds)
        return self._client

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._client = None


def _log_stale_secret(exc: Exception) -> None:
    import logging

    logging.getLogger("contact_notes").warning("keeping the signing secret in hand: cannot read it again (%s)", exc)


_SECRETS = _SecretCache()


def forget_secrets() -> None:
    """Read secrets afresh on next use (tests, the local runner)."""
    _SECRETS.clear()
