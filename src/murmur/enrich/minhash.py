"""MinHash signatures and their LSH indexes: the near-duplicate clusters of ``murmur.neardup.cluster@2``
and ``cluster@3`` (``mid_threshold``: texts of 45-90 4-grams match among themselves at 0.68).

A copy-paste campaign changes a word, fixes a typo or appends a line. That changes a few of a
text's character 4-grams, so the Jaccard similarity of the two texts' 4-gram sets stays high (~0.8
for one word in a tweet), and MinHash estimates it:

* ``minhashes``: for each of ``PERMUTATIONS`` (64) hash functions, the smallest hash over the text's
  4-grams (32 bits each). Two texts agree on one such minimum with probability their Jaccard
  similarity. The 4-gram hashes are the ones the SimHash already computed for the batch
  (``neardup.features``); each function is a multiply-shift of them (``x · aₖ``, high 32 bits, ``aₖ``
  odd), for all of the batch's 4-grams and 4 functions at a time in one numpy product, reduced per text
  with ``np.minimum.reduceat``: ~3.5 µs a post.
* ``MinHashIndex``: locality-sensitive hashing over ``BANDS`` bands of ``ROWS`` minima each: two
  texts that agree on a whole band are candidates (probability ``1 − (1 − Jᴿ)ᴮ``); a candidate
  counts when its estimated Jaccard (the share of equal minima, compared on their low 4 bits with
  the chance agreements allowed for: ``minima_needed``) reaches ``threshold``. The cluster
  is the oldest such post's, else a new one. Bands, rows and threshold were chosen with
  ``bench/neardup.py`` (docs/enrichment.md, "Near-duplicates").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from murmur.enrich.hashing import splitmix64

PERMUTATIONS = 64
BANDS = 10
ROWS = 6
THRESHOLD = 0.75
SIGNATURE_BYTES = 4 * PERMUTATIONS
"""A signature as it travels in a batch (``Post.minhash``): 64 little-endian uint32."""
BITS = 4
"""Low bits of each minimum the index keeps (b-bit MinHash): two minima a byte."""
CHANCE = 1 / (1 << BITS)
"""How often two different minima agree on their low ``BITS`` bits by chance."""

U32 = npt.NDArray[np.uint32]
SHORT_RUN = 24
"""Runs of posts without candidates shorter than this are indexed one by one (``_add``), longer ones
at once (``_add_run``): the break-even, measured."""


MID_FEATURES = (45, 90)
"""4-gram counts (from, below) of the texts that ``cluster@3`` matches among themselves at
``MID_THRESHOLD``: posts of ~45-90 characters, where one replaced word or an appended sentence takes
a copy below 0.75 (docs/enrichment.md, "Near-duplicates"). Shorter texts keep 0.75: there, distinct
posts share templates ("home los angeles california" / "thankful los angeles california")."""
MID_THRESHOLD = 0.68
COUNTED_BYTES = SIGNATURE_BYTES + 4
"""A counted signature (``murmur.neardup.simhash@2``): the minima, then the text's 4-gram count,
all little-endian uint32."""


def split_counted(raw: bytes, n: int) -> tuple[U32, npt.NDArray[np.int64]]:
    """``n`` counted signatures laid end to end: their ``(n, PERMUTATIONS)`` minima and 4-gram counts."""
    if len(raw) != n * COUNTED_BYTES:
        msg = (
            f"counted MinHash signatures are {COUNTED_BYTES} bytes each (murmur.neardup.simhash@2), "
            f"got {len(raw)} bytes for {n}: put murmur.neardup.simhash@2 before murmur.neardup.cluster@3"
        )
        raise ValueError(msg)
    words = np.frombuffer(raw, dtype="<u4").reshape(n, PERMUTATIONS + 1)
    return np.ascontiguousarray(words[:, :PERMUTATIONS]), words[:, PERMUTATIONS].astype(np.int64)


_MULTIPLIERS = (splitmix64(np.arange(PERMUTATIONS, dtype=np.uint64) + np.uint64(0x6D68)) | np.uint64(1))[
    :, None
]
"""The odd multipliers ``aₖ`` of the hash functions, one per row (fixed: signatures are comparable
across processes, machines and releases)."""

_BAND_MIX = splitmix64(np.arange(PERMUTATIONS, dtype=np.uint64) + np.uint64(0xBA4D)) | np.uint64(1)


_BLOCK = 4
"""Hash functions per pass of ``minhashes`` (a divisor of ``PERMUTATIONS``; 2-4 measured best)."""


def minhashes(n_docs: int, doc: npt.NDArray[np.int64], hashes: npt.NDArray[np.uint64]) -> U32:
    """The ``(n_docs, PERMUTATIONS)`` minima of each text's feature ``hashes`` (``doc``: the text of
    each feature, in order, as ``hashing.char_ngrams`` gives them; well-mixed 64-bit values). A text
    without features gets all ones."""
    counts = np.bincount(doc, minlength=n_docs)
    out = np.full((n_docs, PERMUTATIONS), 0xFFFFFFFF, dtype=np.uint32)
    some = counts > 0
    if len(hashes):
        starts = (np.cumsum(counts) - counts)[some]
        mins = np.empty((PERMUTATIONS, len(starts)), dtype=np.uint64)
        # _BLOCK functions at a time: their products stay in cache (all 64 at once: 64 × 8 bytes a
        # 4-gram, ~13 MB a batch of 256 posts). The smallest 64-bit product (a · x) mod 2⁶⁴ has the
        # smallest high 32 bits, so the minima are taken over the whole products (contiguous) and
        # their high halves kept after (~10 → ~3.5 µs a post).
        product = np.empty((_BLOCK, len(hashes)), dtype=np.uint64)
        for k in range(0, PERMUTATIONS, _BLOCK):
            np.multiply(_MULTIPLIERS[k : k + _BLOCK], hashes, out=product)
            np.minimum.reduceat(product, starts, axis=1, out=mins[k : k + _BLOCK])
        out[some] = (mins >> np.uint64(32)).astype(np.uint32).T
    return out


def band_keys(sigs: U32, bands: int = BANDS, rows: int = ROWS) -> U32:
    """``(n, bands)``: a 32-bit key per band of ``rows`` minima of each signature (equal bands give
    equal keys)."""
    part = sigs[:, : bands * rows].astype(np.uint64) * _BAND_MIX[: bands * rows]
    mixed = splitmix64(part.reshape(len(sigs), bands, rows).sum(axis=2, dtype=np.uint64))
    out: U32 = (mixed >> np.uint64(32)).astype(np.uint32)
    return out


def pack_low_bits(sigs: U32) -> npt.NDArray[np.uint8]:
    """``(n, PERMUTATIONS / 2)``: the low ``BITS`` (4) bits of each minimum, two a byte (minimum
    ``2j`` in the low half of byte ``j``); the low bits, since a minimum's high bits are mostly
    zeros."""
    low = (sigs & np.uint32(0xF)).astype(np.uint8)
    out: npt.NDArray[np.uint8] = low[:, 0::2] | (low[:, 1::2] << np.uint8(4))
    return out


_EQUAL_HALVES = np.array([((x & 0xF) == 0) + ((x >> 4) == 0) for x in range(256)], dtype=np.uint8)
"""For a byte of ``packed ^ packed``: how many of its two 4-bit minima agree (0, 1 or 2)."""


_LOW_BITS = int("1" * (PERMUTATIONS * BITS // 4), 16)
"""The lowest bit of every 4-bit minimum of a packed signature read as one little-endian integer."""


def equal_packed(a: int, b: int) -> int:
    """``equal_minima`` of two packed signatures read as little-endian integers (``BITS`` = 4:
    minimum ``k`` is bits ``4k`` to ``4k + 3``): ~1 µs, against ~10 for numpy on one pair."""
    differ = a ^ b
    differ |= differ >> 1
    differ |= differ >> 2  # the low bit of each 4-bit minimum: whether any of its bits differ
    return PERMUTATIONS - (differ & _LOW_BITS).bit_count()


def equal_minima(stored: npt.NDArray[np.uint8], packed: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """How many of the ``PERMUTATIONS`` packed minima of each row of ``stored`` equal ``packed``'s."""
    out: npt.NDArray[np.int64] = _EQUAL_HALVES[stored ^ packed].sum(axis=-1, dtype=np.int64)
    return out


def minima_needed(threshold: float) -> int:
    """Equal 4-bit minima (of ``PERMUTATIONS``) that a Jaccard similarity of ``threshold`` gives on
    average: ``J + (1 − J) / 16`` of them agree (the rest by chance), so ``ceil(64 · (t + (1 − t) /
    16))``: 49 for 0.75."""
    return int(np.ceil(PERMUTATIONS * (threshold + (1 - threshold) * CHANCE) - 1e-9))


def cluster_name(cluster: int) -> str:
    """A cluster's id: ``sh:`` and its first post's SimHash in 16 hex digits (as ``cluster@1`` named them)."""
    return f"sh:{cluster:016x}"


class MinHashIndex:
    """Bounded in-memory LSH index of the last ``capacity`` MinHash signatures (1,000,000 by
    default; the neural tier's: 500,000): 101 bytes a signature with 10 bands, plus 4 bytes a chain
    head (2¹⁹ a band for 1,000,000: 2 MB); a full index of 1,000,000 takes 122 MB, of 500,000 61 MB
    (8 bits a minimum until 2026-12-03: 132 bytes a signature, 153 MB; ``SimHashIndex``: ~41 MB).

    Per signature: its minima's low 4 bits (b-bit MinHash: 32 bytes; the low bits, since a
    minimum's high bits are mostly zeros), a 16-bit tag of its key and a link per band (``bands`` ×
    6 bytes), its cluster (8 bytes), whether its text is mid-range (1 byte: ``mid_threshold``).
    Two different minima agree on 4 bits once in 16, so a
    Jaccard of ``t`` gives ``t + (1 − t) / 16`` equal minima on average, and a match needs
    ``minima_needed(threshold)`` of them (49 of 64 for 0.75; ``bench/neardup.py``: word-edit recall
    54.6 % against 55.0 % with 8 bits, and the same 1.0 % of distinct posts sharing a cluster, none
    clearly different). The bands' keys are made from the full minima, so the candidates are the
    same. Its arrival number is not stored: slots are written in turn, so it follows from the slot
    (``_seq``). Per band, a table of chain heads chains the signatures whose band key falls in that
    bucket, newest first, as in
    ``neardup.SimHashIndex``: slots form a ring, the oldest is overwritten, and a walk stops at an
    entry newer than the one before it (overwritten). Heads and links hold slot + 1 (0: none), so
    the tables start as zeros, which the OS maps lazily.

    Cost in the ordered stage (batches of 2,000 real posts, full index of random signatures): ~11-12
    µs a post (15-17 until the lookups compared their candidates as integers, ``equal_packed``); the
    ~3-5 % of real posts that have a candidate are looked up in Python (~35 µs each, 52-66 before:
    a stream of nothing but copies costs that much a post).
    """

    def __init__(
        self,
        capacity: int = 1_000_000,
        threshold: float = THRESHOLD,
        bands: int = BANDS,
        rows: int = ROWS,
        max_walk: int = 64,
        head_bits: int | None = None,
        mid_threshold: float | None = None,
        mid_features: tuple[int, int] = MID_FEATURES,
    ) -> None:
        if capacity < 1:
            msg = f"capacity must be at least 1, got {capacity}"
            raise ValueError(msg)
        if not 0.0 < threshold <= 1.0:
            msg = f"threshold is an estimated Jaccard similarity in (0, 1], got {threshold}"
            raise ValueError(msg)
        if bands < 1 or rows < 1 or bands * rows > PERMUTATIONS:
            msg = f"bands × rows must fit in the {PERMUTATIONS} minima, got {bands} × {rows}"
            raise ValueError(msg)
        self.capacity = capacity
        self.threshold = threshold
        self.bands = bands
        self.rows = rows
        self.looked_up = 0
        """Signatures that had candidates, so were looked up one by one (the rest were just indexed)."""
        self.max_walk = max_walk
        self.head_bits = head_bits if head_bits is not None else max(1, (capacity - 1).bit_length() - 1)
        """Chain heads a band: 2**head_bits, by default the power of two at or below half the capacity
        (2¹⁹ for 1,000,000), so chains stay ~2 entries long."""
        self._need = minima_needed(threshold)  # equal 4-bit minima for a match
        self.mid_threshold = mid_threshold
        """Where set, two texts of ``mid_features`` 4-grams each (``assign_many``'s ``counts``)
        match at this estimated Jaccard instead (``cluster@3``); candidates come from the same bands."""
        self.mid_features = mid_features
        self._mid_need = minima_needed(mid_threshold) if mid_threshold is not None else self._need
        n, b = capacity, bands
        self._mid = np.zeros(n, dtype=bool)  # the slot's text is mid-range
        self._count = 0
        self._sig = np.zeros((n, PERMUTATIONS * BITS // 8), dtype=np.uint8)
        self._cluster = np.zeros(n, dtype=np.uint64)
        self._key = np.zeros((b, n), dtype=np.uint16)
        self._next = np.zeros((b, n), dtype=np.int32)
        self._head = np.zeros((b, 1 << self.head_bits), dtype=np.int32)

    def __len__(self) -> int:
        return min(self._count, self.capacity)

    def _seq(self, slot: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The arrival number of what each slot holds: slots are written in turn, so it is the last
        number below ``_count`` that falls on the slot."""
        last = self._count - 1
        out: npt.NDArray[np.int64] = last - (last - slot) % self.capacity
        return out

    def in_mid(self, counts: npt.NDArray[np.int64] | None, m: int) -> npt.NDArray[np.bool_]:
        """Which of ``m`` texts with ``counts`` 4-grams match among themselves at ``mid_threshold``."""
        if counts is None or self.mid_threshold is None:
            return np.zeros(m, dtype=bool)
        lo, hi = self.mid_features
        counts = np.asarray(counts, dtype=np.int64)
        out: npt.NDArray[np.bool_] = (counts >= lo) & (counts < hi)
        return out

    def _find(
        self, packed: npt.NDArray[np.uint8], keys: Sequence[int], mid: bool = False
    ) -> tuple[int | None, int]:
        """(cluster of the oldest match, arrival number of the newest exact match or -1). Each
        band's chain is walked for at most ``max_walk`` entries, so a flood of one text cannot make
        a lookup slow."""
        size = 1 << self.head_bits
        last, cap = self._count - 1, self.capacity
        heads, links, tags = (
            self._head.reshape(-1).data,
            self._next.reshape(-1).data,
            self._key.reshape(-1).data,
        )
        found: dict[int, int] = {}  # slot: its arrival number
        for band in range(self.bands):
            key = keys[band]
            tag = key >> 16
            base = band * cap
            link = heads[band * size + (key & (size - 1))]
            prev = self._count
            for _ in range(self.max_walk):
                if not link:
                    break
                slot = link - 1
                seq = last - (last - slot) % cap
                if seq >= prev:  # overwritten: the rest of this chain was evicted
                    break
                if tags[base + slot] == tag:
                    found[slot] = seq
                prev = seq
                link = links[base + slot]
        if not found:
            return None, -1
        # The few candidates compared as Python integers: ~10 numpy calls on arrays of one to a few
        # rows cost more than the comparisons (``equal_packed``: ``equal_minima``'s count).
        width = PERMUTATIONS * BITS // 8
        stored, mids = self._sig.reshape(-1).data, self._mid.data
        mine = int.from_bytes(packed.tobytes(), "little")
        oldest, oldest_seq, exact = -1, -1, -1
        for slot, seq in found.items():
            same = equal_packed(int.from_bytes(stored[slot * width : (slot + 1) * width], "little"), mine)
            if same < (self._mid_need if mid and mids[slot] else self._need):
                continue
            if oldest < 0 or seq < oldest_seq:
                oldest, oldest_seq = slot, seq
            if same == PERMUTATIONS:
                exact = max(exact, seq)
        if oldest < 0:
            return None, -1
        return int(self._cluster[oldest]), exact

    def _add(
        self, packed: npt.NDArray[np.uint8], keys: Sequence[int], cluster: int, mid: bool = False
    ) -> None:
        cap, size = self.capacity, 1 << self.head_bits
        slot = self._count % cap
        self._sig[slot] = packed
        self._cluster[slot] = cluster
        self._mid[slot] = mid
        heads, links, tags = (
            self._head.reshape(-1).data,
            self._next.reshape(-1).data,
            self._key.reshape(-1).data,
        )
        for band in range(self.bands):
            key = keys[band]
            head = band * size + (key & (size - 1))
            tags[band * cap + slot] = key >> 16
            links[band * cap + slot] = heads[head]
            heads[head] = slot + 1
        self._count += 1

    def _add_run(
        self,
        packed: npt.NDArray[np.uint8],
        keys: npt.NDArray[np.uint32],
        clusters: npt.NDArray[np.uint64],
        mid: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        """``_add`` of each row in order, vectorized over rows and bands (at most ``capacity`` rows,
        so no slot is written twice)."""
        m, n, b = len(packed), self.capacity, self.bands
        slots = (self._count + np.arange(m)) % n
        self._sig[slots] = packed
        self._cluster[slots] = clusters
        self._mid[slots] = False if mid is None else mid
        self._key[:, slots] = (keys.T >> np.uint32(16)).astype(np.uint16)
        # every (band, row) pair at once, on the flat tables: head ``band · 2²⁰ + bucket``, link
        # ``band · capacity + slot``; within a bucket the rows chain in order, the first to the old head
        size = 1 << self.head_bits
        bucket = ((keys.T & np.uint32(size - 1)).astype(np.intp) + (np.arange(b) * size)[:, None]).ravel()
        entry = (slots[None, :] + (np.arange(b) * n)[:, None]).ravel()
        order = np.argsort(bucket, kind="stable")
        ordered, entry = bucket[order], entry[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = first[1:]
        heads, links = self._head.reshape(-1), self._next.reshape(-1)
        new = np.empty(len(order), dtype=np.int32)
        new[first] = heads[ordered[first]]
        new[~first] = (entry[:-1] % n + 1)[~first[1:]]
        links[entry] = new
        heads[ordered[last]] = entry[last] % n + 1
        self._count += m

    def _unmatched(self, keys: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
        """Which of the signatures (band ``keys``, to be assigned in this order) surely find no
        candidate, so need no lookup: no earlier one of the batch shares a band key with it, and no
        entry among the first ``max_walk`` of its chains as they stand now does (a lookup in order
        walks the batch's earlier entries first, then these). All chains walked together (numpy)."""
        m = len(keys)
        hit = np.zeros(m, dtype=bool)
        for b in range(self.bands):
            col = keys[:, b]
            order = np.argsort(col, kind="stable")
            ordered = col[order]
            hit[order[1:][ordered[1:] == ordered[:-1]]] = True
        mask = np.uint32((1 << self.head_bits) - 1)
        lane = np.tile(np.arange(m), self.bands)
        band = np.repeat(np.arange(self.bands), m)
        want = keys.T.ravel()
        link = self._head[band, (want & mask).astype(np.intp)]
        prev = np.full(len(lane), self._count, dtype=np.int64)
        for _ in range(self.max_walk):
            go = (link > 0) & ~hit[lane]
            lane, band, want, prev, slot = lane[go], band[go], want[go], prev[go], link[go] - 1
            if not len(lane):
                return ~hit
            seq = self._seq(slot.astype(np.int64))
            go = seq < prev  # not overwritten (``_find``)
            lane, band, want, slot, prev = lane[go], band[go], want[go], slot[go], seq[go]
            same = self._key[band, slot] == (want >> np.uint32(16))
            hit[lane[same]] = True
            link = self._next[band, slot]
        hit[lane[link > 0]] = True  # chains longer than max_walk: let the lookup decide
        out: npt.NDArray[np.bool_] = ~hit
        return out

    def assign_many(
        self, sigs: U32, names: Sequence[int], counts: npt.NDArray[np.int64] | None = None
    ) -> list[str]:
        """The cluster of each signature (rows of ``sigs``, in order): the oldest indexed match's,
        or a new one named after ``names[i]`` (the post's SimHash). Each is then indexed, unless an
        identical signature is and is not yet half-way to eviction (so a copy-paste flood keeps a
        few entries alive instead of filling the ring). Gives the same as one call per signature.

        ``counts``: each text's 4-grams, for ``mid_threshold`` (``cluster@3``).

        Signatures that surely find no candidate (``_unmatched``: nearly all but copies) are just
        indexed, runs of them at once; only the others are looked up one by one."""
        m = len(sigs)
        if not m:
            return []
        packed = pack_low_bits(sigs)
        keys = band_keys(sigs, self.bands, self.rows)
        alone = self._unmatched(keys)
        mids = self.in_mid(counts, m)
        out = [0] * m
        i = 0
        while i < m:
            if alone[i]:
                j = i + 1
                while j < m and alone[j] and j - i < self.capacity:
                    j += 1
                self._add_many(packed[i:j], keys[i:j], names[i:j], mids[i:j])
                out[i:j] = names[i:j]
                i = j
                continue
            self.looked_up += 1
            row = keys[i].tolist()
            mid = bool(mids[i])
            cluster, exact = self._find(packed[i], row, mid)
            if cluster is None:
                cluster = names[i]
            self._keep(packed[i], row, cluster, exact, mid)
            out[i] = cluster
            i += 1
        return [cluster_name(c) for c in out]

    def _add_many(
        self,
        packed: npt.NDArray[np.uint8],
        keys: npt.NDArray[np.uint32],
        names: Sequence[int],
        mid: npt.NDArray[np.bool_],
    ) -> None:
        """``_add`` of each row in order (at most ``capacity`` rows): long runs at once."""
        if len(packed) >= SHORT_RUN:
            self._add_run(packed, keys, np.array(names, dtype=np.uint64), mid)
        else:  # a numpy call per step costs more than a few posts one by one
            for k in range(len(packed)):
                self._add(packed[k], keys[k].tolist(), names[k], bool(mid[k]))

    def _keep(
        self, packed: npt.NDArray[np.uint8], keys: Sequence[int], cluster: int, exact: int, mid: bool
    ) -> None:
        """Index a looked-up signature, unless an identical one (arrival number ``exact``) is
        indexed and not yet half-way to eviction."""
        if exact < 0 or exact < self._count - self.capacity // 2:
            self._add(packed, keys, cluster, mid)

    def lookup(self, sig: U32, count: int | None = None) -> str | None:
        """The cluster of the oldest indexed match of one signature (``PERMUTATIONS`` minima; its
        text's ``count`` of 4-grams, for ``mid_threshold``), or ``None``; nothing is indexed."""
        row = np.asarray(sig, dtype=np.uint32).reshape(1, PERMUTATIONS)
        keys = band_keys(row, self.bands, self.rows)[0].tolist()
        mid = bool(self.in_mid(None if count is None else np.array([count]), 1)[0])
        cluster, _ = self._find(pack_low_bits(row)[0], keys, mid)
        return None if cluster is None else cluster_name(cluster)
