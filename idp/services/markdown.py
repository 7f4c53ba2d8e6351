"""Markdown to safe HTML, for texts an operator publishes (terms versions).

Two layers, each enough alone for the common attacks: markdown-it-py with raw HTML
off (``<script>`` stays text) and its link check (``javascript:``, ``vbscript:``,
``data:`` refused), then nh3 (the Ammonia sanitiser) keeping only the tags below,
``href``/``title`` on links, and absolute http(s)/mailto URLs; event handlers (``on*``),
``style`` and every other attribute go. Headings move one level down: the page's own
``<h1>`` is the document's title.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {"p", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "a",
                "blockquote", "code", "pre", "hr", "br", "table", "thead", "tbody", "tr",
                "th", "td", "s"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}

_PARSER = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})


# Relative links are dropped too: a terms text links to absolute addresses only.
_CLEANER = nh3.Cleaner(tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                       url_schemes=URL_SCHEMES, link_rel="noopener noreferrer nofollow",
                       strip_comments=True, url_relative="deny")


def sanitise(html: str) -> str:
    """Keep only the allowed tags and attributes (the second layer; tests call it alone)."""
    return _CLEANER.clean(html)


def render(markdown: str) -> str:
    """The sanitised HTML of a Markdown text."""
    tokens = _PARSER.parse(markdown)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
    return sanitise(_PARSER.renderer.render(tokens, _PARSER.options, {}))
