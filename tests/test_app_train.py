"""AppTest: the Train page starts a real run in a worker, shows it live, stops it, reattaches;
its address reopens the run and the network; suites are grouped and the run list filtered."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.experiments import get_suite, launch
from playground.presets import get_preset
from playground.runs import RunStore, default_db_path
from playground.share import encode_spec
from playground.targets import analyse_spec
from playground.train import TrainSettings
from tests.helpers import shown, wait_until, with_key

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
    # where it ran: the device, this machine's name and the runner backend (md-escaped)
    shown_text = [c.value.replace("\\", "").replace("\u2060", "") for c in at.caption]
    assert any(t.startswith(f"Trained on cpu of {platform.node()} (local workers) · ")
               and "samples/s" in t for t in shown_text), shown_text
    values = {m.label: m.value for m in at.metric}
    assert values["Validation accuracy"].endswith("%")
    assert len(at.get("plotly_chart")) >= 2  # loss and accuracy
    # a second session (a reload) sees the same run from the store
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["user"] = "Ada"
    again.query_params["key"] = at.session_state["user_key"]  # the bookmarked address
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
    assert at.button(key=f"stop_{run_id}").label == "Stop training"
    at.button(key=f"stop_{run_id}").click().run()
    wait_until(at, lambda: _progress(at).startswith("stopped"))
    assert "of 5,000" in _progress(at)
    assert at.metric[2].value != "n/a"  # the training loss recorded before the stop


# -- the address, read-only runs, grouping and filters (runs written straight to the store) -----
def _open(params: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
          **state: object) -> AppTest:
    """The Train page as a fresh browser tab opening ``/train?<params>`` would show it."""
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    app = AppTest.from_file(APP, default_timeout=60)
    for k, v in with_key(params).items():
        app.query_params[k] = v
    app.run()
    for k, v in state.items():
        app.session_state[k] = v
    app.switch_page("pages/train.py").run()
    assert not app.exception, app.exception
    return app


def _store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunStore:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    return RunStore(default_db_path())


def _run(store: RunStore, owner: str, title: str, status: str = "finished",
         clip: float | None = None) -> int:
    """A run of three recorded steps ending in ``status`` ('running' leaves it running)."""
    rid = store.create_run(owner, title, get_preset("mlp_points").to_dict(),
                           TrainSettings(dataset="spirals", steps=3, clip_norm=clip).to_dict())
    store.mark_started(rid)
    store.append_metrics(rid, [{"step": 0, "name": "layers", "labels": ["a", "b"]}] + [
        rec for s in (1, 2, 3) for rec in (
            {"step": s, "name": "loss", "value": 1.0 / s},
            {"step": s, "name": "acc", "value": 0.2 * s},
            {"step": s, "name": "grad_norm", "value": 2.0},
            {"step": s, "name": "grad_norm_clipped", "value": min(2.0, clip or 2.0)},
            {"step": s, "name": "grad_norm_layer", "values": [0.001 * s, 1.0]})])
    if status != "running":
        store.set_status(rid, status, "", {"total_steps": 3})
    return rid


def _markdown(at: AppTest) -> str:
    return " ".join(shown(m.value) for m in at.markdown)


def _captions(at: AppTest) -> str:
    return " ".join(shown(c.value) for c in at.caption)


def test_a_run_link_reopens_the_run_for_its_owner_only(monkeypatch, tmp_path) -> None:
    store = _store(monkeypatch, tmp_path)
    rid = _run(store, "Ada", "deep net on Spirals")
    _run(store, "Ada", "a newer run")
    # its owner on another device (the bookmarked address carries the key)
    at = _open({"run": str(rid), "user": "Ada"}, monkeypatch, tmp_path)
    assert at.session_state["tr_run"] == rid
    assert f"Run {rid}: deep net on Spirals" in _markdown(at)
    assert _progress(at) == "finished: step 3 of 3"
    assert at.query_params["run"] == str(rid)  # the address still names it
    assert not at.warning, [w.value for w in at.warning]
    stop = [b for b in at.button if b.key == f"stop_{rid}"]  # the owner's, disabled
    assert [(b.label, b.disabled) for b in stop] == [("Ended", True)]
    # someone else, and a browser with no name: told so, and shown nothing of the run
    for who, why in (("Bob", "belongs to someone else"), (None, "enter your name first")):
        at = _open({"run": str(rid)} | ({"user": who} if who else {}), monkeypatch, tmp_path)
        [warning] = [shown(w.value) for w in at.warning if "link" in w.value]
        assert warning.startswith(f"The link's run #{rid} cannot be opened here") and why in \
            warning, warning
        assert at.session_state["tr_run"] is None and "deep net" not in _markdown(at)
        assert not _progress(at) and not [b for b in at.button if b.key == f"stop_{rid}"]
        assert "run" not in at.query_params
    # choosing another run puts that one in the address
    at = _open({"user": "Ada", "run": str(rid)}, monkeypatch, tmp_path)
    other = next(o for o in at.selectbox(key="tr_run").options if "a newer run" in o)
    at.selectbox(key="tr_run").set_value(int(other.split()[0][1:])).run()
    assert at.query_params["run"] == other.split()[0][1:]


def test_only_the_owner_gets_the_stop_button_and_a_name_without_its_key_gets_nothing(
        monkeypatch, tmp_path) -> None:
    store = _store(monkeypatch, tmp_path)
    rid = _run(store, "Ada", "still going", status="running")
    at = _open({"user": "Bob", "run": str(rid)}, monkeypatch, tmp_path)
    assert not _progress(at) and not [b for b in at.button if b.key == f"stop_{rid}"]
    at = _open({"user": "ada", "run": str(rid)}, monkeypatch, tmp_path)  # the same name
    assert _progress(at).startswith("running: step 3 of 3")
    assert at.button(key=f"stop_{rid}").label == "Stop training"
    # Ada's name typed in another browser, without her key: nothing of Ada's is shown
    at = _open({"user": "Ada", "key": "guess", "run": str(rid)}, monkeypatch, tmp_path)
    assert at.session_state["user"] == "" and not _progress(at)
    assert any("is taken" in e.value for e in at.sidebar.error), [e.value for e in at.error]
    assert at.button(key="tr_start").disabled


@pytest.mark.parametrize("bad", ["abc", "999999", "-1", "1e3", "\uff11", "9" * 40, ""])
def test_a_bad_run_link_gives_one_friendly_line(monkeypatch, tmp_path, bad: str) -> None:
    store = _store(monkeypatch, tmp_path)
    mine = _run(store, "Ada", "my run")
    at = _open({"user": "Ada", "run": bad}, monkeypatch, tmp_path)
    [warning] = at.warning
    assert shown(warning.value).startswith("The link's run ")
    assert not at.error
    assert at.session_state["tr_run"] == mine  # the page goes on with the owner's runs
    assert at.query_params["run"] == str(mine)


def test_network_data_set_and_settings_survive_reload_and_page_switch(monkeypatch,
                                                                      tmp_path) -> None:
    at = _open({"user": "Ada"}, monkeypatch, tmp_path)
    at.selectbox(key="tr_network").set_value("preset:lenet5").run()
    at.number_input(key="tr_steps").set_value(77).run()
    assert at.session_state["tr_dataset"] == "digits"  # LeNet-5's own data set
    assert at.query_params["net"] == "preset:lenet5" and at.query_params["data"] == "digits"
    params = dict(at.query_params)
    # a visit to Build and back keeps every choice
    at.switch_page("pages/build.py").run()
    at.switch_page("pages/train.py").run()
    assert (at.session_state["tr_network"], at.session_state["tr_steps"]) == ("preset:lenet5", 77)
    # a reload (a new session from the same address) shows the same network and data set
    again = _open(params, monkeypatch, tmp_path)
    assert again.selectbox(key="tr_network").value == "preset:lenet5"
    assert again.selectbox(key="tr_dataset").value == "digits"
    params_text = f"{analyse_spec(get_preset('lenet5')).num_params:,} parameters"
    assert any(params_text in c.value for c in again.caption)
    # the design open on Build travels as ?d=, as on the Build page
    mine = get_preset("small_cnn").model_copy(update={"name": "my wide net"})
    at = _open({"user": "Ada", "d": encode_spec(mine)}, monkeypatch, tmp_path)
    box = at.selectbox(key="tr_network")
    assert box.value == "__current__" and box.format_func(box.value) == \
        "Design from Build (my wide net)"
    assert "net" not in at.query_params and at.query_params["d"] == encode_spec(mine)
    reload = _open(dict(at.query_params), monkeypatch, tmp_path)
    box = reload.selectbox(key="tr_network")
    assert box.format_func(box.value) == "Design from Build (my wide net)"


@pytest.mark.parametrize("net", ["preset:nope", "saved:never saved", "bogus",
                                 "preset:![x](http://example.invalid/x.png)"])
def test_a_bad_network_link_falls_back_with_one_line(monkeypatch, tmp_path, net: str) -> None:
    at = _open({"user": "Ada", "net": net}, monkeypatch, tmp_path)
    [warning] = at.warning
    assert shown(warning.value).startswith("The link's network cannot be opened: ")
    assert "](" not in warning.value  # the link's text is shown as text, never as markup
    assert at.session_state["tr_network"] == "__current__"
    assert "net" not in at.query_params


def _names(at: AppTest, title: str) -> list[str]:
    for chart in at.get("plotly_chart"):
        fig = json.loads(chart.proto.spec)
        if title in json.dumps(fig["layout"].get("title", "")):
            return [t.get("name", "") for t in fig["data"] if t.get("showlegend") is not False]
    raise AssertionError(f"no chart titled {title!r}")


def test_gradient_norm_legend_names_clipping_only_when_it_is_on(monkeypatch, tmp_path) -> None:
    store = _store(monkeypatch, tmp_path)
    plain = _run(store, "Ada", "no clipping")
    clipped = _run(store, "Ada", "clipped", clip=1.0)
    at = _open({"user": "Ada", "run": str(plain)}, monkeypatch, tmp_path, train_tab="Gradients")
    assert _names(at, "Total gradient norm") == ["gradient norm"]
    at = _open({"user": "Ada", "run": str(clipped)}, monkeypatch, tmp_path,
               train_tab="Gradients")
    assert _names(at, "Total gradient norm") == ["before clipping", "after clipping"]


def _launch_suite(store: RunStore) -> tuple[str, list[int], list[str]]:
    """The 'lr_clip' suite launched for Ada, nothing trained: even runs finish, odd diverge."""
    variants = get_suite("lr_clip").variants()
    batch = launch(store.create_run, store, "Ada", "lr_clip", "Clipping sweep", variants,
                   capacity=len(variants))
    ids = [rid for rid in batch.run_ids if rid is not None]
    for i, rid in enumerate(ids):
        store.mark_started(rid)
        store.set_status(rid, "finished" if i % 2 == 0 else "diverged", "", {})
    return batch.batch, ids, [v.title for v in variants]


def test_suite_runs_are_grouped_and_the_list_filtered(monkeypatch, tmp_path) -> None:
    store = _store(monkeypatch, tmp_path)
    old = _run(store, "Ada", "before the suite")
    batch, suite_ids, titles = _launch_suite(store)
    failed = _run(store, "Ada", "after the suite", status="failed")
    bobs = _run(store, "Bob", "Bob's run")
    at = _open({"user": "Ada"}, monkeypatch, tmp_path)

    groups = at.selectbox(key="tr_group")
    labels = groups.options
    assert labels[0] == f"All runs · {len(suite_ids) + 2}"
    assert labels[1] == "Single runs · 2"
    assert labels[2].startswith("Experiment: Clipping sweep · ")
    assert labels[2].endswith(f" · {len(suite_ids)} runs") and len(labels) == 3
    # the newest run is shown, in its group: the single runs, not 10 entries
    assert at.session_state["tr_run"] == failed and groups.value == "single"
    assert at.selectbox(key="tr_run").options == [f"#{failed} after the suite (failed)",
                                                  f"#{old} before the suite (finished)"]
    # the suite's runs, under their own titles, in the suite's order
    at.selectbox(key="tr_group").set_value(batch).run()
    box = at.selectbox(key="tr_run")
    assert box.options == [f"#{rid} {t} ({'finished' if i % 2 == 0 else 'diverged'})"
                           for i, (rid, t) in enumerate(zip(suite_ids, titles, strict=True))]
    assert at.session_state["tr_run"] == suite_ids[0]
    # status filter inside the group
    at.button_group(key="tr_status").set_value(["failed"]).run()
    assert [int(o.split()[0][1:]) for o in at.selectbox(key="tr_run").options] == suite_ids[1::2]
    # the launch's own results on Compare, and back
    at.button(key="tr_to_compare").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Compare" for t in at.title)
    assert at.selectbox(key="_exp_batch").value == batch
    at.switch_page("pages/train.py").run()
    assert at.selectbox(key="tr_group").value == batch  # the filters are as they were
    # every group, failed only
    at.selectbox(key="tr_group").set_value("__all__").run()
    assert [int(o.split()[0][1:]) for o in at.selectbox(key="tr_run").options] == \
        [failed, *reversed(suite_ids[1::2])]
    # nothing passes: one line, no run shown
    at.button_group(key="tr_status").set_value(["active"]).run()
    assert any(i.value == "No run matches these filters." for i in at.info)
    assert "run" not in at.query_params
    # a student has no "everyone's runs": Bob's run is not Ada's to see
    at.button_group(key="tr_status").set_value([]).run()
    assert not [w for w in at.button_group if w.key == "tr_whose"]
    at.selectbox(key="tr_group").set_value("__all__").run()
    assert not [o for o in at.selectbox(key="tr_run").options if "Bob" in o]
    # the teacher's session sees everyone's, with the owner's name
    monkeypatch.setenv("PLAYGROUND_TEACHER_CODE", "chalk")
    at.run()
    at.text_input(key="_teacher_box").input("chalk").run()
    assert at.session_state["teacher"]
    at.button_group(key="tr_whose").set_value("everyone").run()
    assert f"#{bobs} Bob's run (finished) · Bob" in at.selectbox(key="tr_run").options


def test_a_queued_run_shows_its_header_only_until_it_starts(monkeypatch, tmp_path) -> None:
    """A waiting run's view draws its status and Stop, not four empty metrics and two empty
    charts (30 students' waiting views poll the store: issue 12); the pass that sees it start,
    or end straight from the queue, draws the metrics and charts."""
    store = _store(monkeypatch, tmp_path)
    _open({"user": "Ada"}, monkeypatch, tmp_path)  # the server's runner is up (it marks
    # queued runs that it does not hold interrupted when it starts)
    spec = get_preset("mlp_points").to_dict()
    settings = TrainSettings(dataset="spirals", steps=3).to_dict()
    rid = store.create_run("Ada", "waiting", spec, settings)  # queued; no runner holds it
    at = _open({"run": str(rid), "user": "Ada"}, monkeypatch, tmp_path)
    assert _progress(at) == "queued: step 0 of 3"
    assert "The charts appear here when the run starts." in _captions(at)
    assert not at.get("plotly_chart") and not at.metric and not at.tabs
    assert [b.label for b in at.button if b.key == f"stop_{rid}"] == ["Stop training"]
    store.mark_started(rid)
    store.append_metrics(rid, [{"step": 1, "name": "loss", "value": 0.5}])
    at.run()
    assert _progress(at).startswith("running: step 1 of 3")
    assert "The charts appear here" not in _captions(at)
    assert len(at.get("plotly_chart")) >= 2 and at.metric[2].value == "0.500"
    # one that ends between two polls, straight from the queue: everything in that pass
    ended = store.create_run("Ada", "quick", spec, settings)
    at = _open({"run": str(ended), "user": "Ada"}, monkeypatch, tmp_path)
    assert not at.get("plotly_chart")
    store.mark_started(ended)
    store.append_metrics(ended, [{"step": s, "name": "loss", "value": 1.0 / s}
                                 for s in (1, 2, 3)])
    store.set_status(ended, "finished", "", {"total_steps": 3})
    at.run()
    assert _progress(at) == "finished: step 3 of 3"
    assert len(at.get("plotly_chart")) >= 2 and at.metric[2].value == "0.333"


def test_a_running_run_says_how_long_is_left_from_its_own_pace(monkeypatch, tmp_path) -> None:
    """Time left = elapsed / steps done x steps left (hand-derived below); under a second it
    says "almost done", not "about 0 s left"."""
    store = _store(monkeypatch, tmp_path)
    _open({"user": "Ada"}, monkeypatch, tmp_path)  # the server's runner is up
    spec = get_preset("mlp_points").to_dict()
    rid = store.create_run("Ada", "pace", spec,
                           TrainSettings(dataset="spirals", steps=300).to_dict())
    store.mark_started(rid)
    # 100 of 300 steps in 30 s: 0.3 s a step, 200 steps left -> 60 s -> "1 min 00 s"
    store.append_metrics(rid, [{"step": 100, "name": "loss", "value": 0.5},
                               {"step": 100, "name": "elapsed_s", "value": 30.0}])
    at = _open({"run": str(rid), "user": "Ada"}, monkeypatch, tmp_path)
    assert _progress(at) == "running: step 100 of 300, about 1 min 00 s left"
    # 299 of 300 in 29.9 s: 0.1 s left
    store.append_metrics(rid, [{"step": 299, "name": "loss", "value": 0.4},
                               {"step": 299, "name": "elapsed_s", "value": 29.9}])
    at.run()
    assert _progress(at) == "running: step 299 of 300, almost done"
