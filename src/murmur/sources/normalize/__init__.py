"""Normalizers: raw payload bytes → ``Draft`` / ``Deletion`` records, one pure function per format.

::

    RawEvent(format="jetstream", payload=b"...") ──normalize("jetstream", payload)──▶ [Draft | Deletion]

Every normalizer is ``bytes -> list[Draft | Deletion]`` and raises ``PayloadError(reason, field=...)``
for anything malformed or hostile (the runtime quarantines the payload with that reason); it never
raises another exception, never hangs, and bounds what it keeps (see ``_common`` for the limits).
An empty list means "nothing to store here" (a like, an identity event, a private status).

Built-in formats (registered by ``register_builtins()``, exactly as a plugin would register its own):

==============  ============================================================================
``jetstream``   Bluesky Jetstream commit events (``jetstream.py``)
``mastodon``    Mastodon statuses, timeline pages and streaming events (``mastodon.py``)
``reddit``      Reddit things, listings and recorded responses (``reddit.py``)
``feed``        RSS 2.0 / RSS 1.0 / Atom (feedparser) and JSON Feed documents (``feed.py``)
``jsonl``       one JSON object per row, with the default ``FileMapping`` (``files.py``)
``csv``         a CSV row as JSON bytes (what ``iter_file_rows`` yields), default mapping
``parquet``     a Parquet row as JSON bytes, default mapping
==============  ============================================================================

Files: ``detect_format(path_or_bytes)`` names the format of a file (``murmur import --format auto``)
and ``iter_file_rows(path, format)`` yields its payloads with positions. A custom column mapping is
``file_normalizer(FileMapping.of(text="body", ...))``; as a format, which worker processes can build
on their own, it is ``mapping_format("csv", {"text": "body"})`` = ``csv?text=body``, and
``get_normalizer`` builds (and caches) its normalizer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from murmur.errors import PayloadError
from murmur.registry import Registry, RegistryError
from murmur.sources.normalize.feed import normalize_feed
from murmur.sources.normalize.files import (
    DEFAULT_MAPPING,
    FileMapping,
    file_normalizer,
    iter_file_rows,
    normalize_jsonl,
    normalize_row,
)
from murmur.sources.normalize.jetstream import normalize_jetstream
from murmur.sources.normalize.mapping import mapping_format, parse_mapping_format
from murmur.sources.normalize.mastodon import normalize_mastodon
from murmur.sources.normalize.reddit import normalize_reddit
from murmur.types import Event

log = logging.getLogger(__name__)

Normalizer = Callable[[bytes], list[Event]]
"""``bytes -> list[Draft | Deletion]``; raises only ``PayloadError``."""

NORMALIZERS: Registry[Normalizer] = Registry("normalizer")
_state = {"builtins": False}
_resolved: dict[str, tuple[int, Normalizer]] = {}

BUILTINS: dict[str, Normalizer] = {
    "jetstream@1": normalize_jetstream,
    "mastodon@1": normalize_mastodon,
    "reddit@1": normalize_reddit,
    "feed@1": normalize_feed,
    "jsonl@1": normalize_jsonl,
    "csv@1": normalize_jsonl,
    "parquet@1": normalize_jsonl,
}


def register_builtins(registry: Registry[Normalizer] = NORMALIZERS) -> None:
    """Register murmur's own normalizers (idempotent)."""
    names = set(registry.names())
    for name, fn in BUILTINS.items():
        if name not in names:
            registry.register(name, fn)
    if registry is NORMALIZERS:
        _state["builtins"] = True


def get_normalizer(format: str) -> Normalizer:
    """The normalizer for ``format`` (``jetstream`` or a versioned ``jetstream@1``). Resolve once per
    source and call it directly on the hot path."""
    if not _state["builtins"]:
        register_builtins()
    # Resolving a bare name scans the registry; cache it until something new is registered (counted
    # with ``len``: ``names()`` sorts them, ~1.3 us, paid for every payload).
    size = len(NORMALIZERS)
    cached = _resolved.get(format)
    if cached is not None and cached[0] == size:
        return cached[1]
    fn = _mapped_normalizer(format) if "?" in format else NORMALIZERS.get(format)
    if len(_resolved) >= _RESOLVED_FORMATS:  # formats of ever new mappings: keep memory bounded
        _resolved.clear()
    _resolved[format] = (size, fn)
    return fn


_RESOLVED_FORMATS = 256
_MAPPED_BASES = ("jsonl", "csv", "parquet")


def _mapped_normalizer(format: str) -> Normalizer:
    """``csv?text=Tweet%20Text``: a file format read with a column mapping (``mapping_format``)."""
    try:
        base, mapping = parse_mapping_format(format)
    except PayloadError as exc:
        raise RegistryError(exc.reason) from None
    if base.partition("@")[0] not in _MAPPED_BASES:
        msg = f"format {format!r}: only {', '.join(_MAPPED_BASES)} files take a column mapping"
        raise RegistryError(msg)
    NORMALIZERS.get(base)  # an unknown base or version fails here, as without a mapping
    return file_normalizer(mapping)


def normalize(format: str, payload: bytes) -> list[Event]:
    """Normalize one payload. Raises ``PayloadError`` only: a normalizer's unexpected failure (a bug)
    is logged and reported as a ``PayloadError`` too, so one bad payload never stops a stream."""
    fn = get_normalizer(format)
    try:
        return fn(payload)
    except PayloadError:
        raise
    except Exception as exc:
        log.exception("normalizer %r failed unexpectedly (a bug: please report it)", format)
        msg = f"internal error in the {format} normalizer: {type(exc).__name__}: {exc}"
        raise PayloadError(msg, field=None) from exc


# --- format detection ---------------------------------------------------------------------------------

_SAMPLE = 65536
_REDDIT_KIND = re.compile(rb'"kind"\s*:\s*"(?:t[1-6]|Listing|more)"')
_MASTODON_EVENT = re.compile(rb'"event"\s*:\s*"(?:update|status\.update|delete|notification)"')
_JETSTREAM_KIND = re.compile(rb'"kind"\s*:\s*"(?:commit|identity|account)"')
_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF|RDF|channel)[\s>]", re.IGNORECASE)
_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".rss": "feed",
    ".atom": "feed",
    ".rdf": "feed",
    ".xml": "feed",
}


def _sniff(head: bytes) -> str | None:
    if head[:4] == b"PAR1":
        return "parquet"
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "feed"  # UTF-16 text with a byte-order mark: in practice an XML feed
    if body[:1] == b"<":
        return "feed" if _FEED_ROOT.search(body) or body[:5] == b"<?xml" else None
    if body[:1] in (b"{", b"["):
        if b"jsonfeed.org" in body[:2048]:
            return "feed"
        if b'"time_us"' in body and b'"did"' in body and _JETSTREAM_KIND.search(body):
            return "jetstream"
        if _REDDIT_KIND.search(body) or b'"source_cassette"' in body[:256]:
            return "reddit"
        if _MASTODON_EVENT.search(body) or (
            b'"account"' in body and b'"content"' in body and b'"uri"' in body and b'"visibility"' in body
        ):
            return "mastodon"
        return "jsonl"
    first_line = body.split(b"\n", 1)[0]
    if b"," in first_line or b"\t" in first_line:
        return "csv"
    return None


def detect_format(path_or_first_bytes: str | Path | bytes) -> str:
    """Name the normalizer for a file (by its suffix, then its first 64 KiB) or for leading bytes.

    Returns one of ``jetstream``, ``mastodon``, ``reddit``, ``feed``, ``jsonl``, ``csv``, ``parquet``;
    raises ``PayloadError`` when the content is none of them.
    """
    if isinstance(path_or_first_bytes, bytes | bytearray):
        head = bytes(path_or_first_bytes[:_SAMPLE])
        where = "the payload"
        by_suffix = None
    else:
        path = Path(path_or_first_bytes)
        where = str(path)
        by_suffix = _SUFFIXES.get(path.suffix.lower())
        if by_suffix in ("parquet", "csv"):
            return by_suffix
        try:
            with path.open("rb") as fh:
                head = fh.read(_SAMPLE)
        except OSError as exc:
            msg = f"cannot read {path} to detect its format: {exc}"
            raise PayloadError(msg, field="format") from None
        if not head.removeprefix(b"\xef\xbb\xbf").strip():
            return by_suffix or "jsonl"  # an empty file: no rows in any format
    found = _sniff(head)
    if found is None and by_suffix is not None:
        found = by_suffix
    if found is None:
        msg = (
            f"cannot tell the format of {where}: it is not JSON, JSON lines, CSV, Parquet or an "
            "RSS/Atom/JSON feed; pass --format explicitly"
        )
        raise PayloadError(msg, field="format")
    return found


__all__ = [
    "DEFAULT_MAPPING",
    "NORMALIZERS",
    "FileMapping",
    "Normalizer",
    "detect_format",
    "file_normalizer",
    "get_normalizer",
    "iter_file_rows",
    "mapping_format",
    "normalize",
    "normalize_feed",
    "normalize_jetstream",
    "normalize_jsonl",
    "normalize_mastodon",
    "normalize_reddit",
    "normalize_row",
    "register_builtins",
]
