"""AppTest: the Compare page (side by side, experiments) and the Learn page, through app.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.lessons import LESSONS
from playground.presets import get_preset
from playground.runs import RunStore, default_db_path
from playground.targets import analyse_spec, analyse_zoo
from playground.train import TrainSettings
from tests.helpers import key_for, shown, wait_until

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLAYGROUND_DEVICE", "cpu")


def _page(page: str, user: str | None = "Ada", **state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if user:
        at.query_params["user"] = user
        at.query_params["key"] = key_for(user)
    at.run()
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


TABLES = {"cmp_table": "parameters", "cmp_diff": "what changed", "exp_results": "final val. acc."}


def _table(at: AppTest, which: str = "cmp_table"):
    """The data frame that has the row or column that identifies ``which``."""
    mark = TABLES[which]
    for d in at.dataframe:
        frame = d.value
        if mark in frame.columns or mark in frame.index:
            return frame
    raise AssertionError(f"no {which} table")


def test_compare_defaults_to_vgg16_and_resnet50_with_exact_numbers() -> None:
    at = _page("pages/compare.py")
    table = _table(at)
    assert list(table.columns) == ["VGG-16", "ResNet-50"]
    assert table.loc["parameters", "VGG-16"] == "138,357,544"
    assert table.loc["parameters", "ResNet-50"] == "25,557,032"
    assert table.loc["MACs", "VGG-16"] == "15.47 G"
    assert table.loc["receptive field (px)", "VGG-16"] == "212 px"
    # per-stage and per-layer params/MACs, then one architecture diagram per item
    assert len(at.get("plotly_chart")) == 4 + 2
    assert not at.error


def test_pick_items_table_matches_the_analysis_and_diff_names_stages() -> None:
    at = _page("pages/compare.py")
    at.multiselect(key="_cmp_items").set_value(
        ["preset:plain20_cifar", "preset:resnet20_cifar", "zoo:resnet18"]).run()
    assert not at.exception, at.exception
    table = _table(at)
    assert list(table.columns) == ["Plain-20 (CIFAR, no shortcuts)", "ResNet-20 (CIFAR)",
                                   "resnet18 (torchvision)"]
    plain = analyse_spec(get_preset("plain20_cifar"))
    assert table.loc["parameters", "ResNet-20 (CIFAR)"] == f"{plain.num_params:,}"
    assert table.loc["depth", "ResNet-20 (CIFAR)"] == "20"
    zoo = analyse_zoo("resnet18", (3, 224, 224), 1000)
    assert table.loc["parameters", "resnet18 (torchvision)"] == f"{zoo.num_params:,}"
    diff = _table(at, "cmp_diff")
    changed = diff[diff["change"] == "changed"]["stage"].tolist()
    assert changed == ["stage 1", "stage 2", "stage 3"]
    assert "residual False -> True" in diff["what changed"].iloc[1]
    # the memory estimate follows the batch size chosen on the page
    before = table.loc["training memory (batch 32)", "resnet18 (torchvision)"]
    at.number_input(key="cmp_batch").set_value(256).run()
    assert _table(at).loc["training memory (batch 256)", "resnet18 (torchvision)"] != before


def test_one_item_asks_for_another() -> None:
    at = _page("pages/compare.py")
    at.multiselect(key="_cmp_items").set_value(["preset:small_cnn"]).run()
    assert not at.exception
    assert any("at least two" in i.value for i in at.info)


def _stored_run(store: RunStore, title: str, lr: float, status: str, message: str) -> int:
    rid = store.create_run("Ada", title, get_preset("mlp_points").to_dict(),
                           TrainSettings(dataset="spirals", lr=lr, steps=3).to_dict())
    store.mark_started(rid)
    store.append_metrics(rid, [{"step": 0, "name": "layers", "labels": ["a", "b"]}] + [
        rec for s in (1, 2, 3) for rec in (
            {"step": s, "name": "loss", "value": 1.0 / s},
            {"step": s, "name": "acc", "value": 0.2 * s},
            {"step": s, "name": "grad_norm", "value": 1.0},
            {"step": s, "name": "grad_norm_clipped", "value": 1.0},  # recorded without clipping
            {"step": s, "name": "grad_norm_layer", "values": [0.001 * s, 1.0]})])
    store.set_status(rid, status, message, {"final_val_acc": 0.75, "best_val_acc": 0.8,
                                            "final_loss": 0.5, "steps_done": 3,
                                            "steps_per_s": 10.0, "wall_s": 0.3})
    return rid


def test_runs_side_by_side_highlight_the_settings_that_differ() -> None:
    store = RunStore(default_db_path())
    a = _stored_run(store, "calm", 0.01, "finished", "finished 3 steps")
    b = _stored_run(store, "hot", 5.0, "diverged", "diverged at step 3: the loss became inf")
    at = _page("pages/compare.py")
    at.multiselect(key="_cmp_items").set_value([f"run:{a}", f"run:{b}"]).run()
    assert not at.exception, at.exception
    table = _table(at)
    assert table.loc["status"].tolist() == ["finished", "diverged at step 3"]
    assert table.loc["final val. accuracy"].tolist() == ["75.0%", "75.0%"]
    assert table.loc["setting: lr"].tolist() == ["0.01", "5"]
    styled = next(d for d in at.dataframe if "parameters" in d.value.index)
    from ui.compare_view import HIGHLIGHT

    # the differing setting is highlighted
    assert HIGHLIGHT.split(":", 1)[1].strip() in str(styled.proto)
    # loss, accuracy, gradient norm, gradient flow, the design charts, the two runs' diagrams
    assert len(at.get("plotly_chart")) == 8 + 2
    # neither run clips: one gradient-norm line each, none named after clipping
    norms = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if "Total gradient norm" in json.dumps(json.loads(c.proto.spec)["layout"]
                                                        .get("title", "")))
    names = [t["name"] for t in norms["data"]]
    assert len(names) == 2 and not [n for n in names if "clipping" in n], names
    at.slider(key="cmp_flow_step").set_value(3).run()
    assert not at.exception


def _diagram_specs(at: AppTest) -> list[dict]:
    """The architecture diagrams on the page (the figures whose markers carry box keys)."""
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return [f for f in figures if any(t.get("name") == "boxes" for t in f["data"])]


def test_compare_draws_each_designs_diagram_side_by_side_on_one_scale() -> None:
    from playground.diagram import build_diagram, diagram_scale

    store = RunStore(default_db_path())
    run = _stored_run(store, "calm", 0.01, "finished", "finished 3 steps")
    at = _page("pages/compare.py")
    items = ["preset:resnet20_cifar", "zoo:resnet18", "preset:vgg11", f"run:{run}"]
    at.multiselect(key="_cmp_items").set_value(items).run()
    assert not at.exception, at.exception
    figures = _diagram_specs(at)
    # one figure per design, in the order picked (the torchvision model has none: a note)
    designs = [get_preset("resnet20_cifar"), get_preset("vgg11"), get_preset("mlp_points")]
    analyses = [analyse_spec(s) for s in designs]
    expected = [build_diagram(a, scale=diagram_scale(analyses)) for a in analyses]
    assert len(figures) == 3
    for fig, diagram in zip(figures, expected, strict=True):
        markers = next(t for t in fig["data"] if t.get("name") == "boxes")
        assert markers["customdata"] == [b.key for b in diagram.boxes]
    # one scale: the same axes for every column
    assert len({json.dumps(f["layout"]["xaxis"]["range"]) for f in figures}) == 1
    assert len({json.dumps(f["layout"]["yaxis"]["range"]) for f in figures}) == 1
    assert figures[0]["layout"]["xaxis"]["range"][1] == max(d.width for d in expected) + 8
    assert any("module graph is on the Build page" in c.value for c in at.caption)
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert len(keys) == len(set(keys))


def test_experiments_need_a_name() -> None:
    at = _page("pages/compare.py", user=None, cmp_tab="Experiments")
    assert at.button(key="exp_run").disabled
    assert any("Enter your name" in w.value for w in at.warning)


def test_experiment_suite_runs_through_the_runner_and_shows_results() -> None:
    at = _page("pages/compare.py", cmp_tab="Experiments", exp_suite="lr_clip")
    at.toggle(key="exp_quick").set_value(True).run()
    at.button(key="exp_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    def finished() -> bool:
        rows = _table(at, "exp_results")
        return len(rows) == 8 and not rows["status"].isin(
            ["queued", "running"]).any() and not rows["status"].str.startswith("waiting").any()

    # with more runs than the queue allows, the page tops the queue up as runs finish
    wait_until(at, finished, timeout=600, what="the experiment")  # a limit, not a goal
    rows = _table(at, "exp_results").set_index("variant")
    assert rows.loc["lr 1, no clipping", "status"].startswith("diverged at step")
    assert rows.loc["lr 1, clip 1", "status"] == "finished"
    assert rows.loc["lr 0.03, no clipping", "final val. acc."] > 0.5
    assert len(at.get("plotly_chart")) == 4


def test_custom_grid_explains_bad_values() -> None:
    at = _page("pages/compare.py", cmp_tab="Experiments", exp_suite="custom")
    assert not at.exception
    at.text_input(key="exp_grid_v1_lr").input("0.1, fast").run()
    assert any("'fast' is not a number" in shown(e.value) for e in at.error)
    at.text_input(key="exp_grid_v1_lr").input("0.1, 0.01").run()
    assert not at.error
    assert at.button(key="exp_grid_run").label == "Run these 2 trainings"


def test_learn_renders_every_lesson_with_its_figure() -> None:
    at = _page("pages/learn.py")
    assert at.get("plotly_chart")
    for lesson_id in LESSONS:
        at.radio(key="_learn_lesson").set_value(lesson_id).run()
        assert not at.exception, (lesson_id, at.exception)
        assert not at.error, (lesson_id, [e.value for e in at.error])
        assert at.get("plotly_chart"), lesson_id
        assert at.header[0].value == LESSONS.get(lesson_id).title


def test_learn_control_changes_the_figure_and_shapes_calculator() -> None:
    at = _page("pages/learn.py")
    at.select_slider(key="learn_gradients_depth").set_value(20).run()
    assert not at.exception
    at.radio(key="_learn_lesson").set_value("shapes").run()
    at.number_input(key="learn_calc_i").set_value(224).run()
    at.number_input(key="learn_calc_k").set_value(7).run()
    at.number_input(key="learn_calc_s").set_value(2).run()
    at.number_input(key="learn_calc_p").set_value(3).run()
    assert any("= **112**" in s.value for s in at.success)


def test_learn_opens_the_preset_on_build_and_the_experiment_on_compare() -> None:
    at = _page("pages/learn.py")
    at.button(key="learn_open_gradients").click().run()
    assert not at.exception, at.exception
    assert at.session_state.spec == get_preset("deep_sigmoid_mlp")
    params = next(m.value for m in at.metric if m.label == "Parameters")
    assert params == f"{analyse_spec(get_preset('deep_sigmoid_mlp')).num_params:,}"
    at.switch_page("pages/learn.py").run()
    at.radio(key="_learn_lesson").set_value("residual").run()
    at.button(key="learn_exp_residual").click().run()
    assert not at.exception, at.exception
    assert at.session_state.exp_suite == "depth"
    assert at.selectbox(key="_exp_suite").value == "depth"


def test_charts_download_as_one_offline_html_page() -> None:
    from playground.compare import stage_breakdown
    from ui.compare_charts import figures_html, stage_bars

    parts = stage_breakdown(analyse_spec(get_preset("vgg11")))
    page = figures_html([stage_bars([("VGG-11", "#1f77b4", parts)], "params", "Params", "n"),
                         stage_bars([("VGG-11", "#1f77b4", parts)], "macs", "MACs", "n")])
    assert page.startswith("<!DOCTYPE html>") and page.count("Plotly.newPlot") == 2
    # plotly.js is embedded once, not loaded from a CDN: the file works without internet
    assert 'src="https://cdn.plot.ly' not in page and len(page) > 1_000_000
