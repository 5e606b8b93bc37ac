"""URL helpers shared by the normalizers and the privacy gate (which keeps only domains)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

_PLAIN_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([A-Za-z0-9.-]+)(?::[0-9]*)?(?:[/?#]|$)")
_PLAIN_HOST = re.compile(r"([A-Za-z0-9.-]+)(?::[0-9]*)?(?:[/?#]|$)")
"""``scheme://host:port/…`` with a plain ASCII host and nothing unusual before the path: the common
case, parsed here directly; everything else (credentials, IPv6, odd characters) goes to ``urlsplit``."""


def domain_of(url: str | None) -> str | None:
    """The host of a URL, lower-cased, without ``www.``, credentials or port; None if there is none."""
    if not url:
        return None
    m = (_PLAIN_URL if "://" in url else _PLAIN_HOST).match(url)
    if m is not None and url.isprintable() and " " not in url:
        host: str | None = m.group(1).lower()
    else:
        text = url if "://" in url else "http://" + url
        try:
            host = urlsplit(text).hostname
        except ValueError:
            return None
    if not host or "." not in host:
        return None
    host = host.rstrip(".").lower()
    return host.removeprefix("www.") or None


def absolute_url(href: str, base: str | None) -> str | None:
    """``href`` as an http(s) address: as it is when it is one, else resolved against ``base`` (a
    feed's or an item's address: ``/about``, ``../x``, ``//host/x``); None when it leads nowhere else
    (an in-page ``#anchor``, ``mailto:``, ``javascript:``, no base, an unparseable address)."""
    href = href.strip()
    if href.startswith(("http://", "https://")):
        return href
    if not href or not base or href.startswith("#"):
        return None
    try:
        url = urljoin(base, href)
    except ValueError:  # "//[::1" and the like
        return None
    return url if url.startswith(("http://", "https://")) else None


_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")
_QUERY_VALUE = re.compile(r"([?&][^=&\s#'\"<>]+=)[^&\s#'\"<>]+")


def scrub_secrets(text: str) -> str:
    """``text`` (an error message, a log line) with the credentials and query-string values of the URLs
    in it masked: ``https://user:pw@host/feed?token=abc`` → ``https://***@host/feed?token=***``. A token
    in a feed URL must not reach the logs or the status file."""
    if "://" not in text:
        return text
    return _QUERY_VALUE.sub(r"\1***", _USERINFO.sub(r"\1***@", text))
