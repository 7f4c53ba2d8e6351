"""Terms texts: Markdown rendered to HTML that can carry no script (services/markdown.py)."""

from __future__ import annotations

import re

import pytest

from idp.services.markdown import render, sanitise


def _tags(html: str) -> list[str]:
    return re.findall(r"<[a-zA-Z][^>]*>", html)


def test_markdown_becomes_html_with_headings_one_level_down():
    html = render("# Title\n\n## Part\n\nSome *words* and **more**.\n\n- one\n- two")
    assert "<h2>Title</h2>" in html and "<h3>Part</h3>" in html
    assert "<em>words</em>" in html and "<strong>more</strong>" in html
    assert "<ul>" in html and "<li>one</li>" in html


def test_links_keep_https_and_mailto_with_a_safe_rel():
    html = render("[site](https://example.com/terms) and [mail](mailto:legal@example.com)")
    assert '<a href="https://example.com/terms" rel="noopener noreferrer nofollow">site</a>' \
        in html
    assert 'href="mailto:legal@example.com"' in html


@pytest.mark.parametrize("source", [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "before <script>alert(1)</script> after",
])
def test_a_script_in_the_markdown_stays_text(source):
    html = render(source)
    assert "<script" not in html.lower()
    assert "&lt;script" in html.lower()  # shown as what it is: text


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", " javascript:alert(1)",
    "java&#x09;script:alert(1)",
])
def test_script_urls_never_become_links(url):
    html = render(f"[click]({url}) <{url}>")
    assert not [t for t in _tags(html) if "href" in t and "https" not in t], html
    assert "javascript:" not in " ".join(_tags(html)).lower()


def test_raw_html_is_never_markup():
    html = render('<div onclick="x()">a</div>\n\n<iframe src="https://e.example"></iframe>\n\n'
                  '<a href="https://e.example" onmouseover="x()">b</a> <img src=x onerror=y>')
    assert _tags(html) == ["<p>"] * len(_tags(html)), html  # only the paragraphs it made


@pytest.mark.parametrize("raw, kept", [
    ('<p onclick="steal()">Hi</p>', "<p>Hi</p>"),
    ('<a href="https://e.example" onmouseover="x()" style="color:red">l</a>',
     '<a href="https://e.example" rel="noopener noreferrer nofollow">l</a>'),
    ('<a href="JAVASCRIPT:alert(1)">l</a>', '<a rel="noopener noreferrer nofollow">l</a>'),
    ('<a href="/account/delete">l</a>', '<a rel="noopener noreferrer nofollow">l</a>'),
    ("<p>a<script>alert(1)</script>b</p>", "<p>ab</p>"),
    ('<img src="x" onerror="alert(1)"><svg onload="alert(1)"></svg>', ""),
    ('<iframe src="https://e.example"></iframe><style>p{}</style><p>t</p>', "<p>t</p>"),
    ("<!-- a comment --><p>t</p>", "<p>t</p>"),
    ('<form action="https://e.example"><input name="p"></form>', ""),
])
def test_the_sanitiser_alone_drops_scripts_handlers_and_unknown_tags(raw, kept):
    assert sanitise(raw) == kept
