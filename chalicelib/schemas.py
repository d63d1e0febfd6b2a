"""Request and response shapes at the HTTP edge (pydantic)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

_USERNAME = r"^[A-Za-z0-9_.-]{3,64}$"
NOTE_BODY_MAX_CHARS = 100_000


def _no_surrogates(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); they cannot be stored as UTF-8.
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("must not contain unpaired surrogate code points")
    return value


def _single_line(value: str) -> str:
    """Names, titles and the like: printable text, no control characters."""
    _no_surrogates(value)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _not_blank(value: str) -> str:
    # Blank means nothing visible: whitespace, control and format characters (U+200B ...) only.
    if all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise ValueError("must not be blank")
    return value


def _blank_to_none(value: str | None) -> str | None:
    return value or None


_TRIM = StringConstraints(strip_whitespace=True)
_LINE = AfterValidator(_single_line)
_ABSENT_IF_BLANK = AfterValidator(_blank_to_none)

# Single-line text: trimmed, bounded, no control characters. Optional fields store "" as absent.
FirstName = Annotated[str, _TRIM, StringConstraints(min_length=1, max_length=100), _LINE]
Text100 = Annotated[Annotated[str, _TRIM, StringConstraints(max_length=100), _LINE] | None, _ABSENT_IF_BLANK]
Text40 = Annotated[Annotated[str, _TRIM, StringConstraints(max_length=40), _LINE] | None, _ABSENT_IF_BLANK]
Text200 = Annotated[Annotated[str, _TRIM, StringConstraints(max_length=200), _LINE] | None, _ABSENT_IF_BLANK]


class _Input(BaseModel):
    """Client input: unknown fields are refused, so no id, owner or timestamp can be forced."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- auth ----------------------------------------------------------------------------


class RegisterIn(_Input):
    username: Annotated[str, StringConstraints(pattern=_USERNAME)] = Field(
        examples=["your_username"], description="3–64 of A–Z a–z 0–9 _ . -; unique ignoring case."
    )
    email: EmailStr = Field(examples=["your_email@example.com"], description="Unique ignoring case.")
    password: Annotated[str, StringConstraints(min_length=8, max_length=256), AfterValidator(_no_surrogates)] = Field(
        examples=["your_password"]
    )


class UserOut(BaseModel):
    id: str
    username: str
    email: str
    created_at: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (RFC 6750 token type)
    expires_in: int


class TokenForm(BaseModel):
    """OAuth2 password grant form (RFC 6749 §4.3)."""

    model_config = ConfigDict(extra="ignore")

    username: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    grant_type: str | None = None
    scope: str | None = None


# ---- contacts ------------------------------------------------------------------------


class ContactIn(_Input):
    """A whole contact: the body of POST and PUT."""

    first_name: FirstName = Field(examples=["John"])
    last_name: Text100 = Field(default=None, examples=["Doe"])
    email: EmailStr | None = Field(default=None, examples=["john@example.com"])
    phone: Text40 = Field(default=None, examples=["1234567890"])
    company: Text200 = Field(default=None, examples=["Example Corp"])
    title: Text200 = Field(default=None, examples=["Developer"])


class ContactPatch(_Input):
    """PATCH: only the fields sent change; null clears an optional field."""

    first_name: FirstName | None = None
    last_name: Text100 = None
    email: EmailStr | None = None
    phone: Text40 = None
    company: Text200 = None
    title: Text200 = None


class ContactOut(BaseModel):
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
    Field(min_length=1, max_length=NOTE_BODY_MAX_CHARS, examples=["Met at the conference."]),
    AfterValidator(_no_surrogates),
    AfterValidator(_not_blank),
]
ContactId = Annotated[str, StringConstraints(pattern=r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")]


class NoteIn(_Input):
    """A note's content: the body of POST /contacts/{id}/notes, PUT and PATCH /notes/{id}."""

    body: NoteBody


class NoteCreate(NoteIn):
    """POST /notes names its contact in the body."""

    contact_id: ContactId


# Integrations name a note's text in many ways. Each alias is also accepted in any spelling
# that differs only in case or camelCase/snake_case: noteBody, NoteBody, NOTE_BODY, note_body.
BODY_ALIASES = ("body", "note_body", "content", "text", "note", "message")
_ALIAS_KEYS = {alias.replace("_", "") for alias in BODY_ALIASES}


def body_alias_keys(data: dict[str, object]) -> list[str]:
    """The keys of a request object that name the note's text, in the order sent."""
    return [key for key in data if key.replace("_", "").lower() in _ALIAS_KEYS]


class NoteOut(BaseModel):
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


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = None  # opaque; checked (and refused with 400) by chalicelib.pagination


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class NotePage(BaseModel):
    items: list[NoteOut]
    next_cursor: str | None
