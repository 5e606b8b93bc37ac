"""The query language's parser: text → ``Query`` (see docs/query-language.md).

Grammar, loosest binding first::

    query    := or_expr END
    or_expr  := and_expr ( "OR" and_expr )*
    and_expr := near_expr ( ["AND"] near_expr )*          juxtaposition is AND
    near_expr:= unary [ ("NEAR/n" | "NEAR/nf") unary ]     not chainable
    unary    := ("NOT" | "-") unary | primary
    primary  := word | word* | "phrase" | "phrase*" | field:value | #tag | "(" or_expr ")"

Operators are upper case (``and``/``or``/``not`` in lower case are words). A NEAR operand is a term,
phrase or wildcard, or a parenthesised OR of them. A query must require something: a NOT-only
query (or an OR branch that only excludes) is rejected, live and historical alike.

Errors are ``QuerySyntaxError`` with the 0-based position of the problem and what was expected;
``str(error)`` shows the query with a caret under that position.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from murmur.errors import PrivacyError, QuerySyntaxError
from murmur.query.ast import MAX_DEPTH, MAX_NEAR, And, Field, Near, Node, Not, Or, Query, Term
from murmur.text import HASH_SIGNS, fold, is_segmented_char, tokenize
from murmur.types import PLATFORMS

FIELDS: Final[tuple[str, ...]] = ("lang", "platform", "site", "hashtag", "sentiment", "country", "has", "is")
AUTHOR_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "author",
        "user",
        "from",
        "by",
        "username",
        "handle",
        "account",
        "to",
        "mention",
        "screen_name",
        "poster",
    }
)
_ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "platform": PLATFORMS,
    "sentiment": ("negative", "neutral", "positive"),
    "has": ("link", "media"),
    "is": ("reply", "repost"),
}
_LANG = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")
_COUNTRY = re.compile(r"^[a-z]{2}$")
_DOMAIN = re.compile(r"^[^\s/:@?#]+$")
_FIELD_WORD = re.compile(r"^([A-Za-z_]+):")
_NEAR = re.compile(r"^NEAR/(\d+)(f?)$")
_OPEN_QUOTES = ('"', "“", "„", "”")
_CLOSE_QUOTES = {'"': '"', "“": "”", "„": "“", "”": "”"}  # ”…”: Swedish, Finnish
_WORD_STOP = set('()"“”„')
"""Characters that end a word besides whitespace (any, as ``str.isspace`` says: an ideographic space
or a no-break space separates like a space): each must start a token of its own in ``_lex`` (or it
loops)."""
MIN_PREFIX = 2
"""Letters a wildcard needs before ``*`` (one is enough in scripts segmented per character)."""


class AuthorFieldError(QuerySyntaxError, PrivacyError):
    """A query asked for an author: murmur has no author field, by design."""


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    """LP, RP, AND, OR, NOT, MINUS, NEAR, WORD, PHRASE, FIELD, END."""
    pos: int
    text: str = ""
    value: str = ""
    value_pos: int = 0
    distance: int = 0
    ordered: bool = False


_OPERAND_START = frozenset({"WORD", "PHRASE", "FIELD", "LP", "NOT", "MINUS"})
_DESCRIBE = {
    "LP": "'('",
    "RP": "')'",
    "AND": "AND",
    "OR": "OR",
    "NOT": "NOT",
    "MINUS": "'-'",
    "NEAR": "NEAR",
    "END": "the end of the query",
}
_EXPECT_OPERAND = "a term, phrase, field or '('"


def parse(text: str) -> Query:
    """Parse ``text``; raises ``QuerySyntaxError`` (``AuthorFieldError`` for author fields)."""
    return Query(text, _Parser(text).parse())


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _lex(text)
        self.i = 0
        self.depth = 0  # open parentheses and NOTs around the current token

    def nest(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            msg = f"the query nests more than {MAX_DEPTH} parentheses and NOTs deep"
            raise self.error(msg, tok.pos)

    # --- helpers ---------------------------------------------------------------------------------
    def error(self, message: str, pos: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, query=self.text, position=pos)

    @property
    def cur(self) -> _Tok:
        return self.toks[self.i]

    def describe(self, tok: _Tok) -> str:
        if tok.kind in _DESCRIBE:
            return _DESCRIBE[tok.kind] if tok.kind != "NEAR" else tok.text
        return repr(tok.text)

    # --- grammar ---------------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.cur.kind == "END":
            msg = f"empty query: expected {_EXPECT_OPERAND}"
            raise self.error(msg, self.cur.pos)
        node = self.or_expr()
        if self.cur.kind == "RP":
            msg = "unexpected ')': there is no '(' for it to close"
            raise self.error(msg, self.cur.pos)
        if self.cur.kind != "END":  # pragma: no cover - every other token starts or joins an operand
            msg = f"unexpected {self.describe(self.cur)}"
            raise self.error(msg, self.cur.pos)
        _check_positive(node, self)
        return node

    def or_expr(self) -> Node:
        start = self.cur.pos
        children = [self.and_expr()]
        while self.cur.kind == "OR":
            self.i += 1
            children.append(self.and_expr_after("OR"))
        return children[0] if len(children) == 1 else Or(tuple(children), start)

    def and_expr_after(self, op: str) -> Node:
        if self.cur.kind not in _OPERAND_START:
            msg = f"expected {_EXPECT_OPERAND} after {op}, found {self.describe(self.cur)}"
            raise self.error(msg, self.cur.pos)
        return self.and_expr()

    def and_expr(self) -> Node:
        start = self.cur.pos
        children = [self.near_expr()]
        while True:
            if self.cur.kind == "AND":
                self.i += 1
                if self.cur.kind not in _OPERAND_START:
                    msg = f"expected {_EXPECT_OPERAND} after AND, found {self.describe(self.cur)}"
                    raise self.error(msg, self.cur.pos)
                children.append(self.near_expr())
            elif self.cur.kind in _OPERAND_START:
                children.append(self.near_expr())
            else:
                break
        return children[0] if len(children) == 1 else And(tuple(children), start)

    def near_expr(self) -> Node:
        left = self.unary()
        if self.cur.kind != "NEAR":
            return left
        op = self.cur
        self.i += 1
        if self.cur.kind not in _OPERAND_START:
            msg = f"expected {_EXPECT_OPERAND} after {op.text}, found {self.describe(self.cur)}"
            raise self.error(msg, self.cur.pos)
        right = self.unary()
        if self.cur.kind == "NEAR":
            msg = (
                f"NEAR cannot be chained: {self.cur.text} follows another NEAR; "
                "combine two NEARs with AND, e.g. (a NEAR/3 b) AND (b NEAR/3 c)"
            )
            raise self.error(msg, self.cur.pos)
        return Near(self.near_side(left, op), self.near_side(right, op), op.distance, op.ordered, left.pos)

    def near_side(self, node: Node, op: _Tok) -> tuple[Term, ...]:
        if isinstance(node, Term):
            return (node,)
        if isinstance(node, Or):
            out: list[Term] = []
            for c in node.children:
                out.extend(self.near_side(c, op))
            return tuple(out)
        what = {Not: "a negation", And: "an AND group", Near: "a NEAR group", Field: "a field"}[type(node)]
        hint = " (to exclude a NEAR match, write NOT (a NEAR/3 b))" if isinstance(node, Not) else ""
        msg = f"{op.text} joins terms, phrases, wildcards or OR-groups of them, not {what}{hint}"
        raise self.error(msg, node.pos)

    def unary(self) -> Node:
        tok = self.cur
        if tok.kind in ("NOT", "MINUS"):
            self.i += 1
            if self.cur.kind not in _OPERAND_START:
                what = "NOT" if tok.kind == "NOT" else "'-'"
                msg = f"expected {_EXPECT_OPERAND} after {what}, found {self.describe(self.cur)}"
                raise self.error(msg, self.cur.pos)
            self.nest(tok)
            node = Not(self.unary(), tok.pos)
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        tok = self.cur
        if tok.kind == "LP":
            self.i += 1
            if self.cur.kind == "RP":
                msg = f"empty parentheses: expected {_EXPECT_OPERAND} inside"
                raise self.error(msg, self.cur.pos)
            if self.cur.kind not in _OPERAND_START:
                msg = f"expected {_EXPECT_OPERAND} after '(', found {self.describe(self.cur)}"
                raise self.error(msg, self.cur.pos)
            self.nest(tok)
            node = self.or_expr()
            if self.cur.kind != "RP":
                msg = f"expected ')' to close the '(' at position {tok.pos}, found {self.describe(self.cur)}"
                raise self.error(msg, self.cur.pos)
            self.i += 1
            self.depth -= 1
            return node
        if tok.kind == "WORD":
            self.i += 1
            return self.term(tok.text, tok.pos, phrase=False)
        if tok.kind == "PHRASE":
            self.i += 1
            return self.term(tok.value, tok.pos + 1, phrase=True)
        if tok.kind == "FIELD":
            self.i += 1
            return self.field(tok)
        msg = f"expected {_EXPECT_OPERAND}, found {self.describe(tok)}"
        raise self.error(msg, tok.pos)

    # --- leaves ----------------------------------------------------------------------------------
    def term(self, raw: str, pos: int, *, phrase: bool) -> Term:
        star = raw.find("*")
        prefix = False
        if star >= 0:
            if star != len(raw) - 1:
                where = "a phrase" if phrase else "a word"
                msg = f"a wildcard '*' is allowed only at the end of {where}"
                raise self.error(msg, pos + star)
            body = raw[:-1]
            if not body or not (body[-1].isalnum() or unicodedata.category(body[-1]).startswith("M")):
                msg = "a wildcard '*' must come right after a letter or digit, e.g. vaccin*"
                raise self.error(msg, pos + star)
            prefix = True
            raw = body
        tokens = tuple(tokenize(raw))
        if not tokens:
            what = "phrase" if phrase else "word"
            msg = f"this {what} has no letters or digits to search for: {raw!r}"
            raise self.error(msg, pos)
        if prefix:
            last = tokens[-1]
            if len(last) < MIN_PREFIX and not is_segmented_char(last[0]):
                msg = (
                    f"a wildcard needs at least {MIN_PREFIX} letters before '*' (too many words would match)"
                )
                raise self.error(msg, pos + len(raw))
        return Term(tokens, prefix, phrase and len(tokens) > 1, pos)

    def field(self, tok: _Tok) -> Field:
        name = tok.text.lower()
        value_pos = tok.value_pos
        raw = tok.value
        if name in AUTHOR_FIELDS:
            msg = (
                f"murmur has no author field ({tok.text}:): it describes crowds, never persons, "
                "so posts cannot be searched by who wrote them; search the text instead"
            )
            raise AuthorFieldError(msg, query=self.text, position=tok.pos)
        if name not in FIELDS:
            msg = (
                f"unknown field '{tok.text}:'; the fields are {', '.join(f + ':' for f in FIELDS)} "
                f'and #tag; to search for the text itself, quote it: "{tok.text}:{raw}"'
            )
            raise self.error(msg, tok.pos)
        if not raw:
            msg = f"expected a value after '{tok.text}:'"
            raise self.error(msg, value_pos)
        if "*" in raw:
            msg = f"fields take exact values; '{tok.text}:' does not accept wildcards"
            raise self.error(msg, value_pos + raw.index("*"))
        value = _field_value(raw)
        if name in _ENUMS:
            allowed = _ENUMS[name]
            if value not in allowed:
                msg = f"unknown value {raw!r} for '{tok.text}:'; expected one of {', '.join(allowed)}"
                raise self.error(msg, value_pos)
        elif name == "lang" and not _LANG.match(value):
            msg = f"'{tok.text}:' takes a language code such as en, pt or zh-hant, not {raw!r}"
            raise self.error(msg, value_pos)
        elif name == "country" and not _COUNTRY.match(value):
            msg = f"'{tok.text}:' takes a two-letter ISO 3166 country code such as DE or BR, not {raw!r}"
            raise self.error(msg, value_pos)
        elif name == "site":
            # stored sites and domains are hosts without "www." (urls.domain_of): so is the value
            value = value.strip(".").removeprefix("www.")
            if not value or not _DOMAIN.match(value):
                msg = f"'{tok.text}:' takes a domain such as nytimes.com, not a URL or address ({raw!r})"
                raise self.error(msg, value_pos)
        elif name == "hashtag":
            value = value.lstrip("#")
            if not tokenize(value):  # as for #tag: 'hashtag:%' would print as '#%', which is refused
                msg = "expected a hashtag after 'hashtag:', e.g. hashtag:cop30"
                raise self.error(msg, value_pos)
        return Field(name, value, tok.pos)


def _field_value(raw: str) -> str:
    """Field values compare folded, with no whitespace (as ``text.field_keys`` stores them)."""
    return "".join(fold(raw).split())


def _check_positive(node: Node, parser: _Parser) -> None:
    """Refuse queries that could only exclude: they would match (almost) every post."""
    bad = _first_negative_only(node)
    if bad is not None:
        msg = (
            "this part can only exclude posts: a query (and every OR branch) needs at least one term, "
            "phrase or field that must be present, e.g. lang:en -spam"
        )
        raise parser.error(msg, bad.pos)


def _first_negative_only(node: Node) -> Node | None:
    if isinstance(node, Term | Field | Near):
        return None
    if isinstance(node, Not):
        return node
    if isinstance(node, And):
        if any(_first_negative_only(c) is None for c in node.children):
            return None
        return node
    for c in node.children:
        bad = _first_negative_only(c)
        if bad is not None:
            return bad
    return None


# --- lexer ---------------------------------------------------------------------------------------
def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            toks.append(_Tok("LP", i, "("))
            i += 1
        elif ch == ")":
            toks.append(_Tok("RP", i, ")"))
            i += 1
        elif ch in _OPEN_QUOTES:
            close = _CLOSE_QUOTES[ch]
            end = text.find(close, i + 1)
            if end < 0 and close != '"':
                end = text.find('"', i + 1)
            if end < 0:
                msg = f"unterminated phrase: expected a closing {close} for this quote"
                raise QuerySyntaxError(msg, query=text, position=i)
            body = text[i + 1 : end]
            if not body.strip():
                msg = "empty phrase: expected words between the quotes"
                raise QuerySyntaxError(msg, query=text, position=i)
            toks.append(_Tok("PHRASE", i, text[i : end + 1], body))
            i = end + 1
        elif ch == "-":
            if i + 1 >= n or text[i + 1].isspace() or text[i + 1] == ")":
                msg = (
                    "'-' must be followed directly (no space) by the term, phrase, field or group to exclude"
                )
                raise QuerySyntaxError(msg, query=text, position=i)
            toks.append(_Tok("MINUS", i, "-"))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _WORD_STOP:
                j += 1
            toks.append(_word(text, text[i:j], i))
            i = j
    toks.append(_Tok("END", n))
    return toks


def _word(query: str, word: str, pos: int) -> _Tok:
    if word in ("AND", "OR", "NOT"):
        return _Tok(word, pos, word)
    if word == "NEAR" or word.startswith("NEAR/"):  # NEARBY, NEARLY in capitals are words
        m = _NEAR.match(word)
        if m is None:
            msg = f"expected NEAR/n or NEAR/nf (n: most words between), e.g. NEAR/5, found {word!r}"
            raise QuerySyntaxError(msg, query=query, position=pos)
        distance = int(m.group(1))
        if distance > MAX_NEAR:
            msg = f"NEAR distance {distance} is too large: at most {MAX_NEAR} words"
            raise QuerySyntaxError(msg, query=query, position=pos + 5)
        return _Tok("NEAR", pos, word, distance=distance, ordered=m.group(2) == "f")
    if word.startswith(tuple(HASH_SIGNS)):  # "#tag", or "＃tag" as Japanese and Chinese input methods type it
        tag = word[1:]
        if not tag or not tokenize(tag):
            msg = "expected a hashtag after '#', e.g. #cop30"
            raise QuerySyntaxError(msg, query=query, position=pos)
        return _Tok("FIELD", pos, "hashtag", tag, value_pos=pos + 1)
    m = _FIELD_WORD.match(word)
    if m is not None:
        return _Tok("FIELD", pos, m.group(1), word[m.end() :], value_pos=pos + m.end())
    return _Tok("WORD", pos, word)
