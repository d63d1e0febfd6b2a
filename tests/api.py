"""Calling the API through chalice.test.Client as a user would (no pytest: bench uses it too)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalice.test import Client

API = "/api/v1"
PASSWORD = "correct horse battery"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        return lowered.get(name.lower())


@dataclass
class Api:
    """Thin HTTP helper over chalice.test.Client; `token` is sent when set."""

    client: Client
    token: str | None = None
    user: dict[str, Any] = field(default_factory=dict)
    refresh_token: str | None = None  # from the sign-in (sign_up)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Reply:
        sent = {"accept": "application/json"}
        if body is not None:
            sent["content-type"] = "application/json"
            raw = json.dumps(body).encode()
        if auth and self.token:
            sent["authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        response = self.client.http.request(method, API + path, headers=sent, body=raw or b"")
        return Reply(response.status_code, dict(response.headers), response.body)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.request("DELETE", path, **kw)

    def register(self, username: str, password: str = PASSWORD, email: str | None = None) -> Reply:
        payload = {"username": username, "email": email or f"{username}@example.com", "password": password}
        return self.post("/auth/register", payload, auth=False)

    def token_form(self, form: bytes) -> Reply:
        """POST a raw form body to the token endpoint."""
        headers = {"content-type": "application/x-www-form-urlencoded"}
        return self.request("POST", "/auth/token", raw=form, headers=headers, auth=False)

    def refresh(self, token: str, workspace_id: str | None = None) -> Reply:
        """The refresh grant: a new access token (and refresh token), into another workspace if named."""
        form = f"grant_type=refresh_token&refresh_token={token}"
        if workspace_id is not None:
            form += f"&workspace_id={workspace_id}"
        return self.token_form(form.encode())

    def login(self, username: str, password: str = PASSWORD) -> Reply:
        return self.token_form(f"username={username}&password={password}".encode())

    def sign_up(self, username: str) -> Api:
        """Register and log in a user; return an Api that acts as them."""
        registered = self.register(username)
        assert registered.status == 201, registered.body
        tokens = self.login(username).json
        access, refresh = tokens["access_token"], tokens["refresh_token"]
        return Api(self.client, token=access, user=registered.json, refresh_token=refresh)
