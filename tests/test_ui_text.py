"""ui.text: user strings survive Streamlit's markdown, raw HTML and Plotly labels as text.

Oracles: CommonMark's backslash-escape rule (``tests.helpers.shown``), ``html.unescape``, and
the patterns Streamlit's markdown pipeline expands in text that escaping cannot reach
(remark-emoji short codes, Streamlit's ``:material_name:`` icons, GitHub autolink literals).
The browser test ``tests/browser/test_hostile_links_browser.py`` checks the real renderer.
"""

from __future__ import annotations

import html
import re
import string

from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import shown
from ui.text import WORD_JOINER, html_text, md_escape, one_line, plot_text

PAYLOADS = [
    "![x](http://127.0.0.1:8798/leak.png)",
    "<img src=http://127.0.0.1:8798/i.png>",
    ":red[boom] :material/home: :smile: :streamlit: $x^2$ $$y$$",
    "[link](javascript:alert(1)) <http://a.b> www.example.com ada@example.com",
    "**bold** _it_ ~~gone~~ `code` # heading\n- item\n> quote\n| a | b |",
    "&lt;b&gt; &#33; \\ trailing backslash\\",
    "\ud800 lone surrogate, \x00 NUL, \u2028 line separator",
]
# Text with markup characters, controls and non-ASCII mixed in.
TEXT = st.lists(st.sampled_from(
    [*string.printable, "\x00", "\x7f", "\x85", "\u2028", "\u00e9", "\U0001f600", "\ud800",
     ":material/", "http://", "www.", "@", "![", "](", ":red["]), max_size=40).map("".join)
PUNCTUATION = set(string.punctuation)
# What Streamlit turns into markup in text nodes, after escapes are resolved.
EXPANDED = re.compile(r":[\w+-]+:|:material_\w+:|https?://|www\.|[\w.+-]@[\w-]", re.IGNORECASE)


def _unescaped_punctuation(md: str) -> list[str]:
    """ASCII punctuation in ``md`` that no backslash escapes (CommonMark section 2.4)."""
    found, i = [], 0
    while i < len(md):
        if md[i] == "\\" and i + 1 < len(md) and md[i + 1] in PUNCTUATION:
            i += 2
            continue
        if md[i] in PUNCTUATION:
            found.append(md[i])
        i += 1
    return found


def _check_markdown(text: str) -> None:
    md = md_escape(text)
    assert _unescaped_punctuation(md) == [], md
    assert shown(md) == one_line(text)  # the reader sees exactly the text, on one line
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]", md)
    assert not EXPANDED.search(_resolved(md)), md


def _resolved(md: str) -> str:
    """The text node Streamlit's plugins see: escapes resolved, word joiners kept."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md)


def test_payloads_are_text_in_markdown() -> None:
    for text in PAYLOADS:
        _check_markdown(text)
    assert md_escape("![x](y)") == "\\!\\[x\\]\\(y\\)"
    assert md_escape("a:b:") == "a\\:" + WORD_JOINER + "b\\:"  # could be an emoji code
    assert md_escape("http://x") == "http\\:" + WORD_JOINER + "\\/\\/x"  # an autolink
    # other colons keep the text as it is, so it can be copied: no word joiner
    assert md_escape("127.0.0.1:8600") == "127\\.0\\.0\\.1\\:8600"
    assert md_escape("a:b") == "a\\:b" and md_escape("1:4 :") == "1\\:4 \\:"


@given(TEXT)
def test_any_text_is_text_in_markdown(text: str) -> None:
    _check_markdown(text)


@given(TEXT)
def test_any_text_is_text_in_raw_html(text: str) -> None:
    out = html_text(text)
    assert html.unescape(out).replace(WORD_JOINER, "") == one_line(text)
    # only the entities' own '&', '#' and ';' remain as punctuation
    assert not set(re.sub(r"&#\d+;", "", out)) & PUNCTUATION, out
    assert not EXPANDED.search(html.unescape(out))


@given(TEXT)
def test_any_text_is_text_in_plotly_labels(text: str) -> None:
    out = plot_text(text)
    assert html.unescape(out) == one_line(text)
    assert "<" not in out and ">" not in out and "%" not in out
    assert not re.search(r"&(?!amp;|lt;|gt;|#37;)", out)  # '&' only as an entity
