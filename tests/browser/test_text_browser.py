"""Real Chromium, real Streamlit markdown: ``ui.text.md_escape`` shows user text as exactly that
text, in the elements the app puts it in (``st.error``, ``st.markdown``, ``st.caption``).

tests/test_ui_text.py checks the escaping against a model of what Streamlit expands; this test
asks the real renderer. A tiny script (not the app: the escaping alone) draws each text in
three elements; the browser's DOM text, word joiners removed and whitespace collapsed as
HTML collapses it, must equal the text, with no link, image, emoji or icon made of it. Where
the text holds nothing Streamlit would expand, it must come out with no word joiner at all,
so that it can be copied (an address in an error message).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.app_server import ROOT
from tests.browser.conftest import _serve, wait_for_app
from tests.test_ui_text import PAYLOADS
from ui.text import WORD_JOINER, one_line

pytestmark = pytest.mark.browser

TEXTS = [
    *PAYLOADS,
    ":smile: :100: :material/home: :streamlit: 12:30:45",
    "see http://127.0.0.1:8600/train and https://example.com, or www.example.com",
    "mail ada@example.com",
]
# Nothing in these is markup: each must be shown character for character, word joiners none.
PLAIN = ["Cannot log in now: the sign-in service at 127.0.0.1:8600 does not answer",
         "ratio 1:4, time 12:30, a:b"]

SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, {root!r})
import streamlit as st
from ui.text import md_escape
for i, text in enumerate(json.loads(Path("texts.json").read_text())):
    with st.container(key=f"t{{i}}"):
        st.error(md_escape(text))
        st.markdown(md_escape(text))
        st.caption(md_escape(text))
st.write("done drawing")
"""


def _collapsed(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_escaped_text_renders_as_itself_in_streamlits_markdown(browser,
                                                               tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / ".streamlit").mkdir(parents=True)
    shutil.copy(ROOT / ".streamlit" / "config.toml", root / ".streamlit" / "config.toml")
    texts = TEXTS + PLAIN
    (root / "texts.json").write_text(json.dumps(texts))
    (root / "app.py").write_text(SCRIPT.format(root=str(ROOT)))
    home = tmp_path / "home"
    home.mkdir()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    try:
        with _serve(home, root=root) as url:
            pg.goto(url)
            wait_for_app(pg, "done drawing")
            for i, text in enumerate(texts):
                box = pg.locator(f".st-key-t{i}")
                shown = box.locator('[data-testid="stMarkdownContainer"], '
                                    '[data-testid="stCaptionContainer"]')
                assert shown.count() == 3, (text, box.evaluate("e => e.innerHTML")[:3000])
                for k in range(3):
                    dom = shown.nth(k).evaluate("e => e.textContent")
                    assert _collapsed(dom.replace(WORD_JOINER, "")) == _collapsed(
                        one_line(text)), (text, dom)
                    if text in PLAIN:
                        assert WORD_JOINER not in dom, (text, dom)
                # no markup was made of the text: links, images, icons, emoji, maths
                made = box.locator("a, img, [data-testid='stIconMaterial'], .katex, "
                                   "[data-testid='stIconEmoji'], strong, em, code, h1")
                assert made.count() == 0, (text, made.first.evaluate("e => e.outerHTML"))
    finally:
        context.close()
