from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from murmur.enrich.evaluate import load_xlmt
from murmur.enrich.minhash import (
    MID_THRESHOLD,
    PERMUTATIONS,
    MinHashIndex,
    cluster_name,
    equal_minima,
    equal_packed,
    minima_needed,
    pack_low_bits,
    split_counted,
)
from murmur.enrich.neardup import NearDup, signatures
from murmur.testing import has_shared_data, shared_data
from tests.enrich.conformance import make_posts
from tests.enrich.test_neardup import word_edit


def sig_of(text: str) -> np.ndarray:
    (found,) = signatures([text])
    assert found is not None
    return np.frombuffer(found[1], dtype="<u4")


def shingles(text: str) -> set[str]:
    return {text[i : i + 4] for i in range(len(text) - 3)}


def test_equal_minima_estimate_the_jaccard_similarity_of_the_4_grams() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    errors = []
    for _ in range(200):
        a = list(rng.choice(words, 30))
        b = a[: rng.integers(5, 30)] + list(rng.choice(words, int(rng.integers(0, 20))))
        ta, tb = " ".join(a), " ".join(b)
        true = len(shingles(f" {ta} ") & shingles(f" {tb} ")) / len(shingles(f" {ta} ") | shingles(f" {tb} "))
        errors.append(np.mean(sig_of(ta) == sig_of(tb)) - true)
    assert abs(np.mean(errors)) < 0.02  # unbiased
    assert np.std(errors) < 0.08  # ~sqrt(J(1-J)/64)


def random_sigs(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**32, size=(n, PERMUTATIONS), dtype=np.uint32)


def near(rng: np.random.Generator, sig: np.ndarray, changed: int) -> np.ndarray:
    out = sig.copy()
    at = rng.choice(PERMUTATIONS, changed, replace=False)
    out[at] = rng.integers(0, 2**32, size=changed, dtype=np.uint32)
    return out


@pytest.mark.parametrize(("capacity", "max_walk"), [(1_000_000, 64), (50, 64), (7, 3), (1, 64)])
def test_a_batch_gives_the_clusters_and_index_of_the_same_signatures_one_by_one(
    capacity: int, max_walk: int
) -> None:
    # near copies (a few minima changed: some match, some are only candidates), exact copies of
    # recent and evicted ones, floods, and unrelated signatures crowded into few buckets
    rng = np.random.default_rng(capacity + max_walk)
    bases = random_sigs(rng, 30)
    rows: list[np.ndarray] = []
    while len(rows) < 5000:
        r = rng.random()
        if r < 0.3:
            rows.append(random_sigs(rng, 1)[0])
        elif r < 0.75:
            rows.append(near(rng, bases[rng.integers(30)], int(rng.integers(0, 40))))
        else:
            pick = rows[int(rng.integers(len(rows)))] if rows else bases[0]
            rows.extend([pick] * int(rng.integers(1, 30)))
    sigs = np.array(rows, dtype=np.uint32)
    names = [int(x) for x in rng.integers(0, 2**63, size=len(sigs))]
    # 16 buckets a band: long chains, unrelated signatures sharing buckets
    one_by_one = MinHashIndex(capacity, max_walk=max_walk, head_bits=4)
    batched = MinHashIndex(capacity, max_walk=max_walk, head_bits=4)
    expected = [one_by_one.assign_many(sigs[i : i + 1], names[i : i + 1])[0] for i in range(len(sigs))]
    got: list[str] = []
    at = 0
    while at < len(sigs):
        size = int(rng.choice([1, 2, 17, 500, 2000]))
        got += batched.assign_many(sigs[at : at + size], names[at : at + size])
        at += size
    assert got == expected
    assert 30 < len(set(expected)) < len(sigs) // 2  # the data did cluster, and not into one
    for name in ("_sig", "_cluster", "_key", "_next", "_head"):
        assert np.array_equal(getattr(batched, name), getattr(one_by_one, name)), name
    assert batched._count == one_by_one._count


def test_index_is_bounded_and_evicts_the_oldest() -> None:
    rng = np.random.default_rng(1)
    idx = MinHashIndex(capacity=3)
    sigs = random_sigs(rng, 4)
    assert idx.assign_many(sigs, [1, 2, 3, 4]) == [cluster_name(c) for c in (1, 2, 3, 4)]
    assert len(idx) == 3
    assert idx.lookup(sigs[0]) is None  # the oldest was evicted
    assert idx.lookup(near(rng, sigs[3], 10)) == cluster_name(4)  # 54 of 64 minima agree: J ~0.84
    assert idx.lookup(near(rng, sigs[3], 24)) is None  # 40 of 64: below the threshold


def test_lookup_prefers_the_oldest_match_and_survives_pickling() -> None:
    rng = np.random.default_rng(2)
    a = random_sigs(rng, 1)[0]
    b = near(rng, a, 8)
    idx = MinHashIndex(capacity=1000)
    assert idx.assign_many(np.array([a, near(rng, a, 40)]), [10, 11]) == [cluster_name(10), cluster_name(11)]
    probe = near(rng, a, 4)
    assert idx.assign_many(np.array([b]), [12]) == [cluster_name(10)]
    assert idx.lookup(probe) == cluster_name(10)
    clone = pickle.loads(pickle.dumps(idx))
    assert clone.lookup(probe) == idx.lookup(probe)
    assert clone.assign_many(np.array([probe]), [13]) == idx.assign_many(np.array([probe]), [13])
    assert len(clone) == len(idx)
    with pytest.raises(ValueError, match="bands × rows"):
        MinHashIndex(bands=11, rows=6)
    with pytest.raises(ValueError, match="threshold"):
        MinHashIndex(threshold=0)


def test_a_copy_paste_flood_keeps_the_index_small() -> None:
    rng = np.random.default_rng(3)
    idx = MinHashIndex(capacity=1000)
    sig = random_sigs(rng, 1)
    got = {c for _ in range(50) for c in idx.assign_many(np.repeat(sig, 100, axis=0), [7] * 100)}
    assert got == {cluster_name(7)}
    assert len(idx) <= 10  # re-indexed only when half-way to eviction
    assert idx.assign_many(random_sigs(rng, 1), [8]) == [cluster_name(8)]


def test_the_pipeline_step_reads_the_batch_columns() -> None:
    comp = NearDup(capacity=100)
    text = "the same campaign text, word for word, again"
    posts = make_posts([text, text.replace("again", "agian")])
    comp.process(posts)
    assert posts[0].minhash is not None
    assert len(posts[0].minhash) == 4 * PERMUTATIONS
    assert posts[0].dup_cluster == posts[1].dup_cluster == f"sh:{posts[0].simhash:016x}"


def test_the_index_keeps_4_bits_a_minimum_100_bytes_a_signature() -> None:
    # 64 minima in 32 bytes (8 bits each until 2026-12-03: 132 bytes a signature, 144 MB for 1,000,000)
    idx = MinHashIndex(capacity=1000)
    per_signature = sum(a.nbytes for a in (idx._sig, idx._cluster, idx._key, idx._next)) / idx.capacity
    assert idx._sig.shape == (1000, PERMUTATIONS // 2)
    assert per_signature == 100
    assert MinHashIndex(capacity=1_000_000).head_bits == 19  # chains of ~2 entries
    assert MinHashIndex(capacity=500_000).head_bits == 18


def test_4_bit_minima_count_equal_minima_and_correct_the_threshold_for_chance() -> None:
    rng = np.random.default_rng(4)
    a = random_sigs(rng, 1)[0]
    assert equal_minima(pack_low_bits(a[None]), pack_low_bits(a[None]))[0] == PERMUTATIONS
    b = near(rng, a, 16)
    low_equal = int(np.count_nonzero((a & 0xF) == (b & 0xF)))  # 48 equal, and some of the 16 by chance
    assert equal_minima(pack_low_bits(b[None]), pack_low_bits(a[None]))[0] == low_equal >= 48
    # J ≥ t: a share t of the minima agrees, and 1/16 of the rest by chance
    assert [minima_needed(t) for t in (0.5, 0.7, 0.75, 1.0)] == [34, 46, 49, 64]
    unrelated = random_sigs(rng, 20_000)
    chance = equal_minima(pack_low_bits(unrelated), pack_low_bits(a[None]))
    assert abs(chance.mean() - PERMUTATIONS / 16) < 0.1
    assert chance.max() < minima_needed(0.5)


def test_packed_signatures_compared_as_integers_count_as_equal_minima_does() -> None:
    # the index's lookups compare a few candidates as Python integers (equal_packed)
    rng = np.random.default_rng(5)
    a = random_sigs(rng, 1)[0]
    edits = [near(rng, a, k) for k in (0, 1, 2, 15, 16, 17, 40, 63, 64)]
    rows = np.vstack([a, *edits, random_sigs(rng, 200)])
    packed = pack_low_bits(rows)
    want = equal_minima(packed, packed[0]).tolist()
    mine = int.from_bytes(packed[0].tobytes(), "little")
    got = [equal_packed(int.from_bytes(row.tobytes(), "little"), mine) for row in packed]
    assert got == want
    assert want[:2] == [PERMUTATIONS, PERMUTATIONS]
    assert want[-1] < PERMUTATIONS
    assert len(set(want)) > 10  # the comparison saw many different counts, not a constant


@pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real tweets)")
def test_4_bit_minima_decide_as_the_full_minima_on_real_word_edited_tweets() -> None:
    # the check after the LSH bands (estimated Jaccard >= 0.75) on 4 low bits of each minimum, with
    # the threshold corrected for chance, against the 32-bit minima, on 302 English tweets x 4 edits:
    # the same decision for 96.9 % of the pairs (a pair near the threshold may fall either way, and
    # does so both ways), 83.1 % matched against 83.0 % (bench/neardup.py: word-edit recall 54.6 %
    # against 55.0 % with 8 bits, the same 1.0 % of distinct posts sharing a cluster)
    english = next(s for s in load_xlmt(shared_data("sentiment", "xlmt"), "val") if s.language == "english")
    tweets = [t for t in english.texts if len(t) > 60]
    full, packed = [], []
    for kind in ("typo", "word replaced", "two words replaced", "sentence appended"):
        rng = random.Random(kind)
        for text in tweets:
            edited = word_edit(text, kind.replace("two words", "word"), rng)
            if kind == "two words replaced":
                edited = word_edit(edited, "word replaced", rng)
            a, b = sig_of(text), sig_of(edited)
            full.append(int(np.count_nonzero(a == b)) >= int(np.ceil(0.75 * PERMUTATIONS)))
            packed.append(
                bool(equal_minima(pack_low_bits(a[None]), pack_low_bits(b[None]))[0] >= minima_needed(0.75))
            )
    agree = np.mean(np.array(full) == np.array(packed))
    assert agree >= 0.95
    assert abs(np.mean(full) - np.mean(packed)) <= 0.01
    assert 0.5 < np.mean(full) < 0.98  # the edits do straddle the threshold


@pytest.mark.parametrize("capacity", [1_000_000, 50, 7])
def test_a_batch_with_mid_range_texts_gives_the_clusters_of_the_same_signatures_one_by_one(
    capacity: int,
) -> None:
    # near copies among mid-range texts (45-90 4-grams, matched at 0.68) and outside it, floods
    rng = np.random.default_rng(capacity)
    bases = random_sigs(rng, 20)
    rows: list[np.ndarray] = []
    while len(rows) < 3000:
        r = rng.random()
        if r < 0.3:
            rows.append(random_sigs(rng, 1)[0])
        elif r < 0.8:
            rows.append(near(rng, bases[rng.integers(20)], int(rng.integers(0, 30))))
        else:
            pick = rows[int(rng.integers(len(rows)))] if rows else bases[0]
            rows.extend([pick] * int(rng.integers(1, 20)))
    sigs = np.array(rows, dtype=np.uint32)
    counts = rng.choice([20, 45, 60, 89, 90, 300], size=len(sigs))
    names = [int(x) for x in rng.integers(0, 2**63, size=len(sigs))]
    one_by_one = MinHashIndex(capacity, mid_threshold=MID_THRESHOLD, head_bits=4)
    batched = MinHashIndex(capacity, mid_threshold=MID_THRESHOLD, head_bits=4)
    expected = [
        one_by_one.assign_many(sigs[i : i + 1], names[i : i + 1], counts[i : i + 1])[0]
        for i in range(len(sigs))
    ]
    got: list[str] = []
    at = 0
    while at < len(sigs):
        size = int(rng.choice([1, 3, 40, 700]))
        got += batched.assign_many(sigs[at : at + size], names[at : at + size], counts[at : at + size])
        at += size
    assert got == expected
    assert 20 < len(set(expected)) < len(sigs) // 2
    for name in ("_sig", "_cluster", "_key", "_next", "_head", "_mid"):
        assert np.array_equal(getattr(batched, name), getattr(one_by_one, name)), name
    if capacity > 7:  # the lower threshold decided some: at 0.75 for all the stream clusters differently
        plain = MinHashIndex(capacity, head_bits=4)
        assert plain.assign_many(sigs, names, counts) != expected


def test_mid_range_texts_match_at_the_lower_threshold_and_only_among_themselves() -> None:
    a = random_sigs(np.random.default_rng(4), 1)[0]
    copy, far = a.copy(), a.copy()
    copy[46:] ^= 1  # 46 of 64 minima agree (no 4-bit chance agreement): J ~0.72, below 0.75, above 0.68
    far[36:] ^= 1  # 36 of 64: J ~0.56
    idx = MinHashIndex(capacity=1000, mid_threshold=MID_THRESHOLD)
    assert idx.assign_many(a[None], [1], np.array([60])) == [cluster_name(1)]
    assert idx.lookup(copy, 60) == cluster_name(1)
    assert idx.lookup(copy, 120) is None  # a long text: 0.75, as cluster@2
    assert idx.lookup(copy, 30) is None  # a very short one: 0.75 (distinct posts share templates)
    assert idx.lookup(copy) is None  # no count: 0.75
    assert idx.lookup(far, 60) is None
    long_original = MinHashIndex(capacity=1000, mid_threshold=MID_THRESHOLD)
    long_original.assign_many(a[None], [1], np.array([120]))
    assert long_original.lookup(copy, 60) is None  # both texts must be mid-range
    assert MinHashIndex(capacity=1000).assign_many(np.array([a, copy]), [1, 2], np.array([60, 60])) == [
        cluster_name(1),
        cluster_name(2),
    ]  # no mid_threshold (cluster@2): 0.75 for all


def test_counted_signatures_carry_the_4_gram_count_and_a_wrong_size_is_explained() -> None:
    (found,) = signatures(["the council votes tonight on the plan"], counted=True)
    assert found is not None
    sigs, counts = split_counted(found[1], 1)
    assert np.array_equal(sigs[0], sig_of("the council votes tonight on the plan"))
    assert counts.tolist() == [len(" the council votes tonight on the plan ") - 3]
    with pytest.raises(ValueError, match=r"simhash@2 before murmur\.neardup\.cluster@3"):
        split_counted(sig_of("the council votes tonight").tobytes(), 1)
