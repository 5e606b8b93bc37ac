"""The privacy gate: the only way a ``Draft`` becomes a storable ``Post``.

* the platform's post id (which often embeds the author) becomes a keyed hash, stable over time so
  that a later deletion still finds the post;
* the raw author id becomes a keyed, period-rotated pseudonym (``author_key``);
* PII in the text is replaced with typed placeholders, @mentions of non-public accounts with ``@user``;
* links keep only their domain (``domains``), in the text as in the fields;
* platform geo is dropped: at most an ISO country code the platform itself supplied;
* media are a flag only; nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from murmur.privacy.pseudonym import Pseudonymizer
from murmur.privacy.redact import Redactor
from murmur.text import is_hashtag, written_hashtags
from murmur.types import Deletion, Draft, Post
from murmur.urls import domain_of

_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
MAX_HASHTAG = 100
_PERSONAL_COMMUNITY = re.compile(r"\s*/?u[_/]", re.IGNORECASE)


class PrivacyGate:
    """Turns drafts into posts. One instance per process; cheap per post."""

    def __init__(
        self,
        *,
        key_file: str | Path | None,
        period_days: int = 30,
        public_accounts: Iterable[str] = (),
    ) -> None:
        self.pseudonyms = Pseudonymizer(key_file, period_days=period_days)
        self.redactor = Redactor(public_accounts)

    def apply(self, draft: Draft, *, now: datetime | None = None) -> Post:
        now = now or datetime.now(UTC)
        text = draft.text
        if draft.title and not text.startswith(draft.title):
            text = f"{draft.title}\n\n{text}" if text else draft.title
        red = self.redactor.redact(text)
        domains = list(red.domains)
        for url in draft.urls:
            host = domain_of(url)
            if host and host not in domains:
                domains.append(host)
        site = _site_domain(draft.site) if draft.site else None
        country = draft.country.upper() if draft.country and _COUNTRY.match(draft.country) else None
        return Post(
            platform=draft.platform,
            post_id=self.pseudonyms.post_key(draft.platform, draft.post_id, now=now),
            created_at=draft.created_at.astimezone(UTC),
            ingested_at=now,
            author_key=self.pseudonyms.key(draft.platform, draft.author_raw_id, now=now),
            text=red.text,
            lang_declared=(draft.lang_declared or None) and draft.lang_declared.lower()[:16],
            site=site,
            community=_community(draft),
            domains=domains[:50],
            hashtags=_hashtags(
                draft.hashtags, written_hashtags(red.text, markdown=draft.platform == "reddit")
            ),
            mentions=self._public_mentions(draft.mentions) if draft.mentions else [],
            is_reply=draft.is_reply,
            is_repost=draft.is_repost,
            has_media=draft.has_media,
            has_link=bool(domains),
            country=country,
            redactions=red.count,
        )

    def _public_mentions(self, mentions: list[str]) -> list[str]:
        if not self.redactor.public:
            return []
        return [m for m in dict.fromkeys(mentions) if self.redactor.is_public(m)][:50]

    def delete(self, deletion: Deletion, *, now: datetime | None = None) -> Deletion:
        """A platform's deletion, keyed like the stored post it removes."""
        now = now or datetime.now(UTC)
        return Deletion(
            deletion.platform, self.pseudonyms.post_key(deletion.platform, deletion.post_id, now=now)
        )

    def apply_all(self, drafts: Iterable[Draft], *, now: datetime | None = None) -> list[Post]:
        now = now or datetime.now(UTC)
        return [self.apply(d, now=now) for d in drafts]


def _hashtags(tags: list[str], written: list[str]) -> list[str]:
    """The platform's hashtags, then those ``written`` in the (redacted) text that the platform did
    not list (Reddit, feeds and files list none; a Bluesky client may write a tag without its
    facet), lower-cased, at most 50."""
    if not tags and not written:  # most posts
        return []
    kept = [h for h in tags if len(h) <= MAX_HASHTAG and is_hashtag(h)]
    # written tags are ``hashtag_re``'s own matches: whole tags already
    kept += [h for h in written if len(h) <= MAX_HASHTAG]
    return list(dict.fromkeys(h.lower() for h in kept))[:50]


@lru_cache(maxsize=1024)
def _site_domain(site: str) -> str | None:
    """``domain_of(site)``: a platform's, an instance's or a feed's host, the same for many posts."""
    return domain_of(site)


def _community(draft: Draft) -> str | None:
    """A public venue name; Reddit's per-user pseudo-subreddits (``u_name``, ``u/name``) name a
    person: dropped, whatever the platform (a Pushshift dump imported as a file carries them too)."""
    if not draft.community:
        return None
    if _PERSONAL_COMMUNITY.match(draft.community):
        return None
    return draft.community[:200]
