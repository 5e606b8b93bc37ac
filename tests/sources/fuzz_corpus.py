"""A deterministic corpus of malformed and hostile payloads for every normalizer format.

``hostile_payloads(n, seed)`` returns ``n`` ``(format, payload)`` pairs. Seeds are real recorded
payloads from ``../shared/data/payloads`` when present (else built-in synthetic ones), mutated with a
seeded RNG: truncation, byte flips, invalid UTF-8, wrong types in every field, huge fields, deep
nesting, NaN / huge numbers, unknown structures, random bytes, XML bombs and external entities,
hostile HTML. The same ``(n, seed)`` always gives the same corpus. Independent of ``murmur.testing``
so that end-to-end tests (runtime + quarantine) can reuse it as is.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMATS = ("jetstream", "mastodon", "reddit", "feed", "jsonl", "csv")

_REPO = Path(__file__).resolve().parents[2]


def _payload_dir() -> Path:
    env = os.environ.get("MURMUR_SHARED")
    base = Path(env) if env else _REPO.parent / "shared"
    return base / "data" / "payloads"


# --- seeds --------------------------------------------------------------------------------------------

_RECORD: dict[str, Any] = {
    "$type": "app.bsky.feed.post",
    "text": "Flooding in #Valencia again, see https://example.org/news and thanks @alice.bsky.social",
    "langs": ["es", "en"],
    "createdAt": "2024-11-20T12:00:00.000Z",
    "facets": [
        {
            "index": {"byteStart": 13, "byteEnd": 22},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Valencia"}],
        },
        {
            "index": {"byteStart": 34, "byteEnd": 58},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/news"}],
        },
        {
            "index": {"byteStart": 70, "byteEnd": 88},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:alice123"}],
        },
    ],
    "reply": {
        "root": {"uri": "at://did:plc:x/app.bsky.feed.post/3k", "cid": "bafy"},
        "parent": {"uri": "at://did:plc:x/app.bsky.feed.post/3k", "cid": "bafy"},
    },
    "embed": {"$type": "app.bsky.embed.external", "external": {"uri": "https://example.org/a", "title": "t"}},
}


def _jetstream(record: dict[str, Any], rkey: str = "3l3qo2vutsw2b", op: str = "create") -> dict[str, Any]:
    return {
        "did": "did:plc:kvwvcn5iqfooopmyzvb4qzba",
        "time_us": 1725911162329308,
        "kind": "commit",
        "commit": {
            "rev": "3l3qo2vuowo2b",
            "operation": op,
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": record,
            "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi",
        },
    }


_STATUS: dict[str, Any] = {
    "id": "110446983178245440",
    "created_at": "2023-05-28T15:20:18.907Z",
    "in_reply_to_id": None,
    "sensitive": False,
    "spoiler_text": "",
    "visibility": "public",
    "language": "de",
    "uri": "https://mastodon.social/users/alice/statuses/110446983178245440",
    "url": "https://mastodon.social/@alice/110446983178245440",
    "content": (
        '<p><span class="h-card" translate="no"><a href="https://example.social/@bob" class="u-url mention">'
        '@<span>bob</span></a></span> Hallo <a href="https://mastodon.social/tags/Klima" '
        'class="mention hashtag">'
        '#<span>Klima</span></a> <a href="https://example.org/some/long/path" target="_blank" rel="nofollow">'
        '<span class="invisible">https://</span><span class="ellipsis">example.org/some/lo</span>'
        '<span class="invisible">ng/path</span></a></p><p>zweite Zeile<br>dritte</p>'
    ),
    "reblog": None,
    "account": {"id": "43", "username": "alice", "acct": "alice", "url": "https://mastodon.social/@alice"},
    "media_attachments": [],
    "mentions": [
        {"id": "1", "username": "bob", "url": "https://example.social/@bob", "acct": "bob@example.social"}
    ],
    "tags": [{"name": "klima", "url": "https://mastodon.social/tags/klima"}],
    "card": None,
    "poll": None,
}

_THING: dict[str, Any] = {
    "kind": "t3",
    "data": {
        "name": "t3_abc123",
        "id": "abc123",
        "author": "someone",
        "author_fullname": "t2_xyz",
        "title": "A title",
        "selftext": "Body with a link https://example.com/x",
        "created_utc": 1458421476.0,
        "subreddit": "AskReddit",
        "url": "https://www.reddit.com/r/AskReddit/comments/abc123/",
        "is_self": True,
        "media": None,
        "replies": {
            "kind": "Listing",
            "data": {
                "children": [
                    {
                        "kind": "t1",
                        "data": {
                            "name": "t1_c1",
                            "author": "x",
                            "body": "reply",
                            "created_utc": 1458421500,
                            "parent_id": "t3_abc123",
                            "subreddit": "AskReddit",
                            "replies": "",
                        },
                    }
                ]
            },
        },
    },
}

_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Example news</title><link>https://news.example.com/</link>
<language>en</language>
<item><title>First &amp; foremost</title><link>https://news.example.com/1</link><guid>n-1</guid>
<description>&lt;p&gt;Some &lt;b&gt;bold&lt;/b&gt; text&lt;/p&gt;</description>
<pubDate>Tue, 10 Jun 2003 04:00:00 GMT</pubDate></item>
<item><title>Second</title><link>https://news.example.com/2</link>
<enclosure url="https://news.example.com/a.mp3" type="audio/mpeg" length="1"/></item>
</channel></rss>"""

_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom example</title><link href="https://blog.example.net/"/>
<updated>2024-01-01T00:00:00Z</updated><id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
<entry><title type="html">An &lt;em&gt;entry&lt;/em&gt;</title><link href="https://blog.example.net/e1"/>
<id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id><updated>2024-01-02T10:00:00Z</updated>
<author><name>Writer</name></author>
<content type="html">&lt;p&gt;Hello&lt;br&gt;world&lt;/p&gt;</content></entry>
</feed>"""

_JSON_FEED: dict[str, Any] = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "JSON example",
    "home_page_url": "https://json.example.com/",
    "items": [
        {
            "id": "1",
            "url": "https://json.example.com/1",
            "title": "One",
            "content_html": "<p>Hi</p>",
            "date_published": "2024-01-01T00:00:00Z",
        },
        {"id": 2, "content_text": "Two", "tags": ["a"]},
    ],
}

_ROW: dict[str, Any] = {
    "id": "1234567890",
    "text": "A tweet-like row with #hashtag and https://example.com",
    "author_id": "42",
    "created_at": "2021-03-04T05:06:07.000Z",
    "lang": "en",
    "hashtags": ["hashtag"],
}


def _read_lines(path: Path, limit: int) -> list[bytes]:
    out: list[bytes] = []
    if not path.is_file():
        return out
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                out.append(line.rstrip(b"\r\n"))
            if len(out) >= limit:
                break
    return out


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _seeds() -> dict[str, list[bytes]]:
    seeds: dict[str, list[bytes]] = {
        "jetstream": [dumps(_jetstream(_RECORD)), dumps(_jetstream(_RECORD, op="delete"))],
        "mastodon": [
            dumps(_STATUS),
            dumps(
                [_STATUS, {**_STATUS, "reblog": _STATUS, "uri": "https://mastodon.social/users/c/statuses/9"}]
            ),
            dumps({"event": "update", "payload": json.dumps(_STATUS)}),
            dumps({"event": "delete", "payload": "110446983178245440", "uri": _STATUS["uri"]}),
        ],
        "reddit": [dumps(_THING), dumps({"kind": "Listing", "data": {"children": [_THING, _THING]}})],
        "feed": [_RSS, _ATOM, dumps(_JSON_FEED)],
        "jsonl": [dumps(_ROW)],
        "csv": [dumps({k: str(v) for k, v in _ROW.items()})],
    }
    base = _payload_dir()
    if base.is_dir():
        seeds["reddit"] += _read_lines(base / "reddit" / "things.jsonl", 300)
        seeds["mastodon"] += _read_lines(base / "mastodon" / "statuses_mastodonpy.jsonl", 68)
        for f in sorted((base / "bluesky").glob("*.json")):
            doc = json.loads(f.read_bytes())
            record = doc.get("value") or doc.get("thread", {}).get("post", {}).get("record")
            if isinstance(record, dict):
                seeds["jetstream"].append(dumps(_jetstream(record)))
        for f in sorted((base / "rss" / "rss-parser").glob("*")):
            if f.stat().st_size <= 40_000:  # small feeds keep the corpus fast
                seeds["feed"].append(f.read_bytes())
    return seeds


# --- mutations ----------------------------------------------------------------------------------------

_HOSTILE_VALUES: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    False,
    "",
    " ",
    "x" * 20_000,
    [],
    {},
    [1, 2, 3],
    {"a": 1},
    [[[[[]]]]],
    "9999-99-99T99:99:99Z",
    "not a date",
    "2024-13-45",
    "0000-00-00",
    "\u202e\u200b\ufeff",
    "\x00\x01",
    "did:plc:" + "a" * 5000,
    "at://x/y/z",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "&#xD800;&#x110000;&#0;",
    1e308,
    -1e308,
    2**63 - 1,
    -(2**63),
    "t3_" + "z" * 3000,
    ["#tag"] * 500,
]
_RAW_TOKENS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"123456789012345678901234567890",
    b'"\\ud800"',
    b'"\\udc80x"',
    b"undefined",
    b"'single'",
    b"0x1F",
    b"--1",
    b"[1,]",
    b"{,}",
]
_BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82", b"\xfe\xfe"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [prefix]
    if len(found) > 2000:
        return found
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value[:20]):
            found.extend(_paths(v, (*prefix, i)))
    return found


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return doc
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


def _json_mutation(rng: random.Random, seed: bytes) -> bytes:
    try:
        doc = json.loads(seed)
    except ValueError:
        return seed[: rng.randrange(len(seed) + 1)]
    paths = _paths(doc)
    path = rng.choice(paths)
    op = rng.randrange(5)
    if op == 0:
        doc = _set(doc, path, rng.choice(_HOSTILE_VALUES))
    elif op == 1 and path:
        doc = _delete(doc, path)
    elif op == 2:
        # a raw hostile token in place of a value
        marker = "\u0007MARK\u0007"
        doc = _set(doc, path, marker)
        text = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        return text.replace(json.dumps(marker).encode(), rng.choice(_RAW_TOKENS), 1)
    elif op == 3:
        depth = rng.choice([50, 500, 5000])
        doc = _set(doc, path, json.loads("[" * depth + "]" * depth) if depth < 900 else None)
        if depth >= 900:
            text = json.dumps(doc).encode()
            return text.replace(b"null", b"[" * depth + b"]" * depth, 1)
    else:
        # every field of one object gets a wrong type
        target = doc
        for key in path:
            target = target[key]
        if isinstance(target, dict):
            for key in list(target):
                target[key] = rng.choice(_HOSTILE_VALUES)
        else:
            doc = _set(doc, path, rng.choice(_HOSTILE_VALUES))
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _byte_mutation(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    op = rng.randrange(4)
    if op == 0 or not data:
        return bytes(data[: rng.randrange(len(data) + 1)])
    if op == 1:
        for _ in range(rng.randint(1, 10)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if op == 2:
        pos = rng.randrange(len(data) + 1)
        return bytes(data[:pos]) + rng.choice(_BAD_UTF8) + bytes(data[pos:])
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.randint(1, 200))
    return bytes(data[:start]) + bytes(data[end:]) + bytes(data[start:end])


_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><description>&lol9;</description></item></channel></rss>"""

_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title><item><title>&xxe;</title><link>https://x.example/1</link></item></channel></rss>"""

_PARAM_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY % ext SYSTEM "http://127.0.0.1:9/evil.dtd"> %ext;]>
<rss version="2.0"><channel><title>t</title><item><title>x</title></item></channel></rss>"""

_QUADRATIC = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "' + b"A" * 50_000 + b'">]>\n'
    b'<rss version="2.0"><channel><title>t</title><item><description>'
    + b"&a;" * 2_000
    + b"</description></item></channel></rss>"
)


def _feed_specials(rng: random.Random) -> list[bytes]:
    nested = (
        b"<rss><channel><item><title>"
        + b"<b>" * 20_000
        + b"x"
        + b"</b>" * 20_000
        + b"</title></item></channel></rss>"
    )
    return [
        _BOMB,
        _BOMB.replace(b"<!ENTITY", b"<!entity"),
        _XXE,
        _PARAM_XXE,
        _QUADRATIC,
        "\ufeff".encode("utf-16-le")
        + _BOMB.decode().replace('<?xml version="1.0"?>', "").encode("utf-16-le"),
        _BOMB.decode().encode("utf-16-be"),
        _BOMB.decode().encode("utf-32"),
        _BOMB.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="cp037"?>')
        .decode()
        .encode("cp037"),
        _BOMB.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-7"?>')
        .decode()
        .encode("utf-7"),
        nested,
        b"<rss><channel><item><title>" + b"<" * 100_000 + b"</title></item></channel></rss>",
        b'<rss version="2.0"><channel><item><description><![CDATA['
        + b"<a " * 30_000
        + b"]]></description></item></channel></rss>",
        b"<html><body><p>not a feed</p></body></html>",
        b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>unterminated',
        b"<?xml version='1.0' encoding='x-unknown-999'?>"
        b"<rss><channel><item><title>t</title></item></channel></rss>",
        b'<rss version="2.0"><channel><item><guid>'
        + b"g" * 5000
        + b"</guid><pubDate>Mon, 99 Foo 99999 99:99:99 XYZ</pubDate></item></channel></rss>",
        b"/etc/passwd",
        b"https://127.0.0.1:9/feed.xml",
        b"file:///etc/passwd",
        bytes(rng.randrange(256) for _ in range(rng.randint(0, 3000))),
    ]


def _html_specials() -> list[bytes]:
    contents = [
        '<a "' * 30_000,
        "<p>" + '<span class="invisible">' * 5_000 + "hidden",
        '<a href="https://x.example/" class="u-url mention">@<span>' * 3_000,
        "&#xD800;&#x110000;&#0;&#xFFFFFFFFFF;&lt;&gt;&amp;" * 1_000,
        "<" * 200_000,
        "<p>" + "a " * 300_000 + "</p>",
        "<script>" + "x" * 10_000,
        '<a href="javascript:alert(1)">click</a><iframe src="https://evil"></iframe>',
        "<p>" * 50_000,
        "</span>" * 50_000,
    ]
    out: list[bytes] = []
    for content in contents:
        out.append(json.dumps({**_STATUS, "content": content}).encode())
    out.append(
        json.dumps({"event": "update", "payload": json.dumps({**_STATUS, "content": contents[0]})}).encode()
    )
    return out


def _structural_specials(rng: random.Random) -> list[tuple[str, bytes]]:
    deep_replies: dict[str, Any] = {"kind": "t1", "data": {"name": "t1_end", "body": "x", "created_utc": 1.0}}
    for i in range(80):
        deep_replies = {
            "kind": "t1",
            "data": {
                "name": f"t1_{i}",
                "body": "x",
                "created_utc": 1.0,
                "replies": {"kind": "Listing", "data": {"children": [deep_replies]}},
            },
        }
    many = {
        "kind": "Listing",
        "data": {
            "children": [{"kind": "t1", "data": {"name": "t1_a", "body": "b", "created_utc": 1}}] * 10_001
        },
    }
    out: list[tuple[str, bytes]] = [
        ("reddit", json.dumps(deep_replies).encode()),
        ("reddit", json.dumps(many).encode()),
        (
            "reddit",
            json.dumps(
                {"source_cassette": "x", "response": {"source_cassette": "y", "response": "nope"}}
            ).encode(),
        ),
        ("reddit", json.dumps([[[[[[_THING]]]]]]).encode()),
        ("mastodon", json.dumps([1, 2, 3] * 5_000).encode()),
        ("mastodon", json.dumps([_STATUS] * 10_001).encode()),
        ("mastodon", json.dumps({"event": "update", "payload": "{not json"}).encode()),
        (
            "mastodon",
            json.dumps(
                {"event": "update", "payload": json.dumps({"event": "update", "payload": "x"})}
            ).encode(),
        ),
        ("mastodon", json.dumps({"event": "delete", "payload": 12345}).encode()),
        ("mastodon", json.dumps({"event": "status.update", "payload": 7}).encode()),
        (
            "mastodon",
            json.dumps({**_STATUS, "reblog": {**_STATUS, "reblog": {**_STATUS, "reblog": _STATUS}}}).encode(),
        ),
        (
            "jetstream",
            json.dumps(
                _jetstream(
                    {
                        **_RECORD,
                        "facets": [
                            {"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "t"}] * 1000}
                        ]
                        * 100,
                    }
                )
            ).encode(),
        ),
        (
            "jetstream",
            json.dumps(
                _jetstream(
                    {
                        **_RECORD,
                        "embed": {
                            "$type": "app.bsky.embed.recordWithMedia",
                            "media": {"$type": "app.bsky.embed.recordWithMedia", "media": {}},
                        },
                    }
                )
            ).encode(),
        ),
        ("jetstream", json.dumps(_jetstream(_RECORD, rkey="../../etc/passwd")).encode()),
        ("jetstream", json.dumps(_jetstream(_RECORD, op="explode")).encode()),
        ("jetstream", json.dumps({**_jetstream(_RECORD), "did": "not-a-did"}).encode()),
        ("jsonl", json.dumps({"text": "x", "created_at": 1e300}).encode()),
        ("jsonl", json.dumps({"text": "x", "created_at": "NaN"}).encode()),
        ("jsonl", json.dumps({"text": ["not", "a", "string"], "created_at": "2020-01-01"}).encode()),
        ("jsonl", json.dumps({"_murmur_error": "CSV row 3: field larger than field limit"}).encode()),
        ("csv", json.dumps({"text": "x" * 100_000, "timestamp": "-99999999999999999"}).encode()),
        ("csv", b"[1, 2, 3]"),
    ]
    for fmt in FORMATS:
        out.append((fmt, b""))
        out.append((fmt, b"   \n\t"))
        out.append((fmt, b"null"))
        out.append((fmt, b'"just a string"'))
        out.append((fmt, b"[" * 100_000))
        out.append((fmt, b'{"a":' * 50_000))
        out.append((fmt, bytes(rng.randrange(256) for _ in range(rng.randint(1, 4000)))))
    return out


def hostile_payloads(n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` deterministic (format, payload) pairs, mostly malformed or hostile, some valid."""
    rng = random.Random(seed)
    seeds = _seeds()
    fixed: list[tuple[str, bytes]] = _structural_specials(rng)
    fixed += [("feed", p) for p in _feed_specials(rng)]
    fixed += [("mastodon", p) for p in _html_specials()]
    out = fixed[:n]
    weights = {"jetstream": 2, "mastodon": 3, "reddit": 3, "feed": 1, "jsonl": 1, "csv": 1}
    formats = list(weights)
    mutators: list[Callable[[random.Random, bytes], bytes]] = [_json_mutation, _byte_mutation]
    while len(out) < n:
        fmt = rng.choices(formats, weights=[weights[f] for f in formats])[0]
        seed_payload = rng.choice(seeds[fmt])
        roll = rng.random()
        if roll < 0.04:
            payload = seed_payload  # valid ones too: the normalizer must still produce sound drafts
        elif roll < 0.06:
            payload = bytes(rng.randrange(256) for _ in range(rng.randint(0, 500)))
        elif roll < 0.07:
            other = rng.choice(formats)
            payload = rng.choice(seeds[other])  # the right payload for the wrong normalizer
        elif fmt == "feed" and seed_payload.lstrip()[:1] == b"<":
            payload = _byte_mutation(rng, seed_payload)
        else:
            payload = rng.choice(mutators)(rng, seed_payload)
        out.append((fmt, payload))
    if n >= 1000:
        out[-1] = (
            "jetstream",
            b'{"did":"did:plc:x","kind":"commit","pad":"' + b"x" * (17 * 1024 * 1024) + b'"}',
        )
    return out


def assert_sound(events: object) -> None:
    """What a normalizer may return: a list of well-formed drafts and deletions, nothing else."""
    from datetime import datetime

    from murmur.types import PLATFORMS, Deletion, Draft

    assert isinstance(events, list), type(events)
    for ev in events:
        assert isinstance(ev, Draft | Deletion), type(ev)
        assert ev.platform in PLATFORMS
        assert isinstance(ev.post_id, str)
        assert 0 < len(ev.post_id) <= 2048
        ev.post_id.encode("utf-8")
        if isinstance(ev, Deletion):
            continue
        assert isinstance(ev.created_at, datetime)
        assert ev.created_at.utcoffset() is not None
        assert isinstance(ev.text, str)
        assert len(ev.text) <= 10_000
        assert "\x00" not in ev.text
        ev.text.encode("utf-8")  # no lone surrogates
        assert isinstance(ev.author_raw_id, str)
        assert ev.author_raw_id
        ev.author_raw_id.encode("utf-8")
        for values in (ev.urls, ev.hashtags, ev.mentions):
            assert isinstance(values, list)
            assert len(values) <= 64
            for v in values:
                assert isinstance(v, str)
                assert v
                v.encode("utf-8")
        for tag in ev.hashtags:
            assert tag == tag.lower(), tag
            assert not tag.startswith("#"), tag
        for opt in (ev.lang_declared, ev.site, ev.community, ev.country, ev.title):
            assert opt is None or (isinstance(opt, str) and len(opt) <= 10_000)
            if opt is not None:
                opt.encode("utf-8")
        assert isinstance(ev.is_reply, bool)
        assert isinstance(ev.is_repost, bool)
        assert isinstance(ev.has_media, bool)
