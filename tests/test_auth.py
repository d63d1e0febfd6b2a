"""Registration, tokens and the authorizer, through HTTP and the authorizer Lambda."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import jwt
import pytest
from chalice.test import Client

from bench.inprocess import authorizer_event
from chalicelib.config import ConfigError, load_settings
from tests.conftest import TEST_SECRET, Api, problem


def _token(
    claims: dict[str, Any] | None = None,
    *,
    drop: tuple[str, ...] = (),
    key: str = TEST_SECRET,
    algorithm: str = "HS256",
    typ: str | None = "at+jwt",
    sub: str = "01M8FP1CYTGFW5FGC7TXSJ3ETH",
) -> str:
    now = int(time.time())
    body = {
        "iss": "contact-notes",
        "aud": "contact-notes-api",
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "abc",
    }
    body.update(claims or {})
    for name in drop:
        body.pop(name)
    headers = {"typ": typ} if typ else {}
    token = jwt.encode(body, key, algorithm=algorithm, headers=headers)
    if typ is None:  # PyJWT adds typ JWT by default; re-sign with a header that has no typ
        payload = token.split(".")[1]
        bare = base64.urlsafe_b64encode(json.dumps({"alg": algorithm}).encode()).rstrip(b"=").decode()
        sig = hmac.new(key.encode(), f"{bare}.{payload}".encode(), hashlib.sha256).digest()
        token = f"{bare}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    return token


# ---- register ---------------------------------------------------------------------------


def test_register_returns_the_user_without_secrets(anon: Api) -> None:
    reply = anon.register("Ann.Lee_1", email="Ann@Example.COM")
    assert reply.status == 201
    user = reply.json
    assert set(user) == {"id", "username", "email", "created_at"}
    assert user["username"] == "Ann.Lee_1"
    assert user["email"] == "Ann@example.com"  # domain lowercased, local part kept
    assert user["created_at"].endswith("Z")
    assert "hash" not in reply.body.decode().lower() and "argon" not in reply.body.decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "a" * 65),
        ("username", "has space"),
        ("username", "semi;colon"),
        ("username", "ünïcode"),
        ("email", "not-an-email"),
        ("email", "a@"),
        ("password", "short"),
        ("password", "x" * 257),
        ("password", 12345678),
    ],
)
def test_register_rejects_invalid_fields(anon: Api, field: str, value: Any) -> None:
    payload = {"username": "valid_name", "email": "v@example.com", "password": "long enough pw"}
    payload[field] = value
    body = problem(anon.post("/auth/register", payload, auth=False), 422)
    assert [e["pointer"] for e in body["errors"]] == [f"#/{field}"]
    assert "long enough" not in json.dumps(body)  # input is never echoed


def test_register_accepts_boundary_lengths(anon: Api) -> None:
    assert anon.register("abc", password="x" * 8).status == 201
    assert anon.register("a" * 64, password="y" * 256).status == 201


def test_register_refuses_server_fields(anon: Api) -> None:
    payload = {"username": "mallory", "email": "m@example.com", "password": "long enough", "id": "X"}
    body = problem(anon.post("/auth/register", payload, auth=False), 422)
    assert body["errors"][0]["pointer"] == "#/id"
    assert body["errors"][0]["type"] == "extra_forbidden"


@pytest.mark.parametrize("clash", ["alice", "ALICE", "Alice"])
def test_username_is_unique_ignoring_case(anon: Api, clash: str) -> None:
    assert anon.register("alice", email="one@example.com").status == 201
    body = problem(anon.register(clash, email="two@example.com"), 409)
    assert "username" in body["detail"]


def test_email_is_unique_ignoring_case(anon: Api) -> None:
    assert anon.register("first", email="same@example.com").status == 201
    body = problem(anon.register("second", email="SAME@Example.com"), 409)
    assert "email" in body["detail"]
    # The failed registration left no claim behind: the username is still free.
    assert anon.register("second", email="other@example.com").status == 201


def test_register_missing_fields(anon: Api) -> None:
    body = problem(anon.post("/auth/register", {}, auth=False), 422)
    assert {e["pointer"] for e in body["errors"]} == {"#/username", "#/email", "#/password"}


# ---- token ------------------------------------------------------------------------------


def test_token_for_correct_password(anon: Api) -> None:
    anon.register("carol")
    reply = anon.login("carol")
    assert reply.status == 200
    token = reply.json
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 15 * 60  # ACCESS_TOKEN_MINUTES' default
    header = jwt.get_unverified_header(token["access_token"])
    assert header == {"alg": "HS256", "typ": "at+jwt"}
    claims = jwt.decode(token["access_token"], TEST_SECRET, algorithms=["HS256"], audience="contact-notes-api")
    assert set(claims) == {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "tier", "wid", "role"}
    assert claims["tier"] == "default"
    assert (claims["wid"], claims["role"]) == (claims["sub"], "owner")  # the personal workspace
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert reply.header("cache-control") == "no-store"


def test_token_username_is_case_insensitive(anon: Api) -> None:
    anon.register("dave")
    assert anon.login("DAVE").status == 200


def test_token_accepts_password_grant_type_and_scope(anon: Api) -> None:
    anon.register("erin")
    form = b"grant_type=password&username=erin&password=correct+horse+battery&scope="
    reply = anon.token_form(form)
    assert reply.status == 200, reply.body


def test_wrong_password_and_unknown_user_answer_alike(anon: Api) -> None:
    anon.register("frank")
    wrong = anon.login("frank", "wrong password!")
    unknown = anon.login("nobody", "wrong password!")
    for reply in (wrong, unknown):
        problem(reply, 401)
        assert reply.header("www-authenticate") == "Bearer"
    strip = lambda b: {k: v for k, v in b.items() if k not in ("request_id",)}  # noqa: E731
    assert strip(wrong.json) == strip(unknown.json)


OWASP_COST = {"password_hash_memory_kib": 19 * 1024, "password_hash_rounds": 2}


def test_unknown_user_costs_a_password_verification(anon: Api, limits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing must not reveal whether a username exists: both paths run one argon2 verification
    at the deployed cost. Counted at argon2-cffi's boundary (a third-party function), not timed:
    a wall-clock comparison also measured the lockout counter's writes and failed on a busy CI."""
    import argon2.low_level

    limits(**OWASP_COST)
    anon.register("grace")
    real = argon2.low_level.verify_secret
    seen: list[str] = []

    def counting(hash: bytes, secret: bytes, type: Any) -> Any:
        seen.append(hash.decode().split("$")[3])  # the cost part: "m=19456,t=2,p=1"
        return real(hash, secret, type)

    monkeypatch.setattr(argon2.low_level, "verify_secret", counting)
    costs = {}
    for username in ("grace", "no_such_user"):
        seen.clear()
        problem(anon.login(username, "wrong password!"), 401)
        costs[username] = list(seen)
    expected = f"m={OWASP_COST['password_hash_memory_kib']},t={OWASP_COST['password_hash_rounds']},p=1"
    assert costs == {"grace": [expected], "no_such_user": [expected]}


@pytest.mark.parametrize(
    ("form", "status"),
    [
        (b"username=x", 422),
        (b"password=x", 422),
        (b"username=&password=", 422),
        (b"grant_type=client_credentials&username=x&password=y", 400),
        (b"username=a&username=b&password=y", 400),
        (b"username=%ff&password=y", 400),
    ],
)
def test_token_rejects_bad_forms(anon: Api, form: bytes, status: int) -> None:
    reply = anon.token_form(form)
    problem(reply, status)


def test_unsupported_grant_names_the_oauth_error(anon: Api) -> None:
    reply = anon.token_form(b"grant_type=implicit&username=x&password=y")
    assert problem(reply, 400)["error"] == "unsupported_grant_type"


def test_token_wants_a_form(anon: Api) -> None:
    reply = anon.post("/auth/token", {"username": "x", "password": "y"}, auth=False)
    problem(reply, 415)


# ---- the authorizer -----------------------------------------------------------------------


def test_me_returns_the_current_user(alice: Api) -> None:
    reply = alice.get("/auth/me")
    assert reply.status == 200
    # The user, and the workspace the token acts in (by default the personal one, as owner).
    assert reply.json == {**alice.user, "workspace_id": alice.user["id"], "role": "owner"}


def test_missing_token_is_401(anon: Api) -> None:
    assert anon.get("/auth/me").status == 401
    assert anon.get("/contacts").status == 401


def _hs512_with_our_secret() -> str:
    """Right secret, unpinned algorithm: must still be refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return _token(algorithm="HS512")


BAD_TOKENS = {
    "malformed": "not-a-jwt",
    "empty bearer": "",
    "forged": _token(key="another-secret-that-is-long-enough-0123456789"),
    "expired": _token({"exp": int(time.time()) - 60, "iat": int(time.time()) - 700}),
    "not yet valid": _token({"nbf": int(time.time()) + 600}),
    "wrong audience": _token({"aud": "someone-else"}),
    "wrong issuer": _token({"iss": "evil"}),
    "no exp": _token(drop=("exp",)),
    "no jti": _token(drop=("jti",)),
    "no sub": _token(drop=("sub",)),
    "no iat": _token(drop=("iat",)),
    "no nbf": _token(drop=("nbf",)),
    "plain JWT typ": _token(typ="JWT"),
    "no typ": _token(typ=None),
    "HS512": _hs512_with_our_secret(),
    "alg none": jwt.encode({"sub": "x"}, key=None, algorithm="none", headers={"typ": "at+jwt"}),
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_are_401_over_http(anon: Api, name: str) -> None:
    reply = anon.get("/auth/me", headers={"authorization": f"Bearer {BAD_TOKENS[name]}"})
    body = problem_like_401(reply)
    assert body["status"] == 401


def problem_like_401(reply: Any) -> dict[str, Any]:
    assert reply.status == 401, (reply.status, reply.body)
    assert reply.header("www-authenticate") == "Bearer"
    assert reply.header("content-type") == "application/problem+json"
    return reply.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "Bearer a b"])
def test_wrong_scheme_is_401(anon: Api, header: str) -> None:
    problem_like_401(anon.get("/contacts", headers={"authorization": header}))


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_authorizer_lambda_denies_with_unauthorized(chalice_client: Client, name: str) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        chalice_client.lambda_.invoke("jwt_auth", authorizer_event(BAD_TOKENS[name]))


def test_authorizer_lambda_allows_every_route_for_a_valid_token(alice: Api, chalice_client: Client) -> None:
    result = chalice_client.lambda_.invoke("jwt_auth", authorizer_event(alice.token or "")).payload
    assert result["principalId"] == alice.user["id"]
    context = result["context"]
    assert {k: context[k] for k in ("user_id", "owner_id", "tier")} == {
        "user_id": alice.user["id"],
        "owner_id": alice.user["id"],
        "tier": "default",
    }
    assert all(isinstance(v, str) for v in context.values())  # API Gateway stringifies context values
    claims = jwt.decode(alice.token or "", TEST_SECRET, algorithms=["HS256"], audience="contact-notes-api")
    assert context["exp"] == str(claims["exp"])
    assert "usageIdentifierKey" not in result  # no usage plans locally
    statement = result["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abcdef/api/*/*"]


def test_public_routes_need_no_token(anon: Api) -> None:
    assert anon.get("/health").status == 200
    assert anon.get("/health").json == {"status": "ok"}


def test_authorizer_names_the_usage_plan_key_of_the_users_tier(
    alice: Api, chalice_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import runtime

    monkeypatch.setenv("USAGE_PLAN_KEYS", '{"default": "key-for-default-tier", "pro": "key-for-pro"}')
    runtime.reset()
    event = authorizer_event(alice.token or "")
    assert chalice_client.lambda_.invoke("jwt_auth", event).payload["usageIdentifierKey"] == "key-for-default-tier"
    pro = _token({"tier": "pro"}, sub=alice.user["id"])
    event = authorizer_event(pro)
    assert chalice_client.lambda_.invoke("jwt_auth", event).payload["usageIdentifierKey"] == "key-for-pro"


def test_token_with_a_malformed_tier_is_401(anon: Api) -> None:
    problem_like_401(anon.get("/auth/me", headers={"authorization": f"Bearer {_token({'tier': 'Pro Tier!'})}"}))


def _stored_hash(username: str) -> str:
    from chalicelib.models import UserRecord
    from chalicelib.store import username_key

    claim = UserRecord.get(username_key(username), consistent_read=True)
    return str(UserRecord.get(f"USER#{claim.user_id}", consistent_read=True).password_hash)


def test_passwords_are_hashed_at_owasps_argon2id_minimum_by_default(anon: Api, limits: Any) -> None:
    defaults = load_settings({})
    assert (defaults.password_hash_memory_kib, defaults.password_hash_rounds) == (19456, 2)
    limits(**OWASP_COST)
    anon.register("heidi")
    assert _stored_hash("heidi").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_deployed_stage_refuses_a_cost_below_owasps_minimum() -> None:
    secret = "x" * 40
    for stage in ("dev", "prod"):
        for weaker in ({"PASSWORD_HASH_MEMORY_KIB": "19455"}, {"PASSWORD_HASH_ROUNDS": "1"}):
            with pytest.raises(ConfigError, match="below OWASP's argon2id minimum"):
                load_settings({"STAGE": stage, "JWT_SECRET": secret, **weaker})
        assert load_settings({"STAGE": stage, "JWT_SECRET": secret, "PASSWORD_HASH_MEMORY_KIB": "65536"})
    assert load_settings({"PASSWORD_HASH_MEMORY_KIB": "1024", "PASSWORD_HASH_ROUNDS": "1"}).is_local


def test_a_function_on_aws_without_a_deployed_stage_refuses_to_start() -> None:
    """Inside Lambda the local stage (built-in key, cheap hashing, webhooks to loopback) is refused."""
    on_aws = {"AWS_LAMBDA_FUNCTION_NAME": "contact-notes-dev-APIHandler"}
    for stage in ({}, {"STAGE": "local"}):
        with pytest.raises(ConfigError, match="STAGE: must be dev or prod inside AWS Lambda"):
            load_settings({**on_aws, **stage})
    assert load_settings({**on_aws, "STAGE": "prod", "JWT_SECRET": "x" * 40}).stage == "prod"


def test_a_password_hashed_at_another_cost_still_signs_in(anon: Api, limits: Any) -> None:
    """The cost is read from each stored hash: raising it locks nobody out (and new hashes use it)."""
    anon.register("ivan")  # at the suite's cost
    limits(**OWASP_COST)
    assert anon.login("ivan").status == 200
    anon.register("judy")
    assert _stored_hash("judy").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert _stored_hash("ivan").startswith("$argon2id$v=19$m=1024,t=1,p=1$")
