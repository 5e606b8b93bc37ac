"""Real posts for the query tests: the shared payloads through murmur's own normalizers and privacy
gate, plus real sentences in scripts written without spaces (lingua ja/zh/th/ko) and a few posts
built to exercise case and accent folding. Enrichment fields (lang, sentiment, country) are filled
deterministically so that field queries have something to find."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from murmur.errors import PayloadError
from murmur.privacy import PrivacyGate
from murmur.sources.normalize import normalize
from murmur.testing import shared_data
from murmur.types import Draft, Post, SentimentLabel

_SENTIMENTS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")
_COUNTRIES = ("DE", "US", "FR", "BR", "JP")
_LINGUA = ("ja", "zh", "th", "ko", "hi", "ar", "el", "ru", "de", "fr", "tr", "vi")
MADE_UP = (
    ("en", "Café au lait in the Straße, CAFÉ crème at the ＣＡＦＥ"),
    ("fr", "un cafe noir et une crème brûlée, s'il vous plaît"),
    ("de", "Die STRASSE ist gesperrt: Hochwasser-Warnung für Köln und Düsseldorf"),
    ("es", "Niño y NIÑA en la estación; ¡qué día!"),
    ("tr", "İstanbul'da DEPREM uyarısı; ıslak yollar"),
    ("el", "ΟΔΟΣ κλειστή στην Αθήνα, πλημμύρα"),
    # hashtags written in the text only (marks, ZWNJ/ZWJ, case and accents), variation selectors
    ("hi", "बाढ़ की चेतावनी #बाढ़ #Bāḍh_२०२५ #क्\u200dष"),
    ("th", "น้ำท่วม กรุงเทพ #น้ำท่วม #ThaiFlood"),
    ("fa", "من می\u200cخواهم بروم #می\u200cخواهم #ایران"),
    ("ja", "葛\U000e0100飾区 で 祭り #東京タワー 1\ufe0f\u20e3 番"),
)


def _h(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "big")


def _enrich(post: Post) -> Post:
    h = _h(post.post_id)
    post.lang = post.lang_declared if post.lang_declared and h % 3 else ("en", "de", "und", None)[h % 4]
    post.sentiment = _SENTIMENTS[h % 3] if h % 5 else None
    post.country = _COUNTRIES[h % 5] if h % 4 == 0 else post.country
    post.has_media = post.has_media or h % 7 == 0
    return post


def _payload_drafts() -> list[Draft]:
    base = shared_data("payloads")
    drafts: list[Draft] = []
    for line in (base / "reddit" / "things.jsonl").read_bytes().splitlines():
        drafts += [e for e in normalize("reddit", line) if isinstance(e, Draft)]
    for line in (base / "mastodon" / "statuses_mastodonpy.jsonl").read_bytes().splitlines():
        drafts += [e for e in normalize("mastodon", line) if isinstance(e, Draft)]
    for path in sorted((base / "rss").rglob("*")):
        if path.is_file() and path.suffix != ".md":
            try:
                drafts += [e for e in normalize("feed", path.read_bytes()) if isinstance(e, Draft)]
            except PayloadError:
                continue  # some real feeds are malformed on purpose
    return drafts


def _sentence_drafts(per_language: int) -> list[Draft]:
    drafts: list[Draft] = []
    start = datetime(2025, 6, 1, tzinfo=UTC)
    for lang in _LINGUA:
        path: Path = shared_data("langid", "lingua", "sentences", f"{lang}.txt")
        if not path.exists():
            continue
        lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()][:per_language]
        for i, line in enumerate(lines):
            drafts.append(
                Draft(
                    platform="bluesky",
                    post_id=f"lingua-{lang}-{i}",
                    created_at=start + timedelta(minutes=i),
                    text=line,
                    author_raw_id=f"did:plc:lingua{i % 9}",
                    lang_declared=lang,
                    site="bsky.app",
                )
            )
    for i, (lang, text) in enumerate(MADE_UP):
        drafts.append(
            Draft(
                platform="mastodon",
                post_id=f"made-{i}",
                created_at=start + timedelta(hours=i),
                text=text,
                author_raw_id=f"acct{i}",
                lang_declared=lang,
                site="mastodon.social",
                hashtags=[] if i >= 6 else ["Café", "COP30"] if i % 2 else ["Köln"],
                urls=["https://www.nytimes.com/2025/x"] if i % 2 == 0 else ["https://news.bbc.co.uk/a"],
            )
        )
    return drafts


@cache
def real_posts(key_dir: str, per_language: int = 40) -> tuple[Post, ...]:
    """Every real post (~10k), gated with a key in ``key_dir``; same posts for the same arguments."""
    gate = PrivacyGate(key_file=Path(key_dir) / "secret.key")
    now = datetime(2026, 1, 15, tzinfo=UTC)
    posts = [_enrich(gate.apply(d, now=now)) for d in (*_payload_drafts(), *_sentence_drafts(per_language))]
    return tuple({p.key: p for p in posts}.values())
