"""Presets against torchvision and fvcore; every registry entry built, analysed and run; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from fvcore.nn import FlopCountAnalysis

from playground.analysis import analyse_module
from playground.build import build_model
from playground.cli import main
from playground.layers import ACTIVATIONS, INITS, NORMS
from playground.presets import PRESETS, get_preset
from playground.spec import Defaults, NetworkSpec, PoolSpec, StageSpec
from playground.targets import analyse_spec, final_receptive_field
from playground.zoo import list_zoo, zoo_input_problem, zoo_names

ROOT = Path(__file__).resolve().parents[1]
TV = [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")] + [
    f"resnet{d}" for d in (18, 34, 50, 101, 152)
]
STYLE_MACS = {  # ../shared/STYLE.md, torchvision 0.29.1, fvcore
    "vgg11": 7_609_115_136, "vgg16": 15_470_289_408, "vgg19": 19_632_087_552,
    "resnet18": 1_819_065_856, "resnet34": 3_671_262_720, "resnet50": 4_111_512_576,
}


@pytest.mark.parametrize("name", TV)
def test_preset_macs_equal_torchvision_model(name: str) -> None:
    with torch.device("meta"):
        ref = torchvision.models.get_model(name, weights=None)
    ours = analyse_spec(get_preset(name))
    theirs = analyse_module(ref, (3, 224, 224))
    assert ours.macs == theirs.macs
    assert ours.num_params == theirs.num_params
    if name in STYLE_MACS:
        assert ours.macs == STYLE_MACS[name]


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn"])
def test_preset_macs_equal_fvcore_directly(name: str) -> None:
    spec = get_preset(name, num_classes=10)
    model = build_model(spec).eval()
    fv = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
    fv.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    ours = analyse_spec(spec)
    assert ours.macs == fv.total()
    by_module = fv.by_module()
    for stage in ("stage1", "stage2", "head"):
        assert ours.macs_by_module[stage] == by_module[stage]


def test_lenet5_reference_and_receptive_fields() -> None:
    lenet = analyse_spec(get_preset("lenet5"))
    assert (lenet.num_params, lenet.macs) == (61_706, 416_520)
    assert final_receptive_field(lenet) == (32, 32)  # C5 sees the whole 32x32 input
    rows = {r.name: r for r in analyse_spec(get_preset("vgg16")).rows}
    assert rows["stage5.pool"].rf == (212, 212)
    # a residual net and its plain twin see the same window
    res = final_receptive_field(analyse_spec(get_preset("resnet20_cifar")))
    plain = final_receptive_field(analyse_spec(get_preset("plain20_cifar")))
    assert res == plain


@pytest.mark.parametrize("name", PRESETS.names())
def test_forward_shape_equals_analysed_shape(name: str) -> None:
    spec = get_preset(name)
    if spec.input.height > 64:  # keep real forwards fast: shrink 224 inputs to 64
        spec = spec.model_copy(update={"input": spec.input.model_copy(
            update={"height": 64, "width": 64})})
    model = build_model(spec).eval()
    out = model(torch.zeros(2, *spec.input.shape))
    analysis = analyse_spec(spec)
    assert tuple(out.shape[1:]) == analysis.final_shape == (spec.num_classes,)


def _tiny(**defaults: object) -> NetworkSpec:
    return NetworkSpec(
        stages=(StageSpec(width=8, pool=PoolSpec(kind="max")),
                StageSpec(block="basic", width=16, stride=2),
                StageSpec(block="linear", width=12)),
        defaults=Defaults(**{"norm_groups": 4, **defaults}),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "field,name",
    [("activation", n) for n in ACTIVATIONS.names()]
    + [("norm", n) for n in NORMS.names()]
    + [("init", n) for n in INITS.names()],
)
def test_every_registry_entry_builds_analyses_and_trains_a_step(field: str, name: str) -> None:
    spec = _tiny(**{field: name})
    torch.manual_seed(0)
    model = build_model(spec)
    x = torch.randn(4, *spec.input.shape)
    out = model(x)
    assert tuple(out.shape) == (4, spec.num_classes)
    assert analyse_spec(spec).final_shape == (spec.num_classes,)
    loss = torch.nn.functional.cross_entropy(out, torch.arange(4) % spec.num_classes)
    loss.backward()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    opt.step()
    assert torch.isfinite(loss)


def test_zoo_lists_required_families() -> None:
    names = set(zoo_names())
    required = {f"efficientnet_b{i}" for i in range(8)} | {
        "resnet50", "vgg19", "mobilenet_v3_small", "mobilenet_v3_large", "convnext_tiny",
        "vit_b_16", "swin_t"}
    assert required <= names


def test_zoo_offers_every_classification_model_with_its_input_size() -> None:
    """Every model torchvision lists, once, grouped, at the size its weights were evaluated at
    (torchvision's model table: Inception-v3 299, EfficientNet-B3 300, Swin-V2 256)."""
    listed = list_zoo()
    assert [m.name for m in listed] == zoo_names()
    assert sorted(zoo_names()) == sorted(torchvision.models.list_models(module=torchvision.models))
    by_name = {m.name: m for m in listed}
    sizes = {"inception_v3": 299, "googlenet": 224, "maxvit_t": 224, "regnet_y_400mf": 224,
             "regnet_x_32gf": 224, "efficientnet_b3": 300, "efficientnet_v2_s": 384,
             "swin_v2_t": 256, "vit_h_14": 224, "resnet50": 224, "alexnet": 224}
    for name, side in sizes.items():
        assert by_name[name].input_shape == (3, side, side), name
    groups = {m.group for m in listed}
    assert {"RegNet", "GoogLeNet / Inception", "MaxViT", "DenseNet"} <= groups
    for m in listed:
        assert m.name in m.label and m.group in m.label
        assert zoo_input_problem(m.name, m.input_shape) is None, m.name
    assert "auxiliary" in by_name["googlenet"].note and "auxiliary" in by_name["inception_v3"].note
    assert zoo_input_problem("inception_v3", (3, 74, 74)) is not None  # torchvision's min_size 75
    assert zoo_input_problem("inception_v3", (3, 75, 75)) is None
    assert "224x224" in str(zoo_input_problem("maxvit_t", (3, 256, 256)))


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_presets_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in data}
    assert set(by_name) == set(PRESETS.names())
    assert by_name["vgg16"]["num_params"] == 138_357_544


def test_cli_analyse_table_csv_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyse", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "61,706" in out and "416,520" in out and "stage3.layer1.conv" in out
    assert main(["analyse", "resnet18", "--input", "3x64x64", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("#,layer,type,output,params,MACs")
    assert main(["analyse", "resnet18", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == 1_819_065_856
    assert main(["analyse", "vgg16", "--explain", "stage1.layer1.conv"]) == 0
    assert "3·3·3·64 + 64 = 1,792" in capsys.readouterr().out


def test_cli_bare_name_is_the_preset_and_tv_prefix_torchvision(
        capsys: pytest.CaptureFixture[str]) -> None:
    """vgg16 is both a preset and a torchvision model: the bare name keeps meaning the preset
    (layer names stage1...), ``tv:vgg16`` analyses torchvision's (features.0...), and the first
    line says which one it was."""
    assert main(["analyse", "vgg16"]) == 0
    preset = capsys.readouterr().out
    first = "vgg16 (playground preset; use tv:vgg16 for torchvision's model)"
    assert preset.splitlines()[0] == first
    assert "stage1.layer1.conv" in preset and "features.0" not in preset
    assert main(["analyse", "preset:vgg16"]) == 0
    assert capsys.readouterr().out == preset

    assert main(["analyse", "tv:vgg16"]) == 0
    tv = capsys.readouterr().out
    first = "vgg16 (torchvision model; use preset:vgg16 for the playground preset)"
    assert tv.splitlines()[0] == first
    assert "features.0" in tv and "stage1.layer1.conv" not in tv
    assert "138,357,544" in tv and "15,470,289,408" in tv  # STYLE.md's reference numbers

    assert main(["analyse", "torchvision:resnet18", "--input", "3x64x64", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"].startswith("resnet18 (torchvision model")
    assert data["rows"][0]["name"] == "conv1"
    assert main(["analyse", "resnet18", "--input", "3x64x64", "--format", "csv"]) == 0
    out = capsys.readouterr()
    assert "analysed: resnet18 (playground preset" in out.err and "stem.conv" in out.out


def test_cli_analyses_inception_v3_at_299(capsys: pytest.CaptureFixture[str]) -> None:
    """``analyse tv:inception_v3`` at its own 299x299 input: torchvision's parameter count
    without the auxiliary classifier, and fvcore's MACs at 299x299 (fvcore is compared at a
    smaller input in test_analysis.py; 5,731,282,144 is its total here)."""
    assert main(["analyse", "tv:inception_v3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [3, 299, 299]
    assert data["source"] == ("inception_v3 (torchvision model; without its auxiliary "
                              "classifier, which runs only in training)")
    with torch.device("meta"):
        ref = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    assert data["num_params"] == sum(p.numel() for p in ref.parameters()) == 23_834_568
    assert data["macs"] == 5_731_282_144


def test_cli_analyse_spec_file_and_export_round_trip(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "net.yaml"
    assert main(["export", "resnet20_cifar", "--format", "yaml", "-o", str(path)]) == 0
    assert main(["analyse", str(path), "--format", "json"]) == 0
    capsys.readouterr()
    code = tmp_path / "net.py"
    assert main(["export", str(path), "--format", "pytorch", "-o", str(code)]) == 0
    assert "class Net(nn.Module)" in code.read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["analyse", "nope"], "is not a preset, a torchvision model or a spec file"),
        (["analyse", "vgg16", "--input", "3x224"], "must be three positive numbers"),
        (["analyse", "vit_b_16", "--input", "3x64x64"], "only accepts 224x224"),
        (["analyse", "missing.yaml"], "no such file"),
        (["export", "resnet50_tv_does_not_exist"], "is not a preset"),
        (["export", "swin_t"], "is a torchvision model"),
        (["export", "tv:vgg16"], "is a torchvision model"),
        (["analyse", "tv:small_cnn"], "'small_cnn' is not a torchvision classification model"),
        (["analyse", "preset:resnet50_tv"], "unknown preset 'resnet50_tv'"),
        (["analyse", "tv:inception_v3", "--input", "3x64x64"], "at least 75x75"),
        (["analyse", "lenet5", "--input", "1x8x8"], "smaller than the 5x5 kernel"),
        (["analyse", "lenet5", "--explain", "nope"], "no layer named 'nope'"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_cli_bad_file_in_subprocess_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{broken")
    out = subprocess.run([sys.executable, "-m", "playground", "analyse", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert out.stderr.startswith("error: this is not valid JSON")
    assert "Traceback" not in out.stderr


def test_cli_train_records_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``train --preset NAME`` (the form the issue shows) trains on the preset's own data set,
    prints a summary and leaves the run, with every step's loss, in the run store."""
    from playground.runs import RunStore

    monkeypatch.setenv("PLAYGROUND_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PLAYGROUND_WORKERS", "1")
    assert main(["train", "--preset", "deep_relu_bn_mlp", "--steps", "30", "--seed", "1"]) == 0
    out = capsys.readouterr()
    assert "finished 30 steps" in out.out and "validation accuracy" in out.out
    store = RunStore()
    [run] = store.list_runs(owner="cli")
    assert run.status == "finished" and run.settings["dataset"] == "digits"
    assert run.title == "deep_relu_bn_mlp on digits"
    loss = store.get_metrics(run.id, ["loss"])["loss"]
    assert loss["steps"] == list(range(1, 31))
    assert sum(loss["values"][-5:]) < sum(loss["values"][:5])


def test_cli_train_diverges_with_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A ReLU MLP without normalisation and SGD at lr 50: the run diverges, the CLI says so
    in its summary and exits 1; the store keeps the steps before."""
    from playground.runs import RunStore
    from playground.spec import Defaults, HeadSpec, InputSpec, NetworkSpec, StageSpec

    monkeypatch.setenv("PLAYGROUND_RUN_DIR", str(tmp_path / "runs"))
    spec = NetworkSpec(input=InputSpec(channels=1, height=16, width=16), num_classes=10,
                       stages=(StageSpec(block="linear", depth=3, width=64),),
                       defaults=Defaults(activation="relu", norm="none"),
                       head=HeadSpec(pool="flatten"))
    path = tmp_path / "relu.json"
    path.write_text(spec.to_json())
    argv = ["train", "--spec", str(path), "--dataset", "digits", "--optimizer", "sgd",
            "--lr", "50", "--steps", "60"]
    assert main(argv) == 1
    assert "diverged at step" in capsys.readouterr().out
    [run] = RunStore().list_runs(owner="cli")
    bad = int(run.message.split()[3].rstrip(":"))
    assert run.status == "diverged"
    assert RunStore().get_metrics(run.id, ["loss"])["loss"]["steps"] == list(range(1, bad))


@pytest.mark.parametrize(
    "argv,message",
    [(["train"], "give a preset name"),
     (["analyse", "lenet5", "--preset", "vgg11"], "two targets given")],
)
def test_cli_target_missing_or_twice(argv: list[str], message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
