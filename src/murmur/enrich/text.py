"""Text helpers shared by the enrichment components.

Words come from the project's one tokenizer, ``murmur.text.tokenize`` (case- and
accent-folded; one token per character in scripts written without spaces), so terms and
near-duplicate signatures see the same words a query does.
"""

from __future__ import annotations

import re
from functools import lru_cache

from murmur.text import may_have_link, may_have_markup, tokenize

_TAGS_RX = r"(?<!\w)@[\w.]+|(?<!\w)#\w+"
SOCIAL_MARKUP = re.compile(r"(?:https?://|www\.)\S+|" + _TAGS_RX, re.IGNORECASE)
"""Links, @mentions and #hashtags: markup around the words of a post."""
_TAGS = re.compile(_TAGS_RX)
"""``SOCIAL_MARKUP`` for a text without ``://`` or ``w.``: the same matches, faster."""


@lru_cache(maxsize=8192)
def content_tokens(text: str) -> tuple[str, ...]:
    """The folded words of ``text`` without links, @mentions and hashtags.

    Cached (a few thousand recent texts): the terms and near-duplicate components of one pipeline
    ask for the same post's words one after the other."""
    if may_have_markup(text):
        text = (SOCIAL_MARKUP if may_have_link(text) else _TAGS).sub(" ", text)
    return tuple(tokenize(text))
