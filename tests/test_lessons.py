"""Lessons: every figure computes fast and tells the truth; the texts' numbers match the
analysis; every link points at something that exists."""

from __future__ import annotations

import math
import re

import pytest

from playground.build import conv_out
from playground.errors import ConfigError
from playground.experiments import EXPERIMENTS
from playground.lessons import (
    LESSONS,
    get_lesson,
    lesson_figure,
    output_size_table,
)
from playground.optim import SCHEDULES, schedule_factor
from playground.presets import PRESETS, get_preset
from playground.targets import analyse_spec


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_every_lesson_is_complete_and_draws_its_figure(lesson_id: str) -> None:
    """Content and figure data; how fast a figure is computed is measured by
    ``benchmarks/lessons.py`` (goal: under 1 s each), never asserted here."""
    lesson = get_lesson(lesson_id)
    assert lesson.title and len(lesson.body) > 400 and lesson.caption and lesson.sources
    assert lesson.preset is None or lesson.preset in PRESETS
    assert lesson.experiment is None or lesson.experiment in EXPERIMENTS
    assert lesson.preset or lesson.experiment
    data = lesson_figure(lesson_id)
    assert isinstance(data, dict) and data
    for control in lesson.controls:
        assert control.default in control.options
        for value in control.options[:: max(1, len(control.options) - 1)]:
            assert lesson_figure(lesson_id, {control.name: value})


def test_bad_control_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="no setting"):
        lesson_figure("gradients", {"width": 3})
    with pytest.raises(ConfigError, match="must be one of"):
        lesson_figure("gradients", {"depth": 1000})


def _line(data: dict, start: str) -> dict:
    return next(x for x in data["lines"] if x["label"].startswith(start))


def test_gradient_figure_sigmoid_vanishes_relu_bn_does_not() -> None:
    data = lesson_figure("gradients")
    sigmoid, relu_bn = _line(data, "sigmoid"), _line(data, "ReLU + batch norm")
    assert len(sigmoid["grad_norm"]) == data["depth"] + 1  # hidden layers + classifier
    assert sigmoid["layers"][-1] == "head.fc"
    assert sigmoid["ratio"] < 1e-3
    assert relu_bn["ratio"] > 1e-2
    deeper = _line(lesson_figure("gradients", {"depth": 20}), "sigmoid")["ratio"]
    assert deeper < sigmoid["ratio"]  # exponential in depth
    # what the text says about 30 layers: He-initialised ReLU stays within a small factor,
    # the deep batch-norm stack's gradient grows towards the input
    deepest = lesson_figure("gradients", {"depth": 30})
    he = _line(deepest, "ReLU (He")["grad_norm"]
    assert max(he) / min(he) < 20
    assert _line(deepest, "ReLU + batch norm")["ratio"] > 20


def test_activation_slopes_match_their_formulas() -> None:
    data = lesson_figure("activations")
    x = data["x"]
    curves = {c["name"]: c for c in data["curves"]}
    assert curves["sigmoid"]["max_slope"] == pytest.approx(0.25)
    assert curves["tanh"]["max_slope"] == pytest.approx(1.0)
    for i in (0, 60, 130, 240):
        s = 1 / (1 + math.exp(-x[i]))
        assert curves["sigmoid"]["slope"][i] == pytest.approx(s * (1 - s), abs=1e-6)
        assert curves["tanh"]["slope"][i] == pytest.approx(1 - math.tanh(x[i]) ** 2, abs=1e-6)
        assert curves["relu"]["slope"][i] == (1.0 if x[i] > 0 else 0.0)


def test_init_figure_only_he_keeps_relu_signals_level() -> None:
    data = lesson_figure("init")
    he = _line(data, "He")["std"]
    assert all(0.5 < s < 2.5 for s in he)
    assert _line(data, "N(0, 0.01")["std"][-1] < 1e-6
    assert _line(data, "N(0, 1)")["std"][-1] > 1e6
    assert _line(data, "Xavier")["std"][-1] < 0.1  # gain 1 loses half the variance per layer


def test_batchnorm_figure_keeps_the_signal_level() -> None:
    data = lesson_figure("batchnorm")
    bn = _line(data, "ReLU + batch norm")["std"]
    plain = _line(data, "ReLU, no")["std"]
    assert len(bn) == len(plain) == data["depth"]
    assert all(0.5 < s < 0.7 for s in bn)  # sqrt((1 - 1/pi) / 2) ~ 0.58 after ReLU
    assert plain[-1] < bn[-1] / 5


def test_residual_figure_plain_explodes_resnet_stays_level() -> None:
    data = lesson_figure("residual")
    plain, res = data["lines"]
    assert plain["spread"] > 100 and res["spread"] < 20
    assert len(plain["grad_norm"]) == len(res["grad_norm"])


def test_clipping_figure_diverges_without_and_learns_with_clipping() -> None:
    data = lesson_figure("clipping")
    unclipped, clipped = data["runs"]
    assert unclipped["status"] == "diverged" and "diverged at step" in unclipped["message"]
    assert clipped["status"] == "finished" and clipped["val_acc"] > 0.9
    assert max(unclipped["grad_norm"]) > 100 * data["clip"]


def test_schedule_curves_follow_the_registry() -> None:
    data = lesson_figure("schedules")
    assert [c["name"] for c in data["curves"]] == list(SCHEDULES)
    curves = {c["name"]: c["lr"] for c in data["curves"]}
    assert set(curves["constant"]) == {data["base_lr"]}
    assert curves["cosine"][0] == pytest.approx(0.1) and curves["cosine"][-1] < 1e-4
    assert curves["step"][150] == pytest.approx(0.1 * schedule_factor("step", 150, 300))
    warm = curves["warmup_cosine"]
    assert warm[0] < warm[10] < warm[19]


def test_every_optimizer_path_reaches_the_valley_floor() -> None:
    data = lesson_figure("optimizers")
    for p in data["paths"]:
        assert len(p["x"]) == data["steps"] + 1
        assert all(math.isfinite(v) for v in p["loss"])
        assert min(p["loss"]) < p["loss"][0] / 100, p["name"]


def test_batch_noise_falls_like_one_over_sqrt_b() -> None:
    data = lesson_figure("batch")
    err = dict(zip(data["sizes"], data["rel_error"], strict=True))
    assert err[512] < err[1] / 10
    assert err[64] == pytest.approx(err[1] / 8, rel=0.5)


def test_output_size_and_receptive_field() -> None:
    rows = {r["layer"].split(" (")[0]: r["output"] for r in output_size_table(32)["rows"]}
    assert rows["3x3 conv, stride 1, padding 1"] == 32
    assert rows["2x2 max-pool, stride 2"] == 16
    assert rows["7x7 conv, stride 2, padding 3"] == 16 == conv_out(32, 7, 2, 3)
    assert output_size_table(1)["rows"][1]["output"] is None  # 3x3 without padding on 1 px
    with pytest.raises(ConfigError):
        output_size_table(0)
    vgg = lesson_figure("shapes")
    assert vgg["final_rf"] == 212 and vgg["rows"][0]["rf"] == 3
    lenet = lesson_figure("shapes", {"preset": "lenet5"})
    assert lenet["final_rf"] == 32  # C5 sees the whole 32x32 input


def test_cost_figure_and_texts_use_the_true_counts() -> None:
    data = lesson_figure("costs")
    by = {m["label"]: m for m in data["models"]}
    assert by["VGG-16"]["params"] == 138_357_544 == analyse_spec(get_preset("vgg16")).num_params
    assert by["ResNet-50"]["params"] == 25_557_032
    assert by["VGG-16"]["linear_params_share"] > 0.85
    assert by["ResNet-50"]["macs"] / by["VGG-16"]["macs"] == pytest.approx(0.27, abs=0.01)
    assert analyse_spec(get_preset("vgg19")).num_params == 143_667_240
    assert by["EfficientNet-B0"]["params"] < by["ResNet-50"]["params"]
    text = " ".join(get_lesson(i).body for i in LESSONS)
    assert "143,667,240" in text and "138,357,544" in text
    assert "Google Brain" in text
    # every exact large count quoted anywhere is one the analysis confirms
    allowed = {"138,357,544", "143,667,240", "25,557,032", "25,088", "4,096", "8,192"}
    assert set(re.findall(r"\d{1,3}(?:,\d{3})+", text)) <= allowed
