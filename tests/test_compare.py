"""Comparison rows, settings and spec diffs, gradient flow and CSV, checked against the analysis
and hand-derived counts."""

from __future__ import annotations

import math

import pytest

from playground.access import SYSTEM
from playground.analysis import training_memory
from playground.compare import (
    COLUMNS,
    compare_row,
    compare_rows,
    design_item,
    gradient_flow,
    preset_item,
    rows_from_csv,
    rows_to_csv,
    run_item,
    settings_diff,
    spec_diff,
    spec_item,
    stage_breakdown,
    zoo_item,
)
from playground.designs import save_design
from playground.errors import PlaygroundError
from playground.presets import get_preset
from playground.runs import RunStore
from playground.spec import StageSpec
from playground.targets import analyse_spec, analyse_zoo, final_receptive_field
from playground.train import TrainSettings


@pytest.fixture()
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "playground.sqlite")


def _finished_run(store: RunStore, title: str, status: str, message: str, **settings) -> int:
    spec = get_preset("small_cnn").to_dict()
    rid = store.create_run("ada", title, spec, TrainSettings(**settings).to_dict())
    store.mark_started(rid)
    store.set_status(rid, status, message, {
        "steps_done": 37, "final_val_acc": 0.5, "best_val_acc": 0.6, "final_loss": 1.25,
        "steps_per_s": 12.5, "wall_s": 3.0, "device": "cpu"})
    return rid


@pytest.mark.parametrize("name", ["vgg16", "small_cnn", "resnet20_cifar", "mlp_points"])
def test_preset_rows_equal_the_analysis(name: str) -> None:
    row = compare_row(preset_item(name), batch_size=16, optimizer="sgd")
    a = analyse_spec(get_preset(name))
    assert set(row) == set(COLUMNS)
    assert row["params"] == a.num_params and row["macs"] == a.macs
    assert row["flops"] == 2 * a.macs and row["depth"] == a.depth
    rf = final_receptive_field(a)
    assert row["receptive_field"] == (max(rf) if rf else None)
    assert row["train_memory"] == training_memory(a, 16, "sgd")["total"]
    assert row["status"] is None and row["kind"] == "preset"


def test_vgg16_and_zoo_resnet50_reference_numbers() -> None:
    vgg, resnet = compare_rows([preset_item("vgg16"), zoo_item("resnet50")])
    assert vgg["params"] == 138_357_544 and vgg["macs"] == 15_470_289_408  # STYLE.md table
    assert vgg["receptive_field"] == 212 and vgg["final_feature_map"] == "512x7x7"
    assert resnet["params"] == 25_557_032 and resnet["macs"] == 4_111_512_576
    assert resnet["input"] == "3x224x224"
    a = analyse_zoo("resnet50", (3, 224, 224), 1000)
    assert resnet["depth"] == a.depth


def test_design_and_spec_items(tmp_path) -> None:
    spec = get_preset("lenet5")
    save_design("ada", "my lenet", spec, path=tmp_path / "d.sqlite", by=SYSTEM)
    row = compare_row(design_item("ada", "my lenet", path=tmp_path / "d.sqlite"))
    assert row["params"] == 61_706 and row["kind"] == "design" and row["item"] == "my lenet"
    assert compare_row(spec_item(spec, "open on Build"))["params"] == 61_706
    with pytest.raises(PlaygroundError):
        design_item("ada", "missing", path=tmp_path / "d.sqlite")
    with pytest.raises(PlaygroundError):
        zoo_item("not_a_model")


def test_run_rows_carry_outcome_and_status_text(store: RunStore) -> None:
    ok = _finished_run(store, "fine", "finished", "finished 37 steps")
    bad = _finished_run(store, "too hot", "diverged",
                        "diverged at step 37: the loss became inf/NaN — exploding gradients")
    rows = compare_rows([run_item(store, ok), run_item(store, bad)])
    assert rows[0]["status"] == "finished" and rows[1]["status"] == "diverged at step 37"
    assert rows[0]["final_val_acc"] == 0.5 and rows[0]["best_val_acc"] == 0.6
    assert rows[0]["steps_per_s"] == 12.5 and rows[0]["wall_s"] == 3.0
    assert rows[0]["params"] == analyse_spec(get_preset("small_cnn")).num_params
    assert rows[1]["item"] == f"#{bad} too hot"


def test_run_with_an_unreadable_spec_still_shows_its_outcome(store: RunStore) -> None:
    rid = store.create_run("ada", "old", {"stages": [{"width": "wide"}]},
                           TrainSettings().to_dict())
    item = run_item(store, rid)
    assert "cannot be read" in item.problem
    row = compare_row(item)
    assert row["params"] is None and row["status"] == "queued"


def test_settings_diff_names_only_what_differs() -> None:
    a = TrainSettings(lr=0.1, optimizer="sgd").to_dict()
    b = TrainSettings(lr=0.01, optimizer="sgd", clip_norm=1.0).to_dict()
    c = {k: v for k, v in a.items() if k != "clip_norm"}  # a stored run lacking a field
    assert settings_diff([a, b]) == {"lr": [0.1, 0.01], "clip_norm": [None, 1.0]}
    assert settings_diff([a, c]) == {}
    d = TrainSettings(schedule="step", schedule_params={"step_size": 10}).to_dict()
    e = TrainSettings(schedule="step", schedule_params={"step_size": 20}).to_dict()
    assert list(settings_diff([d, e])) == ["schedule_params"]
    assert settings_diff([a]) == {}


def test_spec_diff_of_vgg11_and_vgg13_names_the_changed_stages() -> None:
    before, after = get_preset("vgg11"), get_preset("vgg13")
    diff = spec_diff(before, after)
    assert diff.changed_stages == ["stage1", "stage2"]
    assert diff.general == {}
    s1 = diff.stages[0]
    assert s1.fields == {"depth": (1, 2)}
    # hand-derived: 3x3 conv 3->64 with bias, then 64->64
    assert s1.params_before == 3 * 64 * 9 + 64
    assert s1.params_after == 3 * 64 * 9 + 64 + 64 * 64 * 9 + 64
    assert s1.out_before == s1.out_after == (64, 112, 112)
    assert s1.macs_after == analyse_spec(after).macs_by_module["stage1"]
    assert "depth 1 -> 2" in s1.summary()
    same = diff.stages[2]
    assert same.change == "same" and not same.effect and same.summary() == "unchanged"
    a, b = analyse_spec(before), analyse_spec(after)
    assert diff.totals == {"params": (a.num_params, b.num_params), "macs": (a.macs, b.macs)}
    assert [r["stage"] for r in diff.to_rows()] == [f"stage {i}" for i in range(1, 6)] + ["head"]


def test_spec_diff_added_stage_defaults_and_knock_on_effects() -> None:
    small = get_preset("small_cnn")
    bigger = small.with_stages([*small.stages, StageSpec(width=128)])
    diff = spec_diff(small, bigger)
    assert [s.change for s in diff.stages] == ["same", "same", "added", "same"]
    assert diff.stages[2].params_before is None and diff.stages[2].params_after > 0
    # the head's settings are the same but its input grew: numbers change, settings do not
    assert diff.stages[3].effect and diff.stages[3].summary().startswith("same settings")
    fix = spec_diff(get_preset("deep_sigmoid_cnn"), get_preset("deep_relu_bn_cnn"))
    assert fix.general["defaults.activation"] == ("sigmoid", "relu")
    assert fix.stages[0].fields["activation"] == ("sigmoid", "relu")
    assert fix.stages[0].fields["norm"] == ("none", "batch")
    plain = spec_diff(get_preset("plain20_cifar"), get_preset("resnet20_cifar"))
    assert plain.changed_stages == ["stage1", "stage2", "stage3"]
    assert plain.stages[1].fields["residual"] == (False, True)
    assert plain.totals["params"][0] == plain.totals["params"][1]  # option-A shortcuts: free


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "lenet5"])
def test_stage_breakdown_adds_up(name: str) -> None:
    a = analyse_spec(get_preset(name))
    parts = stage_breakdown(a)
    assert sum(p["params"] for p in parts) == a.num_params
    assert sum(p["macs"] for p in parts) == a.macs
    assert parts[-1]["name"] == "head"


def test_stage_breakdown_of_a_torchvision_model() -> None:
    a = analyse_zoo("resnet18", (3, 224, 224), 1000)
    parts = stage_breakdown(a)
    assert [p["name"] for p in parts][:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert sum(p["params"] for p in parts) == 11_689_512


def test_gradient_flow_at_a_step_and_over_a_window() -> None:
    series = {"steps": [1, 2, 3, 5], "values": [[1.0, 10.0], [4.0, 10.0], [16.0, math.nan],
                                                [2.0, 0.0]]}
    step, values = gradient_flow(series)
    assert step == 5 and values[0] == 2.0 and math.isnan(values[1])  # 0 is not drawable
    step, values = gradient_flow(series, step=4)
    assert step == 3 and values[0] == 16.0 and math.isnan(values[1])
    step, values = gradient_flow(series, step=3, window=3)
    assert step == 3
    assert values[0] == pytest.approx(4.0)  # geometric mean of 1, 4, 16
    assert values[1] == pytest.approx(10.0)  # NaN skipped
    assert gradient_flow(series, step=0) == (None, [])
    assert gradient_flow({}) == (None, [])


def test_csv_round_trip() -> None:
    rows = compare_rows([preset_item("vgg16"), preset_item("small_cnn")])
    rows[1]["final_val_acc"] = 0.8125
    text = rows_to_csv(rows)
    assert text.splitlines()[0].startswith("item,kind,input")
    assert rows_from_csv(text) == rows
