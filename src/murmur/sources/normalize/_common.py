"""Limits and small helpers shared by every normalizer.

Limits (what a hostile payload can cost us, and what happens past them):

* ``MAX_PAYLOAD_BYTES`` (16 MiB; feeds ``MAX_FEED_BYTES``, 8 MiB): a larger payload is rejected with
  ``PayloadError(field="payload")`` before anything parses it. Feeds are lower because feedparser
  reads about 1 MB per 0.25-1 s of CPU: the worst 8 MiB feed costs seconds, not minutes.
* ``MAX_TEXT_CHARS`` (10,000): longer post text is *truncated*, not rejected: a long Reddit self-post
  or feed article is still a real post, and the first 10,000 characters carry what analysis needs.
* ``MAX_HTML_CHARS`` (100,000): HTML is cut to this length before it is stripped to text.
* ``MAX_LIST_ITEMS`` (64): urls, hashtags and mentions keep at most this many entries each.
* ``MAX_ITEMS`` (10,000): a payload holding more posts than this (a listing, a timeline page, a feed)
  is rejected; split it.
* ``MAX_ID_CHARS`` (2,048): ids and author ids longer than this are rejected.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec

from murmur.errors import PayloadError
from murmur.text import HASH_SIGNS

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_FEED_BYTES = 8 * 1024 * 1024
MAX_TEXT_CHARS = 10_000
MAX_HTML_CHARS = 100_000
MAX_LIST_ITEMS = 64
MAX_ITEMS = 10_000
MAX_ID_CHARS = 2_048
MAX_LANG_CHARS = 64

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'()\[\]{}|\\^`]{1,2000}")
_TRAILING_PUNCT = ".,;:!?*_~"
_MISSING_FIELD = re.compile(r"missing required field `([^`]{1,100})`")


def check_size(payload: object, fmt: str, limit: int = MAX_PAYLOAD_BYTES) -> None:
    if not isinstance(payload, bytes | bytearray):
        msg = f"{fmt} payload must be bytes, got {type(payload).__name__}; pass the raw bytes as received"
        raise PayloadError(msg, field="payload")
    if len(payload) > limit:
        msg = (
            f"{fmt} payload is {len(payload):,} bytes, more than the {limit:,} allowed; "
            "split it into smaller payloads"
        )
        raise PayloadError(msg, field="payload")


def utf8_error(payload: bytes, fmt: str) -> PayloadError:
    """A PayloadError naming the byte offset of the first invalid UTF-8 sequence in ``payload``."""
    try:
        bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = (
            f"{fmt} payload is not valid UTF-8: byte 0x{exc.object[exc.start]:02x} at offset {exc.start} "
            f"({exc.reason}); the sender must encode text as UTF-8"
        )
        return PayloadError(msg, field="payload")
    return PayloadError(f"{fmt} payload holds text that is not valid UTF-8", field="payload")


def json_error(exc: Exception, payload: bytes, fmt: str) -> PayloadError:
    """Translate a msgspec / decoding failure into a PayloadError that names the field."""
    if isinstance(exc, UnicodeDecodeError):
        return utf8_error(payload, fmt)
    if isinstance(exc, RecursionError):
        msg = f"{fmt} payload is nested too deeply to be a post; it was not parsed"
        return PayloadError(msg, field="payload")
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        reason, sep, where = text.rpartition(" - at `")
        path = where.rstrip("`").removeprefix("$").lstrip(".") if sep else ""
        reason = reason if sep else text
        missing = _MISSING_FIELD.search(reason)
        if missing:
            path = f"{path}.{missing.group(1)}" if path else missing.group(1)
        return PayloadError(f"{fmt}: {reason}", field=path or "payload")
    return PayloadError(f"{fmt} payload is not valid JSON: {text}", field="payload")


def clean_text(text: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    """Bound the length, drop NUL characters and surrogates that cannot be stored."""
    if len(text) > limit:
        text = text[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def bound(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``clean_text`` for strings already known to be valid (decoded by msgspec): length and NULs."""
    if len(text) > limit:
        text = text[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


def clean_id(value: str, field: str, fmt: str) -> str:
    value = bound(value.strip(), MAX_ID_CHARS + 1)
    if not value:
        msg = f"{fmt}: {field} is empty; a post needs it"
        raise PayloadError(msg, field=field)
    if len(value) > MAX_ID_CHARS:
        msg = f"{fmt}: {field} is longer than {MAX_ID_CHARS} characters; not a real identifier"
        raise PayloadError(msg, field=field)
    return value


def clean_lang(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_LANG_CHARS:
        return None
    return clean_text(value)


def hashtag(tag: str) -> str:
    return clean_text(tag.strip().lstrip(HASH_SIGNS).lower(), limit=200)


def bounded_unique(items: Iterable[str]) -> list[str]:
    """Non-empty items, first occurrence kept, at most MAX_LIST_ITEMS."""
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
            if len(out) >= MAX_LIST_ITEMS:
                break
    return out


def urls_in_text(text: str) -> list[str]:
    """http(s) URLs written in plain or Markdown text (cheap when there are none)."""
    if "http" not in text:
        return []
    found: list[str] = []
    for match in _URL_IN_TEXT.finditer(text):
        url = match.group(0).rstrip(_TRAILING_PUNCT)
        if len(url) > 10:
            found.append(url)
        if len(found) >= MAX_LIST_ITEMS:
            break
    return found


def parse_iso(value: str, field: str, fmt: str) -> datetime:
    """An ISO 8601 timestamp as a timezone-aware datetime (naive ones are taken as UTC)."""
    text = value.strip()
    if not text or len(text) > 64:
        msg = f"{fmt}: {field} {value[:64]!r} is not an ISO 8601 timestamp"
        raise PayloadError(msg, field=field)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{fmt}: {field} {text!r} is not an ISO 8601 timestamp (e.g. 2024-05-01T12:00:00Z)"
        raise PayloadError(msg, field=field) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        msg = f"{fmt}: {field} {text!r} is out of the representable date range"
        raise PayloadError(msg, field=field) from None


def from_epoch(value: float, field: str, fmt: str) -> datetime:
    """Seconds since 1970 (UTC) as an aware datetime."""
    try:
        if value != value:  # NaN
            raise ValueError
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):
        msg = f"{fmt}: {field} {value!r} is not a valid Unix timestamp in seconds"
        raise PayloadError(msg, field=field) from None


def content_hash(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()
    return f"sha256:{digest[:32]}"


UTF8_BOM = b"\xef\xbb\xbf"


def without_bom(payload: bytes) -> bytes:
    """``payload`` without a leading UTF-8 byte-order mark, which some editors and servers write
    and JSON parsers refuse (``invalid character (byte 0)``)."""
    return payload[3:] if payload[:3] == UTF8_BOM else payload


def first_non_space(payload: bytes) -> int:
    """The first byte that is not whitespace or a UTF-8 BOM (-1 when there is none)."""
    start = 3 if payload[:3] == UTF8_BOM else 0
    if len(payload) > start and payload[start] not in _JSON_SPACE:  # most payloads: no copy
        return payload[start]
    # in C (a copy of at most 4 KB), not a Python loop over the bytes: ~1 us less a payload
    rest = payload[start : start + 4096].lstrip(_JSON_SPACE)
    return rest[0] if rest else -1


_JSON_SPACE = b" \t\r\n"


def raw_first(raw: bytes | msgspec.Raw) -> int:
    """First significant byte of a payload or of a msgspec.Raw value (-1 when empty)."""
    if isinstance(raw, msgspec.Raw):
        head = bytes(memoryview(raw)[:1])
        return head[0] if head else -1
    return first_non_space(raw)
