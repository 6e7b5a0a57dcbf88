"""Real Chromium: malformed and hostile share links get one friendly message and no request
leaves the app (issue 9, items 7, 10 and 15).

A recording HTTP server on 127.0.0.1 stands in for an attacker's host: one link quotes a
markdown image and another an HTML ``<img>`` pointing at it. Streamlit renders markdown in
``st.error``, so an unescaped message would make the browser fetch the image.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest

from playground.share import encode_state
from tests.browser.conftest import wait_for_app

pytestmark = pytest.mark.browser

FRIENDLY = "Could not open the shared design"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with an empty 200 and remembers its path."""

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture()
def recorder() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _deep_link(levels: int = 10_000) -> str:
    import base64
    import zlib

    raw = ('{"name":' + "[" * levels + "]" * levels + "}").encode()
    return "v1." + base64.urlsafe_b64encode(zlib.compress(raw, 9)).rstrip(b"=").decode()


def _links(port: int) -> dict[str, tuple[str, str]]:
    """name -> (link, text the message must show verbatim, or "")."""
    image = f"![x](http://127.0.0.1:{port}/leak.png)"
    tag = f"<img src=http://127.0.0.1:{port}/tag.png>"
    return {
        "markdown image": (encode_state({"defaults": {"activation": image}}), image),
        "html img": (encode_state({"defaults": {"norm": tag}}), tag),
        "huge adaptive pool": (encode_state({"head": {"pool": "adaptive_avg",
                                                      "pool_size": 1_000_000_000}}), ""),
        "padding 2**63": (encode_state({"stages": [{"padding": 9223372036854775808}]}), ""),
        "10,000-deep name": (_deep_link(), ""),
        "not v1": ("hello", ""),
        "truncated": (encode_state({"defaults": {"activation": image}})[:20], ""),
        "bad base64": ("v1.!!!!", ""),
        "not a dict": (encode_state([1, 2, 3]), ""),  # type: ignore[arg-type]
    }


def test_hostile_share_links_show_a_message_and_fetch_nothing(page, app_url: str,
                                                              recorder) -> None:
    app = urlsplit(app_url).netloc
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for name, (link, verbatim) in _links(recorder.server_address[1]).items():
        page.goto(f"{app_url}/?d={quote(link, safe='')}")
        wait_for_app(page, FRIENDLY)
        alert = page.locator('[data-testid="stAlert"]').filter(has_text=FRIENDLY)
        assert alert.count() == 1, name
        assert alert.first.is_visible(), name
        assert page.locator('[data-testid="stException"]').count() == 0, name
        if verbatim:  # the user's text, character for character, and no markup made of it
            text = alert.first.inner_text().replace("\u2060", "")  # invisible word joiners
            assert verbatim in text, (name, text)
            assert alert.first.locator("img, a, code, strong, em, .katex").count() == 0, name
        # the default design is shown instead
        page.get_by_text("66,410").first.wait_for()
    time.sleep(2.0)  # give any image a stray tag would load time to be requested
    assert recorder.seen == []  # type: ignore[attr-defined]
    foreign = [u for u in requests
               if urlsplit(u).scheme not in {"data", "blob", "about"} and urlsplit(u).netloc != app]
    assert foreign == [], json.dumps(foreign, indent=1)
    assert not errors, errors


@pytest.mark.parametrize("user", ["%20%20%20", "%00%01"])
def test_unusable_name_in_the_address_is_no_name(page, app_url: str, user: str) -> None:
    page.goto(f"{app_url}/train?user={user}")
    wait_for_app(page, "Enter your name in the sidebar")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_label("Your name", exact=True).input_value() == ""
    assert "user=" not in page.url
