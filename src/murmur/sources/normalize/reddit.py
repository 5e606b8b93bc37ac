"""Reddit Data API things and listings → drafts and deletions.

Accepted payloads:

* a thing ``{"kind": "t1" | "t3", "data": {...}}`` (comment / submission); other kinds (accounts,
  subreddits, messages, ``more`` placeholders) give ``[]``, and so does a comment as one person's
  inbox holds it (a ``t1`` with ``dest``, its recipient): murmur never reads anyone's inbox;
* a ``{"kind": "Listing", "data": {"children": [...]}}`` and a JSON array of listings (what
  ``/comments/<id>`` returns); a comment's ``replies`` listing is walked too, so a whole comment tree
  comes out of one payload;
* the recorded-response wrapper ``{"source_cassette", "request_uri", "recorded_at", "response"}``.

Mapping: ``post_id`` = fullname (``t3_abc``), ``author_raw_id`` = ``author_fullname`` (else ``author``),
``community`` = subreddit, ``site`` = ``reddit.com``, ``created_utc`` → UTC time. A submission's text is
its title and self text; a link submission's ``url`` goes to urls. Comments are replies. A
``crosspost_parent`` makes a repost. Videos, galleries, embedded media and image posts set
``has_media`` (a mere link preview thumbnail does not). A body or self text of ``[deleted]`` or
``[removed]`` gives a ``Deletion``, and so does a submission with a ``removed_by_category`` (deleted
by its author, removed by moderators or by Reddit): a link post has no self text to carry the marker,
and Reddit still returns its title and link once it is gone from public view. Placeholders such as
``<USERNAME>`` are literal text.
"""

from __future__ import annotations

import msgspec

from murmur.errors import PayloadError
from murmur.sources.normalize._common import (
    MAX_ITEMS,
    bound,
    bounded_unique,
    check_size,
    clean_id,
    from_epoch,
    json_error,
    raw_first,
    urls_in_text,
    without_bom,
)
from murmur.types import Deletion, Draft, Event

FMT = "reddit"
MAX_DEPTH = 64
_GONE = frozenset({"[deleted]", "[removed]"})
_MEDIA_HINTS = frozenset({"image", "hosted:video", "rich:video", "gallery"})
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".gif", ".gifv", ".webp", ".mp4")
_NULL = msgspec.Raw(b"null")
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


class _Data(msgspec.Struct, gc=False):
    name: str | None = None
    id: str | None = None
    author: str | None = None
    author_fullname: str | None = None
    body: str | None = None
    title: str | None = None
    selftext: str | None = None
    dest: str | None = None
    """Set on inbox items only: the person the item was delivered to."""
    created_utc: float | None = None
    subreddit: str | None = None
    url: str | None = None
    is_self: bool | None = None
    is_video: bool | None = None
    is_gallery: bool | None = None
    post_hint: str | None = None
    crosspost_parent: str | None = None
    removed_by_category: str | None = None
    """Set once a submission is gone from public view: ``deleted`` (by its author), ``moderator``,
    ``automod_filtered``, ``reddit``, ``anti_evil_ops``, ``copyright_takedown``, ..."""
    media: msgspec.Raw = _NULL
    secure_media: msgspec.Raw = _NULL
    media_metadata: msgspec.Raw = _NULL
    gallery_data: msgspec.Raw = _NULL
    replies: msgspec.Raw = _NULL
    children: list[msgspec.Raw] | None = None
    """Set when this is a Listing's data."""


class _Thing(msgspec.Struct, gc=False):
    kind: str | None = None
    data: _Data | None = None
    response: msgspec.Raw = _NULL
    """The recorded-response wrapper's body."""


class _Kind(msgspec.Struct, gc=False):
    kind: str | None = None


_thing_decoder = msgspec.json.Decoder(_Thing)
_kind_decoder = msgspec.json.Decoder(_Kind)
_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])


class _Walk:
    __slots__ = ("out", "payload", "seen")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.out: list[Event] = []
        self.seen = 0

    def value(self, raw: bytes | msgspec.Raw, depth: int, where: str) -> None:
        if depth > MAX_DEPTH:
            msg = f"reddit: things are nested more than {MAX_DEPTH} levels deep; not a real listing"
            raise PayloadError(msg, field=where or "payload")
        first = raw_first(raw)
        if first == ord("["):
            try:
                items = _array_decoder.decode(raw)
            except _DECODE_ERRORS as exc:
                raise self._error(exc, where) from None
            for i, item in enumerate(items):
                self.value(item, depth + 1, f"{where}[{i}]")
            return
        if first != ord("{"):
            msg = "reddit: expected a thing or Listing (a JSON object) or an array of them"
            raise PayloadError(msg, field=where or "payload")
        try:
            thing = _thing_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            # Kinds we do not read (accounts, subreddits, ...) may use our field names differently.
            try:
                kind = _kind_decoder.decode(raw).kind
            except _DECODE_ERRORS:
                kind = None
            if kind is not None and kind not in ("t1", "t3", "Listing"):
                return
            raise self._error(exc, where) from None
        except _DECODE_ERRORS as exc:
            raise self._error(exc, where) from None
        if thing.kind is None:
            if thing.response != _NULL:
                self.value(thing.response, depth + 1, f"{where}.response".lstrip("."))
                return
            msg = "reddit: the object has no 'kind'; expected a thing, a Listing or a recorded response"
            raise PayloadError(msg, field=f"{where}.kind".lstrip("."))
        data = thing.data
        if data is None:
            if thing.kind in ("t1", "t3", "Listing"):
                msg = f"reddit: a {thing.kind} needs a 'data' object"
                raise PayloadError(msg, field=f"{where}.data".lstrip("."))
            return
        if thing.kind == "Listing":
            for i, child in enumerate(data.children or ()):
                self.value(child, depth + 1, f"{where}.data.children[{i}]".lstrip("."))
            return
        if thing.kind not in ("t1", "t3") or data.dest is not None:
            return
        self.seen += 1
        if self.seen > MAX_ITEMS:
            msg = f"reddit: the payload holds more than {MAX_ITEMS:,} things; split it"
            raise PayloadError(msg, field="payload")
        try:
            self.out.append(_thing_event(thing.kind, data))
        except PayloadError as exc:
            field = f"{where}.data.{exc.field}".lstrip(".") if exc.field else where or None
            raise PayloadError(exc.reason, field=field) from None
        if data.replies != _NULL and raw_first(data.replies) == ord("{"):
            self.value(data.replies, depth + 1, f"{where}.data.replies".lstrip("."))

    def _error(self, exc: Exception, where: str) -> PayloadError:
        err = json_error(exc, self.payload, FMT)
        if not where:
            return err
        field = where + ("." + err.field if err.field and err.field != "payload" else "")
        return PayloadError(err.reason, field=field)


def _has_media(kind: str, d: _Data) -> bool:
    if d.media_metadata != _NULL or d.gallery_data != _NULL:
        return True
    if kind == "t1":
        return False
    if d.is_video or d.is_gallery or d.media != _NULL or d.secure_media != _NULL:
        return True
    if d.post_hint is not None:
        return d.post_hint in _MEDIA_HINTS
    url = (d.url or "").lower().split("?", 1)[0]
    return not d.is_self and url.endswith(_IMAGE_EXT)


def _thing_event(kind: str, d: _Data) -> Event:
    if d.name:
        post_id = clean_id(d.name, "name", FMT)
    elif d.id:
        post_id = clean_id(f"{kind}_{d.id}", "id", FMT)
    else:
        msg = f"reddit: a {kind} needs 'name' (its fullname) or 'id'"
        raise PayloadError(msg, field="name")
    body = d.body if kind == "t1" else d.selftext
    if (body is not None and body.strip() in _GONE) or d.removed_by_category:
        return Deletion(platform="reddit", post_id=post_id)
    if d.created_utc is None:
        msg = f"reddit: {post_id} has no created_utc; a post needs its time"
        raise PayloadError(msg, field="created_utc")
    created_at = from_epoch(d.created_utc, "created_utc", FMT)
    author = d.author_fullname or d.author or "[deleted]"
    body = body or ""
    urls: list[str] = []
    if kind == "t3":
        title = d.title or ""
        text = f"{title}\n\n{body}" if body else title
        if not d.is_self and d.url and d.url.startswith(("http://", "https://")):
            urls.append(d.url)
    else:
        title = None
        text = body
    urls.extend(urls_in_text(body))
    return Draft(
        platform="reddit",
        post_id=post_id,
        created_at=created_at,
        text=bound(text),
        author_raw_id=clean_id(author, "author", FMT),
        site="reddit.com",
        community=bound(d.subreddit, 200) if d.subreddit else None,
        urls=bounded_unique([bound(u, 4096) for u in urls]) if urls else [],
        is_reply=kind == "t1",
        is_repost=bool(d.crosspost_parent),
        has_media=_has_media(kind, d),
        title=bound(title, 1000) if title else None,
    )


def normalize_reddit(payload: bytes) -> list[Event]:
    """Reddit thing / listing / array of listings / recorded response → drafts and deletions."""
    check_size(payload, FMT)
    payload = without_bom(payload)
    walk = _Walk(payload)
    walk.value(payload, 0, "")
    return walk.out
