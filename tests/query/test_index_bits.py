"""The search index's Bloom bits: what a post's row sets (``signature``) is exactly what a query
over history tests for the same words and fields (``token_mask``, ``prefix_mask``, ``field_mask``)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from murmur.query.index import (
    FIELD_COLUMNS,
    PREFIX_COLUMNS,
    PREFIX_LEN,
    SIGNATURE_COLUMNS,
    TOKEN_COLUMNS,
    Doc,
    bank_columns,
    field_mask,
    prefix_mask,
    signature,
    signatures,
    token_mask,
)
from murmur.query.live import batch_hooks
from murmur.store import Store
from murmur.types import Post
from tests.query.helpers import open_store, post

TOKENS = ["a", "ab", "abc", "climate", "strike", "東", "京", "ñandú", "x" * 64, "2026", "tor", "ok"]
TOKENS += ["𠀀𠀁x", "кот", "a\udc00b"]  # letters above U+FFFF, Cyrillic, a lone surrogate
KEYS = ["lang=pt", "lang=pt-br", "platform=reddit", "site=nytimes.com", "hashtag=cop30", "has=link"]


def _set(sig: list[int]) -> dict[str, int]:
    return {col: bits for col, bits in zip(SIGNATURE_COLUMNS, sig, strict=True) if bits}


def _merged(*parts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in parts:
        for col, bits in part.items():
            out[col] = out.get(col, 0) | bits
    return out


def _query_bits(token: str) -> dict[str, int]:
    bits = bank_columns(TOKEN_COLUMNS, token_mask(token))
    if len(token) >= PREFIX_LEN:
        bits = _merged(bits, bank_columns(PREFIX_COLUMNS, prefix_mask(token[:PREFIX_LEN])))
    return bits


def test_a_row_sets_exactly_the_bits_a_query_tests() -> None:
    for token in TOKENS:
        assert _set(signature(Doc(f" {token} ", frozenset()))) == _query_bits(token), token
    for key in KEYS:
        want_key = bank_columns(FIELD_COLUMNS, field_mask(key))
        assert _set(signature(Doc(" ", frozenset({key})))) == want_key, key
    whole = signature(Doc(" " + " ".join(TOKENS) + " ", frozenset(KEYS)))
    want = _merged(*map(_query_bits, TOKENS), *(bank_columns(FIELD_COLUMNS, field_mask(k)) for k in KEYS))
    assert _set(whole) == want
    assert len(want) > 10  # the items spread over many columns: the test compares real placements


def test_a_batch_gets_each_post_its_own_row() -> None:
    # rows computed for a whole batch at once are the rows of each post alone (no item is counted
    # in a neighbour's row, none is lost at a text's edge), empty texts included
    docs = [
        Doc(" climate strike ", frozenset({"lang=en"})),
        Doc(" ", frozenset()),
        Doc(" 東 京 ", frozenset({"lang=ja", "has=link"})),
        Doc(" " + " ".join(TOKENS) + " ", frozenset(KEYS)),
        Doc(" a ", frozenset()),
    ]
    batch = signatures([d.indexed_text for d in docs])
    assert [[int(v) for v in row] for row in batch] == [signature(d) for d in docs]
    assert not any(signature(Doc(" ", frozenset())))
    assert signatures([]).shape == (0, len(SIGNATURE_COLUMNS))


def test_a_batch_longer_than_a_chunk_gets_the_same_rows() -> None:
    # the prefix sums restart every ~65,536 code points, at a text's edge; a text longer than that
    # is a chunk of its own
    words = [f"w{i}ord{i % 97} кот{i % 13} 東{i % 7}" for i in range(4000)]
    docs = [Doc(f" {' '.join(words[i : i + 40])} ", frozenset({f"lang=l{i % 5}"})) for i in range(0, 4000, 8)]
    long_doc = Doc(" " + " ".join(words) + " ", frozenset({"has=link"}))
    docs.insert(250, long_doc)
    assert sum(len(d.indexed_text) for d in docs) > 3 * (1 << 16)
    assert len(long_doc.indexed_text) > 1 << 16
    batch = signatures([d.indexed_text for d in docs])
    for i in (0, 1, 249, 250, 251, len(docs) - 1):
        assert [int(v) for v in batch[i]] == signature(docs[i]), i
    whole = signature(long_doc)
    want = _merged(*map(_query_bits, words[-50:]), bank_columns(FIELD_COLUMNS, field_mask("has=link")))
    assert all(whole[SIGNATURE_COLUMNS.index(col)] & bits == bits for col, bits in want.items())


def test_texts_must_be_space_delimited() -> None:
    with pytest.raises(ValueError, match="text 1 does not begin and end with a space"):
        signatures([" a ", "b "])


def test_new_posts_are_indexed_by_plain_insert_and_replays_or_strays_by_upsert(tmp_path: Path) -> None:
    # New posts' rows go in by a plain INSERT (Store.replacing off); a replay of stored posts, and a
    # post whose search row outlived its row in ``posts``, are written again as an upsert.
    def indexed(store: Store) -> dict[str, str]:
        rows = store.conn.execute("SELECT post_id, st FROM post_search ORDER BY post_id").fetchall()
        return {str(pid): str(st) for pid, st in rows}

    with open_store(tmp_path) as store:
        seen: list[bool] = []
        (hook,) = batch_hooks(store)

        def write_watching(posts: list[Post]) -> None:
            writer = hook(posts)
            assert writer is not None

            def watched(conn: duckdb.DuckDBPyConnection) -> None:
                seen.append(store.replacing)
                writer(conn)

            store.write(posts=posts, extras=[watched])

        write_watching([post("p1", "climate strike", sentiment="negative"), post("p2", "bonjour")])
        assert seen == [False]
        assert "sentiment=negative" in indexed(store)["p1"]
        write_watching([post("p1", "climate strike", sentiment="positive")])  # an edit: upserted
        assert seen == [False, True]
        assert "sentiment=positive" in indexed(store)["p1"]
        store.conn.execute("DELETE FROM posts WHERE post_id = 'p2'")  # its search row stays behind
        write_watching([post("p2", "bonjour encore")])
        assert seen == [False, True, False, True]  # the plain INSERT met the stray row: written again
        assert "encore" in indexed(store)["p2"]
        assert store.conn.execute("SELECT count(*) FROM posts").fetchone() == (2,)
