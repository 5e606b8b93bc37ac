"""Text helpers shared by the enrichment components.

Words come from the project's one tokenizer, ``murmur.text.tokenize`` (case- and
accent-folded; one token per character in scripts written without spaces), so terms and
near-duplicate signatures see the same words a query does.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from murmur.text import HASH_SIGNS, hashtag_re, may_have_link, may_have_markup, token_gaps, tokenize


@cache
def markup_res() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Links, @mentions and #hashtags (markup around the words of a post), and the same without
    links: for a text without ``://`` or ``w.`` it finds the same, faster."""
    tags = r"(?<!\w)@[\w.]+|" + hashtag_re().pattern
    return re.compile(r"(?:https?://|www\.)\S+|" + tags, re.IGNORECASE), _tags_re()


@cache
def _tags_re() -> re.Pattern[str]:
    """@mentions and #hashtags: ``(?<!\\w)@[\\w.]+`` or ``hashtag_re``, the same matches, written to
    start with one character class (``[@#＃]``, the "not after a word character" test moved behind
    it): Python's ``re`` then skips to those characters in C instead of trying both alternatives,
    each with its look-behind, at every position (7.3 → 2.4 µs a bench text with an ``@`` or ``#``)."""
    head = rf"(?<!\w)[{HASH_SIGNS}]"
    pattern = hashtag_re().pattern
    if not pattern.startswith(head):  # the shape this was written for
        msg = f"hashtag_re no longer starts with {head!r}: {pattern[:40]!r}"
        raise AssertionError(msg)
    signs = "@" + HASH_SIGNS
    return re.compile(rf"[{signs}](?<!\w[{signs}])(?:(?<=@)[\w.]+|(?<=[{HASH_SIGNS}]){pattern[len(head) :]})")


def strip_markup(text: str) -> str:
    """``text`` with its links, @mentions and hashtags replaced by spaces."""
    if may_have_markup(text):
        social, tags = markup_res()
        text = (social if may_have_link(text) else tags).sub(" ", text)
    return text


@lru_cache(maxsize=8192)
def content_tokens(text: str) -> tuple[str, ...]:
    """The folded words of ``text`` without links, @mentions and hashtags.

    Cached (a few thousand recent texts): the terms and near-duplicate components of one pipeline
    ask for the same post's words one after the other."""
    return tuple(tokenize(strip_markup(text)))


def content_gaps(text: str) -> list[bool]:
    """``murmur.text.token_gaps`` for ``content_tokens(text)``: whether each token is apart from
    the one before it."""
    return token_gaps(strip_markup(text))
