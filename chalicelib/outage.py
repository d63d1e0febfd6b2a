"""When an AWS service we call cannot answer now: the one place that decides it is a 503.

Unreachable (refused, unresolvable, connect or read timeout, connection reset), or busy
(throttling, its own internal error): the client may retry, so it is a 503 problem with
Retry-After, never a 500. Each is logged as one line (the error's class, no traceback) and
counted as a metric. Used by the store (DynamoDB), the secret cache (Secrets Manager) and
the HTTP edge's safety net.
"""

from __future__ import annotations

import logging

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable
from pynamodb.exceptions import PynamoDBException

from chalicelib import observability
from chalicelib.errors import ServiceUnavailable

logger = logging.getLogger("contact_notes.outage")

BUSY_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalServiceError",  # Secrets Manager's
    "ServiceUnavailable",
    "TransactionConflictException",
}
# botocore's transport failures, raised after its own retries (models.py bounds them).
_UNREACHABLE = (EndpointUnreachable, HTTPClientError)
UNREACHABLE_RETRY_AFTER = 5  # seconds: an outage lasts longer than a throttling burst


def as_service_unavailable(
    exc: BaseException, service: str = "DynamoDB", metric: str = "StoreUnavailable"
) -> ServiceUnavailable | None:
    """The 503 for a failure that means `service` cannot answer now, or None for any other."""
    cause = exc.cause if isinstance(exc, PynamoDBException) else exc  # PynamoDB wraps botocore's error
    if isinstance(cause, _UNREACHABLE):
        return unavailable(service, type(cause).__name__, "cannot be reached", UNREACHABLE_RETRY_AFTER, metric)
    if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in BUSY_CODES:
        return unavailable(service, str(cause.response["Error"]["Code"]), "is busy", 1, metric)
    return None


def unavailable(
    service: str, reason: str, state: str, retry_after: int, metric: str = "StoreUnavailable"
) -> ServiceUnavailable:
    """Log and count one failure to reach `service`; the 503 to answer with."""
    logger.warning("%s unavailable (%s): answering 503", service, reason)
    observability.count(metric)
    what = "The database" if service == "DynamoDB" else service
    return ServiceUnavailable(f"{what} {state}; retry shortly.", headers={"Retry-After": str(retry_after)})
