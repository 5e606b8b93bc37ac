"""Fuzzing every normalizer: malformed and hostile payloads give a PayloadError or sound drafts, never
another exception, and each is handled in bounded time.

The registered normalizer functions are called directly, without ``normalize()``'s safety net (which
would turn any bug into a PayloadError and so hide it).
"""

from __future__ import annotations

import collections
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from murmur.errors import PayloadError
from murmur.sources.normalize import BUILTINS, get_normalizer
from tests.sources.fuzz_corpus import (
    _RECORD,
    _STATUS,
    _THING,
    FORMATS,
    _jetstream,
    assert_sound,
    hostile_payloads,
)

CORPUS_SIZE = 10_000
PER_PAYLOAD_CPU_S = 2.0


def run(fmt: str, payload: bytes) -> str:
    """'ok' or 'rejected'; any other exception fails the test with the payload that caused it."""
    try:
        events = get_normalizer(fmt)(payload)
    except PayloadError as exc:
        if not exc.reason:
            pytest.fail(f"{fmt}: a PayloadError without a reason on {payload[:200]!r}")
        return "rejected"
    assert_sound(events)
    return "ok"


@pytest.mark.timeout(300)
def test_hostile_corpus() -> None:
    corpus = hostile_payloads(CORPUS_SIZE, seed=20_251_123)
    assert len(corpus) == CORPUS_SIZE
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    slowest = (0.0, "", b"")
    for fmt, payload in corpus:
        start = time.process_time()
        try:
            outcome = run(fmt, payload)
        except Exception as exc:
            pytest.fail(f"{fmt} normalizer raised {type(exc).__name__}: {exc} on payload {payload[:300]!r}")
        spent = time.process_time() - start
        slowest = max(slowest, (spent, fmt, payload[:120]))
        outcomes[(fmt, outcome)] += 1
    assert slowest[0] < PER_PAYLOAD_CPU_S, (
        f"slowest payload took {slowest[0]:.2f}s: {slowest[1]} {slowest[2]!r}"
    )
    # The corpus really exercises both sides of every normalizer.
    for fmt in FORMATS:
        assert outcomes[(fmt, "rejected")] > 20, outcomes
        assert outcomes[(fmt, "ok")] > 20, outcomes


def test_corpus_is_deterministic() -> None:
    assert hostile_payloads(300, seed=7) == hostile_payloads(300, seed=7)
    assert hostile_payloads(300, seed=7) != hostile_payloads(300, seed=8)


# --- hypothesis: generated structures in each format's shape -----------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _dump(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # e.g. lone surrogates in generated text
        return b"{}"


def _replace(doc: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(orjson.dumps(doc))
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


FIELDS: dict[str, tuple[dict[str, Any], list[list[str]]]] = {
    "jetstream": (
        _jetstream(_RECORD),
        [
            ["did"],
            ["kind"],
            ["commit"],
            ["commit", "operation"],
            ["commit", "rkey"],
            ["commit", "record"],
            ["commit", "record", "text"],
            ["commit", "record", "createdAt"],
            ["commit", "record", "langs"],
            ["commit", "record", "facets"],
            ["commit", "record", "embed"],
            ["commit", "record", "reply"],
            ["commit", "record", "tags"],
        ],
    ),
    "mastodon": (
        _STATUS,
        [
            ["uri"],
            ["created_at"],
            ["content"],
            ["account"],
            ["account", "acct"],
            ["mentions"],
            ["tags"],
            ["reblog"],
            ["card"],
            ["visibility"],
            ["language"],
            ["spoiler_text"],
            ["media_attachments"],
        ],
    ),
    "reddit": (
        _THING,
        [
            ["kind"],
            ["data"],
            ["data", "name"],
            ["data", "title"],
            ["data", "selftext"],
            ["data", "created_utc"],
            ["data", "replies"],
            ["data", "url"],
            ["data", "is_self"],
            ["data", "media"],
            ["data", "author"],
        ],
    ),
}


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(FIELDS)), data=st.data())
def test_any_value_in_any_field(fmt: str, data: st.DataObject) -> None:
    doc, paths = FIELDS[fmt]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(json_values)
    run(fmt, _dump(_replace(doc, path, value)))


@settings(max_examples=300, deadline=None, database=None)
@given(fmt=st.sampled_from(sorted(BUILTINS)), payload=st.binary(max_size=2_000))
def test_arbitrary_bytes(fmt: str, payload: bytes) -> None:
    run(fmt, payload)


@settings(max_examples=200, deadline=None, database=None)
@given(
    row=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "text",
                "body",
                "created_at",
                "timestamp",
                "author",
                "lang",
                "url",
                "hashtags",
                "mentions",
                "is_reply",
                "media",
                "country",
                "title",
            ]
        ),
        json_values,
        max_size=10,
    )
)
def test_any_file_row(row: dict[str, Any]) -> None:
    run("jsonl", _dump(row))


@settings(max_examples=150, deadline=None, database=None)
@given(html=st.text(alphabet=st.sampled_from(list('<>/"=& apbrspanclassinvisible#@;x\n')), max_size=300))
def test_any_status_html(html: str) -> None:
    run("mastodon", orjson.dumps({**_STATUS, "content": html}))


@pytest.mark.parametrize("fmt", ["jetstream", "mastodon", "reddit"])
def test_a_utf8_byte_order_mark_before_the_json_changes_nothing(fmt: str) -> None:
    """A payload saved by an editor (or sent by a server) with a UTF-8 BOM is the same payload; JSON
    parsers refuse the BOM itself ("invalid character (byte 0)")."""
    from murmur.testing import has_shared_data, real_payload_mix

    if not has_shared_data():
        pytest.skip("../shared/data is absent (the real payloads live there)")
    normalizer = get_normalizer(fmt)
    for payload in real_payload_mix(60)[fmt][:20]:
        assert normalizer(b"\xef\xbb\xbf" + payload) == normalizer(payload)
