"""`make run`: the API on Chalice's local server, backed by an embedded DynamoDB.

Reads `.env` (real environment variables win), starts moto's DynamoDB server bound to
127.0.0.1 unless DYNAMODB_ENDPOINT names another store, creates the tables (idempotent),
and serves on HOST:PORT. SIGINT or SIGTERM stops the server and the store cleanly.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import FrameType
from typing import Any

from chalice.local import ChaliceRequestHandler

from chalicelib.config import Settings
from devtools.gateway import MAX_PAYLOAD_BYTES, ParityGateway, render
from devtools.live_gateway import DEFAULT_WS_PORT, LocalWebSocketGateway
from devtools.stream_pump import StreamPump

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # read at most this much of a refused body


def env_file() -> Path:
    """The .env file to read: ENV_FILE if set, else the project's own."""
    return Path(os.environ.get("ENV_FILE") or ROOT / ".env")


def load_dotenv_file(path: Path) -> None:
    """Apply a .env file without overriding variables already set."""
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_dynamodb() -> Iterator[str]:
    """moto in server mode on loopback only; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    from devtools import moto_transactions

    moto_transactions.install()  # TransactWriteItems without copying whole tables (see there)

    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")):
        os.environ.setdefault(name, value)
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.stop()


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def serve(host: str, port: int) -> None:
    from chalice.cli.factory import CLIFactory

    from chalicelib.models import create_tables
    from chalicelib.schemas import build_all

    build_all()  # the local server answers on threads; see chalicelib.schemas._Model
    live = LocalWebSocketGateway()  # before the settings, which name its Management API
    os.environ["WEBSOCKET_MANAGEMENT_ENDPOINT"] = live.management_endpoint
    settings = settings_or_exit(serving=True)
    created = create_tables(settings)
    factory = CLIFactory(str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=settings.stage)
    app = config.chalice_app
    server = _listen_or_exit(factory, app, config, host, port)
    server.server.RequestHandlerClass = functools.partial(_Handler, app_object=app, config=config)
    _listen_for_websockets_or_exit(live, host)
    pumps = _start_stream_pumps(app, settings)
    live.start(app)
    workers = _start_queue_workers(app, settings)
    tables = ", ".join(created) if created else "existing tables"
    print(
        f"contact-notes: serving http://{host}:{port}/api/v1 (stage {settings.stage}; "
        f"DynamoDB {settings.dynamodb_endpoint or 'AWS'}; {tables})",
        flush=True,
    )
    print(f"contact-notes: live updates on {live.url}/?token=<access token> "
          f"(Management API {live.management_endpoint})", flush=True)  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.server.server_close()
        live.stop()
        for pump in pumps:
            pump.stop()
        for worker in workers:
            worker.stop()


def _listen_for_websockets_or_exit(live: LocalWebSocketGateway, host: str) -> None:
    """The live-updates WebSocket endpoint (devtools.live_gateway) on HOST:WS_PORT, or exit
    with one line naming WS_PORT and HOST."""
    port = os.environ.get("WS_PORT") or str(DEFAULT_WS_PORT)
    if not port.isdigit() or not 0 <= int(port) < 65536:
        sys.exit(f"contact-notes: invalid configuration: WS_PORT: {port!r} is not a port number (0-65535)")
    try:
        live.listen(host, int(port))
    except OSError as exc:
        hint = _LISTEN_HINTS.get(exc.errno or 0, "check HOST and WS_PORT").replace("set PORT", "set WS_PORT")
        sys.exit(f"contact-notes: cannot listen on HOST={host} WS_PORT={port}: {exc.strerror or exc}; {hint}")


# What to do about a socket that cannot be bound, by errno: one line, never a traceback.
_LISTEN_HINTS = {
    errno.EADDRINUSE: "set PORT to a free port",
    errno.EACCES: "ports below 1024 need root: set PORT to 1024 or more",
    errno.EADDRNOTAVAIL: "set HOST to an address of this machine",
}


def _listen_or_exit(factory: Any, app: Any, config: Any, host: str, port: int) -> Any:
    """Chalice's local server bound to host:port, or exit with one line naming PORT and HOST."""
    try:
        return factory.create_local_server(app, config, host, port)
    except OSError as exc:
        hint = _LISTEN_HINTS.get(exc.errno or 0, "check HOST and PORT")
        sys.exit(f"contact-notes: cannot listen on HOST={host} PORT={port}: {exc.strerror or exc}; {hint}")


def port_or_exit(text: str) -> int:
    """PORT as a number, or exit with the reason, as any other bad setting does."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        sys.exit(f"contact-notes: invalid configuration: PORT: {text!r} is not a port number (1-65535)")
    return int(text)


class _Handler(ChaliceRequestHandler):
    """Chalice's local handler in front of a gateway that answers as the deployed one does
    (devtools.gateway), for every HTTP method."""

    # Headers and body leave in two writes; with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers, about 40 ms per request on a kept-alive connection
    # (measured: 52 ms per /health against 7 ms on a new connection). Send at once instead.
    disable_nagle_algorithm = True

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any) -> None:
        self.local_gateway = ParityGateway(app_object, config)
        # API Gateway puts the caller's address in identity.sourceIp, which keys the limiter's
        # anonymous buckets; Chalice's local gateway always says 127.0.0.1.
        self.local_gateway.event_converter.LOCAL_SOURCE_IP = client_address[0]
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def __getattr__(self, name: str) -> Any:
        # http.server answers any method without a do_<METHOD> with a bare HTML 501; pass
        # them all (TRACE, QUERY, ...) to the gateway, which answers as API Gateway does.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def _generic_handle(self) -> None:
        """A body over API Gateway's payload limit is refused before it is read (a client may
        declare gigabytes: at most DRAIN_LIMIT_BYTES are read, then the connection closes)."""
        length = str(self.headers.get("content-length") or "0").strip()
        if length.isdigit() and int(length) > MAX_PAYLOAD_BYTES:
            self._discard(min(int(length), DRAIN_LIMIT_BYTES))  # so the client can read the answer
            self.close_connection = True
            response = render("REQUEST_TOO_LARGE", str(uuid.uuid4()), request_headers=dict(self.headers))
            self._send_http_response(response["statusCode"], {**response["headers"], "Connection": "close"},
                                     response["body"])  # fmt: skip
            return
        super()._generic_handle()

    def _send_http_response(self, code: int, headers: Any, body: Any) -> None:
        """As Chalice's, but a 304 goes out as RFC 9110 §15.4.5 has it: no body, and none of the
        Content-Type (Chalice's default application/json) or Content-Length a body would have."""
        if code != 304:
            super()._send_http_response(code, headers, body)
            return
        self.send_response(code)
        dropped = {"content-type", "content-length"}
        self._send_headers({name: value for name, value in headers.items() if name.lower() not in dropped})

    # ChaliceRequestHandler binds these names to its own _generic_handle in its class body,
    # which would bypass the override above for every method http.server knows.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _generic_handle

    def _discard(self, size: int) -> None:
        while size > 0:
            chunk = self.rfile.read(min(size, 1 << 20))
            if not chunk:
                return
            size -= len(chunk)


def settings_or_exit(*, serving: bool) -> Settings:
    """Fresh settings from the environment, or exit with the reason (a deployed stage that
    would serve needs its signing secret; creating tables does not)."""
    from chalicelib import runtime
    from chalicelib.config import ConfigError

    runtime.reset()
    try:
        return runtime.api_settings() if serving else runtime.settings()
    except ConfigError as exc:
        sys.exit(f"contact-notes: {exc}")


def dead_letter_file() -> Path:
    return Path(os.environ.get("DEAD_LETTER_FILE") or ROOT / ".local" / "dead-letters.jsonl")


# Each stream consumer: the table whose stream feeds it, and its Lambda entry point in app.py;
# one pump per event source mapping of infra/template.json, so a stream read by two consumers
# (the notes: normalizer and search index) has two pumps, each with its own position.
STREAM_CONSUMERS = (
    ("notes_table", "normalize_notes"),
    ("workspaces_table", "purge_workspaces"),
    ("contacts_table", "index_contacts"),
    ("notes_table", "index_notes"),
    ("audit_table", "push_live_updates"),
    ("audit_table", "fan_out_webhooks"),
)


def _start_stream_pumps(app: Any, settings: Settings) -> list[StreamPump]:
    """Feed each table's stream to its consumers (the notes to the normalizer and the search
    index, the contacts to the search index, the workspaces to the deletion sweep), as the
    event source mappings do on AWS."""
    if not settings.dynamodb_endpoint or os.environ.get("STREAM_PUMP", "1") == "0":
        return []
    pumps = []
    for table_setting, handler_name in STREAM_CONSUMERS:
        pump = StreamPump(
            endpoint=settings.dynamodb_endpoint,
            region=settings.aws_region,
            table_name=getattr(settings, table_setting),
            handler=functools.partial(_call, app.handler_map[handler_name]),
            dead_letters=dead_letter_file(),
            consumer=handler_name,
        )
        pump.start()
        pumps.append(pump)
    names = ", ".join(handler for _, handler in STREAM_CONSUMERS)
    print(f"contact-notes: {names} fed from their streams; dead letters go to {dead_letter_file()}", flush=True)
    return pumps


def _start_queue_workers(app: Any, settings: Settings) -> list[Any]:
    """The webhook delivery queue, created on the embedded store's SQS (moto serves both), fed to
    the delivery Lambda's handler as the SQS event source mapping does on AWS."""
    if not settings.dynamodb_endpoint or os.environ.get("STREAM_PUMP", "1") == "0":
        return []
    from chalicelib.webhooks import queue
    from devtools.queue_worker import QueueWorker

    url = queue.create_queue(settings)
    arn = f"arn:aws:sqs:{settings.aws_region}:000000000000:{settings.webhook_queue_name}"
    worker = QueueWorker(sqs=queue.client(settings), queue_url=url, queue_arn=arn, consumer="deliver_webhooks",
                         handler=functools.partial(_call, app.handler_map["deliver_webhooks"]),
                         dead_letters=dead_letter_file())  # fmt: skip
    worker.start()
    print(f"contact-notes: deliver_webhooks fed from the queue {url}", flush=True)
    return [worker]


def _call(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    return dict(handler(event, None))


def main() -> None:
    load_dotenv_file(env_file())
    os.environ.setdefault("STAGE", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    host = os.environ.get("HOST") or LOOPBACK
    port = port_or_exit(os.environ.get("PORT") or "8000")
    _stop_on_sigterm()
    try:
        if os.environ.get("DYNAMODB_ENDPOINT"):
            serve(host, port)
        else:
            with embedded_dynamodb() as endpoint:
                os.environ["DYNAMODB_ENDPOINT"] = endpoint
                # moto walks a whole table on every Query: with 10,000 contacts a call takes about
                # a second, which DynamoDB answers in milliseconds; the deployed 1 s would be 503s.
                os.environ.setdefault("DYNAMODB_READ_TIMEOUT_SECONDS", "15")
                serve(host, port)
    except KeyboardInterrupt:
        print("contact-notes: stopped", flush=True)


if __name__ == "__main__":
    main()
