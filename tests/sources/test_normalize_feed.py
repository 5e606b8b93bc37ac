"""Feed normalizer: the 25 real RSS/Atom files (malformed ones included), JSON Feed, and hostile XML."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from murmur.errors import PayloadError
from murmur.privacy.redact import Redactor
from murmur.sources.normalize import normalize_feed
from murmur.testing import shared_data
from murmur.types import Draft
from tests.sources.fuzz_corpus import (
    _ATOM,
    _BOMB,
    _JSON_FEED,
    _PARAM_XXE,
    _QUADRATIC,
    _RSS,
    _XXE,
    assert_sound,
)

RSS_DIR = shared_data("payloads", "rss", "rss-parser")
log = logging.getLogger(__name__)


def drafts(payload: bytes) -> list[Draft]:
    events = normalize_feed(payload)
    assert_sound(events)
    assert all(isinstance(e, Draft) for e in events)
    return [e for e in events if isinstance(e, Draft)]


def test_every_real_feed_file_yields_items() -> None:
    files = sorted(RSS_DIR.glob("*")) if RSS_DIR.is_dir() else []
    if not files:
        pytest.skip(f"real feed payloads not found at {RSS_DIR} (set MURMUR_SHARED)")
    counts = {f.name: len(drafts(f.read_bytes())) for f in files}
    log.info("feeds: %d files, %d items: %s", len(counts), sum(counts.values()), counts)
    assert len(counts) == 25
    assert all(n >= 1 for n in counts.values()), counts
    assert sum(counts.values()) == 569
    assert counts["uolNoticias.rss"] == 15  # not well-formed XML: still read
    assert counts["craigslist.rss"] == 25  # RSS 1.0 / RDF
    assert counts["guardian.rss"] == 55


def test_real_feed_fields() -> None:
    path = RSS_DIR / "heise.atom"
    if not path.is_file():
        pytest.skip(f"real feed payloads not found at {path}")
    first = drafts(path.read_bytes())[0]
    assert first.platform == "feed"
    assert first.post_id == "http://heise.de/-3088438"
    assert first.community == "heise developer neueste Meldungen"
    assert first.site == "heise.de"
    assert first.title == "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei"
    assert first.text.startswith(first.title + "\n\n")
    assert first.created_at == datetime(2016, 2, 1, 16, 22, tzinfo=UTC)
    assert first.urls[0].startswith("http://www.heise.de/developer/meldung/")


def test_rss_item_mapping() -> None:
    first, second = drafts(_RSS)
    assert first.title == "First & foremost"
    assert first.text == "First & foremost\n\nSome bold text"
    assert first.post_id == "news.example.com#n-1"  # a bare guid is qualified by the feed's host
    assert first.community == "Example news"
    assert first.site == "news.example.com"
    assert first.author_raw_id == "https://news.example.com/"  # no byline: the feed counts as the author
    assert first.lang_declared == "en"
    assert first.created_at == datetime(2003, 6, 10, 4, tzinfo=UTC)
    assert first.urls == ["https://news.example.com/1"]
    assert second.post_id == "https://news.example.com/2"  # no guid: the link
    assert second.has_media  # enclosure
    # no date anywhere in the feed: the time of ingest
    assert datetime.now(UTC) - second.created_at < timedelta(minutes=5)


def test_a_date_still_to_come_is_the_time_of_ingest() -> None:
    # Podcast hosts publish scheduled episodes with their release date; event feeds date items by
    # the event. Neither has been said yet: counted now, not on a future day.
    future = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Show</title>'
        b"<link>https://show.example.com/</link>"
        b"<item><title>Episode 12</title><guid>https://show.example.com/12</guid>"
        b"<pubDate>Tue, 01 Aug 2124 09:00:00 GMT</pubDate></item>"
        b"<item><title>Episode 11</title><guid>https://show.example.com/11</guid>"
        b"<pubDate>Tue, 01 Aug 2023 09:00:00 GMT</pubDate></item></channel></rss>"
    )
    before = datetime.now(UTC)
    scheduled, past = drafts(future)
    assert before <= scheduled.created_at <= datetime.now(UTC)
    assert past.created_at == datetime(2023, 8, 1, 9, tzinfo=UTC)
    item = {"id": "1", "title": "Launch", "date_published": "2124-01-01T00:00:00Z"}
    json_feed = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [item]}
    (launch,) = drafts(orjson.dumps(json_feed))
    assert before <= launch.created_at <= datetime.now(UTC)


def test_atom_entry_mapping() -> None:
    (entry,) = drafts(_ATOM)
    assert entry.title == "An entry"
    assert entry.text == "An entry\n\nHello\nworld"
    assert entry.author_raw_id == "Writer"
    assert entry.post_id == "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"
    assert entry.created_at == datetime(2024, 1, 2, 10, tzinfo=UTC)


def test_json_feed() -> None:
    one, two = drafts(orjson.dumps(_JSON_FEED))
    assert one.text == "One\n\nHi"
    assert one.post_id == "json.example.com#1"
    assert one.urls == ["https://json.example.com/1"]
    assert one.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert two.text == "Two"
    assert two.community == "JSON example"
    with pytest.raises(PayloadError, match="not a JSON Feed"):
        normalize_feed(b'{"version": "something else", "items": []}')
    with pytest.raises(PayloadError):
        normalize_feed(b'{"version": "https://jsonfeed.org/version/1", "items": "no"}')


def test_no_item_without_a_guid_or_link_collides() -> None:
    rss = b"""<rss version="2.0"><channel><title>T</title><link>https://a.example/</link>
    <item><title>one</title></item><item><title>two</title></item></channel></rss>"""
    ids = [d.post_id for d in drafts(rss)]
    assert len(set(ids)) == 2
    assert all(i.startswith("sha256:") for i in ids)
    assert ids == [d.post_id for d in drafts(rss)]  # stable


@pytest.mark.parametrize(
    "payload", [_BOMB, _XXE, _PARAM_XXE, _QUADRATIC, _BOMB.replace(b"<!ENTITY", b"<!entity")]
)
def test_entity_declarations_are_refused_at_once(payload: bytes) -> None:
    start = time.process_time()
    with pytest.raises(PayloadError, match="entities") as info:
        normalize_feed(payload)
    assert info.value.field == "doctype"
    assert time.process_time() - start < 0.1


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32"])
def test_entity_declarations_in_wide_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(PayloadError, match="entities"):
        normalize_feed(_BOMB.decode().encode(encoding))


@pytest.mark.parametrize("encoding", ["cp037", "utf-7"])
def test_bombs_in_exotic_encodings_do_not_expand(encoding: str) -> None:
    # murmur's byte check cannot see these; feedparser's own DOCTYPE handling keeps them inert.
    doc = _BOMB.replace(b'<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>'.encode())
    payload = doc.decode().encode(encoding)
    try:
        events = drafts(payload)
    except PayloadError:
        return
    assert all(len(d.text) < 1000 for d in events)


def test_payload_is_never_taken_for_a_path_or_url(tmp_path: Path) -> None:
    feed_file = tmp_path / "feed.xml"
    feed_file.write_bytes(_RSS)
    for payload in (str(feed_file).encode(), feed_file.as_uri().encode(), b"http://127.0.0.1:9/feed.xml"):
        with pytest.raises(PayloadError, match="not an RSS"):
            normalize_feed(payload)


def test_not_a_feed_and_empty_feed() -> None:
    for bad in (b"", b"<html><body><p>hello</p></body></html>", b"\x00\x01\x02 random", b"just text"):
        with pytest.raises(PayloadError):
            normalize_feed(bad)
    assert normalize_feed(b'<rss version="2.0"><channel><title>empty</title></channel></rss>') == []


def test_hostile_markup_is_bounded() -> None:
    nested = (
        b"<rss><channel><item><title>"
        + b"<b>" * 20_000
        + b"x"
        + b"</b>" * 20_000
        + b"</title></item></channel></rss>"
    )
    huge = (
        b'<rss version="2.0"><channel><item><description>'
        + b"word " * 400_000
        + b"</description></item></channel></rss>"
    )
    for payload in (nested, huge):
        start = time.process_time()
        for d in drafts(payload):
            assert len(d.text) <= 10_000
        assert time.process_time() - start < 5.0


def test_links_to_a_profile_become_mentions_the_gate_redacts() -> None:
    # Reddit's feeds name the poster in a link's text: "submitted by <a href=.../user/name>name</a>".
    rss = b"""<rss version="2.0"><channel><title>r</title><link>https://www.reddit.com/</link>
    <item><guid>https://www.reddit.com/r/space/comments/42babr/x/</guid><title>T</title>
    <description>submitted by&lt;a href="https://www.reddit.com/user/benjaab123"&gt;benjaab123&lt;/a&gt;to
    &lt;a href="https://www.reddit.com/r/space/"&gt;space&lt;/a&gt; cc
    &lt;a href="https://mastodon.social/@alice"&gt;Alice Liddell&lt;/a&gt;,
    &lt;a href="https://bsky.app/profile/bob.bsky.social"&gt;Bob&lt;/a&gt;,
    &lt;a href="https://bsky.app/profile/bob.bsky.social/post/3k"&gt;his post&lt;/a&gt;</description>
    </item></channel></rss>"""
    (draft,) = drafts(rss)
    for name in ("Alice", "Bob"):
        assert name not in draft.text
    for mention in (" u/benjaab123 ", "@alice@mastodon.social", "@bob.bsky.social"):
        assert mention in draft.text
    assert "his post" in draft.text  # a post's link keeps its text
    redacted = Redactor().redact(draft.text).text
    assert redacted == "T\n\nsubmitted by u/user to space cc @user, @user, his post"


def test_no_redditor_is_left_in_the_real_reddit_feeds() -> None:
    names = {"benjaab123", "eskimio", "yungscott", "cakebeerandmorebeer", "azizansariAMA", "chouryujin"}
    found: set[str] = set()
    for name in ("reddit.rss", "reddit-home.rss", "reddit-atom.rss"):
        path = RSS_DIR / name
        if not path.is_file():
            pytest.skip(f"real feed payloads not found at {path}")
        raw = path.read_text(encoding="utf-8")
        found |= {n for n in names if n in raw}
        for draft in drafts(path.read_bytes()):
            text = Redactor().redact(draft.text).text
            assert not any(n.lower() in text.lower() for n in names), text
    assert found == names  # the payloads do hold them


@pytest.mark.parametrize(
    "link",
    ["https://mastodon.social/@Gargron", "https://www.reddit.com/user/spez/", "https://bsky.app/profile/a.b"],
)
def test_a_profile_feed_title_is_not_kept_as_its_community(link: str) -> None:
    # A Mastodon account's feed (/@name.rss) is titled with the person's display name.
    rss = f"""<rss version="2.0"><channel><title>Eugen Rochko</title><link>{link}</link>
    <item><guid>{link}/1</guid><title>Hi</title></item></channel></rss>""".encode()
    (draft,) = drafts(rss)
    assert draft.community is None
    assert draft.site is not None
    (other,) = drafts(rss.replace(link.encode(), b"https://news.example.com/"))
    assert other.community == "Eugen Rochko"


def test_relative_links_are_resolved_against_the_item() -> None:
    # Blogs write links inside their own site as paths; an RSS item's link may be one too.
    rss = b"""<rss version="2.0"><channel><title>B</title><link>https://blog.example.com/</link>
    <item><title>One</title><link>/posts/1</link><description>&lt;p&gt;see
    &lt;a href="/relative/page"&gt;more&lt;/a&gt;, &lt;a href="x.html"&gt;x&lt;/a&gt;,
    &lt;a href="//cdn.example.net/i.png"&gt;&lt;img&gt;&lt;/a&gt;,
    &lt;a href="#fn1"&gt;1&lt;/a&gt; &lt;a href="mailto:a@b.example"&gt;mail&lt;/a&gt;&lt;/p&gt;</description>
    </item></channel></rss>"""
    (item,) = drafts(rss)
    assert item.urls == [
        "https://blog.example.com/posts/1",
        "https://blog.example.com/relative/page",
        "https://blog.example.com/posts/x.html",  # relative to the item's address
        "https://cdn.example.net/i.png",
    ]  # an in-page anchor and a mailto: are no links
    assert item.text == "One\n\nsee more, x, https://cdn.example.net/i.png, 1 mail"
    assert item.post_id == "blog.example.com#/posts/1"  # the id keeps the link as written


def test_xml_base_is_the_base_and_is_applied_once() -> None:
    # feedparser applies xml:base to the links it reads (entry and feed links), not inside content
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://atom.example.org/blog/">
    <title>A</title><link href="/"/>
    <entry><id>tag:a,2024:1</id><title>e</title><link href="posts/2"/>
    <content type="html">&lt;a href="rel/x"&gt;x&lt;/a&gt; &lt;a href="https://abs.example/"&gt;y&lt;/a&gt;</content>
    </entry>
    <entry xml:base="https://other.example.net/a/"><id>tag:a,2024:2</id><title>f</title><link href="p3"/>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><a href="../y">y</a></div></content>
    </entry></feed>"""
    first, second = drafts(atom)
    assert first.urls == [
        "https://atom.example.org/blog/posts/2",
        "https://atom.example.org/blog/rel/x",
        "https://abs.example/",
    ]
    assert second.urls == ["https://other.example.net/a/p3", "https://other.example.net/y"]


def test_json_feed_relative_links() -> None:
    item = {"id": "1", "url": "/p/1", "content_html": "<p>a <a href='../q'>q</a> <a href='/r'><img></a>b</p>"}
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "home_page_url": "https://j.example/",
        "items": [item],
    }
    (one,) = drafts(orjson.dumps(feed))
    assert one.urls == ["https://j.example/p/1", "https://j.example/q", "https://j.example/r"]
    assert one.text == "a q https://j.example/r b"
