"""Reddit normalizer: every real recorded thing and listing, and the mapping rules."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from murmur.errors import PayloadError
from murmur.sources.normalize import normalize_reddit
from murmur.testing import shared_data
from murmur.types import Deletion, Draft
from tests.sources.fuzz_corpus import _THING, assert_sound

REDDIT = shared_data("payloads", "reddit")
log = logging.getLogger(__name__)


def thing(kind: str = "t3", **data: Any) -> dict[str, Any]:
    base = (
        copy.deepcopy(_THING["data"])
        if kind == "t3"
        else {"name": "t1_c9", "body": "a comment", "created_utc": 1.0}
    )
    base.pop("replies", None)
    base.update(data)
    return {"kind": kind, "data": base}


def one(payload: Any) -> Draft:
    events = normalize_reddit(orjson.dumps(payload))
    assert_sound(events)
    assert len(events) == 1
    assert isinstance(events[0], Draft)
    return events[0]


def test_every_real_thing_normalizes() -> None:
    path = REDDIT / "things.jsonl"
    if not path.is_file():
        pytest.skip(f"real Reddit payloads not found at {path} (set MURMUR_SHARED)")
    lines = path.read_bytes().splitlines()
    drafts: dict[str, Draft] = {}
    deletions: set[str] = set()
    inbox = 0
    for line in lines:
        events = normalize_reddit(line)
        assert_sound(events)
        data = orjson.loads(line)["data"]
        if "dest" in data:  # an inbox item of the recording account: never a post
            assert events == []
            inbox += 1
            continue
        assert data["name"] in {e.post_id for e in events}
        for e in events:
            if isinstance(e, Deletion):
                deletions.add(e.post_id)
            else:
                drafts[e.post_id] = e
    log.info(
        "things.jsonl: %d lines, %d distinct drafts, %d deletions", len(lines), len(drafts), len(deletions)
    )
    assert len(lines) == 10_341
    assert 0 < inbox < 1_000
    assert len(drafts) >= 9_500
    assert 50 <= len(deletions) <= 200  # "[deleted]" / "[removed]" bodies
    comments = [d for d in drafts.values() if d.post_id.startswith("t1_")]
    assert comments
    assert all(d.is_reply for d in comments)
    assert all(d.site == "reddit.com" and d.created_at.tzinfo is UTC for d in drafts.values())
    assert sum(d.is_repost for d in drafts.values()) >= 10  # crossposts
    assert sum(d.has_media for d in drafts.values()) >= 300
    assert any("<USERNAME>" in d.text or d.author_raw_id == "<USERNAME>" for d in drafts.values())


@pytest.mark.parametrize(
    "name",
    [
        "top.listing.json",
        "r_popular_hot.listing.json",
        "r_all_new.listing.json",
        "domain_youtube_com_top.listing.json",
    ],
)
def test_real_listings_in_their_recorded_wrapper(name: str) -> None:
    path = REDDIT / name
    if not path.is_file():
        pytest.skip(f"real Reddit payloads not found at {path} (set MURMUR_SHARED)")
    events = normalize_reddit(path.read_bytes())
    assert_sound(events)
    assert len(events) == 100
    listing = orjson.loads(path.read_bytes())["response"]
    assert [e.post_id for e in events] == [c["data"]["name"] for c in listing["data"]["children"]]


def test_submission_fields() -> None:
    d = one(_THING | {"data": {k: v for k, v in _THING["data"].items() if k != "replies"}})
    assert d.post_id == "t3_abc123"
    assert d.author_raw_id == "t2_xyz"
    assert d.community == "AskReddit"
    assert d.title == "A title"
    assert d.text == "A title\n\nBody with a link https://example.com/x"
    assert d.urls == ["https://example.com/x"]  # a self post's own url is not a link
    assert d.created_at == datetime(2016, 3, 19, 21, 4, 36, tzinfo=UTC)
    assert not d.is_reply
    assert not d.has_media


def test_link_post_media_and_crosspost() -> None:
    link = one(
        thing(
            is_self=False, url="https://news.example/story", selftext="", post_hint="link", preview={"x": 1}
        )
    )
    assert link.urls == ["https://news.example/story"]
    assert link.text == "A title"
    assert not link.has_media  # a link preview thumbnail is not media
    assert one(thing(is_self=False, url="https://i.redd.it/a.jpg", selftext="")).has_media
    assert one(thing(is_video=True)).has_media
    assert one(thing(media={"oembed": {}})).has_media
    assert one(thing(post_hint="image")).has_media
    assert one(thing(crosspost_parent="t3_zzz")).is_repost
    assert one(thing(author_fullname=None, author="plainname")).author_raw_id == "plainname"


def test_comment_and_deletions() -> None:
    c = one(thing("t1", body="I agree", parent_id="t1_p", subreddit="de", author="u"))
    assert c.is_reply
    assert c.text == "I agree"
    assert c.community == "de"
    assert c.title is None
    for marker in ("[deleted]", "[removed]"):
        assert normalize_reddit(orjson.dumps(thing("t1", body=marker))) == [Deletion("reddit", "t1_c9")]
        assert normalize_reddit(orjson.dumps(thing(selftext=marker))) == [Deletion("reddit", "t3_abc123")]


def test_removed_link_posts_are_deletions() -> None:
    # A link post removed by AutoModerator, as Reddit returns it (r/memes, 2019): no self text to
    # carry "[removed]", but the title and image link are still in the payload.
    removed = thing(
        is_self=False,
        selftext="",
        title="Frick drugs",
        url="https://i.redd.it/7za7a7s9om741.jpg",
        post_hint="image",
        removed_by_category="moderator",
        is_robot_indexable=False,
    )
    assert normalize_reddit(orjson.dumps(removed)) == [Deletion("reddit", "t3_abc123")]
    # deleted by its author: the account may still exist, the post does not
    deleted = thing(is_self=False, selftext="", url="https://news.example/a", removed_by_category="deleted")
    assert normalize_reddit(orjson.dumps(deleted)) == [Deletion("reddit", "t3_abc123")]
    assert isinstance(one(thing(removed_by_category=None)), Draft)


def test_reply_trees_arrays_and_other_kinds() -> None:
    events = normalize_reddit(orjson.dumps(_THING))
    assert [e.post_id for e in events] == ["t3_abc123", "t1_c1"]
    comments_page = [
        {"kind": "Listing", "data": {"children": [_THING]}},
        {"kind": "Listing", "data": {"children": []}},
    ]
    assert len(normalize_reddit(orjson.dumps(comments_page))) == 2
    more = {"kind": "more", "data": {"count": 3, "children": ["a", "b"]}}
    account = {"kind": "t2", "data": {"name": "someone", "subreddit": {"display_name": "u_someone"}}}
    listing = {"kind": "Listing", "data": {"children": [thing("t1"), more, account]}}
    assert [e.post_id for e in normalize_reddit(orjson.dumps(listing))] == ["t1_c9"]
    assert normalize_reddit(orjson.dumps({"kind": "t5", "data": {"display_name": "x"}})) == []
    assert [e.post_id for e in normalize_reddit(orjson.dumps(thing("t1", id="zz", name=None)))] == ["t1_zz"]


def test_inbox_items_are_no_posts() -> None:
    # a comment reply as one person's inbox holds it: murmur never reads anyone's inbox
    inbox = thing("t1", body="thanks!", dest="someone", was_comment=True, subject="comment reply")
    assert normalize_reddit(orjson.dumps(inbox)) == []
    message = {"kind": "t4", "data": {"name": "t4_x", "body": "hi", "dest": "someone", "author": "other"}}
    listing = {"kind": "Listing", "data": {"children": [inbox, message, thing("t1")]}}
    assert [e.post_id for e in normalize_reddit(orjson.dumps(listing))] == ["t1_c9"]


def test_limits() -> None:
    deep: dict[str, Any] = thing("t1")
    for i in range(70):
        deep = thing("t1", name=f"t1_{i}", replies={"kind": "Listing", "data": {"children": [deep]}})
    with pytest.raises(PayloadError, match="nested more than"):
        normalize_reddit(json.dumps(deep).encode())  # deeper than orjson writes
    many = {"kind": "Listing", "data": {"children": [thing("t1")] * 10_001}}
    with pytest.raises(PayloadError, match="more than 10,000"):
        normalize_reddit(orjson.dumps(many))
    assert len(one(thing(selftext="y" * 50_000)).text) == 10_000


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (thing(created_utc=None), "data.created_utc"),
        (thing(created_utc="yesterday"), "data.created_utc"),
        (thing(created_utc=1e300), "data.created_utc"),
        (thing(title=["x"]), "data.title"),
        (thing(is_self="yes"), "data.is_self"),
        (thing(name=None, id=None), "data.name"),
        ({"kind": "Listing", "data": {"children": [thing(), thing(body=3)]}}, "data.children[1].data.body"),
        ({"data": {}}, "kind"),
        ({"kind": "t3"}, "data"),
        ({"source_cassette": "x", "response": "nope"}, "response"),
    ],
)
def test_malformed_things_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        normalize_reddit(orjson.dumps(payload))
    assert info.value.field == field, info.value


def test_not_json() -> None:
    for bad in (b"", b"nope", b"{", b"[1,", b"\xff\xfe"):
        with pytest.raises(PayloadError):
            normalize_reddit(bad)
