"""Bluesky Jetstream normalizer: the real AT Protocol records wrapped in Jetstream envelopes, and the
mapping of every field the normalizer reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from murmur.errors import PayloadError
from murmur.sources.normalize import normalize, normalize_jetstream
from murmur.testing import shared_data
from murmur.types import Deletion, Draft
from tests.sources.fuzz_corpus import assert_sound

BLUESKY = shared_data("payloads", "bluesky")
DID = "did:plc:kvwvcn5iqfooopmyzvb4qzba"


def envelope(
    record: Any, *, rkey: str = "3k2yihcrp6f2c", op: str = "create", collection: str | None = None
) -> bytes:
    coll = collection or "app.bsky.feed.post"
    return orjson.dumps(
        {
            "did": DID,
            "time_us": 1725911162329308,
            "kind": "commit",
            "commit": {
                "rev": "3l3q",
                "operation": op,
                "collection": coll,
                "rkey": rkey,
                "record": record,
                "cid": "bafy",
            },
        }
    )


def post(**fields: Any) -> dict[str, Any]:
    return {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": "2024-11-20T12:00:00.000Z", **fields}


def one(payload: bytes) -> Draft:
    events = normalize_jetstream(payload)
    assert_sound(events)
    assert len(events) == 1
    assert isinstance(events[0], Draft)
    return events[0]


def real_records() -> list[tuple[str, str, dict[str, Any]]]:
    if not BLUESKY.is_dir():
        pytest.skip(f"real Bluesky payloads not found at {BLUESKY} (set MURMUR_SHARED)")
    found = []
    for f in sorted(BLUESKY.glob("*.json")):
        doc = orjson.loads(f.read_bytes())
        if "value" in doc:
            found.append((f.name, doc["uri"], doc["value"]))
        if "thread" in doc:
            found.append((f.name, doc["thread"]["post"]["uri"], doc["thread"]["post"]["record"]))
    return found


def test_real_records_in_jetstream_envelopes() -> None:
    drafts: dict[str, Draft] = {}
    skipped = []
    for name, uri, record in real_records():
        did, collection, rkey = uri.removeprefix("at://").split("/")
        payload = orjson.dumps(
            {
                "did": did,
                "time_us": 1725911162329308,  # 2024-09-09, after both records were written
                "kind": "commit",
                "commit": {
                    "rev": "r",
                    "operation": "create",
                    "collection": collection,
                    "rkey": rkey,
                    "record": record,
                },
            }
        )
        events = normalize("jetstream", payload)
        assert_sound(events)
        if collection == "app.bsky.feed.post":
            assert len(events) == 1, name
            assert isinstance(events[0], Draft)
            assert events[0].post_id == uri
            drafts[name] = events[0]
        else:
            assert events == [], name  # likes and feed generators are not posts
            skipped.append(name)
    assert set(drafts) == {
        "post_record.json",
        "extended_post_record.json",
        "thread_view_post_with_embed_media.json",
    }
    assert {"like_record.json", "extended_like_record.json", "feed_record.json"} <= set(skipped)
    plain = drafts["post_record.json"]
    assert plain.text == "new text114"
    assert plain.author_raw_id == DID
    assert plain.site == "bsky.app"
    assert plain.created_at == datetime(2024, 2, 22, 19, 58, 13, 903293, tzinfo=UTC)
    extended = drafts["extended_post_record.json"]  # unknown field "lol", naive createdAt
    assert extended.lang_declared == "en"
    assert extended.created_at == datetime(2023, 7, 21, 1, 33, 51, 481951, tzinfo=UTC)
    quote = drafts["thread_view_post_with_embed_media.json"]  # recordWithMedia: image + quoted post
    assert quote.has_media
    assert quote.is_repost
    assert quote.text == ""


def test_facets_tags_reply_and_embeds() -> None:
    record = post(
        text="Floods in #Valencia see example.org and @alice",
        langs=["es", "en"],
        tags=["#Extra", "CLIMATE"],
        facets=[
            {"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Valencia"}]},
            {"features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/a"}]},
            {"features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:alice"}]},
            {"features": [{"$type": "app.bsky.richtext.facet#unknownFeature", "x": 1}]},
        ],
        reply={"root": {"uri": "at://x", "cid": "c"}, "parent": {"uri": "at://x", "cid": "c"}},
        embed={
            "$type": "app.bsky.embed.external",
            "external": {"uri": "https://news.example/b", "title": "t"},
        },
    )
    d = one(envelope(record))
    assert d.post_id == f"at://{DID}/app.bsky.feed.post/3k2yihcrp6f2c"
    assert d.hashtags == ["valencia", "extra", "climate"]
    assert d.urls == ["https://example.org/a", "https://news.example/b"]
    assert d.mentions == ["did:plc:alice"]
    assert d.lang_declared == "es"
    assert d.is_reply
    assert not d.is_repost
    assert not d.has_media


@pytest.mark.parametrize(
    ("embed", "has_media", "is_repost"),
    [
        ({"$type": "app.bsky.embed.images", "images": [{"alt": ""}]}, True, False),
        ({"$type": "app.bsky.embed.video", "video": {}}, True, False),
        ({"$type": "app.bsky.embed.record", "record": {"uri": "at://x", "cid": "c"}}, False, True),
        (
            {"$type": "app.bsky.embed.recordWithMedia", "media": {"$type": "app.bsky.embed.images"}},
            True,
            True,
        ),
        (
            {
                "$type": "app.bsky.embed.recordWithMedia",
                "media": {"$type": "app.bsky.embed.external", "external": {"uri": "https://e.example/"}},
            },
            False,
            True,
        ),
        ({"$type": "app.bsky.embed.somethingNew"}, False, False),
    ],
)
def test_embed_kinds(embed: dict[str, Any], has_media: bool, is_repost: bool) -> None:
    d = one(envelope(post(embed=embed)))
    assert (d.has_media, d.is_repost) == (has_media, is_repost)


def test_delete_update_and_non_posts() -> None:
    deleted = normalize_jetstream(envelope(None, op="delete"))
    assert deleted == [Deletion("bluesky", f"at://{DID}/app.bsky.feed.post/3k2yihcrp6f2c")]
    assert one(envelope(post(text="edited"), op="update")).text == "edited"
    like = {
        "$type": "app.bsky.feed.like",
        "subject": {"uri": "at://x", "cid": "c"},
        "createdAt": "2024-01-01T00:00:00Z",
    }
    assert normalize_jetstream(envelope(like, collection="app.bsky.feed.like")) == []
    identity = {
        "did": DID,
        "time_us": 1,
        "kind": "identity",
        "identity": {"did": DID, "handle": "x.bsky.social"},
    }
    assert normalize_jetstream(orjson.dumps(identity)) == []
    assert (
        normalize_jetstream(orjson.dumps({"did": DID, "time_us": 1, "kind": "account", "account": {}})) == []
    )


def test_times_naive_is_utc_and_offsets_are_converted() -> None:
    assert one(envelope(post(createdAt="2024-01-01T10:00:00"))).created_at == datetime(
        2024, 1, 1, 10, tzinfo=UTC
    )
    shifted = one(envelope(post(createdAt="2024-01-01T10:00:00+02:00"))).created_at
    assert shifted == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert shifted.utcoffset() is not None


def test_a_created_at_after_jetstream_received_the_post_is_its_arrival() -> None:
    # time_us 1725911162329308 is 2024-09-09T19:46:02.329308Z; a client with a wrong clock (or a
    # forged date) claims 2099: the post is counted when it arrived, not 75 years ahead.
    received = datetime(2024, 9, 9, 19, 46, 2, 329308, tzinfo=UTC)
    assert one(envelope(post(createdAt="2099-01-01T00:00:00.000Z"))).created_at == received
    assert one(envelope(post(createdAt="2024-09-09T19:46:03Z"))).created_at == received
    # an earlier createdAt is the post's own time (drafts, slow clients, backfilled archives)
    assert one(envelope(post(createdAt="2024-09-09T19:40:00Z"))).created_at == datetime(
        2024, 9, 9, 19, 40, tzinfo=UTC
    )
    assert one(envelope(post(createdAt="2011-05-01T08:00:00Z"))).created_at.year == 2011
    # without a usable time_us, createdAt stands
    for time_us in (None, 0, -5, 2**62, 1.7e15, "1725911162329308", True):
        event = orjson.loads(envelope(post(createdAt="2099-01-01T00:00:00Z")))
        event["time_us"] = time_us
        assert one(orjson.dumps(event)).created_at.year == 2099


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (envelope(post(createdAt="yesterday")), "commit.record.createdAt"),
        (envelope(post(createdAt=12)), "commit.record.createdAt"),
        (envelope(post(text=["not", "text"])), "commit.record.text"),
        (envelope(post(langs="en")), "commit.record.langs"),
        (envelope({"$type": "app.bsky.feed.post", "text": "no date"}), "commit.record.createdAt"),
        (envelope(post(), rkey="../../etc"), "commit.rkey"),
        (envelope(post(), op="explode"), "commit.operation"),
        (
            orjson.dumps(
                {
                    "did": "nobody",
                    "kind": "commit",
                    "commit": {
                        "operation": "create",
                        "collection": "app.bsky.feed.post",
                        "rkey": "a",
                        "record": post(),
                    },
                }
            ),
            "did",
        ),
        (b'{"did": "did:plc:x", "kind": "commit", "commit": ', "payload"),
        (b"[1, 2]", "payload"),
    ],
)
def test_malformed_payloads_name_the_field(payload: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        normalize_jetstream(payload)
    assert info.value.field == field, info.value


def test_invalid_utf8_names_the_byte_offset() -> None:
    payload = envelope(post(text="caf\u00e9"))
    broken = payload.replace("é".encode(), b"\xff")
    offset = broken.index(b"\xff")
    with pytest.raises(PayloadError, match=f"offset {offset}") as info:
        normalize_jetstream(broken)
    assert info.value.field == "commit.record"


def test_long_text_is_truncated_and_oversized_payload_rejected() -> None:
    assert len(one(envelope(post(text="x" * 50_000))).text) == 10_000
    with pytest.raises(PayloadError, match="more than"):
        normalize_jetstream(b'{"pad":"' + b"x" * (17 * 1024 * 1024) + b'"}')


def test_non_bytes_payload_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        normalize_jetstream("{}")  # type: ignore[arg-type]  # a caller's mistake must still be a PayloadError
