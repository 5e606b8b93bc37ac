"""Which column of a file's row holds each field of a post: ``FileMapping``, and matching it to a header.

Column names are matched forgivingly: surrounding whitespace is ignored, case too, and spaces,
hyphens and underscores are equal, so ``"Tweet Text"``, ``" tweet-text"`` and ``tweet_text`` are one
name (``canonical``). A mapping is matched to a row's columns once per header (``resolve``), not
once per row and candidate: the resolved mapping holds the row's own column names, only those
present, in the mapping's order (an exact match before a forgiving one).

A mapping that differs from the default travels with each event as its format, e.g.
``csv?text=Tweet%20Text&time_from_id=twitter`` (``mapping_format`` / ``parse_mapping_format``), so
that worker processes, which build their normalizers from the format name, read rows the same way,
and a quarantined row's format says which mapping it was read with.

``time_from_id = "twitter"`` (opt-in, never guessed) dates a row that has no time from its Twitter/X
snowflake id: ``(id >> 22) + 1288834974657`` ms since 1970. An id that is not a snowflake, or that
decodes to before Twitter's snowflake epoch (2010-11-04) or after now, is refused with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from murmur.errors import PayloadError
from murmur.types import PLATFORMS, Platform

Columns = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileMapping:
    """Which column(s) of a row hold each field of a post (candidates, first non-empty wins)."""

    text: Columns = (
        "text",
        "full_text",  # twarc (v1), Brandwatch "Full Text"
        "body",
        "content",
        "message",
        "selftext",
        "description",
        "tweet_text",  # CrisisLex "Tweet Text"
        "tweet",  # twint
        "hit_sentence",  # Meltwater "Hit Sentence"
    )
    id: Columns = ("id", "id_str", "post_id", "tweet_id", "guid", "uri")
    created_at: Columns = (
        "created_at",
        "timestamp",
        "created_utc",
        "unix_timestamp",
        "date",
        "published",
        "datetime",
        "time",
    )
    author: Columns = (
        "author_id",
        "author.id",
        "user.id_str",
        "user.id",
        "author_fullname",
        "author",
        "user_id",
        "username",
        "screen_name",
        "author_name",
        "user",
    )
    lang: Columns = ("lang", "language", "langs")
    url: Columns = ("url", "link", "urls", "expanded_url")
    title: Columns = ("title", "subject", "headline")  # Meltwater "Headline"
    community: Columns = ("community", "subreddit", "channel", "board", "group")
    site: Columns = ("site", "domain")
    hashtags: Columns = ("hashtags", "tags", "entities.hashtags")
    mentions: Columns = ("mentions", "entities.mentions", "entities.user_mentions")
    is_reply: Columns = (
        "is_reply",
        "in_reply_to_id",
        "in_reply_to_status_id",
        "in_reply_to_user_id",
        "parent_id",  # Pushshift / Reddit comments: each one replies (as the live Reddit source counts)
    )
    is_repost: Columns = ("is_repost", "is_retweet", "retweeted_status", "reblog", "crosspost_parent")
    has_media: Columns = ("has_media", "media", "attachments.media_keys", "extended_entities.media")
    country: Columns = ("country_code", "country")
    platform: Platform = "file"
    id_prefix: str = ""
    """Prepended to every id, e.g. a dataset name, so that ids from different files cannot collide."""
    time_from_id: str = ""
    """``"twitter"``: a row without a time is dated by its Twitter/X snowflake id (opt-in)."""

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            msg = f"file mapping: platform {self.platform!r} is not one of {', '.join(PLATFORMS)}"
            raise PayloadError(msg, field="platform")
        if self.time_from_id not in TIME_FROM_ID:
            msg = (
                f"file mapping: time_from_id {self.time_from_id!r} is not one of "
                f"{', '.join(repr(k) for k in TIME_FROM_ID)}"
            )
            raise PayloadError(msg, field="time_from_id")

    @classmethod
    def of(cls, **columns: str | Columns | Platform) -> FileMapping:
        """A mapping from keyword arguments, where a single column name may be given as a str."""
        fixed: dict[str, Any] = {}
        for key, value in columns.items():
            if key in ("platform", "id_prefix", "time_from_id") or not isinstance(value, str):
                fixed[key] = value
            else:
                fixed[key] = (value,)
        return cls(**fixed)

    @classmethod
    def mapped(cls, columns: Mapping[str, str], time_from_id: str = "") -> FileMapping:
        """The default mapping with the given fields each read from the one named column.

        Raises ``PayloadError`` naming the field for a field that is not one of ``COLUMN_FIELDS`` or
        an empty column name."""
        for name, column in columns.items():
            if name not in COLUMN_FIELDS:
                msg = f"{name!r} is not a field of a post; valid fields: {', '.join(COLUMN_FIELDS)}"
                raise PayloadError(msg, field=name)
            if not isinstance(column, str) or not column.strip():
                msg = f"the column of {name} must be a column name, got {column!r}"
                raise PayloadError(msg, field=name)
        fixed: dict[str, Any] = {k: (v,) for k, v in columns.items()}
        return replace(cls(time_from_id=time_from_id), **fixed)

    def resolve(self, keys: Iterable[object]) -> FileMapping:
        """This mapping matched to a row's (or a header's) column names: see the module docstring."""
        exact = {k for k in keys if isinstance(k, str)}
        by_name: dict[str, list[str]] = {}
        for key in exact:
            by_name.setdefault(canonical(key), []).append(key)
        for same in by_name.values():
            same.sort()  # several spellings of one name: a stable order, whatever the header's

        def present(names: Columns) -> Columns:
            found: list[str] = []
            for name in names:
                flat = ([name] if name in exact else []) + by_name.get(canonical(name), [])
                found.extend(flat)
                head, dot, rest = name.partition(".")
                if dot and not flat:  # a nested value: match the outer column's name
                    outer = ([head] if head in exact else []) + by_name.get(canonical(head), [])
                    found.extend(f"{o}.{rest}" for o in outer)
            return tuple(dict.fromkeys(found))

        found: dict[str, Any] = {name: present(getattr(self, name)) for name in COLUMN_FIELDS}
        return replace(self, **found)


COLUMN_FIELDS: Columns = tuple(f.name for f in fields(FileMapping) if f.type == "Columns")
"""The fields of a post a file's columns can hold (what ``--column FIELD=NAME`` accepts)."""
TIME_FROM_ID: Columns = ("", "twitter")
DEFAULT_MAPPING = FileMapping()

_SEPARATORS = re.compile(r"[\s_-]+")


def canonical(name: str) -> str:
    """A column name as compared: ``" Tweet Text"``, ``tweet-text`` and ``TWEET_TEXT`` → ``tweet_text``."""
    return _SEPARATORS.sub("_", name.strip().casefold())


def find_columns(wanted: Mapping[str, str], header: Iterable[str]) -> dict[str, str]:
    """The (field, column) pairs of ``wanted`` that ``header`` lacks (matched as rows are)."""
    names = {canonical(h) for h in header}
    missing: dict[str, str] = {}
    for field_name, column in wanted.items():
        if canonical(column) not in names and canonical(column.partition(".")[0]) not in names:
            missing[field_name] = column
    return missing


# --- a mapping as a format ----------------------------------------------------------------------------


def mapping_format(base: str, columns: Mapping[str, str], time_from_id: str = "") -> str:
    """The format of events read with ``columns`` (field → column) and ``time_from_id``: ``base``
    itself when both are empty, else e.g. ``csv?text=Tweet%20Text``. Raises ``PayloadError`` for a
    bad field or value (as ``FileMapping.mapped``)."""
    FileMapping.mapped(columns, time_from_id)
    params = sorted(columns.items()) + ([("time_from_id", time_from_id)] if time_from_id else [])
    return f"{base}?{urlencode(params, quote_via=quote)}" if params else base


def parse_mapping_format(fmt: str) -> tuple[str, FileMapping]:
    """``(base format, mapping)`` of a format written by ``mapping_format``; ``PayloadError`` if bad."""
    base, _, query = fmt.partition("?")
    try:
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        msg = f"format {fmt!r}: the column mapping after '?' cannot be read"
        raise PayloadError(msg, field="format") from None
    time_from_id = params.pop("time_from_id", "")
    return base, FileMapping.mapped(params, time_from_id)


# --- dates from ids -------------------------------------------------------------------------------------

TWITTER_EPOCH_MS = 1288834974657
"""2010-11-04T01:42:54.657Z: time 0 of a Twitter/X snowflake id."""
_SNOWFLAKE_MIN = int(timedelta(hours=1) / timedelta(milliseconds=1)) << 22
"""Ids below this decode to Twitter's snowflake epoch's first hour: they are the sequential ids of
before snowflakes (at most about 3e10, all within its first 8 seconds), or not tweet ids at all."""
_MAX_ID_DIGITS = 20  # 2**64 has 20 digits


def unquoted_number(text: str) -> str:
    """A number a spreadsheet kept as text, without its quote marks: ``'325208201740029952'`` (as
    CrisisLex T6 writes its tweet ids; Excel's leading ``'``) → ``325208201740029952``; anything
    else as it is."""
    inner = text.strip().strip("'\"")
    return inner if inner != text and inner.isascii() and inner.isdigit() else text


def time_from_twitter_id(raw: object, column: str) -> datetime:
    """The creation time a Twitter/X snowflake id holds; ``PayloadError`` for anything else."""
    scalar = isinstance(raw, str | int) and not isinstance(raw, bool)
    text = unquoted_number(str(raw).strip()) if scalar else ""
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_ID_DIGITS:
        msg = (
            f"file: the id in column {column!r} is not a Twitter/X snowflake id (digits), so it gives no time"
        )
        raise PayloadError(msg, field="created_at")
    snowflake = int(text)
    created = datetime.fromtimestamp(((snowflake >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)
    if snowflake < _SNOWFLAKE_MIN or created > datetime.now(UTC):
        msg = (
            f"file: the id in column {column!r} is not a Twitter/X snowflake id: it decodes to "
            f"{created:%Y-%m-%d %H:%M} UTC, outside 2010-11-04 (snowflakes' start) to now"
        )
        raise PayloadError(msg, field="created_at")
    return created


__all__ = [
    "COLUMN_FIELDS",
    "DEFAULT_MAPPING",
    "TIME_FROM_ID",
    "Columns",
    "FileMapping",
    "canonical",
    "find_columns",
    "mapping_format",
    "parse_mapping_format",
    "time_from_twitter_id",
    "unquoted_number",
]
