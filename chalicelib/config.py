"""Typed settings, read from the environment on first use (never at import time)."""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Stage = Literal["local", "dev", "prod"]

# Environment variable names, in one place.
ENV_JWT_SECRET = "JWT_SECRET"  # noqa: S105 (the variable's name)
ENV_JWT_SECRET_ARN = "JWT_SECRET_ARN"  # noqa: S105 (the variable's name)
SECRET_CACHE_SECONDS = 300

MIN_SECRET_BYTES = 32


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
    notes_table: str = "contact-notes-notes"
    rate_limits_table: str = "contact-notes-rate-limits"
    # Optional here so that functions which sign nothing (the stream normalizer) can run;
    # everything that signs or verifies goes through `signing_secret`, which refuses.
    jwt_secret: str | None = Field(default=None, repr=False)
    jwt_issuer: str = "contact-notes"
    jwt_audience: str = "contact-notes-api"
    access_token_ttl_seconds: int = Field(default=1800, ge=60, le=86400)
    default_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
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
    def signing_secret(self) -> str:
        """The key for tokens and cursors; a deployed stage without one refuses to serve."""
        if self.jwt_secret is None:
            raise ConfigError(f"invalid configuration: {ENV_JWT_SECRET}: required on stage {self.stage}")
        return self.jwt_secret

    @property
    def is_local(self) -> bool:
        return self.stage == "local"

    @model_validator(mode="after")
    def _stage_defaults(self) -> Settings:
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
    if "jwt_secret" not in values and env.get(ENV_JWT_SECRET_ARN, "").strip():
        values["jwt_secret"] = _secret_from_secrets_manager(env[ENV_JWT_SECRET_ARN].strip())
    if values.get("stage", "local") == "local":
        values.setdefault("jwt_secret", _LOCAL_SECRET)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_FIELDS_FROM_ENV.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


def _secret_from_secrets_manager(secret_id: str) -> str:
    """The deployed stages' signing key: AWS Secrets Manager via Powertools' parameters
    utility (cached), so it is never in the template or an environment variable in clear."""
    from aws_lambda_powertools.utilities import parameters  # only deployed stages pay this import

    try:
        value = parameters.get_secret(secret_id, max_age=SECRET_CACHE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        raise ConfigError(f"invalid configuration: {ENV_JWT_SECRET_ARN}: cannot read the secret ({exc})") from None
    return str(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the local runner change the environment)."""
    get_settings.cache_clear()
