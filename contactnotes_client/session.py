"""The CLI's HTTP side: every request through the retry helper, the stored sign-in refreshed when
it runs out, and any failure turned into one line (CliError)."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

import requests

from contactnotes_client import (
    IDEMPOTENCY_KEY_HEADER,
    RETRYABLE_STATUSES,
    call_with_retries,
    credentials,
    new_idempotency_key,
)
from contactnotes_client.credentials import Credentials

DEFAULT_API = "http://127.0.0.1:8000/api/v1"
CONNECT_SECONDS = 5.0
READ_SECONDS = 30.0
IMPORT_READ_SECONDS = 60.0
NOT_SIGNED_IN = "not signed in: run contact-notes login"
# Every POST carries an Idempotency-Key, the same on each try, so the server does its work at
# most once: a POST is sent again on the statuses any request is, on a 500 (a failure is never
# stored, so it runs again), on the 409 that says the first try is still running, and after a
# timeout or a dropped connection (the answer lost, not the write).
POST_RETRY_STATUSES = RETRYABLE_STATUSES | {409, 500}


class CliError(Exception):
    """A failure the CLI reports in one line on stderr (exit 1)."""


def problem_line(response: requests.Response) -> str:
    """'422 Validation failed: #/first_name must not be blank' from an RFC 9457 problem, or the
    status and reason when the answer is not one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"{response.status_code} {response.reason or 'error'}".strip()
    title = str(body.get("title") or response.reason or "error")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        parts = [f"{e.get('pointer', '')} {e.get('detail', '')}".strip() for e in errors if isinstance(e, dict)]
        detail = "; ".join(parts)
    else:
        detail = str(body.get("detail") or "")
    line = f"{response.status_code} {title}" + (f": {detail}" if detail and detail != title else "")
    return " ".join(line.split())  # one line, whatever the server put in it


def _unreachable(api: str, error: requests.RequestException) -> CliError:
    if isinstance(error, requests.Timeout):
        return CliError(f"{api} did not answer in time ({error.__class__.__name__})")
    if _refused(error):
        return CliError(f"cannot reach {api}: connection refused")
    reason = str(error).splitlines()[0] if str(error) else error.__class__.__name__
    return CliError(f"cannot reach {api}: {reason}")


def _refused(error: BaseException) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _answer_lost(error: requests.RequestException) -> bool:
    """A timeout or a dropped connection: the request may have been done, its answer lost. A
    refused connection is not one (nothing was sent): it fails at once."""
    return isinstance(error, (requests.Timeout, requests.ConnectionError)) and not _refused(error)


class Session:
    """Requests to one API, signed in with the stored credentials when `signed_in` is asked."""

    def __init__(self, api: str, notice: Callable[[str], None] = lambda _: None) -> None:
        self.api = api.rstrip("/")
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "contact-notes-cli"
        self.notice = notice
        self._credentials: Credentials | None = None

    def url(self, path: str) -> str:
        return path if "://" in path else f"{self.api}/{path.lstrip('/')}"

    def send(
        self,
        method: str,
        path: str,
        *,
        read_seconds: float = READ_SECONDS,
        authorized: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """One request through the retry helper; signed in when `authorized` (refreshing once on
        an expired token or a 401). Any answer but 2xx is a CliError. A POST carries an
        Idempotency-Key, the same on every try of it."""
        if method.upper() == "POST":
            kwargs["headers"] = {IDEMPOTENCY_KEY_HEADER: new_idempotency_key(), **kwargs.get("headers", {})}
        if not authorized:
            return self._checked(self._send(method, path, read_seconds, {}, kwargs))
        signed_in = self._signed_in()
        response = self._send(method, path, read_seconds, self._bearer(signed_in), kwargs)
        if response.status_code == 401:
            response = self._send(method, path, read_seconds, self._bearer(self._refresh(signed_in)), kwargs)
            if response.status_code == 401:
                raise CliError(NOT_SIGNED_IN)
        return self._checked(response)

    def _send(
        self, method: str, path: str, read_seconds: float, headers: Mapping[str, str], kwargs: dict[str, Any]
    ) -> requests.Response:
        url = self.url(path)
        kwargs = dict(kwargs)
        headers = {**kwargs.pop("headers", {}), **headers}
        keyed = any(name.lower() == IDEMPOTENCY_KEY_HEADER.lower() for name in headers)
        statuses = RETRYABLE_STATUSES if method.upper() != "POST" else POST_RETRY_STATUSES if keyed else {429}

        def once() -> requests.Response:
            try:
                return self.http.request(
                    method, url, headers=dict(headers), timeout=(CONNECT_SECONDS, read_seconds), **kwargs
                )
            except requests.RequestException as error:
                if keyed and _answer_lost(error):
                    raise  # sent again by call_with_retries
                raise _unreachable(self.api, error) from None

        lost = (requests.RequestException,) if keyed else ()
        try:
            return call_with_retries(once, sleep=self._wait, retry_on=statuses, retry_errors=lost)
        except requests.RequestException as error:
            raise _unreachable(self.api, error) from None

    def _wait(self, seconds: float) -> None:
        self.notice(f"the API is busy: trying again in {seconds:.1f} s")
        time.sleep(seconds)

    @staticmethod
    def _checked(response: requests.Response) -> requests.Response:
        if not 200 <= response.status_code < 300:
            raise CliError(problem_line(response))
        return response

    @staticmethod
    def _bearer(signed_in: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {signed_in.access_token}"}

    def _signed_in(self) -> Credentials:
        if self._credentials is None:
            stored = credentials.load()
            if stored is None or stored.api.rstrip("/") != self.api:
                raise CliError(NOT_SIGNED_IN if stored is None else f"{NOT_SIGNED_IN} --api {self.api}")
            self._credentials = self._refresh(stored) if stored.expired() else stored
        return self._credentials

    def _refresh(self, stale: Credentials) -> Credentials:
        """Exchange the refresh token (single use) for a new pair, stored at once."""
        form = {"grant_type": "refresh_token", "refresh_token": stale.refresh_token}
        response = self._send("POST", "auth/token", READ_SECONDS, {}, {"data": form})
        if response.status_code in (400, 401, 403):
            raise CliError(NOT_SIGNED_IN)
        fresh = Credentials.issued(self.api, self._checked(response).json())
        credentials.save(fresh)
        self._credentials = fresh
        return fresh

    def sign_in(self, username: str, password: str, workspace_id: str | None) -> Credentials:
        form = {"grant_type": "password", "username": username, "password": password}
        if workspace_id:
            form["workspace_id"] = workspace_id
        issued = Credentials.issued(self.api, self.send("POST", "auth/token", data=form).json())
        credentials.save(issued)
        return issued

    def sign_out(self) -> bool:
        """Revoke the stored sign-in and forget it; False when there was none."""
        stored = credentials.load()
        if stored is None:
            return credentials.remove()
        try:
            self.send("POST", "auth/logout", json={"refresh_token": stored.refresh_token})
        finally:
            credentials.remove()
        return True

    def pages(self, path: str, params: Mapping[str, str]) -> Iterator[requests.Response]:
        """Each answer of a paged GET, following `Link: <...>; rel="next"` (relative URLs
        resolved against the URL that answered)."""
        response = self.send("GET", path, authorized=True, params=dict(params))
        while True:
            yield response
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            response = self.send("GET", urljoin(response.url, following), authorized=True)
