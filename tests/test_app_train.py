"""AppTest: the Train page starts a real run in a worker, shows it live, stops it, reattaches."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import wait_until

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture()
def at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params["user"] = "Ada"
    app.run()
    app.switch_page("pages/train.py").run()
    assert not app.exception, app.exception
    return app


def _progress(at: AppTest) -> str:
    bars = at.get("progress")
    return bars[0].proto.text if bars else ""


def test_train_page_needs_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("pages/train.py").run()
    assert not app.exception
    assert app.button(key="tr_start").disabled
    assert any("Enter your name" in w.value for w in app.warning)


def test_incompatible_network_is_explained(at: AppTest) -> None:
    at.session_state["tr_network"] = "preset:lenet5"
    at.session_state["tr_dataset"] = "spirals"
    at.run()
    errors = " ".join(e.value for e in at.error)
    assert "cannot train on Spirals" in errors and "smaller than the 5x5 kernel" in errors
    assert at.button(key="tr_start").disabled


def test_start_run_see_it_live_and_finish(at: AppTest) -> None:
    at.session_state["tr_network"] = "preset:mlp_points"
    at.session_state["tr_dataset"] = "spirals"
    at.session_state["tr_steps"] = 60
    at.session_state["tr_batch"] = 32
    at.session_state["tr_eval"] = 20
    at.run()
    at.button(key="tr_start").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    wait_until(at, lambda: "finished" in _progress(at), what="the run to finish")
    assert "step 60 of 60" in _progress(at)
    assert any(c.value.startswith("Trained on cpu · ") and "samples/s" in c.value
               for c in at.caption), [c.value for c in at.caption]
    values = {m.label: m.value for m in at.metric}
    assert values["Validation accuracy"].endswith("%")
    assert len(at.get("plotly_chart")) >= 2  # loss and accuracy
    # a second session (a reload) sees the same run from the store
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["user"] = "Ada"
    again.run()
    again.switch_page("pages/train.py").run()
    assert "finished" in _progress(again) and "step 60 of 60" in _progress(again)


def test_stop_a_running_run_keeps_its_metrics(at: AppTest) -> None:
    at.session_state["tr_network"] = "preset:small_cnn"
    at.session_state["tr_steps"] = 5000
    at.session_state["tr_ntrain"] = 1000
    at.session_state["tr_batch"] = 16
    at.run()
    at.button(key="tr_start").click().run()
    wait_until(at, lambda: "running: step" in _progress(at) and "step 0 of" not in _progress(at))
    run_id = at.session_state["tr_run"]
    at.button(key=f"stop_{run_id}").click().run()
    wait_until(at, lambda: _progress(at).startswith("stopped"))
    assert "of 5,000" in _progress(at)
    assert at.metric[2].value != "n/a"  # the training loss recorded before the stop
