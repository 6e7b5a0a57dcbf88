"""AppTest: every page renders; the Build page reacts to presets, edits, errors and uploads."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.presets import get_preset
from playground.share import encode_spec
from tests.helpers import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))


def _app(query: dict[str, str] | None = None, tab: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (query or {}).items():
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


def _open(at: AppTest, group: str, item: str) -> AppTest:
    at.selectbox(key="src_group").select(group).run()
    at.selectbox(key=f"src_item_{group}").select(item).run()
    at.button(key="src_open").click().run()
    assert not at.exception, at.exception
    return at


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


def test_vgg16_preset_shows_exact_params_and_macs() -> None:
    at = _open(_app(), "Classic networks", "vgg16")
    assert _metric(at, "Parameters") == "138,357,544"
    assert _metric(at, "MACs") == "15.47 G"
    assert _metric(at, "Receptive field") == "212 px"
    assert _metric(at, "Final feature map") == "512 x 7 x 7"


def test_changing_depth_and_stride_updates_the_table() -> None:
    at = _open(_app(), "Starters", "small_cnn")
    rows_before = len(at.dataframe[0].value)
    _expand_stage(at, 0)
    _expand_stage(at, 1)
    at.number_input(key=_key(at, "s", 1, "depth")).set_value(3).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == rows_before + 3  # conv, norm, act
    at.number_input(key=_key(at, "s", 0, "stride")).set_value(2).run()
    table = at.dataframe[0].value
    first_conv = table[table["layer"] == "stage1.layer1.conv"].iloc[0]
    assert first_conv["output"] == "32 x 16 x 16"


def test_impossible_design_shows_error_and_keeps_last_analysis() -> None:
    at = _open(_app(), "Starters", "small_cnn")
    at.number_input(key=_key(at, "in_h")).set_value(2).run()
    at.number_input(key=_key(at, "in_w")).set_value(2).run()
    assert not at.exception
    errors = " ".join(shown(e.value) for e in at.error)
    assert "stage 2, pool (max-pool 2x2)" in errors and "smaller than the 2x2 kernel" in errors
    assert any("last valid design" in w.value for w in at.warning)
    assert _metric(at, "Parameters") == "66,410"  # last valid analysis still shown


def test_stage_operations() -> None:
    at = _open(_app(), "Starters", "small_cnn")
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


def test_broken_share_link_falls_back_with_message() -> None:
    at = _app({"d": "v1.garbage!!"})
    assert any("Could not open the shared design" in e.value for e in at.error)
    assert _metric(at, "Parameters") == "66,410"


def test_closed_stages_draw_no_widgets_but_open_ones_do() -> None:
    at = _open(_app(), "Classic networks", "vgg19")
    assert not [w for w in at.number_input if "_s_" in (w.key or "")]
    _expand_stage(at, 4)
    assert at.number_input(key=_key(at, "s", 4, "width")).value == 512


def test_charts_tab_draws_plotly_charts() -> None:
    at = _app(tab="Charts")
    charts = at.get("plotly_chart")
    assert len(charts) == 4


def test_torchvision_model_is_analysed() -> None:
    at = _open(_app(), "torchvision zoo", "resnet18")
    assert _metric(at, "Parameters") == "11,689,512"
    assert _metric(at, "MACs") == "1.82 G"


def test_save_design_needs_a_name_and_then_lists_it() -> None:
    at = _app({"user": "Ada"})
    at.text_input(key="save_name").input("my net").run()
    at.button(key="save_btn").click().run()
    assert not at.exception
    assert any("Saved 'my net' for Ada" in shown(s.value) for s in at.success)
    at.selectbox(key="src_group").select("My saved designs").run()
    assert "my net" in at.selectbox(key="src_item_My saved designs").options


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
    at = _open(_app({"user": "Ada"}), "Classic networks", "lenet5")
    at.button(key="to_train").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Train" for t in at.title)
    assert at.session_state["tr_network"] == "__current__"
    assert at.session_state["tr_dataset"] == "digits"  # LeNet-5's own data set
