"""Process-wide state made on first use: settings, and the models bound to them."""

from __future__ import annotations

from functools import lru_cache

from chalicelib import observability
from chalicelib.config import Settings, forget_secrets, load_settings
from chalicelib.models import bind_models
from chalicelib.ratelimit import reset_hints


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Settings for this process, read from the environment once, with AWS calls traced
    where tracing is on and the models pointed at their tables."""
    current = load_settings()
    observability.trace_aws_calls()
    bind_models(current)
    return current


def api_settings() -> Settings:
    """Settings for code that serves the API: the signing secret must be there (on a
    deployed stage, the first call reads it from Secrets Manager)."""
    current = settings()
    _ = current.signing_secret
    return current


def reset() -> None:
    """Re-read the environment and secrets on next use (tests, the local runner)."""
    settings.cache_clear()
    forget_secrets()
    reset_hints()
