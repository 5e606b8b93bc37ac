"""Real posts from ``../shared/data`` for the neural tier's training script, tests and benchmarks.

* ``xlmt(split)``: the XLM-T sentiment sets (8 languages; labels 0 negative, 1 neutral, 2 positive),
  read as ``murmur eval`` reads them (``murmur.enrich.evaluate``: stripped, shuffled, escapes decoded).
* ``reddit_texts(n)``: title + body of real Reddit things (short comments to long self-posts).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from murmur.testing import shared_data


def xlmt_dir() -> Path:
    return shared_data("sentiment", "xlmt")


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def xlmt(split: str, *, seed: int = 0) -> dict[str, tuple[list[str], list[int]]]:
    """``{language: (texts, labels)}`` for one split, shuffled with ``seed``; literal ``\\uXXXX``
    escapes (XLM-T English keeps some) decoded, as ``murmur eval`` feeds them to the models."""
    from murmur.enrich.evaluate import load_xlmt

    def unescape(text: str) -> str:
        return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "\\u" in text else text

    return {
        d.language: ([unescape(t) for t in d.texts], d.labels)
        for d in load_xlmt(xlmt_dir(), split, seed=seed)
    }


def reddit_texts(n: int) -> list[str]:
    """The first ``n`` non-empty Reddit texts (title, then body) in the recorded payloads."""
    path = shared_data("payloads", "reddit", "things.jsonl")
    out: list[str] = []
    if n <= 0:
        return out
    with path.open(encoding="utf-8") as f:
        for line in f:
            data = json.loads(line).get("data", {})
            text = " ".join(
                str(part) for part in (data.get("title"), data.get("selftext") or data.get("body")) if part
            ).strip()
            if text:
                out.append(text)
                if len(out) >= n:
                    break
    return out


def mixed_posts(n_tweets: int, n_reddit: int) -> list[str]:
    """XLM-T val tweets spread over the 8 languages, then Reddit texts."""
    per_lang = xlmt("val")
    tweets: list[str] = []
    langs = sorted(per_lang)
    i = 0
    while len(tweets) < n_tweets and i < max(len(t) for t, _ in per_lang.values()):
        for lang in langs:
            texts = per_lang[lang][0]
            if i < len(texts) and len(tweets) < n_tweets:
                tweets.append(texts[i])
        i += 1
    return tweets + reddit_texts(n_reddit)
