"""Plain typed records that flow through murmur.

The path of a post, and the type it has at each step::

    source ──RawEvent──▶ normalize ──Draft / Deletion──▶ privacy gate ──Post──▶ enrich ──Post──▶ store

* ``RawEvent``  a payload exactly as a platform sent it, with the source position it came from.
* ``Draft``     a normalized post *before* the privacy gate. It still carries the raw author id,
                raw mentions and full URLs; it must never be stored. Only the gate turns it into a Post.
* ``Post``      what may be stored: pseudonymous author key, redacted text, link domains only.
* ``Deletion``  a platform said a post was deleted: the stored post is deleted too.

Enrichment fields on ``Post`` start as ``None`` and are filled by ``murmur.enrich`` components.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Literal

Platform = Literal["bluesky", "mastodon", "reddit", "feed", "youtube", "telegram", "file"]
PLATFORMS: tuple[Platform, ...] = ("bluesky", "mastodon", "reddit", "feed", "youtube", "telegram", "file")
MACROLANGUAGES: dict[str, str] = {"ary": "ar", "arq": "ar"}
"""Languages that language identification names within an ISO 639-3 macrolanguage, and that
macrolanguage: Moroccan and Algerian Arabic are Arabic to ``lang:ar`` and to Arabic's stopwords."""

SentimentLabel = Literal["negative", "neutral", "positive"]


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One payload from a source, and where it came from.

    ``position`` is the source's cursor *after* this event (e.g. a Jetstream ``time_us``, a file
    offset); the runtime commits it together with the posts it produced, in one transaction.
    ``format`` names the normalizer that reads ``payload`` (``jetstream``, ``mastodon``, ...).
    """

    source_id: str
    format: str
    payload: bytes
    position: str

    def __reduce__(self) -> tuple[Callable[..., RawEvent], tuple[str, str, bytes, str]]:
        # Batches of events go to the worker processes: a plain tuple pickles fastest.
        return (RawEvent, (self.source_id, self.format, self.payload, self.position))


@dataclass(slots=True)
class Draft:
    """A normalized post before the privacy gate. Holds raw identifiers: never stored."""

    platform: Platform
    post_id: str
    created_at: datetime
    text: str
    author_raw_id: str
    lang_declared: str | None = None
    site: str | None = None
    """Domain of the place the post was published (instance, feed host, ``bsky.app``, ``reddit.com``)."""
    community: str | None = None
    """A public, non-personal venue: subreddit, feed title, hashtag stream. Never a person."""
    urls: list[str] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    """Raw handles mentioned by the post (the gate keeps only configured public accounts)."""
    is_reply: bool = False
    is_repost: bool = False
    has_media: bool = False
    country: str | None = None
    """ISO 3166-1 alpha-2 country code, only when the platform itself labels it."""
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Deletion:
    """A platform deleted a post: the store deletes its copy and everything derived from it."""

    platform: Platform
    post_id: str


@dataclass(slots=True)
class Post:
    """A post as the store holds it: pseudonymous, redacted, no precise location, no URL paths."""

    platform: Platform
    post_id: str
    created_at: datetime
    ingested_at: datetime
    author_key: str
    text: str
    lang_declared: str | None = None
    site: str | None = None
    community: str | None = None
    domains: list[str] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    """Only handles on the configured public-accounts list; all others became ``@user`` in the text."""
    is_reply: bool = False
    is_repost: bool = False
    has_media: bool = False
    has_link: bool = False
    country: str | None = None
    redactions: int = 0
    """How many PII spans the gate replaced with typed placeholders."""
    # --- enrichment (filled by murmur.enrich components; None until then) -------------------------
    lang: str | None = None
    lang_conf: float | None = None
    sentiment: SentimentLabel | None = None
    sentiment_score: float | None = None
    """Positive minus negative probability, in [-1, 1]."""
    sentiment_model: str | None = None
    """Which model and version labelled the sentiment, e.g. ``murmur.sentiment.lexical@1``."""
    terms: list[str] | None = None
    simhash: int | None = None
    dup_cluster: str | None = None
    embedding: list[float] | None = None
    embedding_model: str | None = None
    minhash: bytes | None = None
    """The MinHash signature the near-duplicate clusters read (``murmur.enrich.minhash``): it
    travels with the batch from the worker processes to the ordered stage, and is not stored."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.post_id)

    def __reduce__(self) -> tuple[Callable[..., Post], tuple[object, ...]]:
        # Posts cross process boundaries by the thousand (worker → writer): a flat tuple of
        # field values pickles in about half the time of the default per-slot state.
        return (Post, _POST_FIELDS(self))


_POST_FIELDS = attrgetter(*(f.name for f in fields(Post)))
"""A post's field values, in declaration order (what ``Post(*values)`` takes)."""

Event = Draft | Deletion
