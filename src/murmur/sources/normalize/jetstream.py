"""Bluesky Jetstream events → drafts and deletions.

A Jetstream commit event wraps one AT Protocol record::

    {"did": "did:plc:…", "time_us": 1725911162329308, "kind": "commit",
     "commit": {"rev": "…", "operation": "create", "collection": "app.bsky.feed.post",
                "rkey": "3l3qo2vutsw2b", "record": {"$type": "app.bsky.feed.post", "text": "…", …},
                "cid": "…"}}

Only ``app.bsky.feed.post`` commits are posts; every other collection (likes, follows, reposts) and
every other kind (``identity``, ``account``) gives ``[]``. ``create`` and ``update`` give a draft,
``delete`` a deletion. ``post_id`` is the record's ``at://`` uri.

From the record: ``text``; ``langs[0]`` → ``lang_declared``; ``createdAt`` (naive → UTC, invalid →
PayloadError; a ``createdAt`` later than the event's ``time_us``, when Jetstream received the commit,
is a wrong client clock or a forged date: the post's time is then ``time_us``, as the Bluesky AppView
sorts posts by the earlier of the two); richtext facets: ``#tag`` → hashtags, ``#link`` → urls,
``#mention`` → mentions (the DID); ``tags`` → hashtags; ``reply`` → ``is_reply``; embeds:
``record`` / ``recordWithMedia`` (a quote) → ``is_repost``, ``images`` / ``video`` /
``recordWithMedia`` → ``has_media``, ``external`` → urls.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import msgspec

from murmur.errors import PayloadError
from murmur.sources.normalize._common import (
    MAX_LIST_ITEMS,
    bound,
    bounded_unique,
    check_size,
    clean_lang,
    hashtag,
    json_error,
    parse_iso,
    without_bom,
)
from murmur.types import Deletion, Draft, Event

FMT = "jetstream"
POST = "app.bsky.feed.post"
_DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]{1,2040}")
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_NULL = msgspec.Raw(b"null")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIME_US = 253_402_300_799 * 1_000_000  # 9999-12-31T23:59:59Z
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


class _Commit(msgspec.Struct, gc=False):
    operation: str
    collection: str
    rkey: str
    record: msgspec.Raw = _NULL


class _Envelope(msgspec.Struct, gc=False):
    did: str
    kind: str
    commit: _Commit | None = None
    time_us: object = None
    """Microseconds since 1970 when Jetstream received the event (any other value is ignored)."""


class _Feature(msgspec.Struct, rename={"type": "$type"}, gc=False):
    type: str = ""
    tag: str | None = None
    uri: str | None = None
    did: str | None = None


class _Facet(msgspec.Struct, gc=False):
    features: list[_Feature] = msgspec.field(default_factory=list)


class _External(msgspec.Struct, gc=False):
    uri: str | None = None


class _Embed(msgspec.Struct, rename={"type": "$type"}, gc=False):
    type: str = ""
    external: _External | None = None
    media: _Embed | None = None


class _Record(msgspec.Struct, gc=False):
    createdAt: str
    text: str = ""
    langs: list[str] | None = None
    facets: list[_Facet] | None = None
    tags: list[str] | None = None
    reply: msgspec.Raw = _NULL
    embed: _Embed | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_record_decoder = msgspec.json.Decoder(_Record)

_MEDIA = ("app.bsky.embed.images", "app.bsky.embed.video")
_QUOTE = ("app.bsky.embed.record", "app.bsky.embed.recordWithMedia")
_EXTERNAL = "app.bsky.embed.external"


def _embed_flags(embed: _Embed | None, urls: list[str]) -> tuple[bool, bool]:
    """(has_media, is_quote) of an embed; external links are appended to ``urls``."""
    if embed is None:
        return (False, False)
    kind = embed.type.partition("#")[0]
    if kind == _EXTERNAL and embed.external is not None and embed.external.uri:
        urls.append(embed.external.uri)
    if kind == "app.bsky.embed.recordWithMedia":
        media = embed.media
        if media is not None and media.type.partition("#")[0] == _EXTERNAL:
            _embed_flags(media, urls)
            return (False, True)
        return (True, True)
    return (kind in _MEDIA, kind in _QUOTE)


def _received(time_us: object) -> datetime | None:
    """When Jetstream received the event (``time_us``); None when it is absent or not a time."""
    if type(time_us) is not int or not 0 < time_us <= _MAX_TIME_US:
        return None
    return _EPOCH + timedelta(microseconds=time_us)


def normalize_jetstream(payload: bytes) -> list[Event]:
    """One Jetstream event → ``[Draft]``, ``[Deletion]`` or ``[]`` (not a post)."""
    check_size(payload, FMT)
    payload = without_bom(payload)
    try:
        env = _envelope_decoder.decode(payload)
    except _DECODE_ERRORS as exc:
        raise json_error(exc, payload, FMT) from None
    commit = env.commit
    if env.kind != "commit" or commit is None or commit.collection != POST:
        return []
    if not _DID.fullmatch(env.did):
        msg = f"jetstream: did {env.did[:100]!r} is not a DID (did:<method>:<id>)"
        raise PayloadError(msg, field="did")
    if not _RKEY.fullmatch(commit.rkey):
        msg = f"jetstream: rkey {commit.rkey[:100]!r} is not a valid record key"
        raise PayloadError(msg, field="commit.rkey")
    post_id = f"at://{env.did}/{POST}/{commit.rkey}"
    if commit.operation == "delete":
        return [Deletion(platform="bluesky", post_id=post_id)]
    if commit.operation not in ("create", "update"):
        msg = f"jetstream: unknown commit operation {commit.operation[:50]!r} (create, update, delete)"
        raise PayloadError(msg, field="commit.operation")
    try:
        record = _record_decoder.decode(commit.record)
    except _DECODE_ERRORS as exc:
        err = json_error(exc, payload, FMT)
        field = "commit.record" + ("." + err.field if err.field and err.field != "payload" else "")
        raise PayloadError(err.reason, field=field) from None
    created_at = parse_iso(record.createdAt, "commit.record.createdAt", FMT)
    received = _received(env.time_us)
    if received is not None and created_at > received:
        created_at = received

    tags: list[str] = []
    urls: list[str] = []
    mentions: list[str] = []
    for facet in (record.facets or ())[: MAX_LIST_ITEMS * 4]:
        for feature in facet.features[:MAX_LIST_ITEMS]:
            kind = feature.type
            if kind == "app.bsky.richtext.facet#tag" and feature.tag:
                tags.append(feature.tag)
            elif kind == "app.bsky.richtext.facet#link" and feature.uri:
                urls.append(feature.uri)
            elif kind == "app.bsky.richtext.facet#mention" and feature.did:
                mentions.append(feature.did)
    if record.tags:
        tags.extend(record.tags[:MAX_LIST_ITEMS])
    has_media, is_quote = _embed_flags(record.embed, urls)
    return [
        Draft(
            platform="bluesky",
            post_id=post_id,
            created_at=created_at,
            text=bound(record.text),
            author_raw_id=env.did,
            lang_declared=clean_lang(record.langs[0]) if record.langs else None,
            site="bsky.app",
            urls=bounded_unique([bound(u, 4096) for u in urls]) if urls else [],
            hashtags=bounded_unique([hashtag(t) for t in tags]) if tags else [],
            mentions=bounded_unique([bound(m, 2048) for m in mentions]) if mentions else [],
            is_reply=record.reply != _NULL,
            is_repost=is_quote,
            has_media=has_media,
        )
    ]
