"""AppTest: hostile URLs, share links and names never crash a page and are shown as text.

Issue 9, items 7, 10 and 15: a share link's design must not become the "last good" design
before it has analysed; any user-supplied string (names, titles, values quoted in messages)
is drawn as text, never as markdown (an image there makes every viewer's browser fetch it);
an unusable ``?user=`` is no name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from streamlit.testing.v1 import AppTest

from playground.access import SYSTEM
from playground.designs import save_design
from playground.presets import get_preset
from playground.runs import MAX_OWNER_CHARS, RunStore, default_db_path, normalise_owner
from playground.share import encode_spec, encode_state
from tests.helpers import shown, with_key
from ui.state import clean_user

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ["pages/build.py", "pages/train.py", "pages/compare.py", "pages/learn.py"]
LEAK = "![x](http://127.0.0.1:8798/leak.png)"
# Markdown, HTML, Streamlit directives and LaTeX in one design name (at most 100 characters).
HOSTILE = "![x](http://127.0.0.1:9/n.png) <img src=x> :red[r] :material/home: $x^2$ **b**"
HOSTILE_USER = "![u](http://127.0.0.1:9/u.png) :red[u]"
# The payloads' markup, unescaped: none of it may reach the browser as markdown.
RAW = re.compile(r"(?<!\\)!\[[xu]\]\(|(?<!\\)<img|(?<!\\):red\[[ru]\]|(?<!\\)\$x\^2\$|"
                 r":material/home:|\*\*b\*\*")
# Fields of Streamlit's element protos that the browser renders as markdown.
MARKDOWN_FIELDS = {"body", "label", "text", "help", "caption", "captions"}
MARKDOWN_OPTIONS = {"radio", "select_slider", "button_group"}  # options rendered as markdown


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))


def _app(query: dict[str, str] | None = None, **state: Any) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in with_key(query or {}).items():
        at.query_params[k] = v
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def _markdown(at: AppTest) -> list[str]:
    """Every string of the current page that the browser would render as markdown."""
    found: list[str] = []

    def strings(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                strings(v, k)
        elif isinstance(value, list):
            for v in value:
                strings(v, key)
        elif isinstance(value, str) and key in MARKDOWN_FIELDS:
            found.append(value)

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            data = MessageToDict(proto)
            if getattr(node, "type", "") in MARKDOWN_OPTIONS:
                found.extend(str(o) for o in data.get("options", []))
            strings(data)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def _assert_no_raw_markup(at: AppTest) -> None:
    bad = [text for text in _markdown(at) if RAW.search(text)]
    assert not bad, bad


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


# -- item 15: the name in the URL -----------------------------------------------------------
@pytest.mark.parametrize("raw", ["   ", "\x00\x01", "\u200b\t\u00a0"])
@pytest.mark.parametrize("page", PAGES)
def test_unusable_url_name_is_no_name_on_every_page(page: str, raw: str) -> None:
    at = _app({"user": raw})
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.session_state.user == ""
    assert "user" not in at.query_params  # dropped from the address, as an emptied box does
    if page == "pages/train.py":
        assert at.button(key="tr_start").disabled
        assert any("Enter your name" in w.value for w in at.warning)


@pytest.mark.parametrize("raw,name", [
    ("  Ada \t  Lovelace ", "Ada Lovelace"),
    ("Ada\x00\x07Lovelace", "Ada Lovelace"),
    ("\u202eAda", "Ada"),  # a right-to-left override is a format character, not text
    ("A" * 500, "A" * MAX_OWNER_CHARS),
    ("\ud800", ""),
    ("", ""),
])
def test_clean_user_gives_what_the_stores_accept(raw: str, name: str) -> None:
    assert clean_user(raw) == name
    if name:
        assert normalise_owner(name) == name  # the store keeps it unchanged


def test_url_name_and_sidebar_box_are_normalised_alike() -> None:
    at = _app({"user": "  Ada\x00  Lovelace "})
    assert at.session_state.user == "Ada Lovelace"
    at.text_input(key="_user_box").input("  Grace\x01 \t Hopper  ").run()
    assert not at.exception, at.exception
    assert at.session_state.user == "Grace Hopper"
    assert at.query_params["user"] == "Grace Hopper"
    at.text_input(key="_user_box").input("\x00 \x01").run()
    assert at.session_state.user == "" and "user" not in at.query_params


# -- items 7 and 10: share links ------------------------------------------------------------
def _deep_link(levels: int = 10_000) -> str:
    """A share link whose name is a list nested ``levels`` deep (a 178-character link)."""
    import base64
    import zlib

    raw = ('{"name":' + "[" * levels + "]" * levels + "}").encode()
    return "v1." + base64.urlsafe_b64encode(zlib.compress(raw, 9)).rstrip(b"=").decode()


HOSTILE_LINKS = {
    "markdown image": encode_state({"defaults": {"activation": LEAK}}),
    "huge adaptive pool": encode_state({"head": {"pool": "adaptive_avg",
                                                 "pool_size": 1_000_000_000}}),
    "padding 2**63": encode_state({"stages": [{"padding": 9223372036854775808}]}),
    "10,000-deep name": _deep_link(),
    "not v1": "hello",
    "truncated": encode_state({"defaults": {"activation": LEAK}})[:20],
    "html": encode_state({"defaults": {"norm": "<img src=http://127.0.0.1:8798/i.png>"}}),
}


@pytest.mark.parametrize("link", list(HOSTILE_LINKS.values()), ids=list(HOSTILE_LINKS))
def test_hostile_share_link_gives_one_message_as_text(link: str) -> None:
    at = _app({"d": link})
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Could not open the shared design" in errors[0], errors
    assert "![" not in errors[0] and "](http" not in errors[0]
    _assert_no_raw_markup(at)
    assert _metric(at, "Parameters") == "66,410"  # the default design instead
    assert at.session_state.last_good == get_preset("small_cnn")


def test_markdown_in_a_link_is_quoted_verbatim() -> None:
    at = _app({"d": HOSTILE_LINKS["markdown image"]})
    (error,) = at.error
    assert "![" not in error.value  # escaped: no image for the browser to fetch
    assert LEAK in shown(error.value)  # yet the reader sees exactly what the link held


def test_link_design_becomes_last_good_only_on_build_after_analysis() -> None:
    spec = get_preset("lenet5")
    at = _app({"d": encode_spec(spec)})  # opens on Build, which analyses it
    assert at.session_state.last_good == spec
    assert _metric(at, "Parameters") == "61,706"
    elsewhere = AppTest.from_file(APP, default_timeout=120)
    elsewhere.query_params["d"] = encode_spec(spec)
    elsewhere.switch_page("pages/train.py").run()
    assert not elsewhere.exception, elsewhere.exception
    assert elsewhere.session_state.spec == spec
    assert elsewhere.session_state.last_good == get_preset("small_cnn")  # not analysed yet


def test_design_with_hostile_values_keeps_last_good_and_shows_text() -> None:
    """A design in the session that the schema refuses (as a link's or a file's could be
    before today's bounds): its problems are shown as text, the numbers stay the last good
    design's and it never becomes the last good one."""
    at = _app()
    good = at.session_state.last_good
    spec = at.session_state.spec
    bad = spec.model_copy(update={
        "defaults": spec.defaults.model_copy(update={"activation": LEAK}),
        "head": spec.head.model_copy(update={"pool": "adaptive_avg", "pool_size": 10**9}),
    })
    at.session_state.spec = bad
    at.session_state.open_stages = {0, 1}
    at.session_state.exp_head = True
    at.run()
    assert not at.exception, at.exception
    assert at.session_state.last_good == good
    assert _metric(at, "Parameters") == "66,410"
    assert any("last valid design" in w.value for w in at.warning)
    # the head editor shows the out-of-range value instead of raising (widget bounds widen)
    assert at.number_input(key=f"g{at.session_state.gen}_h_size").value == 10**9
    shown_errors = " ".join(shown(e.value) for e in at.error)
    assert LEAK in shown_errors and "pool_size" in shown_errors
    _assert_no_raw_markup(at)
    assert at.query_params.get("d") != encode_spec(bad)  # a broken design is not mirrored


# -- item 10: every user string on every page -----------------------------------------------
def _hostile_store() -> int:
    """A saved design and a failed run, both named with markup, for ``HOSTILE_USER``."""
    spec = get_preset("small_cnn")
    save_design(HOSTILE_USER, HOSTILE, spec.model_copy(update={"name": HOSTILE}), by=SYSTEM)
    store = RunStore(default_db_path())
    run_id = store.create_run(HOSTILE_USER, HOSTILE, spec.to_dict(),
                              {"dataset": "shapes", "steps": 2, "seed": 0})
    store.append_metrics(run_id, [{"step": 1, "name": "loss", "value": 2.0},
                                  {"step": 2, "name": "loss", "value": 1.5}])
    store.set_status(run_id, "failed", message=f"RuntimeError: {HOSTILE}",
                     summary={"notes": [HOSTILE]})
    store.close()
    return run_id


def test_names_and_titles_with_markup_are_text_on_every_page() -> None:
    run_id = _hostile_store()
    spec = get_preset("small_cnn").model_copy(update={"name": HOSTILE[::-1]})
    at = _app({"user": HOSTILE_USER, "d": encode_spec(spec)},
              cmp_items=["build:current", f"design:{HOSTILE}", f"run:{run_id}"])
    assert at.session_state.user == HOSTILE_USER
    for tab in ("Layers", "Charts", "Export & share"):
        at.session_state["build_tab"] = tab
        at.run()
        assert not at.exception, at.exception
        _assert_no_raw_markup(at)
    at.text_input(key="save_name").input(HOSTILE).run()
    at.button(key="save_btn").click().run()
    assert not at.exception, at.exception
    assert any(f"Saved '{HOSTILE}' for {HOSTILE_USER}" in shown(s.value) for s in at.success)
    _assert_no_raw_markup(at)

    at.switch_page("pages/train.py").run()
    at.session_state["tr_run"] = run_id
    at.run()
    assert not at.exception, at.exception
    assert any(HOSTILE in shown(m.value) for m in at.markdown)  # the run's title
    assert any(HOSTILE in shown(e.value) for e in at.error)  # its message
    _assert_no_raw_markup(at)

    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert len(at.session_state["_cmp_items"]) == 3
    _assert_no_raw_markup(at)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    names = [t.get("name", "") for c in charts for t in c["data"]]
    assert names and not [n for n in names if "<img" in n]  # Plotly draws tags in names
    at.session_state["cmp_tab"] = "Experiments"
    at.session_state["exp_suite"] = "custom"
    at.run()
    assert not at.exception, at.exception
    _assert_no_raw_markup(at)
