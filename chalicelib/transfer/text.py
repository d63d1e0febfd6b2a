"""An uploaded file's bytes to text, in the encodings real contact exports use.

UTF-8 (with or without a BOM: Outlook and Excel's "CSV UTF-8" write one), UTF-16 with a BOM
(older Google exports are UTF-16LE), else Windows-1252 (Excel's "CSV" on Western Windows).
Anything else is refused before a reader sees it, so no contact is ever named with NULs.
"""

from __future__ import annotations

import codecs
import re

from chalicelib.errors import BadRequest

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 controls no text export writes (tab, line ends, form feed and vertical tab are text).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")
_SAVE_AS = "Save it as UTF-8 (Excel: 'CSV UTF-8'; Google Contacts and Outlook export it) and upload it again."


def decode_text(body: bytes) -> str:
    """The file as text, without its BOM and with every line ending as '\\n'. Raises BadRequest
    for bytes that are not text in a supported encoding."""
    text = _decode(body).removeprefix("\ufeff").removesuffix("\x1a")  # \x1a: DOS end-of-file mark
    bad = _CONTROL.search(text)
    if bad:
        what = "NUL characters" if bad.group() == "\x00" else f"control character U+{ord(bad.group()):04X}"
        raise BadRequest(
            f"The file is not text: it has {what} (at character {bad.start() + 1}). A binary file, or UTF-16 "
            f"without a byte-order mark, cannot be read. {_SAVE_AS}"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(body: bytes) -> str:
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            try:
                return body[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise BadRequest(
                    f"The file starts with a {encoding.upper()} byte-order mark but is not valid {encoding.upper()} "
                    f"(byte {len(bom) + exc.start + 1}). {_SAVE_AS}"
                ) from exc
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"The file is neither UTF-8, UTF-16 with a byte-order mark, nor Windows-1252 text "
            f"(byte {exc.start + 1} is 0x{body[exc.start]:02X}). {_SAVE_AS}"
        ) from exc
