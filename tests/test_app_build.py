"""AppTest: every page renders; the Build page reacts to presets, edits, errors and uploads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torchvision
from streamlit.testing.v1 import AppTest

from playground.build import build_model
from playground.format import fmt_int
from playground.presets import PRESETS, get_preset
from playground.share import encode_spec
from tests.helpers import shown, with_key
from ui.sources import EDITED, PICK

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))


def _app(query: dict[str, str] | None = None, tab: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in with_key(query or {}).items():
        at.query_params[k] = v
    if tab:
        at.session_state["build_tab"] = tab
    at.run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label: str) -> str:
    for m in at.metric:
        if m.label.startswith(label):
            return m.value
    raise AssertionError(f"no metric {label!r}: {[m.label for m in at.metric]}")


def _open(at: AppTest, source: str) -> AppTest:
    """One pick in the Design box (``preset:vgg16``, ``zoo:resnet18``, ``saved:my net``)."""
    at.selectbox(key=PICK).select(source).run()
    assert not at.exception, at.exception
    return at


def _shown_label(at: AppTest) -> str:
    """What the Design box shows: the label of its current value."""
    box = at.selectbox(key=PICK)
    return box.options[box.index]


def _key(at: AppTest, *parts: object) -> str:
    return f"g{at.session_state.gen}_" + "_".join(str(p) for p in parts)


def _expand_stage(at: AppTest, i: int) -> AppTest:
    """Stage editors are lazy expanders: open one as a click would."""
    at.session_state.open_stages = {*at.session_state.open_stages, i}
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", ["pages/build.py", "pages/train.py",
                                  "pages/compare.py", "pages/learn.py"])
def test_every_page_renders(page: str) -> None:
    at = _app()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title


def test_default_design_shows_numbers() -> None:
    at = _app()
    assert _metric(at, "Parameters") == "66,410"
    assert _metric(at, "Depth") == "5"


def test_one_pick_opens_vgg16_with_its_numbers_at_once() -> None:
    at = _open(_app(), "preset:vgg16")  # one interaction: no group box, no Open button
    assert _metric(at, "Parameters") == "138,357,544"  # torchvision's vgg16 (STYLE.md)
    assert _metric(at, "MACs") == "15.47 G"
    assert _metric(at, "Receptive field") == "212 px"
    assert _metric(at, "Final feature map") == "512 x 7 x 7"
    assert _shown_label(at) == "Classic · VGG-16"
    assert any(shown(c.value).startswith("**VGG-16**: ") for c in at.caption)  # says what is open
    assert not [b for b in at.button if b.label == "Open"]
    assert at.query_params["d"] == encode_spec(get_preset("vgg16"))  # the share link follows


def test_changing_depth_and_stride_updates_the_table() -> None:
    at = _open(_app(), "preset:small_cnn")
    rows_before = len(at.dataframe[0].value)
    _expand_stage(at, 0)
    _expand_stage(at, 1)
    at.number_input(key=_key(at, "s", 1, "depth")).set_value(3).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == rows_before + 3  # conv, norm, act
    at.number_input(key=_key(at, "s", 0, "stride")).set_value(2).run()
    table = at.dataframe[0].value
    first_conv = table[table["layer"] == "stage1.layer1.conv"].iloc[0]
    assert first_conv["output"] == "32×16×16"


def test_impossible_design_shows_error_and_keeps_last_analysis() -> None:
    at = _open(_app(), "preset:small_cnn")
    at.number_input(key=_key(at, "in_h")).set_value(2).run()
    at.number_input(key=_key(at, "in_w")).set_value(2).run()
    assert not at.exception
    errors = " ".join(shown(e.value) for e in at.error)
    assert "stage 2, pool (max-pool 2x2)" in errors and "smaller than the 2x2 kernel" in errors
    assert any("last valid design" in w.value for w in at.warning)
    assert _metric(at, "Parameters") == "66,410"  # last valid analysis still shown


def test_stage_operations() -> None:
    at = _open(_app(), "preset:small_cnn")
    _expand_stage(at, 0)
    at.button(key=_key(at, "s", 0, "dup")).click().run()
    assert len(at.session_state.spec.stages) == 3
    _expand_stage(at, 2)
    at.button(key=_key(at, "s", 2, "up")).click().run()
    assert at.session_state.spec.stages[1].width == 64
    _expand_stage(at, 0)
    at.button(key=_key(at, "s", 0, "rm")).click().run()
    assert len(at.session_state.spec.stages) == 2
    at.button(key=_key(at, "add")).click().run()
    assert len(at.session_state.spec.stages) == 3
    assert not at.exception


def test_share_link_restores_design() -> None:
    spec = get_preset("resnet20_cifar")
    at = _app({"d": encode_spec(spec)})
    assert at.session_state.spec == spec
    assert _metric(at, "Parameters") == "269,722"
    assert _shown_label(at) == "Shared link · resnet20_cifar"
    assert at.query_params["d"] == encode_spec(spec)


def test_broken_share_link_falls_back_with_message() -> None:
    at = _app({"d": "v1.garbage!!"})
    assert any("Could not open the shared design" in e.value for e in at.error)
    assert _metric(at, "Parameters") == "66,410"


def test_closed_stages_draw_no_widgets_but_open_ones_do() -> None:
    at = _open(_app(), "preset:vgg19")
    assert not [w for w in at.number_input if "_s_" in (w.key or "")]
    _expand_stage(at, 4)
    assert at.number_input(key=_key(at, "s", 4, "width")).value == 512


def test_charts_tab_draws_plotly_charts() -> None:
    at = _app(tab="Charts")
    charts = at.get("plotly_chart")
    assert len(charts) == 4


@pytest.mark.parametrize("preset,ticks", [("vgg16", [0, 128, 256, 384, 512]),
                                          ("small_cnn", [0, 16, 32, 48, 64]),
                                          ("resnet50", [0, 512, 1024, 1536, 2048])])
def test_feature_map_channel_axis_has_round_ticks(preset: str, ticks: list[int]) -> None:
    at = _open(_app(tab="Charts"), f"preset:{preset}")
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    axis = figure["layout"]["yaxis2"]
    assert axis["tickvals"] == ticks
    channels = figure["data"][1]["y"]
    assert axis["range"][0] < 0 and max(channels) == ticks[-1] < axis["range"][1]
    low, high = figure["layout"]["yaxis"]["range"]  # both zeros on one line
    assert low / high == pytest.approx(axis["range"][0] / axis["range"][1])


def test_torchvision_model_is_analysed() -> None:
    at = _open(_app(), "zoo:resnet18")
    assert _metric(at, "Parameters") == "11,689,512"
    assert _metric(at, "MACs") == "1.82 G"


def test_save_design_needs_a_name_and_then_lists_it() -> None:
    at = _app({"user": "Ada"})
    at.text_input(key="save_name").input("my net").run()
    at.button(key="save_btn").click().run()
    assert not at.exception
    assert any("Saved 'my net' for Ada" in shown(s.value) for s in at.success)
    # the saved design is now the open one, listed under Saved and not edited
    assert at.selectbox(key=PICK).value == "saved:my net"
    assert _shown_label(at) == "Saved · my net"
    _open(at, "preset:vgg16")
    _open(at, "saved:my net")
    assert at.session_state.spec.name == "my net"
    assert _metric(at, "Parameters") == "66,410"


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("bad.json", b"{not json", "not valid JSON"),
        ("bad.yaml", b"stages: [", "not valid YAML"),
        ("wide.yaml", b"stages:\n  - width: wide\n", "stage 1: width must be a whole number"),
        ("tiny.json", b'{"input": {"height": 1, "width": 1}, "stages": [{"kernel": 5, '
         b'"padding": 0}]}', "smaller than the 5x5 kernel"),
    ],
)
def test_upload_of_malformed_file_shows_error_and_changes_nothing(
    name: str, content: bytes, message: str
) -> None:
    at = _app(tab="Export & share")
    before = at.session_state.spec
    at.file_uploader(key="upload").set_value((name, content, "application/octet-stream")).run()
    assert not at.exception, at.exception
    errors = " ".join(shown(e.value) for e in at.error)
    assert f"Could not open {name}" in errors and message in errors
    assert "Nothing was changed" in errors
    assert at.session_state.spec == before


def test_upload_of_valid_yaml_opens_it() -> None:
    at = _app(tab="Export & share")
    content = get_preset("lenet5").to_yaml().encode()
    at.file_uploader(key="upload").set_value(("lenet.yaml", content, "application/x-yaml")).run()
    assert not at.exception, at.exception
    assert _metric(at, "Parameters") == "61,706"


def test_train_this_design_opens_the_train_page() -> None:
    at = _open(_app({"user": "Ada"}), "preset:lenet5")
    at.button(key="to_train").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Train" for t in at.title)
    assert at.session_state["tr_network"] == "__current__"
    assert at.session_state["tr_dataset"] == "digits"  # LeNet-5's own data set


# -- the Design box: one pick, the edited marker, Revert and Undo -----------------------------
SMALL_CNN = "Starter · Small CNN (starter)"


def _buttons(at: AppTest) -> set[str]:
    return {b.key for b in at.button if b.key}


def _real_params(spec) -> str:
    """Parameters of the built ``nn.Module`` (not the analysis), as the metric writes them."""
    return fmt_int(sum(p.numel() for p in build_model(spec).parameters()))


def test_design_box_lists_every_preset_torchvision_model_and_a_blank_design() -> None:
    at = _app()
    labels = at.selectbox(key=PICK).options
    assert labels[0] == SMALL_CNN  # the open design
    for name in PRESETS.names():
        assert any(label.endswith(" · " + PRESETS.get(name).title) for label in labels), name
    for name in torchvision.models.list_models(module=torchvision.models):
        assert any(label.startswith(f"torchvision · {name} (") for label in labels), name
    assert "torchvision · resnet50 (224x224)" in labels
    assert "Blank design (one conv stage)" in labels
    assert len(labels) == len(set(labels))


def test_picking_a_zoo_model_shows_torchvisions_numbers() -> None:
    at = _open(_app(), "zoo:resnet50")
    assert _metric(at, "Parameters") == "25,557,032"  # torchvision's resnet50 (STYLE.md)
    assert _metric(at, "MACs") == "4.11 G"
    assert _shown_label(at) == "torchvision · resnet50 (224x224)"
    assert "d" not in at.query_params  # a zoo model is no playground design to share
    # its input size is an edit too, and Revert goes back to 224x224
    at.number_input(key=_key(at, "zoo_side")).set_value(256).run()
    assert _shown_label(at) == "torchvision · resnet50 (224x224)" + EDITED
    at.button(key="design_revert").click().run()
    assert at.session_state.zoo["input"] == (3, 224, 224)
    assert _metric(at, "MACs") == "4.11 G"


def test_edited_marker_appears_after_an_edit_and_goes_with_revert() -> None:
    at = _app()
    assert _shown_label(at) == SMALL_CNN
    assert "design_revert" not in _buttons(at)
    at.number_input(key=_key(at, "classes")).set_value(5).run()
    assert _shown_label(at) == SMALL_CNN + EDITED
    assert any("Edited" in shown(c.value) for c in at.caption)
    at.button(key="design_revert").click().run()
    assert not at.exception, at.exception
    assert _shown_label(at) == SMALL_CNN
    assert at.session_state.spec == get_preset("small_cnn")
    assert _metric(at, "Parameters") == "66,410"
    at.button(key="design_undo").click().run()  # a revert can be undone too
    assert _shown_label(at) == SMALL_CNN + EDITED
    assert at.session_state.spec.num_classes == 5
    at.number_input(key=_key(at, "classes")).set_value(10).run()  # changed back: no edit
    assert _shown_label(at) == SMALL_CNN
    assert "design_revert" not in _buttons(at)


def test_picking_after_an_edit_opens_the_pick_and_undo_restores_the_edit() -> None:
    at = _app()
    _expand_stage(at, 1)
    at.number_input(key=_key(at, "s", 1, "width")).set_value(96).run()
    edited = at.session_state.spec
    assert _metric(at, "Parameters") == _real_params(edited) != "66,410"
    _open(at, "preset:vgg16")
    assert _metric(at, "Parameters") == "138,357,544"  # opened at once, edits or not
    assert _shown_label(at) == "Classic · VGG-16"
    assert "design_undo" in _buttons(at)
    assert any("Small CNN (starter) were set aside" in shown(c.value) for c in at.caption)
    at.button(key="design_undo").click().run()
    assert not at.exception, at.exception
    assert at.session_state.spec == edited
    assert _metric(at, "Parameters") == _real_params(edited)
    assert _shown_label(at) == SMALL_CNN + EDITED  # still edited: it is the edited design
    assert "design_undo" not in _buttons(at)
    assert at.query_params["d"] == encode_spec(edited)


def test_no_undo_without_edits_and_none_once_the_pick_is_edited() -> None:
    at = _open(_app(), "preset:vgg16")
    assert "design_undo" not in _buttons(at)  # nothing was lost: pick Small CNN again
    at.number_input(key=_key(at, "classes")).set_value(5).run()
    _open(at, "preset:lenet5")
    assert "design_undo" in _buttons(at)
    at.number_input(key=_key(at, "classes")).set_value(7).run()
    # undoing now would throw LeNet's new edit away: the offer is gone, Revert is offered
    assert "design_undo" not in _buttons(at)
    assert "design_revert" in _buttons(at)


def test_figures_made_from_the_cached_layout_equal_validated_ones_and_still_validate() -> None:
    """ui.charts._fig skips re-validating its cached layout (issue 12): the figure must equal
    one built through Plotly's validating calls, and later changes must still be checked."""
    import plotly.graph_objects as go

    from ui.charts import _LAYOUT, _LOG_AXIS, _fig, ink_axes

    for log_y, log_x in [(False, False), (True, False), (True, True)]:
        oracle = go.Figure()
        oracle.update_layout(title="Loss", xaxis_title="step", yaxis_title="loss", **_LAYOUT)
        ink_axes(oracle)
        if log_y:
            oracle.update_yaxes(**_LOG_AXIS)
        if log_x:
            oracle.update_xaxes(**_LOG_AXIS)
        fig = _fig("Loss", "step", "loss", log_y=log_y, log_x=log_x)
        assert fig.to_plotly_json() == oracle.to_plotly_json()
    fig.update_layout(title="changed", yaxis2={"title": "channels"})
    fig.update_xaxes(tickfont={"size": 10})
    assert fig.layout.title.text == "changed"  # shorthand still coerced
    assert fig.layout.yaxis2.title.text == "channels"
    assert _fig("Loss", "step", "loss", True, True).layout.title.text == "Loss"  # a copy
    with pytest.raises(ValueError):
        fig.update_layout(no_such_property=1)
    with pytest.raises(ValueError):
        fig.update_xaxes(no_such_property=1)


def test_layer_table_is_built_once_per_design_and_holds_its_rows() -> None:
    from playground.targets import analyse_spec, layer_labels
    from ui.tables import layer_arrow, layer_rows

    spec = get_preset("vgg11")
    analysis, labels = analyse_spec(spec), layer_labels(spec)
    table = layer_arrow(analysis, labels)
    assert layer_arrow(analysis, labels) is table  # the next rerun reuses it
    assert table.to_pylist() == layer_rows(analysis, labels)
    other = spec.with_stage(0, width=32)
    assert layer_arrow(analyse_spec(other), layer_labels(other)) is not table


# -- the Diagram tab ---------------------------------------------------------------------------
def test_diagram_tab_draws_the_design_and_explains_a_picked_box() -> None:
    from playground.analysis import explain_row
    from playground.presets import get_preset
    from playground.targets import analyse_spec

    at = _open(_app(tab="Diagram"), "preset:resnet20_cifar")
    charts = at.get("plotly_chart")
    assert charts, "no diagram drawn"
    figure = json.loads(charts[0].proto.spec)
    markers = next(t for t in figure["data"] if t.get("name") == "boxes")
    assert markers["customdata"][:3] == ["input", "stem", "stage1.block1"]
    assert len(figure["layout"]["shapes"]) == 9  # one skip arc per residual block
    assert [b.proto.label for b in at.get("download_button")] == ["Download SVG"]
    assert not at.code  # no box picked yet
    # a click on a box (the chart's selection sets this key) shows that box's formulas: those
    # of its first conv, as the layer table's row for it would
    at.session_state["diagram_pick"] = "stage2.block1"
    at.run()
    assert not at.exception, at.exception
    rows = analyse_spec(get_preset("resnet20_cifar")).rows
    conv = next(r for r in rows if r.name == "stage2.block1.conv1")
    assert [c.value for c in at.code] == [explain_row(conv)]
    assert any("stage2.block1.conv1" in shown(m.value) for m in at.markdown)


def test_a_picked_box_selects_its_row_in_the_layer_table_and_tints_its_rows() -> None:
    """Diagram click -> Layers tab: the box's first conv is the table's selected row (its
    formula under the table), every row of the block is tinted; Clear stops the tint."""
    import re

    from playground.analysis import explain_row
    from playground.targets import analyse_spec

    at = _open(_app(tab="Diagram"), "preset:resnet20_cifar")
    at.session_state["diagram_pick"] = "stage2.block1"  # what a click on that box sets
    at.run()
    assert not at.exception, at.exception
    rows = analyse_spec(get_preset("resnet20_cifar")).rows
    block = [r.index for r in rows if r.name.startswith("stage2.block1.")]  # its modules
    conv = next(r for r in rows if r.name == "stage2.block1.conv1")
    assert len(block) == 7 and conv.index == block[0]
    # under the diagram: the box's own rows of the table
    small = next(d for d in at.dataframe if "layer" in d.value.columns)
    assert small.value["layer"].tolist() == [rows[i].name for i in block]
    at.button(key="diagram_to_layers").click().run()
    assert not at.exception, at.exception
    assert at.session_state["build_tab"] == "Layers"
    assert at.session_state["layer_table"]["selection"]["rows"] == [conv.index]
    assert [c.value for c in at.code] == [explain_row(conv)]  # the formula panel
    table = at.dataframe[0]
    tinted = {int(m) for m in re.findall(r"row(\d+)_col\d+", str(table.proto))}
    assert tinted == set(block)
    assert any("block 2" in shown(c.value) and "7 rows" in c.value for c in at.caption)
    # the pick selects once: another row the learner picks stays picked; the tint stays
    at.session_state["layer_table"] = {"selection": {"rows": [3], "columns": [], "cells": []}}
    at.run()
    at.run()
    assert at.session_state["layer_table"]["selection"]["rows"] == [3]
    assert [c.value for c in at.code] == [explain_row(rows[3])]
    assert {int(m) for m in re.findall(r"row(\d+)_col\d+", str(at.dataframe[0].proto))} == \
        set(block)
    at.button(key="diagram_pick_clear").click().run()
    assert not at.exception, at.exception
    assert not re.search(r"row\d+_col\d+", str(at.dataframe[0].proto))
    assert not any("Tinted" in c.value for c in at.caption)


def test_diagram_tab_draws_a_torchvision_models_graph() -> None:
    at = _open(_app(tab="Diagram"), "zoo:resnet18")
    assert not at.exception, at.exception
    graphs = at.get("graphviz_chart")
    assert graphs, "no graph drawn"
    dot = graphs[0].proto.spec
    assert "layer1.0: BasicBlock" in dot and "64x56x56" in dot
    assert at.slider(key="graph_depth").value == 2
    at.slider(key="graph_depth").set_value(3).run()
    assert not at.exception, at.exception
    assert "layer1.0.add: add" in at.get("graphviz_chart")[0].proto.spec
    assert [b.proto.label for b in at.get("download_button")] == ["Download SVG",
                                                                  "Download DOT"]
