"""One HTTP answer, whole, within a deadline and a size limit: what every polling source asks for.

httpx's ``timeout`` bounds each network operation, not the answer: a server (or a proxy) that sends
a byte every few seconds holds the request, and the source with it, for ever. And reading
``response.content`` takes whatever comes: a URL that serves a huge file or a compression bomb
fills the memory of the whole service. ``fetch`` bounds both, and what it returns is an ordinary
``httpx.Response`` whose body is already read (``.content``, ``.headers``, ``.links`` work as usual).

Long-lived streams (Mastodon's server-sent events, Jetstream's WebSocket) are not answers: they
have their own idle timeouts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from murmur.sources.normalize._common import MAX_PAYLOAD_BYTES
from murmur.urls import scrub_secrets

MAX_ANSWER_BYTES = MAX_PAYLOAD_BYTES
"""The largest answer a REST source reads (16 MiB, the normalizers' own payload limit): a Reddit
listing of 100 things is ~0.5 MB, a Mastodon page of 40 statuses ~0.2 MB."""

# Describe the bytes as they came over the wire; the body handed on is already decoded.
_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class IncompleteAnswer(Exception):
    """The answer did not come whole: too slow (``AnswerTimeout``) or too large (``AnswerTooLarge``)."""


class AnswerTimeout(IncompleteAnswer):
    pass


class AnswerTooLarge(IncompleteAnswer):
    pass


async def read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The (decoded) body, or None once it passes ``limit`` bytes: read no further."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline: float,
    max_bytes: int = MAX_ANSWER_BYTES,
    **kwargs: Any,
) -> httpx.Response:
    """Send the request and read its whole answer within ``deadline`` seconds (all of it, headers to
    last byte) and ``max_bytes`` (decoded). ``kwargs`` go to ``client.stream`` (``params``,
    ``headers``, ``auth``, ``data``...). Raises ``AnswerTimeout``, ``AnswerTooLarge`` or httpx's
    own ``HTTPError``; the message of the first two says what was asked (a token in its query
    string masked by ``scrub_secrets``)."""
    try:
        async with asyncio.timeout(deadline), client.stream(method, url, **kwargs) as response:
            body = await read_capped(response, max_bytes)
    except TimeoutError:
        msg = f"{method} {scrub_secrets(url)}: no complete answer within {deadline:g} s (timeout)"
        raise AnswerTimeout(msg) from None
    if body is None:
        msg = f"{method} {scrub_secrets(url)}: the answer is larger than {max_bytes:,} bytes"
        raise AnswerTooLarge(msg)
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _FRAMING]
    return httpx.Response(response.status_code, headers=headers, content=body, request=response.request)


__all__ = ["MAX_ANSWER_BYTES", "AnswerTimeout", "AnswerTooLarge", "IncompleteAnswer", "fetch", "read_capped"]
