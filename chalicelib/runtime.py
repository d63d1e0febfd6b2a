"""Process-wide state made on first use: settings, and the models bound to them."""

from __future__ import annotations

from functools import lru_cache

from chalicelib.config import Settings, get_settings, reset_settings
from chalicelib.models import bind_models
from chalicelib.ratelimit import reset_hints


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Settings for this process, with the models pointed at their tables (once)."""
    current = get_settings()
    bind_models(current)
    return current


def api_settings() -> Settings:
    """Settings for code that serves the API: the signing secret must be there."""
    current = settings()
    _ = current.signing_secret
    return current


def reset() -> None:
    """Re-read the environment on next use (tests, the local runner)."""
    reset_settings()
    settings.cache_clear()
    reset_hints()
