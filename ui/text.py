"""Show user-typed text as text: escapes for Streamlit markdown, raw HTML and Plotly labels.

Streamlit renders markdown (GitHub-flavoured, plus ``:red[...]`` colour directives,
``:material/name:`` icons, ``:emoji:`` short codes and ``$...$`` LaTeX) in almost every string
it draws: the bodies of ``st.markdown``, ``caption``, ``title``/``header``/``subheader``,
``error``/``warning``/``info``/``success``, ``toast``; the labels (and ``help`` tooltips) of
every widget, ``st.expander``, ``st.tabs``, ``st.popover``, ``st.metric`` (value and delta
too) and ``st.progress``; and the options of ``st.radio``, ``st.select_slider``,
``st.pills`` and ``st.segmented_control``. Images are allowed even in labels, so a design
named ``![x](http://host/leak.png)`` would make every viewer's browser call that host. The
options of ``st.selectbox`` and ``st.multiselect``, text-input values and ``st.dataframe``
cells and headers are plain text (Streamlit 1.67 docstrings; frontend
``StreamlitMarkdown.tsx``) and need no escaping.

Use :func:`md_escape` for any user string inside markdown (names, titles, file names, and
error messages, which may quote user values), :func:`html_text` inside HTML given to
``st.markdown(..., unsafe_allow_html=True)``, and :func:`plot_text` for Plotly trace names
and hover text (Plotly reads a small HTML subset and ``%{...}`` placeholders).
"""

from __future__ import annotations

import html
import re
import string

WORD_JOINER = "\u2060"  # invisible, zero width, no line break

_PUNCTUATION = frozenset(string.punctuation)  # CommonMark: any of these may be backslash-escaped
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0/C1 controls (newlines included: a new line could start a heading, list or HTML block)
# and Unicode's line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Streamlit's markdown pipeline turns some patterns into markup *after* escapes are resolved,
# in plain text nodes: ``:name:`` emoji, ``:material/name:`` icons, ``:streamlit:`` (a logo)
# and GitHub autolink literals (``http://...``, ``www.x``, ``a@b.c``). A word joiner after the
# colon that opens ``:name:`` or ``://``, after ``@`` and after ``www`` breaks each of them
# without changing what is read. Other colons get none ("127.0.0.1:8600", "ratio 1:4"), so
# an address copied out of a message is the address (a word joiner is invisible, but it is
# copied with the text).
_AUTO_MARKUP = re.compile(r"(?<=:)(?=//|[\w/+-]+:)|(?<=@)|(?<=www)(?=\.)", re.IGNORECASE)


def one_line(text: object) -> str:
    """``text`` as one line of printable text: controls become spaces, lone surrogates
    (which cannot be sent as UTF-8) become U+FFFD."""
    return _CONTROL.sub(" ", _SURROGATE.sub("\ufffd", str(text)))


def md_escape(text: object) -> str:
    """Markdown that Streamlit renders as exactly ``text`` (on one line), never as markup.

    Every ASCII punctuation character is backslash-escaped (``\\![x](...)`` is no image,
    ``\\:red\\[...]`` no colour, ``\\$x\\$`` no LaTeX, ``\\<b>`` no HTML) and a word joiner
    breaks the patterns Streamlit expands after escaping (see the module docstring).
    """
    s = _AUTO_MARKUP.sub(WORD_JOINER, one_line(text))
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in s)


def html_text(text: object) -> str:
    """``text`` for raw HTML in ``st.markdown(..., unsafe_allow_html=True)``: every ASCII
    punctuation character as a numeric character reference, so it is text both inside an HTML
    block and, should the block end early, in the markdown around it."""
    s = _AUTO_MARKUP.sub(WORD_JOINER, one_line(text))
    return "".join(f"&#{ord(ch)};" if ch in _PUNCTUATION else ch for ch in s)


def plot_text(text: object) -> str:
    """``text`` for a Plotly trace name, hover text or title: ``<``, ``>`` and ``&`` as
    entities (Plotly draws ``<b>``, ``<a href>`` and friends) and ``%`` as ``&#37;`` so a
    hover template cannot read it as a ``%{...}`` placeholder. Plotly decodes both."""
    return html.escape(one_line(text), quote=False).replace("%", "&#37;")
