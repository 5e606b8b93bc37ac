"""RSS 2.0 / RSS 1.0 / Atom (through ``feedparser``) and JSON Feed documents → one draft per item.

* ``text`` = the item's title, a blank line, and its content (or summary) stripped of HTML;
  ``title`` = the title.
* ``post_id`` = the item's id / guid, else its link, else a hash of title and text. Ids that are not
  URIs (a bare ``1234`` guid) are prefixed with the feed's host, so two feeds cannot collide.
* ``author_raw_id`` = the item's author, else the feed's link (a feed without bylines counts as one
  author); ``community`` = the feed's title, unless the feed's link is a person's profile (a Mastodon
  account's ``/@name.rss``, a Reddit user's feed): its title is that person's display name;
  ``site`` = the host of the feed's link; ``urls`` = the item link, then the links in its content;
  enclosures and Media RSS content set ``has_media``.
* Relative links (``/about``, ``../x``) are resolved as a browser would: against the ``xml:base`` in
  effect (feedparser applies it to item and feed links, not to links inside content, which murmur
  resolves itself: feedparser's pass over the HTML would be a second parse), else the item's link,
  else the feed's link. Only http(s) addresses are kept. An item's ``post_id`` keeps the link as
  written, so ids do not change.
* ``created_at`` = the item's published (else updated) date. Feeds often omit dates, so a missing one
  is not an error: the feed's own updated date is used, else the time of ingest. Such an item is
  stamped again whenever its feed brings a new item (the whole document is normalized again), so
  it moves to the newer time and its retention restarts while it stays in the feed.
  A date later than the time of ingest (a scheduled post, an event's date, a wrong time zone) is
  the time of ingest too, so such an item is counted now rather than on a day still to come.
* Malformed-but-recoverable feeds (feedparser's ``bozo``) still give their items; a document with
  no items that is not a feed at all is a ``PayloadError``.

Hostile XML: feedparser is given a byte stream (never a str or bytes it could take for a path or a
URL), and any document that declares an entity (``<!ENTITY``, in UTF-8, UTF-16 or UTF-32) is
rejected before parsing, so billion-laughs bombs and external entities (XXE) are quarantined at once.
Entity *references* to the predefined and numeric entities are normal XML and parse as usual.
feedparser 6.0 does not read JSON Feed; murmur decodes JSON Feed 1.0/1.1 itself.
"""

from __future__ import annotations

import io
import re
import time
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser
import msgspec

from murmur.errors import PayloadError
from murmur.sources.normalize._common import (
    MAX_FEED_BYTES,
    MAX_ITEMS,
    bounded_unique,
    check_size,
    clean_lang,
    clean_text,
    content_hash,
    first_non_space,
    json_error,
    parse_iso,
)
from murmur.sources.normalize._html import html_to_text, profile_mention
from murmur.types import Draft, Event
from murmur.urls import absolute_url, domain_of

FMT = "feed"
_ENTITY_UTF8 = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)
_ENTITY_WIDE = tuple("<!ENTITY".encode(enc) for enc in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"))
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


def reject_entity_declarations(payload: bytes) -> None:
    """Refuse XML that declares entities: the door to entity-expansion bombs and XXE."""
    if _ENTITY_UTF8.search(payload) or any(p in payload for p in _ENTITY_WIDE):
        msg = (
            "feed declares XML entities (<!ENTITY ...>); murmur refuses them because they enable "
            "entity-expansion bombs and external-entity reads. Real feeds never need them."
        )
        raise PayloadError(msg, field="doctype")


# --- helpers over feedparser's loosely typed results ------------------------------------------------


def _get(obj: object, key: str) -> Any:
    """``dict.get`` that bypasses FeedParserDict's key aliasing (and its deprecation warnings)."""
    return dict.get(obj, key) if isinstance(obj, dict) else None


def _str(obj: object, key: str) -> str:
    value = _get(obj, key)
    return value if isinstance(value, str) else ""


def _struct_time(value: object) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError, TypeError):
        return None


def _plain(value: str, kind: str, base: str | None = None) -> tuple[str, list[str]]:
    """Text and its links (relative ones resolved against ``base``)."""
    if "<" in value and (kind != "text/plain" or "</" in value):
        return html_to_text(value, base=base)
    if "&" in value and kind != "text/plain":
        return html_to_text(value, base=base)
    return (value.strip(), [])


class _FeedInfo:
    __slots__ = ("author", "community", "lang", "link", "site", "updated")

    def __init__(self, feed: object) -> None:
        self.link = _str(feed, "link")
        title = "" if profile_mention(self.link) else _str(feed, "title")  # a person's name
        self.community = clean_text(_plain(title, "text/html")[0], limit=200) or None
        self.site = domain_of(self.link)
        self.lang = clean_lang(_get(feed, "language"))
        self.updated = _struct_time(_get(feed, "updated_parsed")) or _struct_time(
            _get(feed, "published_parsed")
        )
        self.author = self.link or self.community or "feed"


def _post_id(raw_id: str, link: str, title: str, text: str, info: _FeedInfo) -> str:
    value = raw_id.strip() or link.strip()
    if not value:
        value = content_hash(info.link, title, text)
    elif ":" not in value:
        value = f"{info.site or info.community or 'feed'}#{value}"
    return clean_text(value, limit=2048)


def _draft(
    *,
    info: _FeedInfo,
    raw_id: str,
    title: str,
    body: str,
    link: str,
    urls: list[str],
    author_raw_id: str,
    created: datetime | None,
    lang: str | None,
    has_media: bool,
) -> Draft:
    title = clean_text(title, limit=1000)
    text = title
    if body and body != title:
        text = f"{title}\n\n{body}" if title else body
    text = clean_text(text)
    now = datetime.now(UTC)
    return Draft(
        platform="feed",
        post_id=_post_id(raw_id, link, title, text, info),
        created_at=min(created or info.updated or now, now),
        text=text,
        author_raw_id=clean_text(author_raw_id.strip() or info.author, limit=512),
        lang_declared=lang or info.lang,
        site=info.site or domain_of(link),
        community=info.community,
        urls=bounded_unique(clean_text(u, limit=4096) for u in urls),
        has_media=has_media,
        title=title or None,
    )


# --- RSS / Atom through feedparser --------------------------------------------------------------------


def _xml_entry(entry: Mapping[str, Any], info: _FeedInfo) -> Draft:
    title_detail = _get(entry, "title_detail")
    title = _plain(_str(entry, "title"), _str(title_detail, "type") or "text/html")[0]
    content = _get(entry, "content")
    detail = content[0] if isinstance(content, list) and content and isinstance(content[0], dict) else None
    if detail is None:
        detail = _get(entry, "summary_detail")
    body_raw = _str(detail, "value") if detail is not None else _str(entry, "summary")
    raw_link = _str(entry, "link")
    link = absolute_url(raw_link, info.link)  # feedparser resolved it against any xml:base
    xml_base = _str(detail, "base")  # the xml:base in effect for the content ("" for none)
    base = absolute_url(xml_base, link or info.link) if xml_base else link or info.link
    body, hrefs = _plain(body_raw, _str(detail, "type") or "text/html", base) if body_raw else ("", [])
    lang = clean_lang(_get(detail, "language")) or clean_lang(_get(title_detail, "language"))
    links = _get(entry, "links")
    has_media = bool(_get(entry, "media_content")) or bool(_get(entry, "media_thumbnail"))
    if isinstance(links, list):
        has_media = has_media or any(_str(x, "rel") == "enclosure" for x in links)
    created = (
        _struct_time(_get(entry, "published_parsed"))
        or _struct_time(_get(entry, "updated_parsed"))
        or _struct_time(_get(entry, "created_parsed"))
    )
    return _draft(
        info=info,
        raw_id=_str(entry, "id"),
        title=title,
        body=body,
        link=raw_link,
        urls=[link, *hrefs] if link else hrefs,
        author_raw_id=_str(entry, "author"),
        created=created,
        lang=lang,
        has_media=has_media,
    )


def _parse_xml(payload: bytes) -> list[Event]:
    reject_entity_declarations(payload)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = feedparser.parse(io.BytesIO(payload), sanitize_html=False, resolve_relative_uris=False)
    except RecursionError:
        msg = "feed is nested too deeply to parse"
        raise PayloadError(msg, field="payload") from None
    except Exception as exc:
        msg = f"feed could not be parsed: {type(exc).__name__}: {exc}"
        raise PayloadError(msg, field="payload") from None
    entries = _get(parsed, "entries")
    if not isinstance(entries, list):
        entries = []
    if not entries:
        version = _str(parsed, "version")
        if not version:
            bozo = _get(parsed, "bozo_exception")
            why = f" ({type(bozo).__name__}: {bozo})" if bozo is not None else ""
            msg = f"not an RSS, Atom or JSON Feed document{why}"
            raise PayloadError(msg, field="payload")
        return []
    if len(entries) > MAX_ITEMS:
        msg = f"feed holds {len(entries):,} items, more than {MAX_ITEMS:,}; split it"
        raise PayloadError(msg, field="entries")
    info = _FeedInfo(_get(parsed, "feed"))
    return [_xml_entry(e, info) for e in entries if isinstance(e, dict)]


# --- JSON Feed ------------------------------------------------------------------------------------------


class _JAuthor(msgspec.Struct, gc=False):
    name: str | None = None
    url: str | None = None


class _JItem(msgspec.Struct, gc=False):
    id: str | int | None = None
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    content_html: str | None = None
    content_text: str | None = None
    summary: str | None = None
    image: str | None = None
    date_published: str | None = None
    date_modified: str | None = None
    author: _JAuthor | None = None
    authors: list[_JAuthor] | None = None
    language: str | None = None
    attachments: list[msgspec.Raw] | None = None


class _JFeed(msgspec.Struct, gc=False):
    version: str
    items: list[_JItem]
    title: str | None = None
    home_page_url: str | None = None
    feed_url: str | None = None
    language: str | None = None
    author: _JAuthor | None = None
    authors: list[_JAuthor] | None = None


_jfeed_decoder = msgspec.json.Decoder(_JFeed)


def _jauthor(item_authors: list[_JAuthor] | None, item_author: _JAuthor | None) -> str:
    """The byline as ``author_raw_id``: input to the privacy gate, which keeps only its keyed
    pseudonym (the name itself is never stored or shown)."""
    for a in [*(item_authors or ()), *([item_author] if item_author else [])]:
        if a.name or a.url:
            return a.name or a.url or ""
    return ""


def _parse_json_feed(payload: bytes) -> list[Event]:
    try:
        doc = _jfeed_decoder.decode(payload)
    except _DECODE_ERRORS as exc:
        raise json_error(exc, payload, FMT) from None
    if "jsonfeed.org" not in doc.version:
        msg = f"JSON document is not a JSON Feed (version {doc.version[:80]!r}); see https://jsonfeed.org"
        raise PayloadError(msg, field="version")
    if len(doc.items) > MAX_ITEMS:
        msg = f"feed holds {len(doc.items):,} items, more than {MAX_ITEMS:,}; split it"
        raise PayloadError(msg, field="items")
    info = _FeedInfo({"title": doc.title or "", "link": doc.home_page_url or doc.feed_url or ""})
    info.lang = clean_lang(doc.language)
    info.author = _jauthor(doc.authors, doc.author) or info.author
    out: list[Event] = []
    for i, item in enumerate(doc.items):
        raw_link = item.url or item.external_url or ""
        link = absolute_url(raw_link, info.link)
        if item.content_html:
            body, links = html_to_text(item.content_html, base=link or info.link)
        else:
            body, links = (item.content_text or item.summary or "").strip(), []
        created = None
        date = item.date_published or item.date_modified
        if date:
            try:
                created = parse_iso(date, f"items[{i}].date_published", FMT)
            except PayloadError:
                created = None  # as for RSS/Atom: an unreadable date is a missing date
        out.append(
            _draft(
                info=info,
                raw_id=str(item.id) if item.id is not None else "",
                title=(item.title or "").strip(),
                body=body,
                link=raw_link,
                urls=[link, *links] if link else links,
                author_raw_id=_jauthor(item.authors, item.author),
                created=created,
                lang=clean_lang(item.language),
                has_media=bool(item.attachments) or bool(item.image),
            )
        )
    return out


def normalize_feed(payload: bytes) -> list[Event]:
    """An RSS / Atom / JSON Feed document → one draft per item (``[]`` for an empty feed)."""
    check_size(payload, FMT, MAX_FEED_BYTES)
    if first_non_space(payload) == ord("{"):
        return _parse_json_feed(payload)
    return _parse_xml(bytes(payload))
