"""AppTest: the Results tab of an ended run shows what its stored weights do (confusion matrix
summing to the validation set, per-class accuracy, decision boundary or images, filters and
feature maps with the analysis' shapes), only to its owner and the teacher, and says why a
run has no weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.jobs import execute_run
from playground.presets import get_preset
from playground.runs import RunStore, default_db_path
from playground.spec import InputSpec
from playground.targets import analyse_spec
from tests.helpers import shown, with_key

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TEACHER_CODE = "results-chalk"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results_home")


@pytest.fixture(scope="module")
def runs(home: Path) -> dict[str, int]:
    """Three ended runs of Ada's: a point set, an image set, and one over the weights cap."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PLAYGROUND_HOME", str(home))
    mp.setenv("PLAYGROUND_DEVICE", "cpu")
    try:
        store = RunStore(default_db_path())
        points = store.create_run("Ada", "points", get_preset("mlp_points").to_dict(),
                                  {"dataset": "spirals", "steps": 30, "eval_every": 10,
                                   "device": "cpu", "n_train": 256, "n_val": 128})
        images = store.create_run("Ada", "images", _cnn().to_dict(),
                                  {"dataset": "shapes", "steps": 20, "eval_every": 10,
                                   "device": "cpu", "n_train": 256, "n_val": 200})
        assert execute_run(points, store.url) == "finished"
        assert execute_run(images, store.url) == "finished"
        mp.setenv("PLAYGROUND_MAX_CHECKPOINT_MB", "0")
        bare = store.create_run("Ada", "no weights", get_preset("mlp_points").to_dict(),
                                {"dataset": "spirals", "steps": 5, "device": "cpu",
                                 "n_train": 64, "n_val": 32})
        assert execute_run(bare, store.url) == "finished"
    finally:
        mp.undo()
    return {"points": points, "images": images, "bare": bare}


def _cnn():
    return get_preset("small_cnn", input=InputSpec(channels=3, height=16, width=16))


def _open(home: Path, monkeypatch: pytest.MonkeyPatch, run_id: int, user: str = "Ada",
          teacher: bool = False) -> AppTest:
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    monkeypatch.setenv("PLAYGROUND_TEACHER_CODE", TEACHER_CODE)
    app = AppTest.from_file(APP, default_timeout=120)
    for k, v in with_key({"user": user, "run": str(run_id)}).items():
        app.query_params[k] = v
    app.run()
    if teacher:
        app.sidebar.text_input(key="_teacher_box").input(TEACHER_CODE).run()
        app.session_state["tr_whose"] = "all"
    app.session_state["train_tab"] = "Results"
    app.switch_page("pages/train.py").run()
    assert not app.exception, app.exception
    return app


def _figures(app: AppTest) -> dict[str, dict]:
    out = {}
    for chart in app.get("plotly_chart"):
        fig = json.loads(chart.proto.spec)
        out[fig["layout"]["title"]["text"]] = fig
    return out


def _captions(app: AppTest) -> str:
    return " ".join(shown(c.value) for c in app.caption)


def _image_captions(app: AppTest) -> str:
    return " ".join(shown(img.caption) for i in app.get("image") for img in i.proto.imgs)


def test_a_point_set_run_shows_its_confusion_matrix_and_decision_boundary(
        home, runs, monkeypatch) -> None:
    store = RunStore(Path(home) / "runs" / "playground.sqlite")
    run = store.get_run(runs["points"])
    app = _open(home, monkeypatch, run.id)
    figs = _figures(app)
    confusion = figs["Confusion matrix: counts"]["data"][0]
    counts = confusion["customdata"]
    n = sum(map(sum, counts))
    assert n == 128  # the validation set
    acc = run.summary["final_val_acc"]
    assert sum(counts[i][i] for i in range(len(counts))) / n == acc
    assert f"Validation accuracy {acc:.1%} on 128 examples of Spirals, as the run recorded " \
           "it." in _captions(app)
    bars = figs["Accuracy per class"]["data"][0]["y"]
    assert bars == pytest.approx([100 * counts[i][i] / sum(counts[i]) for i in range(2)])
    boundary = figs["Decision boundary (validation points on top)"]["data"]
    assert boundary[0]["type"] == "heatmap" and len(boundary) == 1 + 2  # plane + two classes
    assert sum(len(t["x"]) for t in boundary[1:]) == 128
    # the shares view labels each cell with its row percentage
    app.toggle(key=f"res_norm_{run.id}").set_value(True).run()
    shares = _figures(app)["Confusion matrix: share of each true class"]["data"][0]["text"]
    assert shares[0][0] == f"{100 * counts[0][0] / sum(counts[0]):.0f}%"
    labels = [b.label for b in app.get("download_button")]
    assert "Download weights" in labels


def test_an_image_run_shows_its_mistakes_filters_and_feature_maps(home, runs,
                                                                  monkeypatch) -> None:
    run_id = runs["images"]
    app = _open(home, monkeypatch, run_id)
    assert "Confusion matrix: counts" in _figures(app)
    images = app.get("image")
    # 16 validation images, 32 first-layer filters, the image and its saliency, one mosaic
    assert len(images) == 16 + 32 + 2 + 1
    text = _captions(app)
    assert "validation images are classified wrongly" in text
    assert "The 32 filters of stage1.layer1.conv, in colour" in text
    layers = app.selectbox(key=f"res_layer_{run_id}")
    rows = {r.name: r for r in analyse_spec(_cnn()).rows}
    convs = [name for name, row in rows.items() if row.type == "Conv2d"]
    assert layers.options == convs
    last = convs[-1]
    app.selectbox(key=f"res_layer_{run_id}").set_value(last).run()
    assert not app.exception
    c, h, w = rows[last].out_shape[-3:]
    assert f"Feature maps of {last}: {c} channels of {h}x{w}" in _image_captions(app)
    # another validation image: the page follows it
    app.number_input(key=f"res_index_{run_id}").set_value(5).run()
    assert not app.exception and "true class:" in _image_captions(app)


def test_results_are_for_the_owner_and_the_teacher_only(home, runs, monkeypatch) -> None:
    theirs = _open(home, monkeypatch, runs["points"], user="Bob")
    assert "Confusion matrix: counts" not in _figures(theirs)
    teacher = _open(home, monkeypatch, runs["points"], user="Tess", teacher=True)
    assert "Confusion matrix: counts" in _figures(teacher)


def test_a_run_without_weights_says_why_and_can_still_open_its_design(home, runs,
                                                                      monkeypatch) -> None:
    app = _open(home, monkeypatch, runs["bare"])
    infos = " ".join(shown(i.value) for i in app.info)
    assert "This run has no stored weights: no weights are kept on this server " \
           "(PLAYGROUND_MAX_CHECKPOINT_MB is 0)." in infos
    app.button(key=f"res_open_{runs['bare']}").click().run()
    assert not app.exception
    assert app.session_state["source"] == f"run:{runs['bare']}"
    assert app.session_state["spec"] == get_preset("mlp_points")
