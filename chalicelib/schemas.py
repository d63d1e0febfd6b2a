"""Request and response shapes at the HTTP edge (pydantic)."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from chalicelib.ids import ULID_PATTERN
from chalicelib.roles import Role
from chalicelib.search import text as search_text

_USERNAME = r"^[A-Za-z0-9_.-]{3,64}$"
NOTE_BODY_MAX_CHARS = 100_000


# Character sets, spelled out so that the JSON Schema patterns published in the OpenAPI
# document mean exactly what the server checks (regex engines disagree on \s).
CONTROL = r"\x00-\x1f\x7f-\x9f"  # Unicode category Cc
SPACES = r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
TRIMMED = SPACES + r"\t\n\r\x0b\x0c"  # removed from both ends of single-line text
INVISIBLE = CONTROL + SPACES + r"\u00ad\u180e\u200b-\u200f\u2060-\u2064"  # blank if only these
# After trimming: no control characters (and, when required, something left).
SINGLE_LINE_PATTERN = f"^[{TRIMMED}]*(?:[^{CONTROL}]*[^{CONTROL}{TRIMMED}])?[{TRIMMED}]*$"
NON_BLANK_LINE_PATTERN = f"^[{TRIMMED}]*[^{CONTROL}]*[^{CONTROL}{TRIMMED}][{TRIMMED}]*$"
VISIBLE_PATTERN = f"[^{INVISIBLE}]"  # unanchored: at least one visible character
_TRIM_CHARS = "\t\n\r\x0b\x0c" + "".join(
    chr(c) for c in [0x20, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF]
)
_INVISIBLE = re.compile(f"^[{INVISIBLE}]*$")


def _no_surrogates(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); they cannot be stored as UTF-8. Encoding is
    # the check, done in C (a loop over a 100,000-character note took 7 ms).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain unpaired surrogate code points") from None
    return value


def _single_line(value: str) -> str:
    """Names, titles and the like: trimmed at both ends, then no control characters."""
    _no_surrogates(value)
    value = value.strip(_TRIM_CHARS)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _required(value: str) -> str:
    if not value:
        raise ValueError("must not be blank")
    return value


def _not_blank(value: str) -> str:
    # Blank means nothing visible: only whitespace, control and invisible format characters.
    if _INVISIBLE.match(value):
        raise ValueError("must not be blank")
    return value


def _email(value: str) -> str:
    """A deliverable-looking address (syntax only, no DNS), domain lowercased.

    email-validator, as pydantic's EmailStr uses it, but imported on first use: compiling
    its RFC patterns costs about 40 ms of every cold start.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None


# email-validator refuses these special-use domains (RFC 6761) whatever its options; the
# published schema says so too, so that a client (or a fuzzer) knows before it sends one.
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
EMAIL_PATTERN = "^(?!.*[@.](?:{})$)".format(
    "|".join("".join(f"[{c}{c.upper()}]" for c in name) for name in SPECIAL_USE_DOMAINS)
)

Email = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_email),
    Field(json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN}),
]


def _blank_to_none(value: str | None) -> str | None:
    return value or None


_LINE = AfterValidator(_single_line)
_ABSENT_IF_BLANK = AfterValidator(_blank_to_none)
_LINE_SCHEMA = Field(json_schema_extra={"pattern": SINGLE_LINE_PATTERN})

# Single-line text: bounded, no control characters, spaces trimmed; optional fields store "" as absent.
FirstName = Annotated[
    str,
    StringConstraints(max_length=100),
    _LINE,
    AfterValidator(_required),
    Field(json_schema_extra={"pattern": NON_BLANK_LINE_PATTERN}),
]
Text100 = Annotated[Annotated[str, StringConstraints(max_length=100), _LINE, _LINE_SCHEMA] | None, _ABSENT_IF_BLANK]
Text40 = Annotated[Annotated[str, StringConstraints(max_length=40), _LINE, _LINE_SCHEMA] | None, _ABSENT_IF_BLANK]
Text200 = Annotated[Annotated[str, StringConstraints(max_length=200), _LINE, _LINE_SCHEMA] | None, _ABSENT_IF_BLANK]


class _Model(BaseModel):
    """Every schema builds its validator on first use, not at import: a cold start pays only
    for the models its first request touches. pydantic builds a deferred schema without a
    lock, so a server answering requests on several threads calls `build_all()` first."""

    model_config = ConfigDict(defer_build=True)


class _Input(_Model):
    """Client input: unknown fields are refused, so no id, owner or timestamp can be forced."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- auth ----------------------------------------------------------------------------


# A password chosen at registration or on a change: 8-256 characters, storable as UTF-8.
NewPassword = Annotated[str, StringConstraints(min_length=8, max_length=256), AfterValidator(_no_surrogates)]


class RegisterIn(_Input):
    username: Annotated[str, StringConstraints(pattern=_USERNAME)] = Field(
        examples=["your_username"], description="3–64 of A–Z a–z 0–9 _ . -; unique ignoring case."
    )
    email: Email = Field(examples=["your_email@example.com"], description="Unique ignoring case.")
    password: NewPassword = Field(examples=["your_password"])


class UserOut(_Model):
    id: str
    username: str
    email: str
    created_at: str


class CurrentUserOut(UserOut):
    """GET /auth/me: the user, and the workspace and role the access token acts with."""

    workspace_id: str = Field(description="The workspace this token acts in (your id: your personal workspace).")
    role: Role = Field(description="Your role there when the token was issued.")


class TokenOut(_Model):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (RFC 6750 token type)
    expires_in: int = Field(description="Seconds the access token stays valid (ACCESS_TOKEN_MINUTES).")
    refresh_token: str = Field(
        description="Single use: exchange it with grant_type=refresh_token for a new pair. "
        "Using one twice signs the whole sign-in out."
    )


REFRESH_TOKEN_MAX_CHARS = 512  # ours are about 100 characters; anything far longer is refused unread
RefreshToken = Annotated[str, StringConstraints(min_length=1, max_length=REFRESH_TOKEN_MAX_CHARS)]
GRANT_TYPES = ("password", "refresh_token")


def _grant_schema(schema: dict[str, Any]) -> None:
    """Which fields each grant needs (the server answers 422 `invalid_request` otherwise).

    As if/then/else rather than anyOf: generated clients (openapi-python-client) turn a
    top-level anyOf into a union of anonymous models, and keep this model as it is otherwise.
    """
    schema["if"] = {"properties": {"grant_type": {"const": "refresh_token"}}, "required": ["grant_type"]}
    schema["then"] = {"required": ["refresh_token"]}
    schema["else"] = {"required": ["username", "password"]}


class TokenForm(_Model):
    """OAuth2 token request: the password grant (RFC 6749 §4.3) or the refresh grant (§6)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=lambda schema: _grant_schema(schema))

    grant_type: Literal["password", "refresh_token"] = Field(default="password", examples=["password"])
    username: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None, examples=["your_username"], description="Password grant."
    )
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None, examples=["your_password"], description="Password grant."
    )
    refresh_token: RefreshToken | None = Field(
        default=None, description="Refresh grant: the refresh token of the last answer (single use)."
    )
    scope: str | None = None
    workspace_id: str | None = Field(
        default=None,
        max_length=64,
        description="The workspace the access token acts in. Password grant: default (absent or empty) the "
        "personal workspace; refresh grant: default the sign-in's. Membership and role are read on every "
        "grant; a workspace you are not a member of, or none at all, is the same 403.",
    )


class SignOutIn(_Input):
    refresh_token: RefreshToken = Field(
        examples=["your_refresh_token"],
        description="A refresh token of the sign-in to end (the latest, or any before).",
    )


class PasswordChangeIn(_Input):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        examples=["your_password"]
    )
    new_password: NewPassword = Field(examples=["your_new_password"], description="8–256 characters.")


# ---- contacts ------------------------------------------------------------------------


class ContactIn(_Input):
    """A whole contact: the body of POST and PUT."""

    first_name: FirstName = Field(examples=["John"])
    last_name: Text100 = Field(default=None, examples=["Doe"])
    email: Email | None = Field(default=None, examples=["john@example.com"])
    phone: Text40 = Field(default=None, examples=["1234567890"])
    company: Text200 = Field(default=None, examples=["Example Corp"])
    title: Text200 = Field(default=None, examples=["Developer"])


def _patch_schema(schema: dict[str, Any]) -> None:
    """At least one field; first_name may be sent (not null) or left out, so no null default."""
    schema["minProperties"] = 1
    schema["properties"]["first_name"].pop("default", None)


class ContactPatch(_Input):
    """PATCH: only the fields sent change; null clears an optional field."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda schema: _patch_schema(schema))

    first_name: FirstName = Field(default=None, description="Required on a contact: may change, not be removed.")  # type: ignore[assignment]
    last_name: Text100 = None
    email: Email | None = None
    phone: Text40 = None
    company: Text200 = None
    title: Text200 = Field(default=None, examples=["CTO"])


class ContactOut(_Model):
    id: str
    first_name: str
    last_name: str | None
    email: str | None
    phone: str | None
    phone_e164: str | None
    company: str | None
    title: str | None
    created_at: str
    updated_at: str
    version: int


# ---- notes ---------------------------------------------------------------------------

NoteBody = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NOTE_BODY_MAX_CHARS,
        examples=["Met at the conference."],
        json_schema_extra={"pattern": VISIBLE_PATTERN},
    ),
    AfterValidator(_no_surrogates),
    AfterValidator(_not_blank),
]
ContactId = Annotated[str, StringConstraints(pattern=ULID_PATTERN)]


class NoteIn(_Input):
    """A note's content: the body of POST /contacts/{id}/notes, PUT and PATCH /notes/{id}."""

    body: NoteBody


class NoteCreate(NoteIn):
    """POST /notes names its contact in the body."""

    contact_id: ContactId = Field(examples=["01JD3Z8Q4X5W6V7T8S9R0P1N2M"])


# Integrations name a note's text in many ways. Each alias is also accepted in any spelling
# that differs only in case or camelCase/snake_case: noteBody, NoteBody, NOTE_BODY, note_body.
BODY_ALIASES = ("body", "note_body", "content", "text", "note", "message")
_ALIAS_KEYS = {alias.replace("_", "") for alias in BODY_ALIASES}


def body_alias_keys(data: dict[str, object]) -> list[str]:
    """The keys of a request object that name the note's text, in the order sent."""
    return [key for key in data if key.replace("_", "").lower() in _ALIAS_KEYS]


class NoteOut(_Model):
    id: str
    contact_id: str
    body: str = Field(description="The note's text: as sent until processed, then normalized.")
    original_body: str = Field(description="The text exactly as last sent; never altered.")
    tags: list[str] = Field(description="Hashtags found by the normalizer, lowercased, without '#'.")
    processing_status: Literal["pending", "processed", "failed"]
    processed_at: str | None
    normalizer_version: str | None
    failure_reason: str | None
    created_at: str
    updated_at: str
    version: int


# ---- lists ---------------------------------------------------------------------------


class PageQuery(_Model):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=50, ge=1, le=100)
    # Opaque; checked (and refused with 400) by chalicelib.pagination.
    cursor: str | None = Field(default=None, json_schema_extra={"pattern": "^[A-Za-z0-9_-]{1,128}$"})


class ContactPage(_Model):
    items: list[ContactOut]
    next_cursor: str | None


class NotePage(_Model):
    items: list[NoteOut]
    next_cursor: str | None


# ---- workspaces ------------------------------------------------------------------------

WorkspaceName = Annotated[
    str,
    StringConstraints(max_length=100),
    _LINE,
    AfterValidator(_required),
    Field(examples=["Sales team"], json_schema_extra={"pattern": NON_BLANK_LINE_PATTERN}),
]


class WorkspaceIn(_Input):
    """POST /workspaces and PATCH /workspaces/{id}: a workspace's only writable field."""

    name: WorkspaceName


class WorkspaceOut(_Model):
    id: str
    name: str
    role: Role = Field(description="Your role in it.")
    personal: bool = Field(description="Your personal workspace: cannot be shared or deleted.")


class WorkspacePage(_Model):
    items: list[WorkspaceOut] = Field(description="Your personal workspace first, then the others, oldest first.")
    next_cursor: str | None


def _one_of_username_or_email(schema: dict[str, Any]) -> None:
    """Exactly one of them, and never null (the server refuses null), as the server checks."""
    schema["oneOf"] = [{"required": ["username"]}, {"required": ["email"]}]
    for name in ("username", "email"):
        schema["properties"][name].pop("default", None)


class MemberIn(_Input):
    """POST /workspaces/{id}/members: an existing user, named by username or by email (one of them)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of_username_or_email)

    username: Annotated[str, StringConstraints(pattern=_USERNAME)] = Field(  # type: ignore[assignment]
        default=None, examples=["bob"], description="Exactly one of username and email."
    )
    email: Email = Field(default=None, description="Exactly one of username and email.")  # type: ignore[assignment]
    role: Role = Field(examples=["editor"])

    @model_validator(mode="after")
    def _exactly_one_name(self) -> MemberIn:
        if (self.username is None) == (self.email is None):  # absent is None; null is refused above
            raise ValueError("send exactly one of username and email")
        return self


class MemberPatch(_Input):
    role: Role = Field(examples=["viewer"])


class MemberOut(_Model):
    user_id: str
    username: str
    role: Role


class MemberPage(_Model):
    items: list[MemberOut]
    next_cursor: str | None


# ---- search -------------------------------------------------------------------------------

# What the server refuses in q (chalicelib.search.text.parse_query), as one pattern: 1-200
# characters once the whitespace at both ends is trimmed, at most MAX_TERMS terms separated
# by whitespace. "Whitespace" is what Python's str.split() splits on, spelled out so that a
# client's regex engine reads it the same; the lookahead bounds the trimmed length (the
# query's last non-space character is at most 200 characters after its first). A test
# checks the pattern against parse_query.
_QUERY_SPACE = r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_QS, _QT = f"[{_QUERY_SPACE}]", f"[^{_QUERY_SPACE}]"
SEARCH_QUERY_PATTERN = (
    f"^{_QS}*(?=[\\s\\S]{{0,{search_text.MAX_QUERY_CHARS - 1}}}{_QT}{_QS}*$)"
    f"{_QT}+(?:{_QS}+{_QT}+){{0,{search_text.MAX_TERMS - 1}}}{_QS}*$"
)


def _search_terms(value: str) -> str:
    search_text.parse_query(value)  # QueryError is a ValueError: a 422 naming #/query/q
    return value


class SearchQuery(_Model):
    model_config = ConfigDict(extra="ignore")

    q: Annotated[str, AfterValidator(_search_terms)] = Field(
        description=(
            "Up to 8 terms, all required. Each matches words by their start, ignoring case and "
            "accents (`jose` finds José); `#tag` matches a note's tag exactly; digits match phone "
            "numbers however formatted; an email address or its domain matches (`john@exa`, "
            "`example.com`). A term reads at most 1,000 index entries in word order: in a large "
            "workspace, a broad term (one letter) may miss items a longer one finds."
        ),
        json_schema_extra={"pattern": SEARCH_QUERY_PATTERN},
    )
    type: Literal["contact", "note"] | None = Field(default=None, description="Only contacts, or only notes.")
    limit: int = Field(default=20, ge=1, le=100)
    # Opaque; checked (and refused with 400) by chalicelib.pagination, bound to the query.
    cursor: str | None = Field(default=None, json_schema_extra={"pattern": "^[A-Za-z0-9_-]{1,128}$"})


_SCORE = (
    "Higher first: whole words above prefixes; names above email and phone above company and title above note text."
)
_MATCHED = "The fields that hold the terms (first_name, last_name, email, phone, company, title, body, tags)."


class SearchContactHit(_Model):
    type: Literal["contact"]
    id: str
    score: int = Field(description=_SCORE)
    matched: list[str] = Field(description=_MATCHED)
    contact: ContactOut


class SearchNoteHit(_Model):
    type: Literal["note"]
    id: str
    score: int = Field(description=_SCORE)
    matched: list[str] = Field(description=_MATCHED)
    contact_id: str = Field(description="The contact the note is about.")
    note: NoteOut


class SearchPage(_Model):
    items: list[Annotated[SearchContactHit | SearchNoteHit, Field(discriminator="type")]] = Field(
        description="Best match first, then newest first. The index follows writes within seconds."
    )
    next_cursor: str | None


# ---- errors and service ----------------------------------------------------------------


class FieldProblem(_Model):
    pointer: str = Field(description="JSON pointer to the field (#/first_name, #/query/limit).")
    detail: str
    type: str


class Problem(_Model):
    """RFC 9457 problem details, as every error is answered (application/problem+json)."""

    type: str = Field(examples=["urn:contact-notes:problem:validation-error"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldProblem] | None = None
    error: str | None = Field(default=None, description="OAuth 2.0 error code, on the token endpoint.")
    existing_id: str | None = Field(
        default=None, description="On a 409 for an email another contact has (one per workspace): that contact's id."
    )


class Health(_Model):
    status: Literal["ok"]


def build_all() -> None:
    """Build every schema now (before serving on threads: see `_Model`)."""
    pending = list(_Model.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        model.model_rebuild(force=True)


# ---- import and export ----------------------------------------------------------------

_CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,128}$"


class ExportQuery(_Model):
    model_config = ConfigDict(extra="ignore")

    format: Literal["csv", "vcard", "json"] = Field(
        default="json",
        description=(
            "json: the lossless backup (every field, each contact's notes); csv: one row per contact "
            "(RFC 4180, header on every page); vcard: vCard 3.0 (RFC 2426), without notes."
        ),
    )
    # Opaque; checked (and refused with 400) by chalicelib.pagination, bound to the format.
    cursor: str | None = Field(default=None, json_schema_extra={"pattern": _CURSOR_PATTERN})


class ExportedContact(ContactOut):
    notes: list[NoteOut] = Field(description="The contact's notes, oldest first.")


class ExportPage(_Model):
    """One page of a JSON export: importing every page into an empty workspace restores it."""

    format: Literal["contact-notes"]
    version: Literal[1]
    contacts: list[ExportedContact] = Field(description="Newest first, as GET /contacts lists them.")
    next_cursor: str | None = Field(description="Where the next page starts (also in the Link header); null: the last.")
