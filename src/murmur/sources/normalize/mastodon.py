"""Mastodon: REST ``Status`` JSON, arrays of them (a timeline page), and streaming events.

Accepted payloads:

* one ``Status`` object (``GET /api/v1/statuses/:id``);
* a JSON array of statuses (``GET /api/v1/timelines/...``);
* a streaming event ``{"event": "update" | "status.update" | "delete", "payload": ...}`` where the
  payload is the status as a JSON string (as Mastodon sends it) or as an object. Other events
  (``notification``, ``filters_changed``, ...) give nothing.

Decisions:

* ``post_id`` is the status ``uri`` (its ActivityPub id): globally unique, so the same status seen via
  two instances is stored once. ``site`` is the host of that uri (the instance it was written on).
* ``author_raw_id`` is the fully qualified account ``user@instance``.
* Only ``public`` and ``unlisted`` statuses become posts. ``private``, ``direct`` and ``limited``
  ones were not published to the public and give ``[]`` (murmur listens to public discourse only).
* A reblog (boost) is a repost of the original: the reblogged status's text, language, tags and
  links, with the *outer* status's ``uri``, author and time, and ``is_repost=True``. A quote post
  (Mastodon 4.4 ``quote``) is also ``is_repost=True``, as Bluesky quotes are.
* A poll's options are part of what the status says: their titles follow the text, one a line.
* A streaming ``delete`` event carries only the instance-local status id, which cannot be turned into
  the ``uri`` the post was stored under. A source that remembers id → uri may add ``"uri"`` to the
  event (``{"event": "delete", "payload": "1234", "uri": "https://..."}``); a delete event without
  it gives ``[]``.
"""

from __future__ import annotations

import logging

import msgspec

from murmur.errors import PayloadError
from murmur.sources.normalize._common import (
    MAX_ITEMS,
    MAX_LIST_ITEMS,
    bound,
    bounded_unique,
    check_size,
    clean_id,
    clean_lang,
    first_non_space,
    hashtag,
    json_error,
    parse_iso,
    without_bom,
)
from murmur.sources.normalize._html import html_to_text
from murmur.types import Deletion, Draft, Event
from murmur.urls import domain_of

log = logging.getLogger(__name__)

FMT = "mastodon"
_PUBLIC = frozenset({"public", "unlisted"})
_NULL = msgspec.Raw(b"null")
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


class _Account(msgspec.Struct, gc=False):
    acct: str
    url: str | None = None
    uri: str | None = None


class _Mention(msgspec.Struct, gc=False):
    acct: str
    url: str | None = None


class _Tag(msgspec.Struct, gc=False):
    name: str


class _Card(msgspec.Struct, gc=False):
    url: str | None = None


class _PollOption(msgspec.Struct, gc=False):
    title: str = ""


class _Poll(msgspec.Struct, gc=False):
    options: list[_PollOption] | None = None


class _Status(msgspec.Struct, gc=False):
    uri: str
    created_at: str
    account: _Account
    content: str = ""
    spoiler_text: str | None = ""
    language: str | None = None
    visibility: str | None = "public"
    in_reply_to_id: str | int | None = None
    reblog: _Status | None = None
    media_attachments: list[msgspec.Raw] | None = None
    card: _Card | None = None
    poll: _Poll | None = None
    tags: list[_Tag] | None = None
    mentions: list[_Mention] | None = None
    quote: msgspec.Raw = _NULL
    url: str | None = None


class _Event(msgspec.Struct, gc=False):
    event: str | None = None
    payload: msgspec.Raw = _NULL
    uri: str | None = None


_status_decoder = msgspec.json.Decoder(_Status)
_statuses_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_event_decoder = msgspec.json.Decoder(_Event)
_str_decoder = msgspec.json.Decoder(str | int)


def _qualified(acct: str, url: str | None, fallback_host: str | None) -> str:
    acct = acct.strip().lstrip("@")
    if "@" in acct:
        return acct
    host = domain_of(url) or fallback_host
    return f"{acct}@{host}" if host else acct


def _status_to_draft(status: _Status) -> Draft | None:
    if status.visibility is not None and status.visibility not in _PUBLIC:
        return None
    post_id = clean_id(status.uri, "uri", FMT)
    site = domain_of(status.uri)
    if site is None:
        msg = f"mastodon: uri {status.uri[:200]!r} is not an absolute URL; a status uri must be one"
        raise PayloadError(msg, field="uri")
    created_at = parse_iso(status.created_at, "created_at", FMT)
    author = clean_id(_qualified(status.account.acct, status.account.url, site), "account.acct", FMT)
    inner = status.reblog if status.reblog is not None else status
    is_repost = status.reblog is not None or inner.quote != _NULL

    mention_accts: dict[str, str] = {}
    mentions: list[str] = []
    for m in inner.mentions or ():
        acct = _qualified(m.acct, m.url, site)
        mentions.append(acct)
        if m.url:
            mention_accts[m.url] = acct
        mention_accts["@" + acct] = acct
        mention_accts.setdefault("@" + acct.partition("@")[0], acct)
    text, links = html_to_text(inner.content, mention_accts) if inner.content else ("", [])
    spoiler = inner.spoiler_text.strip() if inner.spoiler_text else ""
    if spoiler:
        text = f"{spoiler}\n\n{text}" if text else spoiler
    if inner.poll is not None and inner.poll.options:
        options = "\n".join(t for o in inner.poll.options[:MAX_LIST_ITEMS] if (t := o.title.strip()))
        if options:
            text = f"{text}\n\n{options}" if text else options
    if inner.card is not None and inner.card.url:
        links.append(inner.card.url)
    return Draft(
        platform="mastodon",
        post_id=post_id,
        created_at=created_at,
        text=bound(text),
        author_raw_id=author,
        lang_declared=clean_lang(inner.language),
        site=site,
        urls=bounded_unique([bound(u, 4096) for u in links]) if links else [],
        hashtags=bounded_unique([hashtag(t.name) for t in inner.tags]) if inner.tags else [],
        mentions=bounded_unique([bound(m, 512) for m in mentions]) if mentions else [],
        is_reply=status.in_reply_to_id is not None and inner is status,
        is_repost=is_repost,
        has_media=bool(inner.media_attachments),
    )


def _decode_status(raw: bytes | msgspec.Raw, payload: bytes) -> _Status:
    try:
        return _status_decoder.decode(raw)
    except _DECODE_ERRORS as exc:
        raise json_error(exc, payload, FMT) from None


def _event(payload: bytes) -> list[Event] | None:
    """The events of a streaming payload, or None when ``payload`` is not a streaming event."""
    try:
        env = _event_decoder.decode(payload)
    except _DECODE_ERRORS as exc:
        raise json_error(exc, payload, FMT) from None
    if env.event is None:
        return None
    inner = bytes(env.payload)
    if env.event == "delete":
        if env.uri:
            return [Deletion(platform="mastodon", post_id=clean_id(env.uri, "uri", FMT))]
        log.debug("mastodon delete event without a uri: cannot be matched to a stored status")
        return []
    if env.event not in ("update", "status.update"):
        return []
    if inner[:1] == b'"':
        try:
            decoded = _str_decoder.decode(inner)
        except _DECODE_ERRORS as exc:
            raise json_error(exc, payload, FMT) from None
        if not isinstance(decoded, str):
            msg = "mastodon: an update event's payload must be a status (JSON object or JSON string)"
            raise PayloadError(msg, field="payload")
        inner = decoded.encode("utf-8")
    draft = _status_to_draft(_decode_status(inner, payload))
    return [draft] if draft is not None else []


def normalize_mastodon(payload: bytes) -> list[Event]:
    """Mastodon status / timeline page / streaming event → drafts and deletions."""
    check_size(payload, FMT)
    payload = without_bom(payload)
    first = first_non_space(payload)
    if first == ord("["):
        try:
            items = _statuses_decoder.decode(payload)
        except _DECODE_ERRORS as exc:
            raise json_error(exc, payload, FMT) from None
        if len(items) > MAX_ITEMS:
            msg = f"mastodon: the array holds {len(items):,} statuses, more than {MAX_ITEMS:,}; split it"
            raise PayloadError(msg, field="payload")
        out: list[Event] = []
        for i, item in enumerate(items):
            try:
                draft = _status_to_draft(_decode_status(item, payload))
            except PayloadError as exc:
                raise PayloadError(exc.reason, field=f"[{i}].{exc.field or 'status'}") from None
            if draft is not None:
                out.append(draft)
        return out
    if first != ord("{"):
        msg = "mastodon payload must be a JSON object (a status or a streaming event) or an array"
        raise PayloadError(msg, field="payload")
    # A streaming event's "event" key sits before or after its one big value, the status.
    if payload.find(b'"event"', 0, 512) >= 0 or payload.find(b'"event"', max(0, len(payload) - 512)) >= 0:
        events = _event(payload)
        if events is not None:
            return events
    draft = _status_to_draft(_decode_status(payload, payload))
    return [draft] if draft is not None else []
