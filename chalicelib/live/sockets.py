"""The WebSocket API's handlers: $connect, $default (messages) and $disconnect.

API Gateway passes the connect request's query string; browsers cannot set headers on a
WebSocket, so the access token comes as `?token=`. It is verified exactly as the REST
authorizer verifies a bearer token (chalicelib.auth.verify_token: no database call), and the
connection is stored for the token's workspace until the token expires, or API Gateway's
2-hour connection limit, whichever comes first. Anything else is refused with a 401 (a
$connect answer other than 2xx refuses the connection), or a 503 when the store cannot
answer. Messages: {"action": "ping"} answers {"type": "pong"}; anything else answers an
error message; neither touches the store.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from chalice.app import Response

from chalicelib import observability
from chalicelib.auth import InvalidToken, verify_token
from chalicelib.errors import AppError, ServiceUnavailable, Unauthorized
from chalicelib.live import connections
from chalicelib.runtime import api_settings, settings
from chalicelib.web import problem_response

logger = logging.getLogger("contact_notes.live")

PONG = json.dumps({"type": "pong"})
UNKNOWN_MESSAGE = json.dumps({"type": "error", "detail": 'Unknown message; send {"action": "ping"}.'})


def connect(event: dict[str, Any]) -> Response:
    """Accept a connection whose `?token=` is a valid access token (200), else refuse it (401)."""
    try:
        current = api_settings()
        observability.configure(current)
        token = str((event.get("queryStringParameters") or {}).get("token") or "")
        principal = verify_token(current, "Bearer " + token)
    except InvalidToken:
        observability.count("LiveConnectRefused")
        return problem_response(Unauthorized("A valid access token is required as ?token=."), None)
    except AppError as error:  # the signing secret cannot be read now
        return problem_response(error, None)
    connection_id = str(event["requestContext"]["connectionId"])
    expires_at = min(principal.expires_at, int(time.time()) + current.live_connection_max_seconds)
    try:
        connections.register(connection_id, principal.owner_id, principal.user_id, principal.role, expires_at)
    except ServiceUnavailable as unavailable:
        return problem_response(unavailable, None)
    observability.count("LiveConnected")
    return Response(body="", status_code=200)


def message(event: dict[str, Any]) -> Response:
    """Answer a ping; say what is understood to anything else (API Gateway's route response
    sends the body back to the client)."""
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("action") == "ping":
        return Response(body=PONG, status_code=200)
    return Response(body=UNKNOWN_MESSAGE, status_code=200)


def disconnect(event: dict[str, Any]) -> Response:
    """Forget the connection. A failure is logged: its items expire by TTL, and the fan-out
    deletes them on its first post that API Gateway answers 410."""
    observability.configure(settings())
    connection_id = str(event["requestContext"]["connectionId"])
    try:
        connections.forget(connection_id)
    except ServiceUnavailable:
        logger.warning("could not forget a closed connection; it expires by TTL")
    return Response(body="", status_code=200)
