"""The parser: every operator, precedence, nesting, and positioned errors for malformed queries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from murmur.errors import PrivacyError, QuerySyntaxError
from murmur.query.ast import MAX_DEPTH, And, Field, Near, Node, Not, Or, Term, to_string
from murmur.query.parser import AuthorFieldError, parse
from tests.query.strategies import SPACES, Vocabulary, queries


def t(*tokens: str, prefix: bool = False) -> Term:
    return Term(tuple(tokens), prefix)


def root(q: str) -> Node:
    return parse(q).root


# --- operators -------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("flood", t("flood")),
        ("Flood", t("flood")),
        ("CAFÉ", t("cafe")),
        ("a AND b", And((t("a"), t("b")))),
        ("a b", And((t("a"), t("b")))),
        ("a OR b", Or((t("a"), t("b")))),
        ("a NOT b", And((t("a"), Not(t("b"))))),
        ("a AND NOT b", And((t("a"), Not(t("b"))))),
        ("a -b", And((t("a"), Not(t("b"))))),
        ('a -"b c"', And((t("a"), Not(t("b", "c"))))),
        ("a -(b OR c)", And((t("a"), Not(Or((t("b"), t("c"))))))),
        ("a -lang:de", And((t("a"), Not(Field("lang", "de"))))),
        ('"climate strike"', t("climate", "strike")),
        ("“climate strike”", t("climate", "strike")),  # typographic quotes, as pasted from documents
        ("„Klima streik“", t("klima", "streik")),
        ("”climate strike”", t("climate", "strike")),  # Swedish, Finnish
        ('"Climate STRIKE*"', t("climate", "strike", prefix=True)),
        ("vaccin*", t("vaccin", prefix=True)),
        ("covid-19", t("covid", "19")),
        ("東京", t("東", "京")),
        ("東*", t("東", prefix=True)),
        ("flood NEAR/3 warning", Near((t("flood"),), (t("warning"),), 3, False)),
        ("flood NEAR/3f warning", Near((t("flood"),), (t("warning"),), 3, True)),
        ("flood NEAR/0 warning", Near((t("flood"),), (t("warning"),), 0, False)),
        (
            "vaccin* NEAR/5 (side OR effects)",
            Near((t("vaccin", prefix=True),), (t("side"), t("effects")), 5, False),
        ),
        (
            '("climate strike" OR klimastreik) NEAR/2f (berlin OR (hamburg OR köln))',
            Near((t("climate", "strike"), t("klimastreik")), (t("berlin"), t("hamburg"), t("koln")), 2, True),
        ),
        ("lang:pt", Field("lang", "pt")),
        ("LANG:PT-BR", Field("lang", "pt-br")),
        ("platform:bluesky", Field("platform", "bluesky")),
        ("site:NYTimes.com", Field("site", "nytimes.com")),
        ("site:WWW.NYTimes.com", Field("site", "nytimes.com")),  # stored hosts have no www.
        ("hashtag:COP30", Field("hashtag", "cop30")),
        ("#COP30", Field("hashtag", "cop30")),
        ("#Café", Field("hashtag", "cafe")),
        ("＃拡散希望", Field("hashtag", "拡散希望")),  # the full-width sign Japanese input methods type
        ("sentiment:negative", Field("sentiment", "negative")),
        ("country:DE", Field("country", "de")),
        ("has:link", Field("has", "link")),
        ("has:media", Field("has", "media")),
        ("is:reply", Field("is", "reply")),
        ("is:repost", Field("is", "repost")),
        ("and or not", And((t("and"), t("or"), t("not")))),  # operators are upper case only
        ("NEARLY NEARBY", And((t("nearly"), t("nearby")))),  # capitals that only begin like NEAR
        ("NEAR-death", t("near", "death")),
    ],
)
def test_operators(query: str, tree: Node) -> None:
    assert root(query) == tree


# --- precedence: NEAR > NOT/- > AND (explicit or juxtaposed) > OR ---------------------------------
@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("a OR b c", Or((t("a"), And((t("b"), t("c")))))),
        ("a OR b AND c", Or((t("a"), And((t("b"), t("c")))))),
        ("a AND b OR c", Or((And((t("a"), t("b"))), t("c")))),
        ("NOT a b", And((Not(t("a")), t("b")))),
        ("b NOT a OR c", Or((And((t("b"), Not(t("a")))), t("c")))),
        ("a NEAR/2 b OR c", Or((Near((t("a"),), (t("b"),), 2), t("c")))),
        ("a NEAR/2 b c", And((Near((t("a"),), (t("b"),), 2), t("c")))),
        ("c -(a NEAR/2 b)", And((t("c"), Not(Near((t("a"),), (t("b"),), 2))))),
        ("(a OR b) c", And((Or((t("a"), t("b"))), t("c")))),
        ("a OR b OR c", Or((t("a"), t("b"), t("c")))),
        ("a b c", And((t("a"), t("b"), t("c")))),
        ("#x lang:de a OR b", Or((And((Field("hashtag", "x"), Field("lang", "de"), t("a"))), t("b")))),
    ],
)
def test_precedence(query: str, tree: Node) -> None:
    assert root(query) == tree


def test_nesting() -> None:
    assert root("((a))") == t("a")
    assert root("(a OR (b AND (c OR d -e)))") == Or(
        (t("a"), And((t("b"), Or((t("c"), And((t("d"), Not(t("e"))))))))),
    )
    deep = "(" * 30 + "a" + ")" * 30
    assert root(deep) == t("a")
    assert root("a AND (b OR (c AND (d OR (e -f))))") == And(
        (t("a"), Or((t("b"), And((t("c"), Or((t("d"), And((t("e"), Not(t("f")))))))))))
    )


def test_nesting_is_bounded_with_a_position_not_a_crash() -> None:
    ok = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert root(ok) == t("a")
    too_deep = (("(" * 5000 + "a" + ")" * 5000, MAX_DEPTH), ("a " + "NOT " * 3000 + "b", 2 + 4 * MAX_DEPTH))
    for deep, pos in too_deep:
        with pytest.raises(QuerySyntaxError, match=f"more than {MAX_DEPTH} parentheses and NOTs") as info:
            parse(deep)
        assert info.value.position == pos
    assert isinstance(root("a " + "NOT (" * 30 + "b" + ")" * 30), And)  # 60 levels: within the bound


@pytest.mark.parametrize("space", ["\u3000", "\u00a0", "\u2003", "\u202f", "\v", "\f"])
def test_any_whitespace_separates_words_and_operators(space: str) -> None:
    """A Japanese IME types an ideographic space, a pasted query often has no-break spaces: they
    separate like a space (``flood\u00a0-warning`` was the phrase "flood warning")."""
    assert root(f"東京{space}OR{space}大阪") == Or((t("東", "京"), t("大", "阪")))
    assert root(f"flood{space}-warning") == And((t("flood"), Not(t("warning"))))
    near = Near((t("a"),), (t("b"),), 2)
    assert root(f"a{space}NEAR/2{space}b{space}lang:de") == And((near, Field("lang", "de")))


def test_or_branch_with_exclusion_inside_a_positive_group_is_fine() -> None:
    assert root("a OR (b -c)") == Or((t("a"), And((t("b"), Not(t("c"))))))


# --- errors ----------------------------------------------------------------------------------------
MALFORMED: list[tuple[str, int, str]] = [
    ("", 0, "empty query"),
    ("   ", 3, "empty query"),
    ("a AND", 5, "after AND"),
    ("AND a", 0, "found AND"),
    ("a OR", 4, "after OR"),
    ("OR a", 0, "found OR"),
    ("a OR OR b", 5, "after OR, found OR"),
    ("a AND AND b", 6, "after AND, found AND"),
    ("a AND OR b", 6, "after AND, found OR"),
    ("(a OR b", 7, "expected ')' to close the '(' at position 0"),
    ("((a) OR b", 9, "expected ')'"),
    ("a OR b)", 6, "unexpected ')'"),
    ("()", 1, "empty parentheses"),
    ("a (AND b)", 3, "after '('"),
    ('"climate strike', 0, "unterminated phrase"),
    ('a "', 2, "unterminated phrase"),
    ("a ”b", 2, "unterminated phrase"),  # a stray ” made the lexer loop forever
    ('""', 0, "empty phrase"),
    ('"!!"', 1, "no letters or digits"),
    ("a NEAR b", 2, "NEAR/n"),
    ("a NEAR/x b", 2, "NEAR/n"),
    ("a NEAR/5 ", 9, "after NEAR/5"),
    ("NEAR/5 a", 0, "found NEAR/5"),
    ("a NEAR/500 b", 7, "too large"),
    ("a NEAR/3 b NEAR/3 c", 11, "cannot be chained"),
    ("(a AND b) NEAR/3 c", 1, "not an AND group"),
    ("NOT a NEAR/3 b", 0, "not a negation"),
    ("a NEAR/3 lang:de", 9, "not a field"),
    ("(a NEAR/2 b) NEAR/3 c", 1, "not a NEAR group"),
    ("*vaccine", 0, "only at the end"),
    ("vac*cine", 3, "only at the end"),
    ('"a* b"', 2, "only at the end of a phrase"),
    ("v*", 1, "at least 2 letters"),
    ("covid-*", 6, "right after a letter or digit"),
    ("author:bob", 0, "no author field"),
    ("user:bob", 0, "no author field"),
    ("FROM:bob", 0, "no author field"),
    ("foo:bar", 0, "unknown field 'foo:'"),
    ("lang:", 5, "expected a value after 'lang:'"),
    ("lang:english", 5, "language code"),
    ("lang:de*", 7, "does not accept wildcards"),
    ("platform:twitter", 9, "expected one of bluesky"),
    ("sentiment:angry", 10, "expected one of negative"),
    ("has:video", 4, "expected one of link, media"),
    ("is:quote", 3, "expected one of reply, repost"),
    ("country:germany", 8, "two-letter"),
    ("site:https://nytimes.com/x", 5, "domain"),
    ("#", 0, "hashtag after '#'"),
    ("hashtag:%", 8, "hashtag after 'hashtag:'"),  # '#%' is refused too
    ("hashtag:#", 8, "expected a hashtag"),
    ("a -", 2, "followed directly"),
    ("- a", 0, "followed directly"),
    ("NOT", 3, "after NOT"),
    ("a NOT", 5, "after NOT"),
    ("!!!", 0, "no letters or digits"),
    ("NOT a", 0, "can only exclude"),
    ("-a -b", 0, "can only exclude"),
    ("-a OR b", 0, "can only exclude"),
    ("a OR NOT b", 5, "can only exclude"),
]


@pytest.mark.timeout(10)  # a lexer that stops advancing loops forever
@pytest.mark.parametrize(("query", "position", "message"), MALFORMED)
def test_malformed_queries_say_where_and_what(query: str, position: int, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    err = info.value
    assert message in err.message
    assert err.position == position
    assert err.query == query
    lines = str(err).splitlines()
    # The query, then a caret under the offending character.
    assert lines[-2] == f"  {query}"
    assert lines[-1] == " " * (2 + position) + "^"


def test_there_are_at_least_thirty_malformed_cases() -> None:
    assert len(MALFORMED) >= 30


def test_author_fields_are_refused_as_a_privacy_rule() -> None:
    with pytest.raises(AuthorFieldError) as info:
        parse("climate author:someone")
    assert isinstance(info.value, PrivacyError)
    assert isinstance(info.value, QuerySyntaxError)
    assert "crowds, never persons" in str(info.value)
    assert info.value.position == 8


# --- printing round trip ---------------------------------------------------------------------------
VOCAB = Vocabulary(
    words=["flood", "warning", "and", "cafe", "東", "京", "ก่", "covid", "19", "hamburg"],
    phrases=[("climate", "strike"), ("東", "京"), ("covid", "19")],
    fields=[("lang", "de"), ("site", "nytimes.com"), ("hashtag", "cop30"), ("is", "reply"), ("has", "media")],
)


@settings(max_examples=300, deadline=None)
@given(queries(VOCAB))
def test_printed_queries_parse_back_to_the_same_tree(tree: Node) -> None:
    text = to_string(tree)
    assert parse(text).root == tree
    assert to_string(parse(text).root) == text


@settings(max_examples=100, deadline=None)
@given(queries(VOCAB), st.sampled_from(SPACES))
def test_any_whitespace_between_words_gives_the_same_tree(tree: Node, space: str) -> None:
    assert parse(to_string(tree).replace(" ", space)).root == tree
