"""The local stand-in for API Gateway's WebSocket API and its Management API (`make run`).

API Gateway's part of live updates, emulated around the very handlers the Lambda functions run
(app.py's on_ws_connect / on_ws_message / on_ws_disconnect, found through the app's
`websocket_handlers`), as the stream pump emulates the event source mappings:

- A WebSocket endpoint (the `websockets` library) on HOST:WS_PORT (127.0.0.1:8001 by default).
  Each connection gets an id like API Gateway's; the upgrade request becomes a $connect event
  (routeKey, eventType, connectionId, domainName, stage, apiId, headers, queryStringParameters)
  and a connect answer other than 2xx refuses the upgrade with that status (HTTP 401 for a bad
  token) and closes the socket. Each message becomes a $default event, and the handler's answer
  body goes back to the client (the deployed $default route has a route response). A closed
  socket becomes a $disconnect event.
- The Management API over plain HTTP on loopback (an ephemeral port): `POST
  /{stage}/@connections/{id}` sends the body to that socket, `DELETE` closes it, `GET` describes
  it; an unknown or closed connection answers 410 GoneException as API Gateway does. Its address
  becomes WEBSOCKET_MANAGEMENT_ENDPOINT, so the fan-out's ordinary botocore
  `apigatewaymanagementapi` client posts here; deployed, the same client posts to API Gateway's
  https endpoint (infra/template.json). Chalice's own `app.websocket_api` is not used: it can
  only post to https://{domain}/{stage}.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger("contact_notes.live_gateway")

API_ID = "local"  # requestContext.apiId (Chalice configures its websocket_api from it)
DEFAULT_WS_PORT = 8001
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message limit
_CONNECTION_PATH = re.compile(r"^(?:/[^/@]+)?/@connections/([^/]+)$")

Handler = Callable[[dict[str, Any], Any], Any]


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 characters of base64, e.g. 'L0SM9cOFvHcCIhw=')."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


def _now_ms() -> int:
    return int(time.time() * 1000)


def websocket_event(
    route_key: str,
    connection_id: str,
    *,
    domain: str = "127.0.0.1:8001",
    stage: str = "local",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    closed: tuple[int, str] = (1000, ""),
    connected_at: int | None = None,
) -> dict[str, Any]:
    """The event API Gateway gives a WebSocket route's Lambda (proxy integration)."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    now = _now_ms()
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": connected_at or now,
        "requestTimeEpoch": now,
        "identity": {"sourceIp": "127.0.0.1"},
        "requestId": uuid.uuid4().hex[:16],
        "domainName": domain,
        "connectionId": connection_id,
        "apiId": API_ID,
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if event_type == "CONNECT":
        event["headers"] = dict(headers or {})
        event["multiValueHeaders"] = {name: [value] for name, value in (headers or {}).items()}
        event["queryStringParameters"] = dict(query) if query else None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    elif event_type == "MESSAGE":
        context["messageId"] = uuid.uuid4().hex[:16]
        event["body"] = body
    else:
        context["disconnectStatusCode"], context["disconnectReason"] = closed
        event["headers"] = dict(headers or {})
    return event


class LocalWebSocketGateway:
    """API Gateway's WebSocket API on loopback. Made first (its Management API, on an ephemeral
    loopback port, must be named in the settings before they are read), then listen() on the
    WebSocket port (a busy port fails there, at start), then start(app)."""

    def __init__(self, stage: str = "local") -> None:
        self.stage = stage
        self._management = ThreadingHTTPServer(("127.0.0.1", 0), _ManagementHandler)
        self._management.daemon_threads = True
        self._management.gateway = self  # type: ignore[attr-defined]
        self._ws_socket: socket.socket | None = None
        self.host, self.port = "127.0.0.1", 0
        self._sockets: dict[str, tuple[Any, int]] = {}  # connection id -> (socket, connected at ms)
        self._pending: dict[int, tuple[str, int]] = {}  # id(socket) -> its id, between $connect and its handler
        self._lock = threading.Lock()
        self._handlers: dict[str, Handler] = {}
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    def listen(self, host: str, port: int) -> None:
        """Bind the WebSocket endpoint (OSError when the port is taken)."""
        self._ws_socket = socket.create_server((host, port))
        self.host, self.port = host, int(self._ws_socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def management_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._management.server_address[1]}/{self.stage}"

    def start(self, app: Any) -> None:
        """Serve the app's WebSocket handlers and the Management API, each on its own thread."""
        from websockets.sync.server import serve

        assert self._ws_socket is not None, "listen() first"  # noqa: S101
        for route_key, config in app.websocket_handlers.items():
            self._handlers[route_key] = app.handler_map[config.name]
        self._server = serve(
            self._serve,
            sock=self._ws_socket,
            process_request=self._connect,
            max_size=MAX_MESSAGE_BYTES,
            compression=None,
            logger=logging.getLogger("contact_notes.live_gateway.websockets"),
        )
        for name, target in (("websocket endpoint", self._server.serve_forever),
                             ("management api", self._management.serve_forever)):  # fmt: skip
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop accepting; close every socket (each gets its $disconnect); stop the Management API."""
        if self._server is not None:
            self._server.shutdown()
        with self._lock:
            open_sockets = [sock for sock, _ in self._sockets.values()]
        for sock in open_sockets:
            sock.close(1001, "Going away")
        self._management.shutdown()
        self._management.server_close()
        if self._ws_socket is not None:
            self._ws_socket.close()

    # ---- the WebSocket side ---------------------------------------------------------------

    def _call(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(route_key) or self._handlers.get("$default")
        if handler is None:
            return {"statusCode": 200}
        answer = handler(event, None)
        return answer if isinstance(answer, dict) else {"statusCode": 200}

    def _domain(self, request: Any) -> str:
        return str(request.headers.get("Host") or f"{self.host}:{self.port}")

    def _connect(self, connection: Any, request: Any) -> Any:
        """$connect during the upgrade: the handler's non-2xx answer refuses it with that status."""
        connection_id, connected_at = new_connection_id(), _now_ms()
        query = {name: values[-1] for name, values in parse_qs(urlsplit(request.path).query).items()}
        headers = {name: value for name, value in request.headers.raw_items()}
        event = websocket_event("$connect", connection_id, domain=self._domain(request), stage=self.stage,
                                query=query, headers=headers, connected_at=connected_at)  # fmt: skip
        answer = self._call("$connect", event)
        status = int(answer.get("statusCode") or 200)
        if not 200 <= status < 300:
            refusal = connection.respond(status, str(answer.get("body") or ""))
            content_type = (answer.get("headers") or {}).get("Content-Type")
            if content_type:
                refusal.headers["Content-Type"] = content_type
            return refusal
        self._pending[id(connection)] = (connection_id, connected_at)
        return None

    def _serve(self, connection: Any) -> None:
        """A connected socket: its messages to $default (answers back), its close to $disconnect."""
        from websockets.exceptions import ConnectionClosed

        connection_id, connected_at = self._pending.pop(id(connection))
        with self._lock:
            self._sockets[connection_id] = (connection, connected_at)
        domain = self._domain(connection.request)
        try:
            for message in connection:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                event = websocket_event("$default", connection_id, domain=domain, stage=self.stage, body=text,
                                        connected_at=connected_at)  # fmt: skip
                body = self._answer(event)
                if body:
                    connection.send(body)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._sockets.pop(connection_id, None)
            closed = (connection.close_code or 1006, connection.close_reason or "")
            event = websocket_event("$disconnect", connection_id, domain=domain, stage=self.stage, closed=closed,
                                    connected_at=connected_at)  # fmt: skip
            try:
                self._call("$disconnect", event)
            except Exception:  # as on AWS: a failing $disconnect is the function's error, the socket is closed
                logger.exception("the $disconnect handler failed")

    def _answer(self, event: dict[str, Any]) -> str | None:
        route_key = event["requestContext"]["routeKey"]
        try:
            answer = self._call(route_key, event)
        except Exception:  # API Gateway tells the client, and the socket stays open
            logger.exception("the %s handler failed", route_key)
            context = event["requestContext"]
            return json.dumps({"message": "Internal server error", "connectionId": context["connectionId"],
                               "requestId": context["requestId"]})  # fmt: skip
        body = answer.get("body")
        return str(body) if body else None

    # ---- the Management API side ----------------------------------------------------------

    def connected(self, connection_id: str) -> tuple[Any, int] | None:
        with self._lock:
            return self._sockets.get(connection_id)


class _ManagementHandler(BaseHTTPRequestHandler):
    """API Gateway's Management API for the local connections (plain HTTP, loopback only)."""

    server_version = "LocalApiGatewayManagement"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per post would drown the stack's output

    def _target(self) -> Any:
        """The socket the path names; None (answered 404 or 410) when there is none."""
        match = _CONNECTION_PATH.match(urlsplit(self.path).path)
        if match is None:
            self._reply(404, {"message": "Not Found"})
            return None
        gateway: LocalWebSocketGateway = self.server.gateway  # type: ignore[attr-defined]
        found = gateway.connected(unquote(match.group(1)))
        if found is None:
            self._gone()
        return found

    def do_POST(self) -> None:
        from websockets.exceptions import ConnectionClosed

        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self._target()
        if target is None:
            return
        if len(data) > MAX_MESSAGE_BYTES:
            self._reply(413, {"message": "Request Entity Too Large"}, "PayloadTooLargeException")
            return
        try:
            target[0].send(data.decode("utf-8", "replace"))
        except ConnectionClosed:
            self._gone()
            return
        self._reply(200, None)

    def do_DELETE(self) -> None:
        target = self._target()
        if target is not None:
            target[0].close(1000, "")
            self._reply(204, None)

    def do_GET(self) -> None:
        target = self._target()
        if target is None:
            return
        since = datetime.fromtimestamp(target[1] / 1000, UTC).isoformat().replace("+00:00", "Z")
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._reply(200, {"connectedAt": since, "identity": {"sourceIp": "127.0.0.1"}, "lastActiveAt": now})

    def _gone(self) -> None:
        self._reply(410, {"message": None}, "GoneException")

    def _reply(self, status: int, body: dict[str, Any] | None, error_type: str | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(payload)
