"""``murmur.terms@1``: hashtags, link domains, keyphrases and emoji of a post, as ``terms``.

Words come from the one shared tokenizer (``murmur.text.tokenize``: NFKC, case- and
accent-folded; a character of Han, kana, Hangul, Thai, ... is a token of its own), so a term is
spelled exactly as a query for it is:

* ``#tag``         hashtags (the post's parsed ``hashtags`` and any ``#word`` or ``＃word`` in the
                   text, read as the privacy gate reads them: ``murmur.text.written_hashtags``), folded,
* ``nytimes.com``  the post's link domains (the privacy gate keeps only those), without ``www.``,
* keyphrases       words that are not stopwords (``stopwordsiso`` for the post's language, plus
                   English, which is mixed into posts everywhere), and pairs of adjacent such words
                   (``climate strike``); in scripts written without spaces, pairs of adjacent
                   characters (``東京``, ``オリ``; none across a space or punctuation, so Korean's
                   spaced words give no ``서대`` from ``서울에서 대규모``) with Japanese
                   hiragana-only pairs dropped,
* emoji            each emoji once (``😂``; a flag ``🇺🇦`` and a joined sequence ``👩‍💻`` as one,
                   without skin tones).

Terms are deduplicated in that order and capped at ``max_terms``. A word or hashtag longer than
``MAX_WORD`` (64) characters is no term: no language's words run that long (German's longest
compounds in use stay under it), while pasted blobs, keyboard mashing and encoded data do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache

import stopwordsiso

from murmur.enrich.text import content_gaps, content_tokens
from murmur.text import SEGMENTED_BY_CHARACTER, fold, written_hashtags
from murmur.types import MACROLANGUAGES, Post

# pictographs, emoticons, transport, supplemental symbols (not skin-tone modifiers), misc symbols,
# dingbats, mahjong/domino/cards, enclosed alphanumerics (not the regional indicators: a flag is a pair)
_PICTOGRAPH = (
    "[\U0001f300-\U0001f3fa\U0001f400-\U0001faff\u2600-\u27bf\U0001f000-\U0001f1e5\U0001f200-\U0001f2ff]"
)
_MODIFIERS = "[\U0001f3fb-\U0001f3ff\ufe0f]"  # skin tones, the emoji presentation selector
# a flag (two regional indicators), or a pictograph and the ones a zero-width joiner binds to it
_FLAG = "[\U0001f1e6-\U0001f1ff]"  # a regional indicator
# written to start with one character class (a flag's first half or a pictograph): Python's ``re``
# then skips to those characters in C, instead of trying both alternatives at every position
_EMOJI = re.compile(
    f"[{_FLAG[1:-1]}{_PICTOGRAPH[1:-1]}]"
    f"(?:(?<={_FLAG}){_FLAG}|(?<={_PICTOGRAPH})(?:{_MODIFIERS}*\u200d{_PICTOGRAPH})*)"
)
_STRIP = re.compile(_MODIFIERS)
_SEGMENTED = re.compile(
    "[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in SEGMENTED_BY_CHARACTER) + "]"
)
_HIRAGANA = re.compile("[\u3040-\u309f]")
MAX_WORD = 64


def _is_hiragana(ch: str) -> bool:
    return _HIRAGANA.match(ch) is not None


@cache
def _english_stopwords() -> frozenset[str]:
    return frozenset(fold(w) for w in stopwordsiso.stopwords("en"))


STOPWORD_LANGUAGE: dict[str, str] = {"nb": "no", "nn": "no", **MACROLANGUAGES}
"""Detected languages whose stopwords are another code's list (Norwegian's two written standards;
a language within a macrolanguage, such as Moroccan Arabic, shares its function words)."""


@cache
def stopwords(lang: str | None) -> frozenset[str]:
    """Folded stopwords of ``lang`` and of English: English's own set (the same object, not a copy
    per language) for a language ``stopwordsiso`` has no list for."""
    english = _english_stopwords()
    code = STOPWORD_LANGUAGE.get(lang, lang) if lang else lang
    if not code or code == "und" or not stopwordsiso.has_lang(code):
        return english
    return english | frozenset(fold(w) for w in stopwordsiso.stopwords(code))


def _is_tag_body(folded: str) -> bool:
    """Whether a folded hashtag body has a letter, digit or ``_`` (not only combining marks or
    joiners, which fold to nothing or stay invisible: ``#`` + U+0301 would be the term ``#``)."""
    return any(ch.isalnum() or ch == "_" for ch in folded)


def hashtag_terms(post: Post) -> list[str]:
    tags = [*post.hashtags, *written_hashtags(post.text, markdown=post.platform == "reddit")]
    return [term for term in map(_tag_term, tags) if term is not None]


@lru_cache(maxsize=8192)
def _tag_term(tag: str) -> str | None:
    """The term of one hashtag (``#`` and its folded body; None for no term), remembered for the
    last few thousand tags: the same tags turn up in post after post."""
    body = tag.lstrip("#")
    if len(body) > MAX_WORD:
        return None
    folded = fold(body)
    return "#" + folded if _is_tag_body(folded) else None


def domain_terms(post: Post) -> list[str]:
    out = []
    for d in post.domains:
        d = d.strip().lower().rstrip(".")
        out.append(d[4:] if d.startswith("www.") else d)
    return [d for d in out if d]


def keyphrases(text: str, lang: str | None, *, max_tokens: int = 1000) -> list[str]:
    """Non-stopword words and adjacent pairs of them; character pairs in unsegmented scripts."""
    stop = stopwords(lang)
    tokens = content_tokens(text)[:max_tokens]
    out: list[str] = []
    emit = out.append
    prev: str | None = None  # previous kept word (None after a stopword or a script change)
    # (most posts) no token of an unsegmented script: the loop below without its branches (a
    # character of those scripts in a token that does not start with one only costs the fast path)
    if text.isascii() or not _SEGMENTED.search(" ".join(tokens)):
        for tok in tokens:
            if tok in stop or not 2 <= len(tok) <= MAX_WORD or tok.isdigit():
                prev = None
                continue
            emit(tok)
            if prev is not None:
                emit(prev + " " + tok)
            prev = tok
        return out
    gaps: list[bool] | None = None  # computed only for a text with characters of such scripts
    prev_seg: str | None = None  # previous character of an unsegmented script
    run = 0
    for i, tok in enumerate(tokens):
        if tok[0] >= "\u0e00" and _SEGMENTED.match(tok):  # every unsegmented script starts at U+0E00
            if gaps is None:
                gaps = content_gaps(text)
            if run and gaps[i]:  # a space or punctuation ends the run: no pair across it (서울 대학)
                if run == 1 and prev_seg is not None and prev_seg not in stop:
                    emit(prev_seg)
                prev_seg, run = None, 0
            run += 1
            if prev_seg is not None:
                pair = prev_seg + tok
                if pair not in stop and not (_is_hiragana(prev_seg[0]) and _is_hiragana(tok[0])):
                    emit(pair)
            prev_seg, prev = tok, None
            continue
        if run:
            if run == 1 and prev_seg is not None and prev_seg not in stop:
                emit(prev_seg)  # a lone character between words is a word of its own
            prev_seg, run = None, 0
        if tok in stop or not 2 <= len(tok) <= MAX_WORD or tok.isdigit():
            prev = None
            continue
        emit(tok)
        if prev is not None:
            emit(prev + " " + tok)
        prev = tok
    if run == 1 and prev_seg is not None and prev_seg not in stop:
        emit(prev_seg)
    return out


def emoji_terms(text: str) -> list[str]:
    """The post's emoji: a flag as one term (``🇺🇦``, not ``🇺`` and ``🇦``), a joined sequence as one
    (``👩‍💻``), skin tones dropped (``👍🏽`` → ``👍``)."""
    if text.isascii():
        return []
    return [_STRIP.sub("", e) if len(e) > 1 else e for e in _EMOJI.findall(text)]


def terms_of(post: Post, *, max_terms: int = 64) -> list[str]:
    found = [
        *hashtag_terms(post),
        *domain_terms(post),
        *keyphrases(post.text, post.lang),
        *emoji_terms(post.text),
    ]
    return list(dict.fromkeys(found))[:max_terms]


class Terms:
    """``murmur.terms@1``: assigns ``terms`` (see module doc). Stateless."""

    name = "murmur.terms@1"
    requires: frozenset[str] = frozenset({"lang"})
    assigns: frozenset[str] = frozenset({"terms"})

    def __init__(self, max_terms: int = 64) -> None:
        self.max_terms = max_terms

    def warm_up(self) -> None:
        """Fold every language's stopwords now (~60 ms, ~3 MB), not a language at a time inside the
        batches where it first turns up (``Pipeline.warm_up``)."""
        for lang in sorted(stopwordsiso.langs()):
            stopwords(lang)

    def process(self, posts: Sequence[Post]) -> None:
        for post in posts:
            post.terms = terms_of(post, max_terms=self.max_terms)
