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
