"""What a post looks like to the query language, and the store's search index built from it.

``Doc`` is a post as both evaluators see it: its search text (``text.search_text``: ``" t1 t2 … "``)
and its field keys (``lang=de``, ``site=nytimes.com``, …). The live matcher tests queries against a
``Doc``; the store keeps the same strings per post in table ``post_search`` (migration 2), column
``st`` = the search text followed by the keys, each marked with ``KEY_MARK`` (``" t1 t2 \\x01lang=de
\\x01platform=reddit "``), where historical search tests the same needles with SQL. Computed once, in
Python, by the same function, for both. (A word never contains the mark, so a word, phrase or
wildcard can never match a key, and a key ``" \\x01lang=de "`` only matches a key.)

``post_search`` also holds a blocked Bloom filter of the post (two bits per item, both in the same
64-bit column chosen by the item's hash): ``sig_t*``, ``TOKEN_BITS`` bits for its distinct tokens;
``sig_p*``, ``PREFIX_BITS`` bits for its distinct 3-letter token prefixes; ``sig_f*``, ``FIELD_BITS``
bits for its field keys. A query tests the bits its required words and fields need (8 bytes per row
and column) before it tests the text: this is what keeps an ad-hoc query over 10M posts under a
second. The bits only ever narrow the candidates; the string tests decide. ``st`` is stored
uncompressed, so reading it costs no decompression, and the author is kept only as ``author_h``, a
64-bit hash of the (already pseudonymous) author key: enough to count distinct authors for
k-anonymity (a collision can only undercount, which suppresses more), cheap to scan, never shown.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa

from murmur.batch import POST_COLUMNS, last_per_key, posts_from_table
from murmur.store.schema import untombstoned
from murmur.text import fold, search_text
from murmur.types import MACROLANGUAGES, Post

TOKEN_BITS: Final = 1024
PREFIX_BITS: Final = 512
FIELD_BITS: Final = 256
PREFIX_LEN: Final = 3
TOKEN_COLUMNS: Final[tuple[str, ...]] = tuple(f"sig_t{i}" for i in range(TOKEN_BITS // 64))
PREFIX_COLUMNS: Final[tuple[str, ...]] = tuple(f"sig_p{i}" for i in range(PREFIX_BITS // 64))
FIELD_COLUMNS: Final[tuple[str, ...]] = tuple(f"sig_f{i}" for i in range(FIELD_BITS // 64))
SIGNATURE_COLUMNS: Final[tuple[str, ...]] = (*TOKEN_COLUMNS, *PREFIX_COLUMNS, *FIELD_COLUMNS)
_MASK64: Final = (1 << 64) - 1
KEY_MARK: Final = "\x01"
"""Marks a field key in ``post_search.st``: not a word character, so never inside a token."""
_CACHE_MAX: Final = 200_000

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Doc:
    """A post as queries see it."""

    st: str
    """``" t1 t2 … "``: the folded tokens of the post's text."""
    keys: frozenset[str]
    """Field keys: ``platform=reddit``, ``lang=pt``, ``lang=pt-br``, ``site=nytimes.com``, …"""

    @property
    def indexed_text(self) -> str:
        """What ``post_search.st`` holds: the search text, then the marked keys, sorted."""
        return self.st + "".join(f"{KEY_MARK}{k} " for k in sorted(self.keys))


_VALUE_CACHE: dict[str, str] = {}
_HOST_CACHE: dict[str, tuple[str, ...]] = {}


def key_value(raw: str) -> str:
    """A field value as keys hold it: folded, without whitespace."""
    got = _VALUE_CACHE.get(raw)
    if got is None:
        got = "".join(fold(raw).split())
        if len(_VALUE_CACHE) >= _CACHE_MAX:
            _VALUE_CACHE.clear()
        _VALUE_CACHE[raw] = got
    return got


def _site_keys(host: str) -> tuple[str, ...]:
    got = _HOST_CACHE.get(host)
    if got is None:
        labels = key_value(host).strip(".").split(".")
        got = tuple("site=" + ".".join(labels[i:]) for i in range(len(labels)) if labels[i])
        if len(_HOST_CACHE) >= _CACHE_MAX:
            _HOST_CACHE.clear()
        _HOST_CACHE[host] = got
    return got


def post_lang(post: Post) -> str | None:
    """The language a query's ``lang:`` sees: the detected one, else the one the platform declared."""
    return post.lang if post.lang is not None else post.lang_declared


def _lang_keys(lang: str) -> tuple[str, ...]:
    """``lang=`` keys of a language and of what contains it: ``pt-br`` is also ``pt``, and a language
    within a macrolanguage (``MACROLANGUAGES``: ``ary``) is also that macrolanguage (``ar``)."""
    parts = key_value(lang).replace("_", "-").split("-")
    keys = tuple("lang=" + "-".join(parts[: i + 1]) for i in range(len(parts)) if parts[i])
    macro = MACROLANGUAGES.get(parts[0])
    return (*keys, "lang=" + macro) if macro else keys


def field_keys(post: Post) -> frozenset[str]:
    """Every ``field=value`` a query can ask of ``post`` (see docs/query-language.md, "Fields")."""
    keys = ["platform=" + key_value(post.platform)]
    lang = post_lang(post)
    keys += _lang_keys(lang) if lang else ["lang=und"]  # no language is undetermined, as search counts it
    if post.sentiment:
        keys.append("sentiment=" + key_value(post.sentiment))
    if post.country:
        keys.append("country=" + key_value(post.country))
    if post.site:
        keys += _site_keys(post.site)
    for host in post.domains:
        if host:
            keys += _site_keys(host)
    for tag in post.hashtags:
        value = key_value(tag).lstrip("#")
        if value:
            keys.append("hashtag=" + value)
    if post.has_link:
        keys.append("has=link")
    if post.has_media:
        keys.append("has=media")
    if post.is_reply:
        keys.append("is=reply")
    if post.is_repost:
        keys.append("is=repost")
    return frozenset(keys)


def doc_of(post: Post) -> Doc:
    return Doc(search_text(post.text), field_keys(post))


def author_hash(author_key: str) -> int:
    """A 64-bit hash of an author key, for counting distinct authors."""
    return int.from_bytes(hashlib.blake2b(author_key.encode("utf-8"), digest_size=8).digest(), "big")


# --- signature ---------------------------------------------------------------------------------------


def _word_bits(data: bytes, size: int) -> tuple[int, int]:
    """Two bits out of ``size`` (a multiple of 64), both in the same 64-bit word, from one CRC-32:
    (the word, its 64-bit mask)."""
    h = zlib.crc32(data)
    words = size // 64
    word, h = h % words, h // words
    return word, (1 << (h % 64)) | (1 << ((h >> 6) % 64))


def _two_bits(data: bytes, size: int) -> int:
    """``_word_bits`` as a mask over all ``size`` bits."""
    word, bits = _word_bits(data, size)
    return bits << (64 * word)


def _token_item(token: str) -> bytes:
    return token.encode("utf-8")


def _prefix_item(prefix: str) -> bytes:
    return b"\x01" + prefix.encode("utf-8")


def _field_item(key: str) -> bytes:
    return b"\x02" + key.encode("utf-8")


def token_mask(token: str) -> int:
    """The bits (over the ``TOKEN_BITS`` bank) a token sets."""
    return _two_bits(_token_item(token), TOKEN_BITS)


def prefix_mask(prefix: str) -> int:
    """The bits (over the ``PREFIX_BITS`` bank) a ``PREFIX_LEN``-letter token prefix sets."""
    return _two_bits(_prefix_item(prefix), PREFIX_BITS)


def field_mask(key: str) -> int:
    """The bits (over the ``FIELD_BITS`` bank) a field key sets."""
    return _two_bits(_field_item(key), FIELD_BITS)


def bank_columns(bank: tuple[str, ...], mask: int) -> dict[str, int]:
    """A bank-wide mask split into per-column 64-bit masks (columns with no bit left out)."""
    out: dict[str, int] = {}
    for i, col in enumerate(bank):
        part = (mask >> (64 * i)) & _MASK64
        if part:
            out[col] = part
    return out


_COLUMN_OF = {col: i for i, col in enumerate(SIGNATURE_COLUMNS)}
_Hit = tuple[int, int]
"""(index into ``SIGNATURE_COLUMNS``, 64-bit mask) of one item: its two bits, in one column."""


def _hit(bank: tuple[str, ...], data: bytes, size: int) -> _Hit:
    """The hit of an item (``data``) in ``bank``, straight from ``_word_bits`` (a new token's hits
    cost ~2 µs so, against ~10 through its ``size``-bit mask split into columns)."""
    word, bits = _word_bits(data, size)
    return _COLUMN_OF[bank[word]], bits


_TOKEN_HITS: dict[str, tuple[_Hit, ...]] = {}
_KEY_HITS: dict[str, _Hit] = {}


def _token_hits(token: str) -> tuple[_Hit, ...]:
    got = _TOKEN_HITS.get(token)
    if got is None:
        got = (_hit(TOKEN_COLUMNS, _token_item(token), TOKEN_BITS),)
        if len(token) >= PREFIX_LEN:
            got += (_hit(PREFIX_COLUMNS, _prefix_item(token[:PREFIX_LEN]), PREFIX_BITS),)
        if len(_TOKEN_HITS) >= _CACHE_MAX:
            _TOKEN_HITS.clear()
        _TOKEN_HITS[token] = got
    return got


def _key_hit(key: str) -> _Hit:
    got = _KEY_HITS.get(key)
    if got is None:
        got = _hit(FIELD_COLUMNS, _field_item(key), FIELD_BITS)
        if len(_KEY_HITS) >= _CACHE_MAX:
            _KEY_HITS.clear()
        _KEY_HITS[key] = got
    return got


def signature(doc: Doc) -> list[int]:
    """The post's Bloom filter: one 64-bit value per column of ``SIGNATURE_COLUMNS``."""
    acc = [0] * len(SIGNATURE_COLUMNS)
    cache = _TOKEN_HITS
    for token in set(doc.st.split()):
        hits = cache.get(token)
        for col, mask in hits if hits is not None else _token_hits(token):
            acc[col] |= mask
    for key in doc.keys:
        col, mask = _key_hit(key)
        acc[col] |= mask
    return acc


# --- the index table ---------------------------------------------------------------------------------
_INDEX_FIELDS: list[tuple[str, pa.DataType]] = [
    ("platform", pa.string()),
    ("post_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("ingested_at", pa.timestamp("us", tz="UTC")),
    ("lang", pa.string()),
    ("author_h", pa.uint64()),
    ("st", pa.string()),
    *[(c, pa.uint64()) for c in SIGNATURE_COLUMNS],
]
INDEX_SCHEMA: Final = pa.schema(_INDEX_FIELDS)


def index_rows(posts: Sequence[Post], docs: Sequence[Doc] | None = None) -> pa.Table:
    """The ``post_search`` rows for ``posts`` (``docs``: their ``doc_of``, when already computed)."""
    if docs is None:
        docs = [doc_of(p) for p in posts]
    sigs = np.array([signature(d) for d in docs], dtype=np.uint64).reshape(len(docs), len(SIGNATURE_COLUMNS))
    arrays: list[pa.Array[Any]] = [
        pa.array([p.platform for p in posts], pa.string()),
        pa.array([p.post_id for p in posts], pa.string()),
        pa.array([p.created_at for p in posts], pa.timestamp("us", tz="UTC")),
        pa.array([p.ingested_at for p in posts], pa.timestamp("us", tz="UTC")),
        pa.array([post_lang(p) for p in posts], pa.string()),
        pa.array([author_hash(p.author_key) for p in posts], pa.uint64()),
        pa.array([d.indexed_text for d in docs], pa.string()),
        *[pa.array(sigs[:, i], pa.uint64()) for i in range(len(SIGNATURE_COLUMNS))],
    ]
    return pa.Table.from_arrays(arrays, schema=INDEX_SCHEMA)


def write_index_table(conn: duckdb.DuckDBPyConnection, rows: pa.Table, *, replace: bool = True) -> None:
    """Upsert ``index_rows`` output, skipping tombstoned posts (as ``Store.write`` does for posts).
    Run it inside the transaction that writes the posts. ``replace=False``: none of the rows' posts
    is indexed yet (``Store.replacing`` is off), so a plain INSERT does (12.5 against 20-21 µs a
    row)."""
    if rows.num_rows == 0:
        return
    if rows.num_rows > 1:
        rows = last_per_key(rows)  # last write wins within a batch, as in Store.write
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    conn.register("_murmur_search_rows", rows)
    try:
        conn.execute(f"{verb} INTO post_search BY NAME {untombstoned('_murmur_search_rows')}")
    finally:
        # after a failed statement the transaction is aborted and so is this: the failure is the news
        with contextlib.suppress(duckdb.Error):
            conn.unregister("_murmur_search_rows")


def write_token_index(conn: duckdb.DuckDBPyConnection, posts: Sequence[Post]) -> None:
    """Index ``posts`` for historical search (inside the transaction that stores them)."""
    write_index_table(conn, index_rows(posts))


INDEX_VERSION = "2026-12-04"
"""The tokenizer and field keys ``post_search`` rows were built with. Bump it with any change to
``murmur.text`` (folding, words, hashtags) or to ``field_keys``: a store whose index carries another
version is rebuilt when a writer opens it (``ensure_current_index``), or history and live matching
would read the same query differently."""
_INDEX_VERSION_KEY = "post_search_version"


def ensure_current_index(conn: duckdb.DuckDBPyConnection) -> int:
    """Rebuild ``post_search`` if it was built with another ``INDEX_VERSION`` (and index the posts it
    lacks either way). Returns how many posts were (re)indexed."""
    rows = conn.execute("SELECT value FROM meta WHERE key = ?", [_INDEX_VERSION_KEY]).fetchall()
    built = str(rows[0][0]) if rows else None
    if built != INDEX_VERSION:
        stale = int(conn.execute("SELECT count(*) FROM post_search").fetchall()[0][0])
        if stale:
            log.warning(
                "the search index of %d posts was built by an older tokenizer (%s): rebuilding it",
                stale,
                built or "before versions",
            )
            conn.execute("DELETE FROM post_search")
    done = reindex(conn)
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_INDEX_VERSION_KEY, INDEX_VERSION])
    return done


def reindex(conn: duckdb.DuckDBPyConnection, *, batch: int = 20_000) -> int:
    """Index every stored post that ``post_search`` lacks (posts written before migration 2 or by a
    writer without the query layer's hook). Returns how many were indexed."""
    cols = ", ".join(f"p.{c}" for c in POST_COLUMNS)
    done = 0
    while True:
        rel = conn.sql(
            f"SELECT {cols} FROM posts p ANTI JOIN post_search s USING (platform, post_id) LIMIT {int(batch)}"
        )
        table = rel.to_arrow_table() if rel is not None else None
        if table is None or table.num_rows == 0:
            return done
        posts = posts_from_table(table)
        conn.execute("BEGIN TRANSACTION")
        try:
            write_token_index(conn, posts)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done += len(posts)
