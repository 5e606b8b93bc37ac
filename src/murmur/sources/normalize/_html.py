"""HTML → plain text, fast and linear-time on any input.

Mastodon statuses and feed items carry HTML. What we need from it is the readable text with its line
breaks (``<p>``, ``<br>``, list items), the links, and Mastodon's conventions undone:

* ``<span class="invisible">`` parts of shortened links are dropped, and a shortened link is written
  out as its full ``href`` (so the privacy gate sees a real URL and keeps its domain);
* ``<a class="mention">`` becomes ``@acct`` when the status lists that account (``mention_accts``);
* ``quote-inline`` fallbacks ("RE: <link>") of quote posts are dropped;
* ``<script>``, ``<style>`` and similar never contribute text.

This is a single regular-expression tokenizer rather than ``html.parser``: content is already
sanitized HTML (Mastodon) or just needs its text (feeds), the tokenizer costs a few microseconds per
status, and its patterns cannot backtrack (a tag may not contain ``<``), so hostile input stays linear.
"""

from __future__ import annotations

import re
from html import unescape

from murmur.sources.normalize._common import MAX_HTML_CHARS, MAX_LIST_ITEMS

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,31})([^<>]*)>")
_ATTR = re.compile(r"""([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)'|([^\s"'=<>`]+))""")
_WS = re.compile(r"[ \t\r\n\f]+")
_MANY_BREAKS = re.compile(r"[ \t]*\n[ \t\n]*\n[ \t\n]*")
_LINE_SPACE = re.compile(r"[ \t]*\n[ \t]*")

_VOID = frozenset(
    {"br", "img", "hr", "input", "meta", "link", "wbr", "source", "area", "base", "col", "embed", "param"}
)
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "iframe", "object", "svg", "head"})
_PARAGRAPH = frozenset({"p", "div", "blockquote", "pre", "section", "article", "header", "footer", "table"})
_LINE = frozenset({"li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "figcaption"})
_HIDDEN_CLASSES = frozenset({"invisible", "quote-inline"})


def _attrs(raw: str) -> dict[str, str]:
    if "=" not in raw:
        return {}
    found: dict[str, str] = {}
    for m in _ATTR.finditer(raw):
        value = m.group(2) if m.group(2) is not None else m.group(3) if m.group(3) is not None else m.group(4)
        found[m.group(1).lower()] = unescape(value) if "&" in value else value
    return found


def _text(chunk: str) -> str:
    if "&" in chunk:
        chunk = unescape(chunk)
    if "\n" in chunk or "\t" in chunk or "\r" in chunk:
        chunk = _WS.sub(" ", chunk)
    return chunk


class _Frame:
    __slots__ = ("hidden", "href", "kind", "start", "tag")

    def __init__(self, tag: str, kind: str, start: int, href: str = "", hidden: bool = False) -> None:
        self.tag = tag
        self.kind = kind  # "", "skip", "mention", "hashtag", "link"
        self.start = start
        self.href = href
        self.hidden = hidden


def html_to_text(html: str, mention_accts: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """Return (plain text, link hrefs).

    ``mention_accts`` maps a mention link's href, or its visible ``@name`` text, to the account's acct.
    """
    if "<" not in html:
        return (_text(html).strip(), [])
    if len(html) > MAX_HTML_CHARS:
        html = html[:MAX_HTML_CHARS]
    out: list[str] = []
    links: list[str] = []
    stack: list[_Frame] = []
    skipping = 0
    pos = 0
    for m in _TAG.finditer(html):
        if m.start() > pos and not skipping:
            out.append(_text(html[pos : m.start()]))
        pos = m.end()
        closing, tag, raw = m.group(1), m.group(2).lower(), m.group(3)
        if closing:
            if tag in _PARAGRAPH:
                out.append("\n\n")
            elif tag in _LINE:
                out.append("\n")
            # pop to the matching open element, if there is one
            for i in range(len(stack) - 1, -1, -1):
                if stack[i].tag == tag:
                    for frame in stack[i:][::-1]:
                        if frame.kind == "skip":
                            skipping -= 1
                        elif not skipping:
                            _close_anchor(frame, out, links, mention_accts)
                    del stack[i:]
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
        frame = _Frame(tag, "", len(out))
        if tag in _SKIP_TAGS:
            frame.kind = "skip"
        elif "class" in raw or tag == "a":
            attrs = _attrs(raw)
            classes = attrs.get("class", "").split()
            if any(c in _HIDDEN_CLASSES for c in classes):
                frame.kind = "skip"
                for outer in reversed(stack):
                    if outer.kind == "link":
                        outer.hidden = True
                        break
            elif "ellipsis" in classes:
                for outer in reversed(stack):
                    if outer.kind == "link":
                        outer.hidden = True
                        break
            elif tag == "a":
                href = attrs.get("href", "")
                if "hashtag" in classes:
                    frame.kind = "hashtag"
                elif "mention" in classes:
                    frame.kind = "mention"
                    frame.href = href
                elif href.startswith(("http://", "https://")):
                    frame.kind = "link"
                    frame.href = href
        if frame.kind == "skip":
            skipping += 1
        stack.append(frame)
        if len(stack) > 256:  # unclosed elements on hostile input: forget the oldest
            oldest = stack.pop(0)
            if oldest.kind == "skip":
                skipping -= 1
    if pos < len(html) and not skipping:
        out.append(_text(html[pos:]))
    text = "".join(out)
    if "\n" in text:
        text = _MANY_BREAKS.sub("\n\n", text)
        text = _LINE_SPACE.sub("\n", text)
    return (text.strip(), links)


def _shortened(visible: str, href: str) -> bool:
    """Is ``visible`` the start of ``href`` without its scheme (a link shortened for display)?"""
    shown = visible.rstrip(".…").strip().partition("://")[2] or visible.rstrip(".…").strip()
    target = href.partition("://")[2]
    return len(shown) >= 4 and (target.startswith(shown) or target.removeprefix("www.").startswith(shown))


def _close_anchor(frame: _Frame, out: list[str], links: list[str], accts: dict[str, str] | None) -> None:
    if frame.kind not in ("mention", "link"):
        return
    visible = "".join(out[frame.start :]).strip()
    if accts and (frame.kind == "mention" or visible.startswith("@")):
        acct = accts.get(frame.href) or accts.get(visible)
        if acct:
            out[frame.start :] = ["@" + acct]
            return
    if frame.kind == "link":
        if frame.hidden or not visible or _shortened(visible, frame.href):
            out[frame.start :] = [frame.href]
        if len(links) < MAX_LIST_ITEMS:
            links.append(frame.href)
