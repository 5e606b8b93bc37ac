"""The search index's Bloom bits: what a post's row sets (``signature``) is exactly what a query
over history tests for the same words and fields (``token_mask``, ``prefix_mask``, ``field_mask``)."""

from __future__ import annotations

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
    token_mask,
)

TOKENS = ["a", "ab", "abc", "climate", "strike", "東", "京", "ñandú", "x" * 64, "2026", "tor", "ok"]
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
