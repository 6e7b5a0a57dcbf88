"""Exported PyTorch code rebuilds the same network; share links round-trip and fail cleanly."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from playground.build import build_model
from playground.errors import ConfigError
from playground.export import EXPORTERS, to_pytorch_code
from playground.presets import PRESETS, get_preset
from playground.share import decode_spec, decode_state, encode_spec, encode_state


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", PRESETS.names())
def test_exported_code_has_same_params_and_names(name: str, tmp_path: Path) -> None:
    spec = get_preset(name)
    path = tmp_path / f"{name}.py"
    path.write_text(to_pytorch_code(spec))
    with torch.device("meta"):
        net = _load(path).Net()
    ours = build_model(spec, device="meta")
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ours.parameters())
    assert [n for n, _ in net.named_modules()] == [n for n, _ in ours.named_modules()]


@pytest.mark.parametrize("name", ["small_cnn", "resnet20_cifar", "lenet5", "deep_relu_bn_mlp"])
def test_exported_code_computes_the_same_function(name: str, tmp_path: Path) -> None:
    spec = get_preset(name)
    path = tmp_path / "net.py"
    path.write_text(to_pytorch_code(spec))
    torch.manual_seed(0)
    ours = build_model(spec).eval()
    theirs = _load(path).Net().eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, *spec.input.shape)
    torch.testing.assert_close(theirs(x), ours(x))


def test_exported_file_runs_standalone(tmp_path: Path) -> None:
    path = tmp_path / "lenet.py"
    path.write_text(to_pytorch_code(get_preset("lenet5")))
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True)
    assert "61,706 parameters; output shape (2, 10)" in out.stdout
    assert "playground" not in path.read_text().split('"""', 2)[2]  # no project imports


def test_exported_code_applies_the_spec_init(tmp_path: Path) -> None:
    spec = get_preset("small_cnn").model_copy(
        update={"defaults": get_preset("small_cnn").defaults.model_copy(update={"init": "zeros"})}
    )
    path = tmp_path / "z.py"
    path.write_text(to_pytorch_code(spec))
    net = _load(path).Net()
    assert float(net.stage1.layer1.conv.weight.detach().abs().sum()) == 0.0


def test_exporters_registry_covers_formats() -> None:
    spec = get_preset("vgg11")
    for fmt, (fn, ext, _mime) in EXPORTERS.items():
        text = fn(spec)
        assert text and ext.startswith(".")
        if fmt in {"json", "yaml"}:
            assert "stages" in text


@pytest.mark.parametrize("name", PRESETS.names())
def test_share_link_round_trip(name: str) -> None:
    spec = get_preset(name)
    link = encode_spec(spec)
    assert link.startswith("v1.") and len(link) < 2000
    assert decode_spec(link) == spec


@pytest.mark.parametrize(
    "link",
    ["", "v2.abc", "v1.!!!!", "v1." + "A" * 9000, encode_state({"x": 1})[:-6], "v1.eJwDAAAAAAE"],
)
def test_broken_links_give_config_errors(link: str) -> None:
    with pytest.raises(ConfigError):
        decode_spec(link)


def test_zip_bomb_link_is_refused() -> None:
    import base64
    import zlib

    bomb = base64.urlsafe_b64encode(zlib.compress(b"[" * 5_000_000, 9)).rstrip(b"=").decode()
    with pytest.raises(ConfigError):
        decode_state("v1." + bomb)


def test_link_with_invalid_design_names_the_problem() -> None:
    link = encode_state({"stages": [{"width": -3}]})
    with pytest.raises(ConfigError, match="stage 1"):
        decode_spec(link)
