"""Mastodon normalizer: every real recorded status, HTML to text, reblogs and quotes, streaming events."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from murmur.errors import PayloadError
from murmur.privacy import PrivacyGate
from murmur.privacy.redact import Redactor
from murmur.sources.normalize import normalize_mastodon
from murmur.sources.normalize._html import _generic, html_to_text
from murmur.testing import shared_data
from murmur.types import Deletion, Draft
from tests.sources.fuzz_corpus import _STATUS, assert_sound

MASTODON = shared_data("payloads", "mastodon")


def status(**changes: Any) -> dict[str, Any]:
    s = copy.deepcopy(_STATUS)
    s.update(changes)
    return s


def one(payload: Any) -> Draft:
    events = normalize_mastodon(payload if isinstance(payload, bytes) else orjson.dumps(payload))
    assert_sound(events)
    assert len(events) == 1
    assert isinstance(events[0], Draft)
    return events[0]


def real_statuses() -> list[dict[str, Any]]:
    """Every distinct Status in the recorded data: the statuses file and the bodies of the API responses."""
    if not MASTODON.is_dir():
        pytest.skip(f"real Mastodon payloads not found at {MASTODON} (set MURMUR_SHARED)")
    found: dict[str, dict[str, Any]] = {}
    for line in (MASTODON / "statuses_mastodonpy.jsonl").read_bytes().splitlines():
        s = orjson.loads(line)
        found[s["uri"]] = s
    for line in (MASTODON / "api_responses_mastodonpy.jsonl").read_bytes().splitlines():
        body = orjson.loads(line)["body"]
        candidates = body if isinstance(body, list) else [body]
        if isinstance(body, dict):
            for key in ("ancestors", "descendants", "statuses"):
                if isinstance(body.get(key), list):
                    candidates = candidates + body[key]
        for c in candidates:
            if isinstance(c, dict) and {"uri", "content", "account", "created_at"} <= c.keys():
                found[c["uri"]] = c
    return list(found.values())


def test_every_real_status_normalizes() -> None:
    statuses = real_statuses()
    assert len(statuses) >= 68
    drafts = 0
    for s in statuses:
        events = normalize_mastodon(orjson.dumps(s))
        assert_sound(events)
        if s["visibility"] in ("public", "unlisted"):
            assert len(events) == 1, s["uri"]
            d = events[0]
            assert isinstance(d, Draft)
            assert d.post_id == s["uri"]
            assert d.site == s["uri"].split("/")[2]
            assert "@" in d.author_raw_id
            assert not re.search(r"</?(?:p|span|a|br)\b", d.text), d.text
            drafts += 1
        else:
            assert events == [], s["uri"]  # private and direct statuses are not public discourse
    assert drafts >= 44


def test_real_timeline_page_and_context_arrays() -> None:
    statuses = real_statuses()
    page = orjson.dumps(statuses)
    events = normalize_mastodon(page)
    assert_sound(events)
    assert len(events) == sum(s["visibility"] in ("public", "unlisted") for s in statuses)


def test_fast_html_path_matches_the_general_one_on_real_content() -> None:
    checked = 0
    for s in real_statuses():
        accts: dict[str, str] = {}
        for m in s["mentions"]:
            acct = m["acct"] if "@" in m["acct"] else f"{m['acct']}@{m['url'].split('/')[2]}"
            accts[m["url"]] = acct
            accts["@" + acct] = acct
            accts.setdefault("@" + acct.partition("@")[0], acct)
        assert html_to_text(s["content"], accts) == _generic(s["content"], [], accts), s["uri"]
        checked += 1
    assert checked >= 68


def test_html_to_text_undoes_mastodon_markup() -> None:
    d = one(status())
    assert (
        d.text
        == "@bob@example.social Hallo #Klima https://example.org/some/long/path\n\nzweite Zeile\ndritte"
    )
    assert d.urls == ["https://example.org/some/long/path"]
    assert d.hashtags == ["klima"]
    assert d.mentions == ["bob@example.social"]
    assert d.author_raw_id == "alice@mastodon.social"
    assert d.site == "mastodon.social"
    assert d.lang_declared == "de"
    assert d.created_at == datetime(2023, 5, 28, 15, 20, 18, 907000, tzinfo=UTC)
    assert not d.is_reply
    assert not d.is_repost
    assert not d.has_media


@pytest.mark.parametrize(
    ("html", "text", "links"),
    [
        ("<p>a &amp; b &lt;c&gt; &#39;q&#39;</p>", "a & b <c> 'q'", []),
        ("<p>one</p><p>two</p>", "one\n\ntwo", []),
        ("<p>x<br/>y<br />z</p>", "x\ny\nz", []),
        ("<ul><li>a</li><li>b</li></ul>", "a\nb", []),
        ('<p><a href="https://e.example/x">read this</a></p>', "read this", ["https://e.example/x"]),
        (
            '<p><a href="https://bsky.app/profile/a/post/1">bsky.app/profile/a...</a></p>',
            "https://bsky.app/profile/a/post/1",
            ["https://bsky.app/profile/a/post/1"],
        ),
        (
            '<p class="quote-inline">RE: <a href="https://q.example/1">q.example/1</a></p><p>mine</p>',
            "mine",
            [],
        ),
        ("<script>alert(1)</script><style>p{}</style><p>safe</p>", "safe", []),
        ('<span class="invisible">hidden <span>nested</span> still</span>shown', "shown", []),
        ("&#xD800;&#x110000;", "\ufffd\ufffd", []),
        ("no markup at all", "no markup at all", []),
        ("<p>unclosed <b>bold", "unclosed bold", []),
        ("<!DOCTYPE html><p>a<!-- hidden --> b</p><?php x ?>", "a b", []),
        ("<p>a</p><!-- never closed <p>b</p>", "a", []),
    ],
)
def test_html_to_text_cases(html: str, text: str, links: list[str]) -> None:
    assert html_to_text(html) == (text, links)


@pytest.mark.parametrize(
    ("html", "text", "redacted"),
    [
        # an image-only link: its address in place of the image, apart from the words around it
        (
            '<p>Look<a href="https://ex.com/pic.jpg"><img src="https://ex.com/pic.jpg"></a>here</p>',
            "Look https://ex.com/pic.jpg here",
            "Look ex.com here",
        ),
        ('<p>see<a href="https://ex.com/a"><img></a>.</p>', "see https://ex.com/a.", "see ex.com."),
        ('<p>(<a href="https://ex.com/a"><img></a>)</p>', "(https://ex.com/a)", "(ex.com)"),
        ('<p><a href="https://ex.com/a"><img></a><b>bold</b></p>', "https://ex.com/a bold", "ex.com bold"),
        ('<p>a<a href="https://ex.com/a"><img></a></p><p>b</p>', "a https://ex.com/a\n\nb", "a ex.com\n\nb"),
        # a link shortened for display, glued to words
        (
            '<p>at<a href="https://ex.com/long/path">ex.com/long…</a>now</p>',
            "at https://ex.com/long/path now",
            "at ex.com now",
        ),
        # a profile link: the mention, apart, with no space before punctuation
        (
            '<p>by<a href="https://www.reddit.com/user/xy">xy</a>to '
            '<a href="https://m.example/@al">Al</a>, ok</p>',
            "by u/xy to @al@m.example, ok",
            "by u/user to @user, ok",
        ),
    ],
)
def test_an_address_written_for_a_link_stands_apart(html: str, text: str, redacted: str) -> None:
    assert html_to_text(html)[0] == text
    assert Redactor().redact(text).text == redacted  # what the privacy gate stores: words kept


def test_hostile_html_is_linear() -> None:
    import time

    for content in ('<a "' * 30_000, "<" * 200_000, '<span class="invisible">' * 20_000, "<p>" * 50_000):
        start = time.process_time()
        html_to_text(content)
        assert time.process_time() - start < 1.0


def test_spoiler_reply_media_card() -> None:
    d = one(
        status(
            spoiler_text="cw: politics",
            in_reply_to_id="1",
            media_attachments=[{"id": "9", "type": "image"}],
            card={"url": "https://card.example/a", "title": "t"},
        )
    )
    assert d.text.startswith("cw: politics\n\n@bob@example.social Hallo")
    assert d.is_reply
    assert d.has_media
    assert d.urls[-1] == "https://card.example/a"


def test_poll_options_are_text() -> None:
    # halcy's poll on icosahedron.website, as recorded: the question says little, the options say it
    real = {s["uri"]: s for s in real_statuses()}
    poll = one(real["https://icosahedron.website/users/halcy/statuses/110446382983698223"])
    assert poll.text == "secret test poll :hecker:\n\nreal\nfr fr\nso true\n:hecker:"
    options = {"id": "1", "options": [{"title": "Yes", "votes_count": 3}, {"title": " ", "votes_count": 0}]}
    assert one(status(content="", poll=options)).text == "Yes"
    boosted = one(status(content="", reblog=status(content="<p>Tea?</p>", poll=options)))
    assert boosted.text == "Tea?\n\nYes"


def test_reblog_is_a_repost_of_the_original_under_the_outer_id() -> None:
    inner = status(
        uri="https://other.example/users/carol/statuses/1",
        account={
            "id": "5",
            "username": "carol",
            "acct": "carol@other.example",
            "url": "https://other.example/@carol",
        },
        content="<p>original words</p>",
        language="fr",
        tags=[{"name": "Origin"}],
        mentions=[],
    )
    outer = status(
        uri="https://mastodon.social/users/alice/statuses/2", content="", reblog=inner, tags=[], mentions=[]
    )
    d = one(outer)
    assert d.post_id == "https://mastodon.social/users/alice/statuses/2"
    assert d.author_raw_id == "alice@mastodon.social"
    assert d.text == "original words"
    assert d.lang_declared == "fr"
    assert d.hashtags == ["origin"]
    assert d.is_repost


def test_quote_post_is_a_repost() -> None:
    assert one(status(quote={"state": "accepted", "quoted_status_id": "1"})).is_repost


def test_streaming_events() -> None:
    update = {"stream": ["public"], "event": "update", "payload": orjson.dumps(status()).decode()}
    assert one(orjson.dumps(update)).post_id == _STATUS["uri"]
    edited = {"event": "status.update", "payload": status(content="<p>edited</p>")}
    assert one(orjson.dumps(edited)).text == "edited"
    delete = {"event": "delete", "payload": "110446983178245440", "uri": _STATUS["uri"]}
    assert normalize_mastodon(orjson.dumps(delete)) == [Deletion("mastodon", _STATUS["uri"])]
    assert normalize_mastodon(orjson.dumps({"event": "delete", "payload": "110446983178245440"})) == []
    assert normalize_mastodon(orjson.dumps({"event": "notification", "payload": "{}"})) == []
    # the "event" key after the one big value is found too
    late = b'{"payload":' + orjson.dumps(orjson.dumps(status()).decode()) + b',"event":"update"}'
    assert one(late).post_id == _STATUS["uri"]


def test_non_public_statuses_give_nothing() -> None:
    for visibility in ("private", "direct", "limited"):
        assert normalize_mastodon(orjson.dumps(status(visibility=visibility))) == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({k: v for k, v in _STATUS.items() if k != "uri"}, "uri"),
        (status(uri="not a url"), "uri"),
        (status(created_at="last tuesday"), "created_at"),
        (status(content=5), "content"),
        (status(account={"id": "1"}), "account.acct"),
        (status(tags=[{"name": 1}]), "tags[0].name"),
        ([status(), status(created_at="bad")], "[1].created_at"),
        ({"event": "update", "payload": "{not json"}, "payload"),
        ({"event": "update", "payload": 7}, "payload"),
    ],
)
def test_malformed_statuses_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        normalize_mastodon(orjson.dumps(payload))
    assert info.value.field == field, info.value


def test_not_json_and_invalid_utf8() -> None:
    for bad in (b"", b"hello", b'"a string"', b"42"):
        with pytest.raises(PayloadError):
            normalize_mastodon(bad)
    broken = orjson.dumps(status(content="<p>caf\u00e9</p>")).replace("é".encode(), b"\xc3\x28")
    offset = broken.index(b"\xc3\x28")
    with pytest.raises(PayloadError, match=f"offset {offset}"):
        normalize_mastodon(broken)


def test_a_profile_card_leaves_only_its_instance_domain() -> None:
    # Mastodon makes a preview card of a profile pasted as a link; the card's title is the person's
    # name. Neither the handle nor the name reaches the stored post: the card's URL is a link like
    # the one in the text, and the privacy gate keeps its host only.
    profile = "https://mastodon.social/@someone"
    content = (
        f'<p>follow <a href="{profile}" rel="nofollow noopener" target="_blank">'
        '<span class="invisible">https://</span><span class="">mastodon.social/@someone</span>'
        '<span class="invisible"></span></a></p>'
    )
    card = {"url": profile, "title": "Some One (@someone@mastodon.social)"}
    d = one(status(content=content, card=card, mentions=[]))
    post = PrivacyGate(key_file=None).apply(d)
    assert post.text == "follow mastodon.social"
    assert post.domains == ["mastodon.social"]
    assert "someone" not in repr(post).lower()


def test_leading_whitespace_and_a_byte_order_mark_before_the_json() -> None:
    """The first significant byte (``first_non_space``, read within the first 4 KB) picks the
    payload's shape: whitespace and a UTF-8 byte-order mark before it are skipped."""
    from murmur.sources.normalize._common import first_non_space

    assert first_non_space(b"") == -1
    assert first_non_space(b" \t\r\n") == -1
    assert first_non_space(b"\xef\xbb\xbf \n[1]") == ord("[")
    assert first_non_space(b"\n {}") == ord("{")
    assert first_non_space(b" \x0b{}") == 0x0B  # only JSON's four whitespace bytes are skipped
    assert first_non_space(b" " * 4096 + b"{}") == -1
    assert first_non_space(b"\xef\xbb\xbf" + b" " * 4095 + b"{}") == ord("{")
    status = orjson.dumps(dict(_STATUS, uri="https://mastodon.social/users/a/statuses/1"))
    for payload in (b"\r\n " + status, b"  [" + status + b"]"):
        (draft,) = normalize_mastodon(payload)
        assert isinstance(draft, Draft)
    with pytest.raises(PayloadError, match="JSON object"):
        normalize_mastodon(b"  \n  true")
