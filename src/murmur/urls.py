"""URL helpers shared by the normalizers and the privacy gate (which keeps only domains)."""

from __future__ import annotations

from urllib.parse import urlsplit


def domain_of(url: str | None) -> str | None:
    """The host of a URL, lower-cased, without ``www.``, credentials or port; None if there is none."""
    if not url:
        return None
    text = url if "://" in url else "http://" + url
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host or "." not in host:
        return None
    host = host.rstrip(".").lower()
    return host.removeprefix("www.") or None
