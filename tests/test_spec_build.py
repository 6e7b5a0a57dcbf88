"""Spec round trips, validation messages, builder shapes and names, against real forward passes."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.build import build_model, check, conv_out, plan_network, validate
from playground.errors import ConfigError, SpecError
from playground.layers import ACTIVATIONS, INITS, NORMS
from playground.presets import PRESETS, get_preset, list_presets
from playground.spec import (
    HeadSpec,
    InputSpec,
    NetworkSpec,
    PoolSpec,
    StageSpec,
    spec_from_dict,
    spec_from_json,
    spec_from_text,
    spec_from_yaml,
)
from playground.targets import analyse_spec

SMALL_PRESETS = [p.name for p in list_presets() if p.spec().input.height <= 32]


@pytest.mark.parametrize("name", PRESETS.names())
def test_json_and_yaml_round_trip(name: str) -> None:
    spec = get_preset(name)
    assert spec_from_json(spec.to_json()) == spec
    assert spec_from_yaml(spec.to_yaml()) == spec
    assert spec_from_text(spec.to_yaml(), "x.yml").spec_hash() == spec.spec_hash()


@pytest.mark.parametrize("name", SMALL_PRESETS)
def test_forward_shape_matches_plan_on_cpu(name: str) -> None:
    spec = get_preset(name)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    seen: dict[str, tuple[int, ...]] = {}

    def hook(name: str):
        def record(mod, inputs, output) -> None:
            seen[name] = tuple(output.shape[1:])

        return record

    hooks = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    out = model(torch.randn(2, *spec.input.shape))
    for h in hooks:
        h.remove()
    assert out.shape == (2, spec.num_classes)
    plan = plan_network(spec)
    assert plan.out_shape == (spec.num_classes,)
    # every planned layer exists under its name and produced the planned shape
    for entry in plan.entries:
        assert seen[entry.name] == entry.out_shape, entry.name


@pytest.mark.parametrize("name", PRESETS.names())
def test_every_preset_builds_on_meta_with_classes(name: str) -> None:
    spec = get_preset(name, num_classes=7)
    out = build_model(spec, device="meta").eval()(torch.zeros(1, *spec.input.shape, device="meta"))
    assert tuple(out.shape) == (1, 7)


@pytest.mark.parametrize(
    "preset,tv_name",
    [(f"vgg{d}{bn}", f"vgg{d}{bn}") for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    + [(f"resnet{d}", f"resnet{d}") for d in (18, 34, 50, 101, 152)],
)
def test_param_counts_equal_torchvision(preset: str, tv_name: str) -> None:
    ours = build_model(get_preset(preset), device="meta")
    with torch.device("meta"):
        ref = torchvision.models.get_model(tv_name, weights=None)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_reference_numbers_from_style_guide() -> None:
    def count(name: str) -> int:
        return sum(p.numel() for p in build_model(get_preset(name), device="meta").parameters())

    assert count("vgg16") == 138_357_544
    assert count("vgg19") == 143_667_240
    assert count("resnet50") == 25_557_032
    assert count("lenet5") == 61_706
    # He et al. 2016, Table 6: 0.27 M, 0.46 M, 0.85 M with option-A shortcuts
    assert count("resnet20_cifar") == 269_722
    assert round(count("resnet32_cifar") / 1e6, 2) == 0.46
    assert round(count("resnet56_cifar") / 1e6, 2) == 0.85


def test_module_names_map_back_to_the_spec() -> None:
    names = {n for n, _ in build_model(get_preset("resnet18"), device="meta").named_modules()}
    for expected in ("stem.conv", "stage2.block1.conv2", "stage2.block1.shortcut.conv",
                     "stage1.block2.act2", "head.fc", "head.pool"):
        assert expected in names
    vgg = {n for n, _ in build_model(get_preset("vgg16"), device="meta").named_modules()}
    assert {"stage5.layer3.conv", "stage5.pool", "head.fc1", "head.drop2", "head.fc"} <= vgg


def test_conv_out_formula() -> None:
    # floor((i + 2p - d(k-1) - 1)/s) + 1 against a real convolution
    for i, k, s, p in [(224, 7, 2, 3), (32, 3, 1, 1), (7, 3, 2, 0), (5, 5, 1, 0)]:
        real = torch.nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, i, i)).shape[-1]
        assert conv_out(i, k, s, p) == real


# -- validation messages -------------------------------------------------------------------
def _one_problem(spec: NetworkSpec) -> str:
    problems = validate(spec)
    assert problems, "expected a problem"
    return str(problems[0])


def test_pool_on_tiny_map_names_stage_and_layer() -> None:
    pool = PoolSpec(kind="max", kernel=2)
    spec = NetworkSpec(
        input=InputSpec(channels=3, height=16, width=16),
        stages=tuple(StageSpec(width=8, pool=pool) for _ in range(5)),
    )
    text = _one_problem(spec)
    assert text.startswith("stage 5, pool (max-pool 2x2)")
    assert "1x1" in text and "smaller than the 2x2 kernel" in text
    assert "lower a stride" in text
    assert validate(spec)[0].stage == 4


def test_kernel_larger_than_padded_input() -> None:
    spec = NetworkSpec(input=InputSpec(channels=1, height=4, width=4),
                       stages=(StageSpec(width=4, kernel=7, padding=0),))
    text = _one_problem(spec)
    assert "stage 1, layer 1 (conv 7x7)" in text and "4x4" in text


def test_every_problem_is_reported_at_once() -> None:
    data = {
        "stages": [
            {"width": 0},
            {"activation": "relu6"},
            {"depth": -1, "norm": "bogus"},
        ],
        "num_classes": 0,
    }
    with pytest.raises(SpecError) as err:
        spec_from_dict(data)
    problems = err.value.problems
    text = " | ".join(str(p) for p in problems)
    assert len(problems) == 5
    assert "stage 1: width must be at least 1; got 0" in text
    assert "stage 2: unknown activation 'relu6'" in text
    assert "stage 3: depth must be at least 1; got -1" in text
    assert "unknown normalisation 'bogus'" in text
    assert "network: num_classes must be at least 1" in text
    assert [p.stage for p in problems] == [None, 0, 1, 2, 2]
    # the same problems for a spec made without validation (as the editor makes them)
    edited = NetworkSpec().model_copy(update={"num_classes": 0, "stages": (
        StageSpec().model_copy(update={"width": 0}),
        StageSpec().model_copy(update={"activation": "relu6"}),
        StageSpec().model_copy(update={"depth": -1, "norm": "bogus"}))})
    assert [str(p) for p in validate(edited)] == [str(p) for p in problems]
    with pytest.raises(SpecError) as err2:
        check(edited)
    assert len(err2.value.problems) == len(problems)


def test_group_norm_groups_must_divide_width() -> None:
    spec = NetworkSpec(stages=(StageSpec(width=30, norm="group"),))
    assert "group norm with 32 groups cannot split 30 channels" in _one_problem(spec)


def test_impossible_residual_shape() -> None:
    spec = NetworkSpec(stages=(StageSpec(block="basic", width=16, padding=0),))
    text = _one_problem(spec)
    assert "residual cannot add up" in text and "stage 1, block 1" in text


def test_conv_after_linear_stage() -> None:
    spec = NetworkSpec(stages=(StageSpec(block="linear", width=8), StageSpec(width=8)))
    assert "put conv stages before linear stages" in _one_problem(spec)


def test_type_errors_become_plain_problems() -> None:
    with pytest.raises(SpecError) as err:
        spec_from_dict({"stages": [{"width": "wide", "block": "dense"}], "colour": 1})
    text = str(err.value)
    assert "stage 1: width must be a whole number; got 'wide'" in text
    assert "stage 1: block must be one of" in text
    assert "network: colour is not a known field" in text
    assert {p.stage for p in err.value.problems} >= {0}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "a: [", "just a string", ""])
def test_unreadable_files_raise_project_errors(text: str) -> None:
    with pytest.raises((ConfigError, SpecError)):
        spec_from_text(text, "spec.json" if text.startswith("{") else "spec.yaml")


def test_yaml_is_loaded_safely() -> None:
    with pytest.raises((ConfigError, SpecError)):
        spec_from_yaml("!!python/object/apply:os.system ['echo pwned']")


def test_build_raises_spec_error_not_torch_error() -> None:
    spec = NetworkSpec(input=InputSpec(channels=3, height=2, width=2),
                       stages=(StageSpec(width=8, pool=PoolSpec(kind="max", kernel=4)),))
    with pytest.raises(SpecError):
        build_model(spec)


def test_stage_inherits_defaults_and_overrides() -> None:
    spec = get_preset("small_cnn").with_stage(1, activation="tanh", norm="none")
    model = build_model(spec)
    assert isinstance(model.stage1.layer1.act, torch.nn.ReLU)
    assert isinstance(model.stage2.layer1.act, torch.nn.Tanh)
    assert not hasattr(model.stage2.layer1, "norm")


# -- property test -------------------------------------------------------------------------
_names = st.sampled_from
_pool = st.one_of(
    st.none(),
    st.builds(PoolSpec, kind=_names(["none", "max", "avg"]), kernel=st.integers(1, 4),
              stride=st.integers(1, 3) | st.none(), padding=st.integers(0, 2)),
)
_stage = st.builds(
    StageSpec.model_construct,  # unvalidated, as the editor makes them: validate() must catch
    block=_names(["conv", "basic", "bottleneck", "linear"]),
    depth=st.integers(1, 3),
    width=st.integers(1, 24),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 3),
    padding=st.one_of(st.just("same"), st.integers(0, 3)),
    pool=_pool,
    activation=st.one_of(st.none(), _names([*ACTIVATIONS.names(), "nope"])),
    norm=st.one_of(st.none(), _names(NORMS.names())),
    init=st.one_of(st.none(), _names(INITS.names())),
    dropout=st.one_of(st.none(), st.floats(0, 0.9)),
    residual=st.one_of(st.none(), st.booleans()),
    shortcut=_names(["projection", "pad"]),
    expansion=st.integers(1, 4),
)
_spec = st.builds(
    NetworkSpec,
    input=st.builds(InputSpec, channels=st.integers(1, 4), height=st.integers(1, 40),
                    width=st.integers(1, 40)),
    num_classes=st.integers(1, 12),
    stages=st.lists(_stage, min_size=1, max_size=4).map(tuple),
    head=st.builds(
        HeadSpec,
        pool=_names(["avg", "max", "adaptive_avg", "adaptive_max", "flatten"]),
        pool_size=st.integers(1, 3),
        hidden=st.lists(st.integers(1, 16), max_size=2).map(tuple),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spec)
def test_any_spec_builds_cleanly_or_names_a_layer(spec: NetworkSpec) -> None:
    try:
        model = build_model(spec, device="meta")
    except SpecError as err:
        assert err.problems
        for p in err.problems:
            assert p.where and p.message
            assert p.where.split(",")[0].split(" ")[0] in {
                "stage", "stem", "head", "input", "defaults", "network"}
        return
    out = model.eval()(torch.zeros(2, *spec.input.shape, device="meta"))
    assert tuple(out.shape) == (2, spec.num_classes)
    assert plan_network(spec).out_shape == (spec.num_classes,)
    analysis = analyse_spec(spec)
    assert analysis.final_shape == (spec.num_classes,)
    assert sum(r.macs for r in analysis.rows) == analysis.macs
    json.loads(spec.to_json())


def test_plan_names_are_module_names_for_every_block_kind() -> None:
    spec = NetworkSpec(
        stem=None,
        stages=(StageSpec(width=8, residual=True, stride=2),
                StageSpec(block="bottleneck", width=4, stride=2),
                StageSpec(block="basic", width=24, shortcut="pad", stride=2),
                StageSpec(block="linear", width=12, residual=True, depth=2)),
        defaults=spec_from_dict({}).defaults.model_copy(update={"dropout": 0.1}),
        head=HeadSpec(hidden=(7,), dropout=0.2),
    )
    modules = {n for n, _ in build_model(spec, device="meta").named_modules()}
    planned = {e.name for e in plan_network(spec).entries}
    assert planned <= modules, planned - modules
