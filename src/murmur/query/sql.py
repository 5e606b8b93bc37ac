"""Historical evaluation: a query tree → a DuckDB predicate over the store's ``post_search`` table.

The predicate tests exactly what the live matcher tests (see ``ast.py`` and ``index.py``):
``contains(st, ' word ')`` for terms, ``contains(st, ' \\x01lang=de ')`` for fields,
``regexp_matches(st, pattern)`` for NEAR, combined with NOT/AND/OR. Each of those tests sits behind
the Bloom-filter bits it needs (``index.py``), and the whole behind the bits the query needs, so
DuckDB reads bits for every row but tests the text only where a match is possible::

    CASE WHEN <bits every match has> THEN (<bits of a> AND contains(st, ' a ')) OR … ELSE false END

A test behind its own bits is the same test (the bits are a necessary condition), so this changes
the cost, never the answer. Measured alternatives that lost: pushing one bit test and the text test
into DuckDB's scan as separate filters (DuckDB pushes only some expressions, then sometimes in the
costly order), and testing the text behind the query's bits only (an OR of common words tested all
its needles on the candidates of each).

Needles and patterns go into the SQL as string literals (so DuckDB compiles each regular expression
once); they consist of folded word characters, spaces, the key mark and the fixed regex syntax above,
and are quoted all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from murmur.query.ast import And, Field, Near, Node, Not, Query, Term
from murmur.query.index import (
    FIELD_COLUMNS,
    KEY_MARK,
    PREFIX_COLUMNS,
    PREFIX_LEN,
    TOKEN_COLUMNS,
    bank_columns,
    field_mask,
    prefix_mask,
    token_mask,
)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def field_needle(f: Field) -> str:
    """What a field test looks for in ``post_search.st``."""
    return f" {KEY_MARK}{f.key} "


@dataclass(frozen=True, slots=True)
class _Bits:
    masks: dict[str, int]
    """Column → bits that must all be set."""


@dataclass(frozen=True, slots=True)
class _All:
    parts: tuple[_Req, ...]


@dataclass(frozen=True, slots=True)
class _Any:
    parts: tuple[_Req, ...]


_Req = _Bits | _All | _Any


def _term_bits(t: Term) -> _Bits | None:
    masks: dict[str, int] = {}
    last = len(t.tokens) - 1
    for i, tok in enumerate(t.tokens):
        if i == last and t.prefix:
            if len(tok) >= PREFIX_LEN:
                _merge(masks, bank_columns(PREFIX_COLUMNS, prefix_mask(tok[:PREFIX_LEN])))
        else:
            _merge(masks, bank_columns(TOKEN_COLUMNS, token_mask(tok)))
    return _Bits(masks) if masks else None


def _merge(into: dict[str, int], more: dict[str, int]) -> None:
    for col, m in more.items():
        into[col] = into.get(col, 0) | m


def _required(node: Node) -> _Req | None:
    """What the Bloom filter of every matching post must have (None: nothing known)."""
    if isinstance(node, Term):
        return _term_bits(node)
    if isinstance(node, Field):
        return _Bits(bank_columns(FIELD_COLUMNS, field_mask(node.key)))
    if isinstance(node, Not):
        return None
    if isinstance(node, Near):
        return _conj([_disj([_term_bits(t) for t in side]) for side in (node.left, node.right)])
    if isinstance(node, And):
        return _conj([_required(c) for c in node.children])
    return _disj([_required(c) for c in node.children])


def _conj(parts: list[_Req | None]) -> _Req | None:
    masks: dict[str, int] = {}
    rest: list[_Req] = []
    for p in parts:
        if isinstance(p, _Bits):
            _merge(masks, p.masks)
        elif isinstance(p, _All):
            for q in p.parts:
                if isinstance(q, _Bits):
                    _merge(masks, q.masks)
                else:
                    rest.append(q)
        elif p is not None:
            rest.append(p)
    if masks:
        rest.insert(0, _Bits(masks))
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else _All(tuple(rest))


def _disj(parts: list[_Req | None]) -> _Req | None:
    if not parts or any(p is None for p in parts):
        return None
    real = [p for p in parts if p is not None]
    return real[0] if len(real) == 1 else _Any(tuple(real))


def _bits_sql(col: str, mask: int, a: str) -> str:
    return f"({a}{col} & {mask}::UBIGINT) = {mask}::UBIGINT"


def _req_sql(req: _Req, a: str) -> str:
    if isinstance(req, _Bits):
        return " AND ".join(_bits_sql(col, m, a) for col, m in sorted(req.masks.items()))
    joiner = " AND " if isinstance(req, _All) else " OR "
    return "(" + joiner.join(_req_sql(p, a) for p in req.parts) + ")"


def _guarded(req: _Req | None, test: str, a: str) -> str:
    """``test`` behind its own necessary bits, so DuckDB runs it only on rows that have them."""
    return test if req is None else f"({_req_sql(req, a)} AND {test})"


def _exact_sql(node: Node, a: str) -> str:
    if isinstance(node, Term):
        return _guarded(_term_bits(node), f"contains({a}st, {_lit(node.needle)})", a)
    if isinstance(node, Field):
        return _guarded(_required(node), f"contains({a}st, {_lit(field_needle(node))})", a)
    if isinstance(node, Not):
        return f"(NOT {_exact_sql(node.child, a)})"
    if isinstance(node, Near):
        return _guarded(_required(node), f"regexp_matches({a}st, {_lit(node.pattern)})", a)
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(_exact_sql(c, a) for c in node.children) + ")"


def compile_where(query: Query | Node, *, alias: str = "") -> str:
    """A boolean SQL expression over ``post_search`` (columns qualified by ``alias`` when given) that is
    true exactly for the posts the live matcher matches (see module doc for its shape)."""
    root = query.root if isinstance(query, Query) else query
    a = f"{alias}." if alias else ""
    exact = _exact_sql(root, a)
    req = _required(root)
    if req is None:
        return exact
    return f"(CASE WHEN {_req_sql(req, a)} THEN {exact} ELSE false END)"
