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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import duckdb
import numpy as np
import numpy.typing as npt
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
_KEY_SEPARATOR: Final = " " + KEY_MARK
_CACHE_MAX: Final = 200_000
"""Entries each cache of field values and keys below keeps (least recently used first out)."""

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
        if not self.keys:
            return self.st
        return f"{self.st}{KEY_MARK}{_KEY_SEPARATOR.join(sorted(self.keys))} "

    @classmethod
    def from_indexed(cls, indexed: str) -> Doc:
        """The ``Doc`` whose ``indexed_text`` is ``indexed`` (a ``post_search.st`` value)."""
        cut = indexed.find(KEY_MARK)
        if cut < 0:
            return cls(indexed, frozenset())
        # the keys: KEY_MARK + " \x01".join(keys) + " " after the search text (``indexed_text``)
        return cls(indexed[:cut], frozenset(indexed[cut + 1 : -1].split(_KEY_SEPARATOR)))


@lru_cache(maxsize=_CACHE_MAX)
def key_value(raw: str) -> str:
    """A field value as keys hold it: folded, without whitespace."""
    return "".join(fold(raw).split())


@lru_cache(maxsize=_CACHE_MAX)
def _site_keys(host: str) -> tuple[str, ...]:
    labels = key_value(host).strip(".").split(".")
    return tuple("site=" + ".".join(labels[i:]) for i in range(len(labels)) if labels[i])


def post_lang(post: Post) -> str | None:
    """The language a query's ``lang:`` sees: the detected one, else the one the platform declared."""
    return post.lang if post.lang is not None else post.lang_declared


@lru_cache(maxsize=_CACHE_MAX)
def _lang_keys(lang: str) -> tuple[str, ...]:
    """``lang=`` keys of a language and of what contains it: ``pt-br`` is also ``pt``, and a language
    within a macrolanguage (``MACROLANGUAGES``: ``ary``) is also that macrolanguage (``ar``)."""
    parts = key_value(lang).replace("_", "-").split("-")
    keys = tuple("lang=" + "-".join(parts[: i + 1]) for i in range(len(parts)) if parts[i])
    macro = MACROLANGUAGES.get(parts[0])
    return (*keys, "lang=" + macro) if macro else keys


@lru_cache(maxsize=_CACHE_MAX)
def _platform_key(platform: str) -> str:
    return "platform=" + key_value(platform)


def field_keys(post: Post) -> frozenset[str]:
    """Every ``field=value`` a query can ask of ``post`` (see docs/query-language.md, "Fields")."""
    keys = [_platform_key(post.platform)]
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
# An item (a token, a token's 3-letter prefix, a field key) is hashed from its code points
# c_0 … c_{n-1}: h = splitmix64((Σ c_i · P^i mod 2^64) XOR tag), tag 0 for a token, 1 for a key,
# 2 for a prefix. Its two bits sit in column ``h mod words`` of its bank, at bits ``(h >> 8) mod 64``
# and ``(h >> 14) mod 64``. A post's whole row is computed for a batch at once in NumPy
# (``signatures``: the polynomial from prefix sums over the batch's code points); a query's few
# items by the same formula in Python (``item_hash``), and a test holds the two equal.

_P: Final = 0x100000001B3
"""The polynomial's base (FNV-64's prime): odd, so it has an inverse modulo 2^64."""
_P_INVERSE: Final = pow(_P, -1, 1 << 64)
_TOKEN_TAG: Final = 0
_KEY_TAG: Final = 1
_PREFIX_TAG: Final = 2
_TOKEN_WORDS: Final = TOKEN_BITS // 64
_PREFIX_WORDS: Final = PREFIX_BITS // 64
_FIELD_WORDS: Final = FIELD_BITS // 64
_PREFIX_AT: Final = len(TOKEN_COLUMNS)  # the first column of each bank in SIGNATURE_COLUMNS
_FIELD_AT: Final = _PREFIX_AT + len(PREFIX_COLUMNS)
assert all(w & (w - 1) == 0 for w in (_TOKEN_WORDS, _PREFIX_WORDS, _FIELD_WORDS)), "banks of 2^k columns"
_CHUNK: Final = 1 << 16
"""Code points a batch's texts are cut into for their prefix sums (``signatures``): ~1 MB of powers."""


def _mix(h: int) -> int:
    """splitmix64's finalizer: spreads the polynomial's bits over all 64."""
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _MASK64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _MASK64
    return h ^ (h >> 31)


def item_hash(item: str, tag: int) -> int:
    """The 64-bit hash of one item (see above); ``signatures`` computes the same for whole batches."""
    h, power = 0, 1
    for ch in item:
        h = (h + ord(ch) * power) & _MASK64
        power = (power * _P) & _MASK64
    return _mix(h ^ tag)


def _bits(h: int) -> int:
    return (1 << ((h >> 8) & 63)) | (1 << ((h >> 14) & 63))


def _bank_mask(h: int, words: int) -> int:
    """An item's two bits as a mask over its whole bank (``words`` columns)."""
    return _bits(h) << (64 * (h % words))


def token_mask(token: str) -> int:
    """The bits (over the ``TOKEN_BITS`` bank) a token sets."""
    return _bank_mask(item_hash(token, _TOKEN_TAG), _TOKEN_WORDS)


def prefix_mask(prefix: str) -> int:
    """The bits (over the ``PREFIX_BITS`` bank) a ``PREFIX_LEN``-letter token prefix sets."""
    return _bank_mask(item_hash(prefix, _PREFIX_TAG), _PREFIX_WORDS)


def field_mask(key: str) -> int:
    """The bits (over the ``FIELD_BITS`` bank) a field key sets."""
    return _bank_mask(item_hash(key, _KEY_TAG), _FIELD_WORDS)


def bank_columns(bank: tuple[str, ...], mask: int) -> dict[str, int]:
    """A bank-wide mask split into per-column 64-bit masks (columns with no bit left out)."""
    out: dict[str, int] = {}
    for i, col in enumerate(bank):
        part = (mask >> (64 * i)) & _MASK64
        if part:
            out[col] = part
    return out


_U64 = np.uint64
U64s = npt.NDArray[np.uint64]
Ints = npt.NDArray[np.int64]
_powers: U64s = np.ones(1, dtype=np.uint64)
_inverse_powers: U64s = np.ones(1, dtype=np.uint64)


def _powers_to(n: int) -> tuple[U64s, U64s]:
    """P^i and P^-i mod 2^64 for i < n (at least), kept for the next batch: n is ``_CHUNK`` + 1, or
    the longest text's length where a text is longer."""
    global _powers, _inverse_powers
    if len(_powers) < n:
        size = max(n, 2 * len(_powers), 1024)
        _powers = np.full(size, _P, dtype=np.uint64)
        _powers[0] = 1
        np.cumprod(_powers, out=_powers)  # unsigned products wrap: arithmetic modulo 2^64
        _inverse_powers = np.full(size, _P_INVERSE, dtype=np.uint64)
        _inverse_powers[0] = 1
        np.cumprod(_inverse_powers, out=_inverse_powers)
    return _powers, _inverse_powers


def _mix_array(h: U64s) -> U64s:
    h = h ^ (h >> _U64(30))
    h = h * _U64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> _U64(27))
    h = h * _U64(0x94D049BB133111EB)
    return h ^ (h >> _U64(31))


def _bits_array(h: U64s) -> U64s:
    one = _U64(1)
    return (one << ((h >> _U64(8)) & _U64(63))) | (one << ((h >> _U64(14)) & _U64(63)))


def signatures(texts: Sequence[str]) -> U64s:
    """The Bloom filters of posts, one row of ``SIGNATURE_COLUMNS`` 64-bit values for each of
    ``texts`` (``Doc.indexed_text``: items between single spaces, keys marked with ``KEY_MARK``).
    ~4 µs a post for a batch of 2,000 real posts (~190 characters each), against ~12-24 µs for the
    same bits item by item in Python."""
    out = np.zeros((len(texts), len(SIGNATURE_COLUMNS)), dtype=np.uint64)
    if not texts:
        return out
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    begins = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lengths[:-1], out=begins[1:])
    text_ends = begins + lengths
    # one code point per element (UTF-32), so positions in the array are positions in the strings
    points = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    space = ord(" ")
    bad = (lengths == 0) | (points[np.minimum(begins, len(points) - 1)] != space)
    bad |= points[np.maximum(text_ends - 1, 0)] != space
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"signatures: text {i} does not begin and end with a space: {texts[i][:40]!r}"
        raise ValueError(msg)
    # Prefix sums of c_i · P^(i - base), base the first code point of the text's chunk: whole texts
    # cut into chunks of at most _CHUNK code points, so each chunk's powers are one slice
    limit = max(_CHUNK, int(lengths.max()))
    powers, inverse = _powers_to(limit + 1)
    base = np.empty(len(texts), dtype=np.int64)
    sums = np.zeros(len(points) + 1, dtype=np.uint64)
    first = 0
    while first < len(texts):
        begin = int(begins[first])
        last = int(np.searchsorted(text_ends, begin + limit, side="right"))  # texts [first, last) fit
        stop = int(text_ends[last - 1])
        base[first:last] = begin
        np.cumsum(points[begin:stop] * powers[: stop - begin], out=sums[begin + 1 : stop + 1])
        first = last

    spaces = np.flatnonzero(points == space)
    starts, ends = spaces[:-1] + 1, spaces[1:]
    item = ends > starts  # the space between two texts, or between two items, holds none
    starts, ends = starts[item], ends[item]
    row = np.searchsorted(begins, starts, side="right") - 1
    item_base = base[row]

    def poly(start: Ints, end: Ints, at: Ints) -> U64s:
        """Σ c_i · P^(i - start) over [start, end) of each item (``at``: its chunk's base)."""
        got: U64s = (sums[end] - sums[start]) * inverse[start - at]
        return got

    key = points[starts] == ord(KEY_MARK)
    tag = np.where(key, _U64(_KEY_TAG), _U64(_TOKEN_TAG))
    hashes = _mix_array(poly(starts + key, ends, item_base) ^ tag)  # a key without its mark
    column = np.where(key, _FIELD_AT + (hashes & _U64(_FIELD_WORDS - 1)), hashes & _U64(_TOKEN_WORDS - 1))
    prefixed = ~key & (ends - starts >= PREFIX_LEN)
    p_starts = starts[prefixed]
    p_hashes = _mix_array(poly(p_starts, p_starts + PREFIX_LEN, item_base[prefixed]) ^ _U64(_PREFIX_TAG))
    p_column = _PREFIX_AT + (p_hashes & _U64(_PREFIX_WORDS - 1))
    flat = out.reshape(-1)
    width = len(SIGNATURE_COLUMNS)
    np.bitwise_or.at(flat, row * width + column.astype(np.int64), _bits_array(hashes))
    np.bitwise_or.at(flat, row[prefixed] * width + p_column.astype(np.int64), _bits_array(p_hashes))
    return out


def signature(doc: Doc) -> list[int]:
    """One post's Bloom filter (``signatures`` of its indexed text)."""
    return [int(v) for v in signatures([doc.indexed_text])[0]]


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


INDEX_READS: Final = frozenset(
    {
        "platform",
        "post_id",
        "created_at",
        "ingested_at",
        "author_key",
        "text",
        "lang",
        "lang_declared",
        "sentiment",
        "country",
        "site",
        "domains",
        "hashtags",
        "has_link",
        "has_media",
        "is_reply",
        "is_repost",
    }
)
"""The ``Post`` fields ``index_rows`` (and ``doc_of``) read: the rows of a post whose other fields
change stay the same (a test holds this)."""


def index_rows(posts: Sequence[Post], docs: Sequence[Doc] | None = None) -> pa.Table:
    """The ``post_search`` rows for ``posts`` (``docs``: their ``doc_of``, when already computed)."""
    if docs is None:
        docs = [doc_of(p) for p in posts]
    texts = [d.indexed_text for d in docs]
    sigs = signatures(texts)
    arrays: list[pa.Array[Any]] = [
        pa.array([p.platform for p in posts], pa.string()),
        pa.array([p.post_id for p in posts], pa.string()),
        pa.array([p.created_at for p in posts], pa.timestamp("us", tz="UTC")),
        pa.array([p.ingested_at for p in posts], pa.timestamp("us", tz="UTC")),
        pa.array([post_lang(p) for p in posts], pa.string()),
        pa.array([author_hash(p.author_key) for p in posts], pa.uint64()),
        pa.array(texts, pa.string()),
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


INDEX_VERSION = "2026-12-04.2"
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
