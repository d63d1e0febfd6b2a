"""Logging, metrics and tracing, set up once per process (Powertools).

- Logs: JSON lines (Powertools' formatter) on deployed stages, with the request id and the
  user id on every line (from context variables the HTTP middleware sets); plain text locally.
  Nothing logs request bodies, note text, passwords or tokens.
- Metrics: CloudWatch embedded-metric-format lines (requests by route and status, 429s,
  normalizer outcomes, limiter fail-open), on deployed stages or when METRICS_ENABLED=1.
- Tracing: every AWS call (DynamoDB, Secrets Manager) is an X-Ray subsegment inside Lambda,
  by patching botocore once the first time settings are read; nothing is imported elsewhere.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
from typing import Any

from chalicelib.config import Settings

NAMESPACE = "ContactNotes"
SERVICE = "contact-notes"
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)
_state: dict[str, Any] = {}


class _RequestContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        record.user_id = user_id_var.get()
        return True


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever sys.stdout is now (Lambda captures it; tests replace it)."""

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(settings: Settings) -> None:
    """Set up logging (and tracing once); cheap to call on every request."""
    wanted = (settings.log_format, settings.log_level, settings.metrics_enabled)
    if _state.get("config") == wanted:
        return
    logger = logging.getLogger("contact_notes")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(settings.log_level)
    if settings.log_format == "json":
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        handler = _StdoutHandler()
        handler.setFormatter(LambdaPowertoolsFormatter(service=SERVICE))
        handler.addFilter(_RequestContext())
        logger.addHandler(handler)
        logger.propagate = False  # one line per record, not a second plain copy from Lambda's root handler
    else:
        logger.propagate = True
    _state["config"] = wanted
    _state["metrics"] = settings.metrics_enabled


def tracing_on() -> bool:
    """Whether X-Ray tracing is on, decided as Powertools' Tracer decides: inside Lambda
    (LAMBDA_TASK_ROOT), not in SAM's or Chalice's local emulators, unless POWERTOOLS_TRACE_DISABLED."""
    env = os.environ
    if not env.get("LAMBDA_TASK_ROOT") or env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE"):
        return False
    # Powertools' own truthy values (shared.functions.strtobool), without its ValueError for others.
    return env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in {"1", "true", "yes", "on", "y", "t"}


def trace_aws_calls() -> bool:
    """Patch botocore for X-Ray once, if tracing is on; return whether it is.

    Only the X-Ray SDK's botocore patch is loaded, not Powertools' Tracer around it, and only
    where traces can go: outside Lambda, importing the SDK is pure start-up cost (and builds
    an X-Ray client for its sampler). Inside Lambda the recorder sends every subsegment to the
    daemon as soon as it closes (Lambda's context), which is what the Tracer would configure.
    """
    if "tracing" not in _state:
        on = tracing_on()
        if on:
            from aws_xray_sdk.core import patch

            patch(["botocore"])
        _state["tracing"] = on
    return bool(_state["tracing"])


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Emit one CloudWatch metric (EMF) when metrics are on."""
    if not _state.get("metrics"):
        return
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)
