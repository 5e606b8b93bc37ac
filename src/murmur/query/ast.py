"""The parsed form of a query, and the strings both evaluators test.

Every leaf says exactly which substring (or regular expression) of a post's search text
(``murmur.text.search_text``) or field keys (``field_keys``) it needs. The live matcher
(``matcher.py``) tests those strings in Python, the historical search (``sql.py``) hands the very same
strings to DuckDB, so both give the same posts by construction:

* ``Term``   a word, a phrase, or either with a trailing ``*``: the needle ``" t1 t2 "``
             (``" t1 t2"`` with a wildcard) must occur in the search text.
* ``Field``  ``lang:de`` and friends: the key ``"lang=de"`` must be among the post's field keys.
* ``Near``   one alternative of each side within ``distance`` words: a regular expression over the
             search text, identical in Python's ``re`` and DuckDB's RE2 (only literals, ``[^ ]``,
             ``{0,n}``, alternation and non-capturing groups).
* ``Not`` / ``And`` / ``Or`` combine them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_NEAR = 100
"""The largest distance NEAR/n accepts."""
MAX_DEPTH = 64
"""Parentheses and NOTs may nest this deep (a machine-made query nested thousands deep would
overflow the parser, the matcher and the SQL compiler, which all recurse)."""


@dataclass(frozen=True, slots=True)
class Term:
    """A word, phrase or wildcard, as its folded tokens. ``prefix``: the last token is a prefix."""

    tokens: tuple[str, ...]
    prefix: bool = False
    phrase: bool = field(default=False, compare=False)
    """Written in quotes (only matters for printing)."""
    pos: int = field(default=0, compare=False)

    @property
    def needle(self) -> str:
        body = " " + " ".join(self.tokens)
        return body if self.prefix else body + " "

    @property
    def pattern(self) -> str:
        """This term as a regular expression over the search text, without the leading space."""
        body = " ".join(self.tokens)
        return body + "[^ ]*" if self.prefix else body


@dataclass(frozen=True, slots=True)
class Field:
    """A field test. ``name`` is one of ``FIELDS``; ``value`` is already folded and validated."""

    name: str
    value: str
    pos: int = field(default=0, compare=False)

    @property
    def key(self) -> str:
        return f"{self.name}={self.value}"


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Near:
    """Some alternative of ``left`` and some of ``right`` with at most ``distance`` other words
    between them; with ``ordered``, the left one comes first. Occurrences may not overlap."""

    left: tuple[Term, ...]
    right: tuple[Term, ...]
    distance: int
    ordered: bool = False
    pos: int = field(default=0, compare=False)

    @property
    def pattern(self) -> str:
        """``" (?:A)(?: [^ ]+){0,n} (?:B) "``, both ways round unless ordered."""
        a = "|".join(t.pattern for t in self.left)
        b = "|".join(t.pattern for t in self.right)
        gap = f"(?: [^ ]+){{0,{self.distance}}}" if self.distance else ""
        forward = f"(?:{a}){gap} (?:{b})"
        if self.ordered:
            return f" {forward} "
        return f" (?:{forward}|(?:{b}){gap} (?:{a})) "


Node = Term | Field | Not | And | Or | Near


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: the text as written and its tree."""

    text: str
    root: Node

    def __str__(self) -> str:
        return to_string(self.root)


def _quote_term(t: Term) -> str:
    body = " ".join(t.tokens)
    star = "*" if t.prefix else ""
    if len(t.tokens) == 1 and not t.phrase:
        return body + star
    return f'"{body}{star}"'


def _field_string(f: Field) -> str:
    return f"#{f.value}" if f.name == "hashtag" else f"{f.name}:{f.value}"


def to_string(node: Node) -> str:
    """A canonical query string for ``node``; parsing it gives back an equal tree."""
    if isinstance(node, Term):
        return _quote_term(node)
    if isinstance(node, Field):
        return _field_string(node)
    if isinstance(node, Not):
        return f"NOT {_wrapped(node.child)}"
    if isinstance(node, And):
        return " AND ".join(_wrapped(c) for c in node.children)
    if isinstance(node, Or):
        return " OR ".join(_wrapped(c) for c in node.children)
    side_l = _near_side(node.left)
    side_r = _near_side(node.right)
    return f"{side_l} NEAR/{node.distance}{'f' if node.ordered else ''} {side_r}"


def _near_side(terms: tuple[Term, ...]) -> str:
    if len(terms) == 1:
        return _quote_term(terms[0])
    return "(" + " OR ".join(_quote_term(t) for t in terms) + ")"


def _wrapped(node: Node) -> str:
    if isinstance(node, Term | Field):
        return to_string(node)
    return f"({to_string(node)})"


def walk(node: Node) -> list[Node]:
    """``node`` and all nodes under it, depth first."""
    out: list[Node] = [node]
    if isinstance(node, Not):
        out += walk(node.child)
    elif isinstance(node, And | Or):
        for c in node.children:
            out += walk(c)
    elif isinstance(node, Near):
        for t in (*node.left, *node.right):
            out += walk(t)
    return out
