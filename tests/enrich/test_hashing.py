from __future__ import annotations

import numpy as np

from murmur.enrich import hashing


def grams(texts: list[str], n: int, *, within_words: bool = False) -> list[list[int]]:
    batch = hashing.layout(texts)
    ((doc, h),) = hashing.char_ngrams(batch, [n], within_words=within_words)
    return [h[doc == d].tolist() for d in range(len(texts))]


def test_span_hash_is_position_independent() -> None:
    a, b = grams(["xxabcyy", "abc", "zzzzzzzzabc"], 3), grams(["abc"], 3)
    assert b[0][0] in a[0]
    assert a[1] == b[0]
    assert b[0][0] == a[2][-1]


def test_ngrams_never_cross_texts_and_short_texts_have_none() -> None:
    got = grams(["ab", "cd", "", "efg"], 3)
    assert got[0] == []
    assert got[1] == []
    assert got[2] == []
    assert len(got[3]) == 1
    assert grams(["abcd"], 3)[0] == grams(["zzabcdzz"], 3)[0][2:4]


def test_within_words_keeps_padded_word_ngrams_only() -> None:
    # " ab cd " has 5 windows of 3; " ab", "ab ", " cd", "cd " have no inner space; "b c" has one
    assert len(grams([" ab cd "], 3, within_words=True)[0]) == 4
    assert len(grams([" ab cd "], 3)[0]) == 5


def test_word_spans_emoji_and_joiners() -> None:
    texts = ["hello, wörld 😀😀 a\u200db", "東京 ok"]
    batch = hashing.layout(texts)
    w = hashing.word_spans(batch)
    joined = "".join(texts)
    words = [joined[a:b] for a, b in zip(w.a.tolist(), w.b.tolist(), strict=True)]
    assert words == ["hello", "wörld", "😀", "😀", "a\u200db", "東京", "ok"]
    assert w.doc.tolist() == [0, 0, 0, 0, 0, 1, 1]


def test_hashes_are_stable_across_processes() -> None:
    # The shipped sentiment model depends on these exact values: a change needs a retrained model.
    batch = hashing.layout([" murmur "])
    ((_, h),) = hashing.char_ngrams(batch, [3])
    cols = hashing.bucket(h, 3, 20)
    assert cols.tolist() == EXPECTED_TRIGRAM_BUCKETS
    assert isinstance(cols, np.ndarray)


EXPECTED_TRIGRAM_BUCKETS = [
    878449,
    20426,
    393727,
    162408,
    20426,
    429842,
]  # " mu", "mur", "urm", "rmu", "mur", "ur "


def test_ngrams_match_a_plain_python_count() -> None:
    # window_masks builds each size's mask from the one before: check it against slicing strings
    texts = ["", " ab  cde ", "x", " 😀 a\u200db ", "", " longer words here ", "  "]
    joined_hashes: dict[str, int] = {}
    for n in range(1, 7):
        for within in (False, True):
            batch = hashing.layout(texts)
            ((doc, h),) = hashing.char_ngrams(batch, [n], within_words=within)
            expected = [
                (d, t[i : i + n])
                for d, t in enumerate(texts)
                for i in range(len(t) - n + 1)
                if not within or n <= 2 or " " not in t[i + 1 : i + n - 1]
            ]
            assert doc.tolist() == [d for d, _ in expected]
            for (_, gram), value in zip(expected, h.tolist(), strict=True):
                assert joined_hashes.setdefault(gram, value) == value  # one hash per n-gram


def test_bucket_into_adds_the_buckets_to_its_base() -> None:
    ((_, h),) = hashing.char_ngrams(hashing.layout([" murmur "]), [3])
    base = np.arange(len(h), dtype=np.uint32) << np.uint32(21)
    out = np.empty(len(h), dtype=np.uint32)
    hashing.bucket_into(h.copy(), 3, 20, base, out)
    assert (out - base).tolist() == EXPECTED_TRIGRAM_BUCKETS


def test_word_spans_across_texts_with_skipped_characters() -> None:
    texts = ["ab\u200d", "\u200dcd", "", "\u200d", "e\ufe0f f", "👍🏽g"]
    batch = hashing.layout(texts)
    w = hashing.word_spans(batch)
    joined = "".join(texts)
    words = [joined[a:b] for a, b in zip(w.a.tolist(), w.b.tolist(), strict=True)]
    assert words == ["ab", "cd", "e", "f", "👍", "g"]
    assert w.doc.tolist() == [0, 1, 4, 4, 5, 5]
