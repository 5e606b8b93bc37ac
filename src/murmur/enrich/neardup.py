"""Near-duplicates: signatures (``murmur.neardup.simhash@2``) and cluster ids
(``murmur.neardup.cluster@3``). ``simhash@1`` (no 4-gram count), ``cluster@2`` (one threshold for
every length) and ``cluster@1`` (the former SimHash-only clustering) stay registered.

A copy-paste campaign posts the same text with small edits: another link, another @mention, an
emoji, a changed word, a typo, an appended line. Such posts should count as one story, so each
post gets

* ``simhash``: a 64-bit SimHash of its normalized text: links, @mentions, hashtags, a leading
  ``RT``, emoji and punctuation dropped, words case- and accent-folded (the shared tokenizer) and
  joined by single spaces; the features are its character 4-grams, hashed in one vectorized
  pass for the whole batch (``murmur.enrich.hashing``) and mixed with SplitMix64 so every bit is
  usable. Stored, as before.
* ``minhash``: 64 MinHash minima of the same 4-gram hashes (``murmur.enrich.minhash``), computed in
  the same pass (~6 µs a post). Batch-only: it travels from the worker processes to the ordered
  stage inside the ``PostBatch`` and is not stored.
* ``dup_cluster``: the cluster of the oldest indexed post whose MinHash signature shares one of 10
  LSH bands (6 minima each) with this one and whose estimated Jaccard similarity is ≥ 0.75, or a
  new cluster named after this post's SimHash (``sh:<16 hex>``, the same names ``cluster@1`` gave).
  ``cluster@3`` also matches posts of 45-90 4-grams among themselves at ≥ 0.68 (candidates from the
  same bands): there one replaced word takes a copy below 0.75. For that, ``simhash@2`` appends
  each text's 4-gram count to ``minhash`` (``minhash.COUNTED_BYTES``).

The index (``minhash.MinHashIndex``) is in memory and bounded (``capacity`` signatures, ~101 bytes
each with ``cluster@3``'s length flag, plus the chain heads: ~122 MB at 1,000,000, the firehose
tier's; the neural tier's holds 500,000; oldest evicted first). Posts are indexed in
the order they arrive, so the result is deterministic, and a batch gives the same result as the
same posts one by one: a batch first finds, for all its posts at once (numpy), those that share no
band with an indexed or earlier post, and indexes them in vectorized runs; only the rest (~3 % of
real posts) are looked up one by one. Texts with fewer than ``min_features`` 4-grams (emoji only,
a link only) get none of the fields.

Measured (``bench/neardup.py``, docs/enrichment.md "Near-duplicates"): 61 % of word-edited copies
(one or two words replaced, a sentence appended, a typo) join their original's cluster with
``cluster@3`` (``cluster@2``: 55 %; SimHash at Hamming ≤ 3: 6 %; datasketch's MinHashLSH at Jaccard
≥ 0.7: 59 %), 1.1 % of distinct real posts share a cluster (1.0 %), none of them clearly different.
``SimHashIndex`` (Hamming ≤ 3) stays for
``cluster@1``.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from murmur.batch import PostBatch
from murmur.enrich import hashing, minhash
from murmur.enrich.text import content_tokens
from murmur.types import Post

SHINGLE = 4
BANDS = 4  # of 16 bits each (``SimHashIndex._band_values``)
_BATCH_PAIRS = 8  # ``SimHashIndex._unmatched`` compares a signature with up to 7 earlier ones per band


def normalized(text: str) -> str:
    """The text as SimHash sees it (see module doc), padded with a space at each end."""
    tokens = content_tokens(text)
    if tokens[:1] == ("rt",):
        tokens = tokens[1:]
    return " " + " ".join(tokens) + " "


_BYTE_BITS = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.float32)
"""Row v: the 8 bits of the byte value v, least significant first."""


@dataclass(frozen=True, slots=True)
class Features:
    """The character 4-grams of a batch of texts, hashed once for both signatures."""

    n_docs: int
    doc: npt.NDArray[np.int64]
    """The text of each 4-gram (in order: each text's run is contiguous)."""
    hashes: npt.NDArray[np.uint64]
    """Each 4-gram's hash, mixed with SplitMix64 so that every bit is usable."""
    counts: npt.NDArray[np.int64]
    """4-grams per text."""


def features(texts: Sequence[str]) -> Features:
    """The 4-gram hashes of the normalized ``texts``, in one vectorized pass (``hashing``)."""
    batch = hashing.layout([normalized(t) for t in texts])
    ((doc, h),) = hashing.char_ngrams(batch, [SHINGLE])
    return Features(len(texts), doc, hashing.splitmix64(h), np.bincount(doc, minlength=len(texts)))


def simhash_array(f: Features) -> npt.NDArray[np.uint64]:
    """The 64-bit SimHash of each text of ``f`` (0 for a text without features)."""
    n_docs, doc = f.n_docs, f.doc
    # Per text, how many features have each bit set: count the values of each byte of the hashes
    # per text (one bincount per byte), then turn byte-value counts into bit counts with a small
    # matrix product, instead of 64 passes over all features.
    as_bytes = f.hashes.view(np.uint8).reshape(-1, 8)  # little-endian: byte k holds bits 8k .. 8k+7
    ones = np.empty((n_docs, 64), dtype=np.float32)
    base = doc * 256
    for k in range(8):
        table = np.bincount(base + as_bytes[:, k], minlength=n_docs * 256).reshape(n_docs, 256)
        ones[:, 8 * k : 8 * k + 8] = table.astype(np.float32) @ _BYTE_BITS
    set_bits = 2 * ones > f.counts[:, None]
    # bit k of the SimHash is column k: 8 packed bytes a text, least significant first
    packed = np.packbits(set_bits, axis=1, bitorder="little")
    out: npt.NDArray[np.uint64] = packed.view("<u8").reshape(n_docs).astype(np.uint64)
    return out


def simhashes(texts: Sequence[str], *, min_features: int = 3) -> list[int | None]:
    """The 64-bit SimHash of each text (``None`` for texts with too few features)."""
    if not texts:
        return []
    f = features(texts)
    sig = simhash_array(f)
    counts = f.counts.tolist()
    return [int(s) if c >= min_features else None for s, c in zip(sig.tolist(), counts, strict=True)]


def signatures(
    texts: Sequence[str], *, min_features: int = 3, counted: bool = False
) -> list[tuple[int, bytes] | None]:
    """Each text's SimHash and MinHash signature (``minhash.SIGNATURE_BYTES`` bytes; ``counted``:
    followed by the text's 4-gram count, ``minhash.COUNTED_BYTES``), from one pass over its
    4-grams; ``None`` for texts with too few features."""
    if not texts:
        return []
    f = features(texts)
    sim = simhash_array(f).tolist()
    mins = minhash.minhashes(f.n_docs, f.doc, f.hashes).astype("<u4", copy=False)
    if counted:
        mins = np.concatenate([mins, f.counts.astype("<u4")[:, None]], axis=1)
    # one bytes object cut in slices: cheaper than a numpy row and ``tobytes`` a post
    width = mins.shape[1] * 4
    raw = mins.tobytes()
    return [
        (sim[i], raw[i * width : i * width + width]) if c >= min_features else None
        for i, c in enumerate(f.counts.tolist())
    ]


def cluster_name(cluster: int) -> str:
    """A cluster's id: ``sh:`` and its first signature in 16 hex digits."""
    return f"sh:{cluster:016x}"


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class SimHashIndex:
    """Bounded in-memory index of the last ``capacity`` signatures, searchable within a Hamming
    distance, ~40 bytes a signature (1,000,000 by default: ~40 MB).

    A ring buffer (``array`` of 64-bit signatures, cluster ids and arrival numbers) holds the
    signatures; for each 16-bit band a table of 65,536 chain heads and a ``next`` link per slot
    chain the signatures that share that band value, newest first. Overwriting the oldest slot
    evicts it; a walk down a chain stops at the first slot that is not older than the one before it
    (it was overwritten, so everything further down was evicted too).
    """

    def __init__(self, capacity: int = 1_000_000, max_distance: int = 3, max_walk: int = 64) -> None:
        if max_distance >= BANDS:
            msg = f"max_distance must be below the number of bands ({BANDS}), got {max_distance}"
            raise ValueError(msg)
        if capacity < 1:
            msg = f"capacity must be at least 1, got {capacity}"
            raise ValueError(msg)
        self.capacity = capacity
        self.max_distance = max_distance
        self.max_walk = max_walk
        self._clear()

    def _clear(self) -> None:
        n = self.capacity
        self._count = 0  # signatures added so far; the next one gets this arrival number
        self._sig = array("Q", bytes(8 * n))
        self._cluster = array("Q", bytes(8 * n))
        self._seq = array("q", bytes(8 * n))
        # the bands' chains side by side: band b's link of slot s is ``_next[b * n + s]``, its head
        # for band value v is ``_head[b * 65536 + v]``
        self._next = array("i", [-1]) * (BANDS * n)
        self._head = array("i", [-1]) * (BANDS * 65536)

    def __len__(self) -> int:
        return min(self._count, self.capacity)

    @staticmethod
    def _band_values(sig: int) -> tuple[int, int, int, int]:
        return (sig & 0xFFFF, (sig >> 16) & 0xFFFF, (sig >> 32) & 0xFFFF, sig >> 48)

    def _find(self, sig: int) -> tuple[int | None, int]:
        """(cluster of the oldest match within ``max_distance``, arrival number of an exact match
        or -1). Each band's chain is walked for at most ``max_walk`` signatures, so a flood of
        near-identical posts cannot make a lookup slow."""
        best_seq = self._count
        best: int | None = None
        exact = -1
        sigs, seqs, clusters, nxt = self._sig, self._seq, self._cluster, self._next
        for band, value in enumerate(self._band_values(sig)):
            base = band * self.capacity
            slot = self._head[band * 65536 + value]
            prev = self._count
            for _ in range(self.max_walk):
                if slot < 0:
                    break
                seq = seqs[slot]
                if seq >= prev:  # overwritten: the rest of this chain was evicted
                    break
                other = sigs[slot]
                if (sig ^ other).bit_count() <= self.max_distance:
                    if seq < best_seq:
                        best_seq, best = seq, clusters[slot]
                    if other == sig:
                        exact = max(exact, seq)
                prev = seq
                slot = nxt[base + slot]
        return best, exact

    def _unmatched(self, sig: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        """Which of the signatures ``sig``, to be assigned in this order, surely find no match, so
        need no lookup. A lookup in order walks each of its four band chains: first the signatures
        of the batch indexed before it that share that band value, then the chain as it stands now,
        for ``max_walk`` entries in all, stopping at an entry overwritten in between. So a signature
        finds nothing when no earlier one of the batch in its chains is within ``max_distance`` and
        neither is any of the first ``max_walk`` entries of its chains now. All chains are walked
        together, one step of each at a time (numpy)."""
        m, d = len(sig), self.max_distance
        hit = np.zeros(m, dtype=bool)
        values = [((sig >> np.uint64(16 * b)) & np.uint64(0xFFFF)).astype(np.intp) for b in range(BANDS)]
        for value in values:  # earlier ones of the batch with the same band value
            order = np.argsort(value, kind="stable")
            ordered = value[order]
            for k in range(1, _BATCH_PAIRS + 1):
                same = np.flatnonzero(ordered[k:] == ordered[:-k])
                if not len(same):
                    break
                earlier, later = order[same], order[same + k]
                if k == _BATCH_PAIRS:  # many with one band value (a flood): look those up in order
                    hit[later] = True
                else:
                    hit[later[np.bitwise_count(sig[earlier] ^ sig[later]) <= d]] = True
        sigs = np.frombuffer(self._sig, dtype=np.uint64)
        seqs = np.frombuffer(self._seq, dtype=np.int64)
        nxt = np.frombuffer(self._next, dtype=np.int32)
        lane = np.tile(np.arange(m), BANDS)  # one walk per signature and band
        base = np.repeat(np.arange(BANDS) * self.capacity, m)
        slot = np.frombuffer(self._head, dtype=np.int32)[
            np.concatenate(values) + np.repeat(np.arange(BANDS) * 65536, m)
        ]
        go = ~hit[lane]
        lane, base, slot = lane[go], base[go], slot[go]
        prev = np.full(len(lane), self._count, dtype=np.int64)
        for _ in range(self.max_walk):
            go = slot >= 0
            lane, base, slot, prev = lane[go], base[go], slot[go], prev[go]
            seq = seqs[slot]
            go = seq < prev  # not overwritten (``_find``)
            lane, base, slot, seq = lane[go], base[go], slot[go], seq[go]
            if not len(lane):
                break
            near = np.bitwise_count(sig[lane] ^ sigs[slot]) <= d
            hit[lane[near]] = True
            go = ~near
            lane, base, prev = lane[go], base[go], seq[go]
            slot = nxt[base + slot[go]]
        out: npt.NDArray[np.bool_] = ~hit
        return out

    def lookup_cluster(self, sig: int) -> int | None:
        """The cluster (its first signature) of the oldest indexed signature within
        ``max_distance`` of ``sig``."""
        return self._find(sig)[0]

    def lookup(self, sig: int) -> str | None:
        cluster = self.lookup_cluster(sig)
        return None if cluster is None else cluster_name(cluster)

    def add(self, sig: int, cluster: int) -> None:
        slot = self._count % self.capacity
        self._sig[slot] = sig
        self._cluster[slot] = cluster
        self._seq[slot] = self._count
        head, nxt, n = self._head, self._next, self.capacity
        for band, value in enumerate(self._band_values(sig)):
            h = band * 65536 + value
            nxt[band * n + slot] = head[h]
            head[h] = slot
        self._count += 1

    def assign_many(self, sigs: Sequence[int]) -> list[str]:
        """``assign`` of each signature in order, with the same results, faster: the signatures
        that surely find no match (``_unmatched``: nearly all but copies) are just indexed. In a full
        index (1,000,000 signatures, chains of ~15 per band value) a lookup walks ~60 entries in
        Python, ~29 us; a batch of 2,000 real posts takes ~6 us a post."""
        if not sigs:
            return []
        alone = self._unmatched(np.array(sigs, dtype=np.uint64)).tolist()
        return [
            self._settle(sig, None, -1) if new else self.assign(sig)
            for sig, new in zip(sigs, alone, strict=True)
        ]

    def assign(self, sig: int) -> str:
        """The cluster of ``sig``: a near duplicate's, or a new one named after ``sig``. ``sig`` is
        then indexed, unless the same signature already is and is not yet half-way to eviction
        (so a copy-paste flood keeps one or two entries alive instead of filling the ring)."""
        return self._settle(sig, *self._find(sig))

    def _settle(self, sig: int, cluster: int | None, exact: int) -> str:
        """``assign``'s result from what its lookup found (``_find``), indexing ``sig`` as it says."""
        if cluster is None:
            cluster = sig
        if exact < 0 or exact < self._count - self.capacity // 2:
            self.add(sig, cluster)
        return cluster_name(cluster)


class SimHashSignature:
    """``murmur.neardup.simhash@1``: assigns ``simhash`` and the batch-only ``minhash`` (see module
    doc), from one pass over each text's 4-grams. Stateless, so it runs in the runtime's worker
    processes; the clustering that needs every post in order does not. (The stored ``simhash`` is
    what it was; ``minhash`` is not stored, hence no new version.)"""

    name = "murmur.neardup.simhash@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"simhash", "minhash"})

    chunk = 256
    """Posts per vectorized call: small enough for the n-gram arrays to stay in cache."""

    counted = False
    """Whether ``minhash`` ends with the text's 4-gram count (``CountedSignature``)."""

    def process(self, posts: Sequence[Post]) -> None:
        for i in range(0, len(posts), self.chunk):
            part = posts[i : i + self.chunk]
            sigs = signatures([p.text for p in part], counted=self.counted)
            for post, sig in zip(part, sigs, strict=True):
                post.simhash, post.minhash = sig if sig is not None else (None, None)


class CountedSignature(SimHashSignature):
    """``murmur.neardup.simhash@2``: as ``simhash@1``, with the text's 4-gram count after the 64
    minima in ``minhash`` (``minhash.COUNTED_BYTES``), which ``cluster@3`` needs to know a
    45-90 character post. ``simhash`` is the same."""

    name = "murmur.neardup.simhash@2"
    counted = True


class NearDupClusters:
    """``murmur.neardup.cluster@2``: assigns ``dup_cluster`` from ``minhash`` (LSH bands, estimated
    Jaccard; ``minhash.MinHashIndex``), naming a new cluster after its first post's ``simhash``."""

    name = "murmur.neardup.cluster@2"
    requires: frozenset[str] = frozenset({"simhash", "minhash"})
    assigns: frozenset[str] = frozenset({"dup_cluster"})
    stateful = True
    """The index must see every post, in order: the runtime runs it in its single ordered stage."""

    def __init__(
        self,
        capacity: int = 1_000_000,
        threshold: float = minhash.THRESHOLD,
        bands: int = minhash.BANDS,
        rows: int = minhash.ROWS,
    ) -> None:
        self.index = minhash.MinHashIndex(capacity, threshold, bands, rows)

    def process(self, posts: Sequence[Post]) -> None:
        self.process_batch(PostBatch(list(posts)))

    def process_batch(self, batch: PostBatch) -> None:
        """On the batch's ``minhash`` and ``simhash`` columns: no ``Post`` objects needed."""
        mins = batch.column("minhash")
        names = batch.column("simhash")
        have = [i for i, m in enumerate(mins) if m is not None]
        joined = b"".join(mins[i] for i in have)
        width = len(joined) // 4 // len(have) if have else minhash.PERMUTATIONS  # counted (simhash@2) or not
        words = np.frombuffer(joined, dtype="<u4").reshape(len(have), width)
        sigs = np.ascontiguousarray(words[:, : minhash.PERMUTATIONS])
        clusters = iter(self.index.assign_many(sigs, [names[i] for i in have]))
        batch.set_column("dup_cluster", [None if m is None else next(clusters) for m in mins])


class TieredNearDupClusters(NearDupClusters):
    """``murmur.neardup.cluster@3``: as ``cluster@2``, and posts of 45-90 4-grams also join a copy
    among them at estimated Jaccard ≥ 0.68 (``MinHashIndex(mid_threshold=...)``), so one replaced word
    or an appended sentence in a short post keeps it in its campaign. Reads ``simhash@2``'s counted
    signatures."""

    name = "murmur.neardup.cluster@3"

    def __init__(
        self,
        capacity: int = 1_000_000,
        threshold: float = minhash.THRESHOLD,
        bands: int = minhash.BANDS,
        rows: int = minhash.ROWS,
        mid_threshold: float = minhash.MID_THRESHOLD,
    ) -> None:
        self.index = minhash.MinHashIndex(capacity, threshold, bands, rows, mid_threshold=mid_threshold)

    def process_batch(self, batch: PostBatch) -> None:
        mins = batch.column("minhash")
        names = batch.column("simhash")
        have = [i for i, m in enumerate(mins) if m is not None]
        sigs, counts = minhash.split_counted(b"".join(mins[i] for i in have), len(have))
        clusters = iter(self.index.assign_many(sigs, [names[i] for i in have], counts))
        batch.set_column("dup_cluster", [None if m is None else next(clusters) for m in mins])


class SimHashClusters:
    """``murmur.neardup.cluster@1``: ``dup_cluster`` from ``simhash`` alone, Hamming ≤ 3 (``SimHashIndex``).
    Superseded by ``cluster@2`` (it misses word-edited copies); kept for pipelines that name it."""

    name = "murmur.neardup.cluster@1"
    requires: frozenset[str] = frozenset({"simhash"})
    assigns: frozenset[str] = frozenset({"dup_cluster"})
    stateful = True

    def __init__(self, capacity: int = 1_000_000, max_distance: int = 3) -> None:
        self.index = SimHashIndex(capacity, max_distance)

    def process(self, posts: Sequence[Post]) -> None:
        self.process_batch(PostBatch(list(posts)))

    def process_batch(self, batch: PostBatch) -> None:
        sigs = batch.column("simhash")
        clusters = iter(self.index.assign_many([s for s in sigs if s is not None]))
        batch.set_column("dup_cluster", [None if s is None else next(clusters) for s in sigs])


class NearDup:
    """Both steps in one object, for using near-duplicate detection outside a pipeline."""

    name = "murmur.neardup@2"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"simhash", "minhash", "dup_cluster"})
    stateful = True

    def __init__(
        self,
        capacity: int = 1_000_000,
        threshold: float = minhash.THRESHOLD,
        bands: int = minhash.BANDS,
        rows: int = minhash.ROWS,
    ) -> None:
        self.signature = SimHashSignature()
        self.clusters = NearDupClusters(capacity, threshold, bands, rows)

    @property
    def index(self) -> minhash.MinHashIndex:
        return self.clusters.index

    def process(self, posts: Sequence[Post]) -> None:
        self.signature.process(posts)
        self.clusters.process(posts)


class TieredNearDup(NearDup):
    """``simhash@2`` and ``cluster@3`` in one object, for use outside a pipeline."""

    name = "murmur.neardup@3"

    def __init__(
        self,
        capacity: int = 1_000_000,
        threshold: float = minhash.THRESHOLD,
        bands: int = minhash.BANDS,
        rows: int = minhash.ROWS,
        mid_threshold: float = minhash.MID_THRESHOLD,
    ) -> None:
        self.signature = CountedSignature()
        self.clusters = TieredNearDupClusters(capacity, threshold, bands, rows, mid_threshold)


class SimHashNearDup:
    """SimHash signatures and ``cluster@1`` in one object (what ``bench/neardup.py`` compares)."""

    name = "murmur.neardup@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"simhash", "minhash", "dup_cluster"})
    stateful = True

    def __init__(self, capacity: int = 1_000_000, max_distance: int = 3) -> None:
        self.signature = SimHashSignature()
        self.clusters = SimHashClusters(capacity, max_distance)

    @property
    def index(self) -> SimHashIndex:
        return self.clusters.index

    def process(self, posts: Sequence[Post]) -> None:
        self.signature.process(posts)
        self.clusters.process(posts)
