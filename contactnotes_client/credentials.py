"""The CLI's stored sign-in: <config dir>/contact-notes/credentials.json, readable by its owner only."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

APP_NAME = "contact-notes"
FILE_NAME = "credentials.json"
# Refresh a little before the access token runs out, so it does not expire on its way.
EXPIRY_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class Credentials:
    api: str
    access_token: str
    refresh_token: str
    expires_at: str  # ISO 8601 UTC with Z, like every time the API gives

    @classmethod
    def issued(cls, api: str, answer: dict[str, object], now: float | None = None) -> Credentials:
        """From a token answer: {access_token, refresh_token, expires_in}."""
        now = time.time() if now is None else now
        expires = datetime.fromtimestamp(now + float(str(answer["expires_in"])), UTC)
        return cls(
            api=api,
            access_token=str(answer["access_token"]),
            refresh_token=str(answer["refresh_token"]),
            expires_at=expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def expired(self, now: float | None = None) -> bool:
        try:
            expires = datetime.strptime(self.expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return True  # unreadable: a refresh tells
        return (time.time() if now is None else now) >= expires - EXPIRY_MARGIN_SECONDS


def config_folder() -> Path:
    """The per-user folder for the app, as click finds it (XDG_CONFIG_HOME/contact-notes on Linux)."""
    import typer

    return Path(typer.get_app_dir(APP_NAME))


def credentials_path() -> Path:
    return config_folder() / FILE_NAME


def load() -> Credentials | None:
    """The stored sign-in, or None when there is none (or it is not one of ours)."""
    try:
        data = json.loads(credentials_path().read_text(encoding="utf-8"))
        return Credentials(**{name: str(data[name]) for name in ("api", "access_token", "refresh_token", "expires_at")})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(credentials: Credentials) -> Path:
    """Write the file with mode 0600 from its creation (never widened, then narrowed), in a 0700
    folder, and swap it in whole: a crash leaves the old file or the new one, never half of one."""
    folder = config_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) != 0o700:
        folder.chmod(0o700)  # an existing folder: only its owner may list or enter it
    target = folder / FILE_NAME
    staging = folder / f".{FILE_NAME}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(asdict(credentials), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        raise
    return target


def remove() -> bool:
    """Delete the stored sign-in; False when there was none."""
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True
