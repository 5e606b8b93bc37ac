"""HTML → plain text, fast and linear-time on any input.

Mastodon statuses and feed items carry HTML. What we need from it is the readable text with its line
breaks (``<p>``, ``<br>``, list items), the links, and Mastodon's conventions undone:

* ``<span class="invisible">`` parts of shortened links are dropped, and a shortened link is written
  out as its full ``href`` (so the privacy gate sees a real URL and keeps its domain); so is a link
  whose text is just the start of its address (``bsky.app/profile/h4lc...``);
* a mention link becomes ``@acct`` when the status lists that account (``mention_accts``);
* any other link to a person's profile (``reddit.com/user/name``, ``instance/@name``,
  ``instance/users/name``, ``bsky.app/profile/handle``) becomes that mention (``u/name``,
  ``@name@instance``, ``@handle``) in place of its text, so the privacy gate redacts it like any
  mention: the text of such a link is the person's name (Reddit's feeds write "submitted by
  <a href=".../user/name">name</a>");
* an address or mention written in place of a link's text stands apart from the words around it
  (``Look<a href=".../pic.jpg"><img></a>here`` → ``Look https://.../pic.jpg here``), so the words
  and the URL stay apart for the tokenizer, the terms and the privacy gate;
* with a ``base`` (a feed item's address), relative links (``/about``, ``../x``, ``//host/x``) are
  resolved against it and kept when they lead to an http(s) address; without one (Mastodon, whose
  links are always absolute) only absolute links are links;
* ``quote-inline`` fallbacks ("RE: <link>") of quote posts are dropped;
* ``<script>``, ``<style>`` and similar never contribute text.

This is a regular-expression tokenizer rather than ``html.parser``: content is already sanitized HTML
(Mastodon) or just needs its text (feeds). Mastodon's three standard link shapes (mention, hashtag,
shortened link) are rewritten by three substitutions first, so a typical status costs a few
microseconds; whatever else remains goes through a general tag-by-tag pass. No pattern can backtrack
across a ``<`` (a tag may not contain one), so hostile input stays linear.
"""

from __future__ import annotations

import re
from html import unescape

from murmur.sources.normalize._common import MAX_HTML_CHARS, MAX_LIST_ITEMS
from murmur.urls import absolute_url

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,31})([^<>]*)>")
_CLASS_ATTR = re.compile(r"""\bclass\s*=\s*(?:"([^"<]*)"|'([^'<]*)'|([^\s"'=<>`]+))""", re.IGNORECASE)
_HREF_ATTR = re.compile(r"""\bhref\s*=\s*(?:"([^"<]*)"|'([^'<]*)'|([^\s"'=<>`]+))""", re.IGNORECASE)
_MANY_BREAKS = re.compile(r"\n{3,}")
_DECLARATION = re.compile(r"<[!?][^<>]*>")

# The fast path: after the Mastodon rewrites, is anything but <p>, </p> and <br> left?
_OTHER_TAG = re.compile(r"<(?!/?p>|br ?/?>)[/A-Za-z!?]")
_PARAGRAPH_TAGS = re.compile(r"</?p>")
_BR = re.compile(r"<br ?/?>")
_HCARD = re.compile(
    r'<span class="h-card"(?: translate="no")?><a href="([^"<>]+)" class="u-url mention"[^<>]*>'
    r"@<span>([^<>]*)</span></a></span>"
)
_HASHTAG = re.compile(r'<a href="[^"<>]*" class="mention hashtag"[^<>]*>#<span>([^<>]*)</span></a>')
_SHORT_LINK = re.compile(
    r'<a href="(https?://[^"<>]+)"[^<>]*><span class="invisible">[^<>]*</span>'
    r'<span class="(?:ellipsis)?">[^<>]*</span><span class="invisible">[^<>]*</span></a>'
)

_VOID = frozenset(
    {"br", "img", "hr", "input", "meta", "link", "wbr", "source", "area", "base", "col", "embed", "param"}
)
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "iframe", "object", "svg", "head"})
_PARAGRAPH = frozenset({"p", "div", "blockquote", "pre", "section", "article", "header", "footer", "table"})
_LINE = frozenset({"li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "figcaption"})
_HIDDEN_CLASSES = frozenset({"invisible", "quote-inline"})
_PROFILE = re.compile(
    r"https?://(?:(?:www|old|new)\.)?reddit\.com/(?:user|u)/(?P<redditor>[\w-]+)/?(?:[?#].*)?"
    r"|https?://(?:www\.)?bsky\.app/profile/(?P<handle>[\w.:-]+)/?(?:[?#].*)?"
    r"|https?://(?P<instance>[\w-]+(?:\.[\w-]+)+)/(?:@|users/)(?P<name>[\w.-]+)/?(?:[?#].*)?",
    re.IGNORECASE,
)
"""The address of a person's profile, no more (a post's address below it is not one)."""
_MAX_OPEN = 256
_OPENERS = frozenset("([{\"'«“‘¿¡")
_CLOSERS = frozenset(".,;:!?)]}\"'…»”’")
"""Characters that may stand right before (after) an address or a mention: they do not run into it
(``(x.com/a)``, ``see x.com/a.``)."""


def _attr(pattern: re.Pattern[str], raw: str) -> str:
    m = pattern.search(raw)
    if m is None:
        return ""
    value = m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None else m.group(3)
    return unescape(value) if "&" in value else value


def _collapse(chunk: str) -> str:
    """Runs of whitespace → one space, as HTML renders them (keeping a leading/trailing one)."""
    lead = " " if chunk[:1].isspace() else ""
    trail = " " if chunk[-1:].isspace() else ""
    return lead + " ".join(chunk.split()) + trail if chunk.strip() else " "


def _text(chunk: str) -> str:
    if "&" in chunk:
        chunk = unescape(chunk)
    if "\n" in chunk or "\t" in chunk or "\r" in chunk:
        chunk = _collapse(chunk)
    return chunk


def _tidy(text: str) -> str:
    """Trim spaces around line breaks and keep at most one blank line in a row."""
    if "\n" in text:
        if " \n" in text or "\n " in text or "\t" in text:
            text = "\n".join(line.strip(" \t") for line in text.split("\n"))
        if "\n\n\n" in text:
            text = _MANY_BREAKS.sub("\n\n", text)
    return text.strip()


def html_to_text(
    html: str, mention_accts: dict[str, str] | None = None, *, base: str | None = None
) -> tuple[str, list[str]]:
    """Return (plain text, link hrefs).

    ``mention_accts`` maps a mention link's href, or its visible ``@name`` text, to the account's acct.
    ``base`` is the absolute address relative links are resolved against (none: they are no links).
    """
    if "<" not in html:
        return (_text(html).strip(), [])
    if len(html) > MAX_HTML_CHARS:
        html = html[:MAX_HTML_CHARS]
    links: list[str] = []
    if 'class="' in html and "quote-inline" not in html:
        html = _mastodon_markup(html, links, mention_accts)
    if not _OTHER_TAG.search(html):
        if "\n" in html or "\t" in html or "\r" in html:
            html = _collapse(html)
        text = _PARAGRAPH_TAGS.sub("\n\n", html.replace("</p><p>", "\n\n"))
        text = _BR.sub("\n", text)
        if "&" in text:
            text = unescape(text)
        return (_tidy(text), links)
    return _generic(html, links, mention_accts, base)


def _mastodon_markup(html: str, links: list[str], accts: dict[str, str] | None) -> str:
    """Rewrite Mastodon's three standard link shapes to text; anything else is left as it is."""

    def mention(m: re.Match[str]) -> str:
        href = unescape(m.group(1)) if "&" in m.group(1) else m.group(1)
        name = m.group(2)
        acct = (accts.get(href) or accts.get("@" + name)) if accts else None
        return "@" + (acct or name)

    def short_link(m: re.Match[str]) -> str:
        href = m.group(1)
        if len(links) < MAX_LIST_ITEMS:
            links.append(unescape(href) if "&" in href else href)
        return href

    if "h-card" in html:
        html = _HCARD.sub(mention, html)
    if "hashtag" in html:
        html = _HASHTAG.sub(r"#\1", html)
    if "invisible" in html:
        html = _SHORT_LINK.sub(short_link, html)
    return html


class _Frame:
    """An open element that matters: one whose text is skipped, or a link."""

    __slots__ = ("hidden", "href", "kind", "nested", "start", "tag")

    def __init__(self, tag: str, kind: str, start: int, href: str) -> None:
        self.tag = tag
        self.kind = kind  # "skip", "mention" or "link"
        self.start = start
        self.href = href
        self.hidden = False
        self.nested = 0  # plain elements of the same name opened inside, not yet closed


def _strip_comments(html: str) -> str:
    """Drop ``<!-- ... -->`` (an unclosed one runs to the end), ``<!DOCTYPE ...>`` and ``<?...?>``."""
    if "<!--" in html:
        parts: list[str] = []
        pos = 0
        while (start := html.find("<!--", pos)) >= 0:
            parts.append(html[pos:start])
            end = html.find("-->", start + 4)
            if end < 0:
                pos = len(html)
                break
            pos = end + 3
        parts.append(html[pos:])
        html = "".join(parts)
    if "<!" in html or "<?" in html:
        html = _DECLARATION.sub("", html)
    return html


def _generic(
    html: str, links: list[str], accts: dict[str, str] | None, base: str | None = None
) -> tuple[str, list[str]]:
    html = _strip_comments(html)
    out: list[str] = []
    frames: list[_Frame] = []
    open_names: dict[str, int] = {}
    skipping = 0
    pos = 0
    apart_at = -1  # len(out) right after an address or mention was written in place of a link

    def text(chunk: str) -> str:
        chunk = _text(chunk)
        if apart_at == len(out) and chunk and not chunk[0].isspace() and chunk[0] not in _CLOSERS:
            return " " + chunk  # "<a href=x><img></a>here": the address, then the word
        return chunk

    for m in _TAG.finditer(html):
        start, end = m.span()
        if start > pos and not skipping:
            out.append(text(html[pos:start]))
        pos = end
        closing, name, raw = m.groups()
        tag = name.lower()
        if closing:
            if tag in _PARAGRAPH:
                out.append("\n\n")
            elif tag in _LINE and tag != "li":  # a list item's break comes with the next <li>
                out.append("\n")
            if open_names.get(tag):
                for i in range(len(frames) - 1, -1, -1):
                    frame = frames[i]
                    if frame.tag != tag:
                        continue
                    if frame.nested:
                        frame.nested -= 1
                        break
                    for inner in reversed(frames[i:]):
                        open_names[inner.tag] -= 1
                        if inner.kind == "skip":
                            skipping -= 1
                        elif not skipping and _close_anchor(inner, out, links, accts):
                            apart_at = len(out)
                    del frames[i:]
                    break
            continue
        if tag == "br":
            out.append("\n")
            continue
        if tag in _PARAGRAPH:
            out.append("\n\n")
        elif tag == "li":
            out.append("\n")
        if tag in _VOID or raw.endswith("/"):
            continue
        kind = ""
        href = ""
        if tag in _SKIP_TAGS:
            kind = "skip"
        elif tag == "a" or "class" in raw:
            classes = _attr(_CLASS_ATTR, raw).split() if "class" in raw else []
            if any(c in _HIDDEN_CLASSES for c in classes):
                kind = "skip"
            if kind == "skip" or "ellipsis" in classes:
                for outer in reversed(frames):
                    if outer.kind == "link":
                        outer.hidden = True
                        break
            elif tag == "a" and "hashtag" not in classes:
                href = _attr(_HREF_ATTR, raw)
                if "mention" in classes:
                    kind = "mention"
                elif href.startswith(("http://", "https://")):
                    kind = "link"
                elif base is not None and (resolved := absolute_url(href, base)):
                    kind = "link"
                    href = resolved
        if kind and len(frames) < _MAX_OPEN:
            frames.append(_Frame(tag, kind, len(out), href))
            open_names[tag] = open_names.get(tag, 0) + 1
            if kind == "skip":
                skipping += 1
        elif open_names.get(tag):
            for frame in reversed(frames):
                if frame.tag == tag:
                    frame.nested += 1
                    break
    if pos < len(html) and not skipping:
        out.append(text(html[pos:]))
    return (_tidy("".join(out)), links)


def _shortened(visible: str, href: str) -> bool:
    """Is ``visible`` the start of ``href`` without its scheme (a link shortened for display)?"""
    shown = visible.rstrip(".…").strip()
    shown = shown.partition("://")[2] or shown
    target = href.partition("://")[2]
    return len(shown) >= 4 and (target.startswith(shown) or target.removeprefix("www.").startswith(shown))


def profile_mention(href: str) -> str | None:
    """The mention a link to a person's profile stands for (``u/name``, ``@name@instance``,
    ``@handle``, or a Bluesky DID as it is), or None for any other link."""
    m = _PROFILE.fullmatch(href)
    if m is None:
        return None
    if m["redditor"]:
        return "u/" + m["redditor"]
    if m["handle"]:
        handle: str = m["handle"]
        return handle if handle.lower().startswith("did:") else "@" + handle
    return f"@{m['name']}@{m['instance']}"


def _close_anchor(frame: _Frame, out: list[str], links: list[str], accts: dict[str, str] | None) -> bool:
    """Write a link's text (or what stands for it) and note its href; True when an address or a
    mention was written in its place, which must stand apart from the text that follows."""
    visible = "".join(out[frame.start :]).strip()
    if accts and (frame.kind == "mention" or visible.startswith("@")):
        acct = accts.get(frame.href) or accts.get(visible)
        if acct:
            out[frame.start :] = ["@" + acct]
            return False
    if frame.kind != "link":
        return False
    written = None
    if frame.hidden or not visible or _shortened(visible, frame.href):
        written = frame.href
    elif profile := profile_mention(frame.href):
        written = profile
    if written is not None:
        before = "".join(out[max(0, frame.start - 1) : frame.start])[-1:]
        # apart from the text around it ("Look<a><img></a>here", "by<a>name</a>to"), or it would
        # read as part of a word (and an address would swallow the word after it)
        glued = before and not before.isspace() and before not in _OPENERS
        out[frame.start :] = [(" " if glued else "") + written]
    if len(links) < MAX_LIST_ITEMS:
        links.append(frame.href)
    return written is not None
