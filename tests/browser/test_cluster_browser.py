"""Real Chromium against the class set-up of the README's "Run a class on several machines":
two app servers sharing one PostgreSQL store, trainings as tasks of a real (embedded) Ray.

Two students on the first server start runs at the same time; both finish, each page says where
its run trained (this machine, Ray), and a student on the second server, a separate process with
its own Ray, sees the same runs in the shared store.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from playground.runs import RunStore
from tests.browser.conftest import _serve, start_training, wait_for_app
from tests.postgres import LocalPostgres, find_bin_dir, postgres_required

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

MAIN = "[data-testid=stMain]"


@pytest.fixture(scope="module")
def class_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        import ray  # noqa: F401
    except ImportError:
        must = os.environ.get("CI") or os.environ.get("PLAYGROUND_REQUIRE_RAY")
        (pytest.fail if must else pytest.skip)("needs ray (pip install -r requirements.txt)")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        (pytest.fail if postgres_required() else pytest.skip)("needs PostgreSQL binaries")
    with LocalPostgres(bin_dir) as server:
        yield server.create_database("cls")


def _cluster_env(url: str) -> dict[str, str]:
    return {"PLAYGROUND_RUNNER": "ray", "PLAYGROUND_RAY_ADDRESS": "", "PLAYGROUND_DB_URL": url,
            "PLAYGROUND_CPUS_PER_RUN": "1", "PLAYGROUND_DEVICE": "cpu"}


def _start(page, url: str, user: str) -> None:
    page.goto(f"{url}/train?user={user}")
    wait_for_app(page, "Start training")
    start_training(page, 30)


def test_two_students_train_on_ray_and_a_second_server_sees_the_runs(
        browser, class_store: str, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with _serve(tmp_path / "a", env=_cluster_env(class_store)) as url_a:
        pages = []
        for user in ("Ada", "Bob"):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(240_000)
            pages.append(context.new_page())
            _start(pages[-1], url_a, user)
        host = platform.node()
        for pg in pages:
            bar = pg.locator(MAIN).get_by_test_id("stProgress").first
            bar.filter(has_text="finished").wait_for(timeout=300_000)
            pg.locator(MAIN).get_by_text(f"of {host} (Ray)").first.wait_for()
        # the address now holds each student's key: the bookmark that works on any server
        ada_key = parse_qs(urlparse(pages[0].url).query)["key"][0]
        store = RunStore(class_store)
        runs = store.list_runs()
        assert sorted(r.owner for r in runs) == ["Ada", "Bob"]
        assert all(r.status == "finished" and r.summary["steps_done"] == 30 for r in runs)
        assert {(r.runner, r.worker_host, r.device) for r in runs} == {("ray", host, "cpu")}
        for pg in pages:
            pg.context.close()

    # a second server on the same store: Ada's run is there for her, with its charts
    with _serve(tmp_path / "b", env=_cluster_env(class_store)) as url_b:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(240_000)
        pg = context.new_page()
        ada = next(r for r in RunStore(class_store).list_runs() if r.owner == "Ada")
        pg.goto(f"{url_b}/train?user=Ada&key={ada_key}&run={ada.id}")
        wait_for_app(pg)
        pg.locator(MAIN).get_by_test_id("stProgress").first.filter(
            has_text="finished").wait_for()
        pg.locator(f"{MAIN} .js-plotly-plot").first.wait_for()
        context.close()
