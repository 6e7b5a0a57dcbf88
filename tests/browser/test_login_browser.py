"""The OpenID login in real browsers (issue 12): ``[auth]`` in the server's secrets, a real
OpenID provider on 127.0.0.1 (:mod:`tests.oidc_provider`), Streamlit's own ``st.login`` and
``/oauth2callback`` in between, two Chromium contexts.

- Before logging in: *Log in*, and no name or key boxes.
- Ada logs in at the provider's sign-in form and comes back logged in as her address, with no
  key in her address; the ID token the provider issued (with the nonce Streamlit sent) names
  the same address. A reload keeps her logged in (Streamlit's signed cookie).
- She starts a run: it is stored under her address.
- Bob logs in as himself: Ada's run's link does not open for him, he cannot stop it, and an
  old ``?user=`` in his address makes him nobody else.
- Ada logs out: *Log in* again, and nothing of hers on the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from playground.runs import RunStore
from tests.app_server import free_port
from tests.browser.conftest import _serve, choose, start_training, wait_for_app
from tests.oidc_provider import LocalOpenIDProvider, auth_secrets, openid_provider

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

MAIN = "[data-testid=stMain]"
SIDEBAR = "[data-testid=stSidebar]"


@pytest.fixture(scope="module")
def login_server(tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[str, Path, LocalOpenIDProvider]]:
    home = tmp_path_factory.mktemp("login")
    port = free_port()
    with openid_provider(f"http://127.0.0.1:{port}/oauth2callback") as provider:
        secrets = home / "secrets.toml"
        secrets.write_text(auth_secrets(provider))
        env = {"PLAYGROUND_DEVICE": "cpu", "PLAYGROUND_MAX_STEPS": "1000000"}
        with _serve(home, "--secrets.files", str(secrets), env=env, port=port) as url:
            yield url, home, provider


def _context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(120_000)
    return context


def _query(pg) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(pg.url).query).items()}


def _log_in(pg, url: str, email: str, name: str) -> None:
    """From the Train page: Log in, sign in at the provider, and come back (to the home page,
    Build: Streamlit's callback returns there); then open Train again."""
    pg.goto(f"{url}/train")
    wait_for_app(pg, "Start training")
    side = pg.locator(SIDEBAR)
    assert side.get_by_label("Your name", exact=True).count() == 0
    assert side.get_by_label("Key (if this name is yours)", exact=True).count() == 0
    side.get_by_role("button", name="Log in").click()
    pg.wait_for_url("**/authorize?**")
    assert "Test school sign-in" in pg.content()
    pg.get_by_label("E-mail").fill(email)
    pg.get_by_label("Name", exact=True).fill(name)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(f"{url}/")
    wait_for_app(pg, f"Logged in as {email}")
    pg.locator(SIDEBAR).get_by_role("link", name="Train").click()
    wait_for_app(pg, "Start training")


def test_a_login_is_the_owner_and_keeps_classmates_apart(browser, login_server) -> None:
    url, home, provider = login_server
    store = RunStore(home / "runs" / "playground.sqlite")
    ada_ctx, bob_ctx = _context(browser), _context(browser)
    try:
        # -- Ada logs in at the provider and starts a run ---------------------------------
        ada = ada_ctx.new_page()
        _log_in(ada, url, "ada@school.example", "Ada Lovelace")
        [token] = provider.issued
        assert token["email"] == "ada@school.example" and token["nonce"]  # Streamlit's nonce
        assert "key" not in _query(ada) and "user" not in _query(ada)
        assert {c["name"] for c in ada_ctx.cookies()} >= {"_streamlit_user"}
        ada.reload()  # the signed cookie keeps her logged in
        wait_for_app(ada, "Logged in as ada@school.example")
        wait_for_app(ada, "Start training")
        choose(ada, "Network", "MLP for 2-D points")
        start_training(ada, 200_000)
        ada.locator(MAIN).get_by_role("button", name="Stop training").wait_for()
        [run] = store.list_runs(owner="ada@school.example")
        assert run.is_active

        # -- Bob logs in as himself: nothing of Ada's opens or stops for him ---------------
        bob = bob_ctx.new_page()
        _log_in(bob, url, "bob@school.example", "Bob")
        assert provider.issued[-1]["email"] == "bob@school.example"
        bob.goto(f"{url}/train?user=ada%40school.example&run={run.id}")
        wait_for_app(bob, "Logged in as bob@school.example")
        bob.locator(MAIN).get_by_text(f"The link's run #{run.id} cannot be opened here").wait_for()
        assert bob.locator(MAIN).get_by_role("button", name="Stop training").count() == 0
        assert "user" not in _query(bob)
        assert store.get_run(run.id).is_active and not store.stop_requested(run.id)
        assert store.list_runs(owner="bob@school.example") == []

        # -- Ada stops her run and logs out ----------------------------------------------
        ada.locator(MAIN).get_by_role("button", name="Stop training").click()
        ada.locator(MAIN).get_by_test_id("stProgress").first.filter(has_text="stopped").wait_for()
        assert store.get_run(run.id).stopped_by == "ada@school.example"
        ada.locator(SIDEBAR).get_by_role("button", name="Log out").click()
        ada.locator(SIDEBAR).get_by_role("button", name="Log in").wait_for()
        wait_for_app(ada)
        assert ada.locator(SIDEBAR).get_by_text("ada@school.example").count() == 0
        assert "_streamlit_user" not in {c["name"] for c in ada_ctx.cookies()}
        ada.goto(f"{url}/train?run={run.id}")  # nobody again: her run does not open
        wait_for_app(ada, "Start training")
        assert ada.locator(MAIN).get_by_role("button", name="Start training").is_disabled()
        ada.locator(MAIN).get_by_text(f"The link's run #{run.id} cannot be opened here").wait_for()
        assert ada.locator(MAIN).get_by_test_id("stProgress").count() == 0
    finally:
        for ctx in (ada_ctx, bob_ctx):
            ctx.close()
