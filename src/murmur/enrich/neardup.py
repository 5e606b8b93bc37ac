"""``murmur.neardup.simhash@1``: 64-bit SimHash signatures and near-duplicate cluster ids.

A copy-paste campaign posts the same text with small edits: another link, another @mention, an
emoji, a changed word. Such posts should count as one story, so each post gets

* ``simhash``: a 64-bit SimHash of its normalized text: links, @mentions, hashtags, a leading
  ``RT``, emoji and punctuation dropped, words case- and accent-folded (the shared tokenizer) and joined by single spaces; the
  features are its character 4-grams, hashed in one vectorized pass for the whole batch
  (``murmur.enrich.hashing``) and mixed with SplitMix64 so every bit is usable;
* ``dup_cluster``: the cluster of the first post seen whose signature is within Hamming distance
  ``max_distance`` (3), or a new cluster named after this post's own signature (``sh:<16 hex>``).

The index is in memory and bounded (``capacity`` signatures, oldest evicted first). Lookups use the
pigeonhole principle: with 4 bands of 16 bits, two signatures within distance 3 agree exactly on at
least one band, so only posts sharing a band value are compared. Posts are indexed in the order
they arrive, so the result is deterministic, and a batch gives the same result as the same posts
one by one. Texts with fewer than ``min_features`` 4-grams (emoji only, a link only) get neither.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from murmur.enrich import hashing
from murmur.query.text import tokenize
from murmur.types import Post

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@[\w.]+")
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_RETWEET = re.compile(r"^\s*RT\b:?", re.IGNORECASE)

SHINGLE = 4
BANDS = 4
BAND_BITS = 64 // BANDS


def normalized(text: str) -> str:
    """The text as SimHash sees it (see module doc), padded with a space at each end."""
    text = _HASHTAG.sub(" ", _MENTION.sub(" ", _URL.sub(" ", text)))
    return " " + " ".join(tokenize(_RETWEET.sub(" ", text))) + " "


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: npt.NDArray[np.uint64] = x ^ (x >> np.uint64(31))
    return out


_BYTE_BITS = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.float32)
"""Row v: the 8 bits of the byte value v, least significant first."""


def simhashes(texts: Sequence[str], *, min_features: int = 3) -> list[int | None]:
    """The 64-bit SimHash of each text (``None`` for texts with too few features)."""
    if not texts:
        return []
    batch = hashing.layout([normalized(t) for t in texts])
    ((doc, h),) = hashing.char_ngrams(batch, [SHINGLE])
    h = _splitmix64(h)
    n_docs = len(texts)
    counts = np.bincount(doc, minlength=n_docs)
    # Per text, how many features have each bit set: count the values of each byte of the hashes
    # per text (one bincount per byte), then turn byte-value counts into bit counts with a small
    # matrix product, instead of 64 passes over all features.
    as_bytes = h.view(np.uint8).reshape(-1, 8)  # little-endian: byte k holds bits 8k .. 8k+7
    ones = np.empty((n_docs, 64), dtype=np.float32)
    base = doc * 256
    for k in range(8):
        table = np.bincount(base + as_bytes[:, k], minlength=n_docs * 256).reshape(n_docs, 256)
        ones[:, 8 * k : 8 * k + 8] = table.astype(np.float32) @ _BYTE_BITS
    set_bits = (2 * ones > counts[:, None]).astype(np.uint64)
    sig = (set_bits << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    return [int(s) if c >= min_features else None for s, c in zip(sig.tolist(), counts.tolist(), strict=True)]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class SimHashIndex:
    """Bounded in-memory index: signature → cluster id, searchable within a Hamming distance."""

    def __init__(self, capacity: int = 500_000, max_distance: int = 3) -> None:
        if max_distance >= BANDS:
            msg = f"max_distance must be below the number of bands ({BANDS}), got {max_distance}"
            raise ValueError(msg)
        self.capacity = capacity
        self.max_distance = max_distance
        self._clear()

    def _clear(self) -> None:
        self._seq = 0
        # signature → (arrival number, cluster); insertion order = age, for eviction
        self._entries: OrderedDict[int, tuple[int, str]] = OrderedDict()
        self._bands: list[dict[int, list[int]]] = [{} for _ in range(BANDS)]

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _band_values(sig: int) -> list[int]:
        mask = (1 << BAND_BITS) - 1
        return [(sig >> (i * BAND_BITS)) & mask for i in range(BANDS)]

    def lookup(self, sig: int) -> str | None:
        """The cluster of the oldest indexed signature within ``max_distance`` of ``sig``."""
        exact = self._entries.get(sig)
        if exact is not None:
            return exact[1]
        best: tuple[int, str] | None = None
        for i, value in enumerate(self._band_values(sig)):
            for other in self._bands[i].get(value, ()):
                if hamming(sig, other) <= self.max_distance:
                    entry = self._entries[other]
                    if best is None or entry < best:
                        best = entry
        return best[1] if best else None

    def add(self, sig: int, cluster: str) -> None:
        if sig in self._entries:
            return
        self._entries[sig] = (self._seq, cluster)
        self._seq += 1
        for i, value in enumerate(self._band_values(sig)):
            self._bands[i].setdefault(value, []).append(sig)
        while len(self._entries) > self.capacity:
            old, _ = self._entries.popitem(last=False)
            for i, value in enumerate(self._band_values(old)):
                lst = self._bands[i][value]
                lst.remove(old)
                if not lst:
                    del self._bands[i][value]

    def assign(self, sig: int) -> str:
        """The cluster of ``sig``: a near duplicate's, or a new one; ``sig`` is then indexed."""
        cluster = self.lookup(sig) or f"sh:{sig:016x}"
        self.add(sig, cluster)
        return cluster

    def __getstate__(self) -> dict[str, Any]:
        items = [(sig, cluster) for sig, (_, cluster) in self._entries.items()]
        return {"capacity": self.capacity, "max_distance": self.max_distance, "items": items}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.capacity = int(state["capacity"])
        self.max_distance = int(state["max_distance"])
        self._clear()
        for sig, cluster in state["items"]:
            self.add(int(sig), str(cluster))


class SimHashNearDup:
    """``murmur.neardup.simhash@1``: assigns ``simhash`` and ``dup_cluster`` (see module doc)."""

    name = "murmur.neardup.simhash@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"simhash", "dup_cluster"})

    def __init__(self, capacity: int = 500_000, max_distance: int = 3) -> None:
        self.index = SimHashIndex(capacity, max_distance)

    def process(self, posts: Sequence[Post]) -> None:
        sigs = simhashes([p.text for p in posts])
        for post, sig in zip(posts, sigs, strict=True):
            post.simhash = sig
            post.dup_cluster = None if sig is None else self.index.assign(sig)
