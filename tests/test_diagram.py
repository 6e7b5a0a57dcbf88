"""The architecture diagram: geometry from the analysis, checked against independent facts
(torchvision's own forward pass, the spec's residual flags, the analysis totals)."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest
import torch
import torchvision
from torch import nn

from playground.build import build_model
from playground.diagram import (
    MAX_HEIGHT,
    MIN_HEIGHT,
    build_diagram,
    diagram_scale,
    main_row,
    to_svg,
    unit_key,
)
from playground.presets import get_preset, list_presets
from playground.targets import analyse_spec


def _diagram(name: str, **kw):  # type: ignore[no-untyped-def]
    analysis = analyse_spec(get_preset(name))
    return analysis, build_diagram(analysis, **kw)


@pytest.mark.parametrize("preset", [p.name for p in list_presets()])
def test_every_row_lands_in_exactly_one_box_and_totals_agree(preset: str) -> None:
    analysis, diagram = _diagram(preset)
    rows = [i for box in diagram.boxes for i in box.rows]
    assert sorted(rows) == list(range(len(analysis.rows)))  # each row once
    assert sum(b.params for b in diagram.boxes) == analysis.num_params
    assert sum(b.macs for b in diagram.boxes) == analysis.macs
    assert diagram.boxes[0].key == "input"
    assert diagram.boxes[-1].shape == tuple(analysis.final_shape)
    xs = [b.x for b in diagram.boxes]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # left to right, no overlap


def _units_of_model(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The boxes the module doc promises, read off the model as built (not the analysis): the
    stem (its output before its pool) and its pool, every layer/block and pool of each stage
    (a flatten is no box), the head's pool and each of its linear layers."""
    out: list[tuple[str, nn.Module]] = []
    for name, part in model.named_children():
        children = list(part.named_children())
        if name == "stem":
            out.append(("stem", [m for n, m in children if n != "pool"][-1]))
            out += [("stem.pool", m) for n, m in children if n == "pool"]
        elif name == "head":
            out += [(f"head.{n}", m) for n, m in children
                    if isinstance(m, nn.Linear) or "Pool" in type(m).__name__]
        else:
            out += [(f"{name}.{n}", m) for n, m in children if not isinstance(m, nn.Flatten)]
    return out


@pytest.mark.parametrize("preset", [p.name for p in list_presets()])
def test_one_box_per_layer_or_block_of_every_preset_in_order_with_real_shapes(
        preset: str) -> None:
    """The oracle: the model's own modules, and the shapes PyTorch computes for them in a
    forward pass (on the meta device: shapes without arithmetic)."""
    spec = get_preset(preset)
    model = build_model(spec, device="meta").eval()
    units = _units_of_model(model)
    seen: dict[str, tuple[int, ...]] = {}

    def record(key: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            seen.setdefault(key, tuple(output.shape[1:]))  # first call: the unit's output
        return hook

    for key, module in units:
        module.register_forward_hook(record(key))
    with torch.no_grad():
        model(torch.zeros(1, *spec.input.shape, device="meta"))
    _, every = _diagram(preset, max_blocks=10**6)  # no stage collapsed
    assert every.boxes[0].shape == tuple(spec.input.shape)
    assert [(b.key, b.shape) for b in every.boxes[1:]] == [(k, seen[k]) for k, _ in units]
    # collapsed stages keep the order and end with the stage's last shape
    _, short = _diagram(preset)
    keys = [k for k, _ in units]
    for box in short.boxes[1:]:
        if box.kind == "stage":
            members = [k for k in keys if k.startswith(box.key + ".") and
                       not k.endswith(".pool")]
            assert box.count == len(members) > 4
            assert box.shape == seen[members[-1]]
        else:
            assert box.shape == seen[box.key]


def test_a_common_scale_makes_equal_maps_equal_boxes_across_networks() -> None:
    vgg = analyse_spec(get_preset("vgg11"))  # 224 px input
    cifar = analyse_spec(get_preset("resnet20_cifar"))  # 32 px input
    scale = diagram_scale([vgg, cifar])
    assert (scale.largest, scale.widest) == (224, 512)
    own = build_diagram(cifar)
    shared = build_diagram(cifar, scale=scale)
    assert own.boxes[0].height == pytest.approx(MAX_HEIGHT)  # alone: its input is full height
    assert shared.boxes[0].height == pytest.approx(
        MIN_HEIGHT + (MAX_HEIGHT - MIN_HEIGHT) * math.sqrt(32 / 224))
    # a 512x14x14 map of VGG and one of the same side in another network: the same box height
    big = build_diagram(vgg, scale=scale)
    side16 = next(b for b in shared.boxes if len(b.shape) == 3 and b.shape[1] == 16)
    assert side16.height == pytest.approx(
        MIN_HEIGHT + (MAX_HEIGHT - MIN_HEIGHT) * math.sqrt(16 / 224))
    assert big.boxes[0].height == pytest.approx(MAX_HEIGHT)
    assert sum(b.params for b in shared.boxes) == cifar.num_params


def test_main_row_is_the_first_conv_off_the_shortcut() -> None:
    analysis, d = _diagram("resnet18")
    block = d.box("stage2.block1")  # a downsampling block: conv1, conv2, shortcut conv
    assert main_row(analysis, block).name == "stage2.block1.conv1"
    assert main_row(analysis, d.box("head.fc")).name == "head.fc"
    pool = main_row(analysis, d.box("stem.pool"))
    assert pool.name == "stem.pool"
    assert main_row(analysis, d.boxes[0]) is None  # the input box holds no row


def test_residual_blocks_get_one_skip_arc_each_and_plain_twins_none() -> None:
    spec = get_preset("resnet20_cifar")
    blocks = sum(s.depth for s in spec.stages if s.residual)
    _, res = _diagram("resnet20_cifar")
    _, plain = _diagram("plain20_cifar")
    assert blocks == 9 and len(res.arcs) == 9
    assert [a.key for a in res.arcs] == [b.key for b in res.boxes if b.residual]
    assert plain.arcs == [] and not any(b.residual for b in plain.boxes)
    for arc in res.arcs:  # an arc spans its block and lies above both ends
        box = res.box(arc.key)
        assert arc.x0 < box.x < arc.x1 == box.x + box.thick
        assert arc.top > box.height / 2 + box.depth


def test_boxes_shrink_with_stride_and_pooling_and_thicken_with_channels() -> None:
    _, d = _diagram("vgg16")
    maps = [b for b in d.boxes if len(b.shape) == 3]
    for a, b in itertools.pairwise(maps):
        if b.shape[1] < a.shape[1]:
            assert b.height < a.height and b.depth < a.depth
        elif b.shape[1] == a.shape[1]:
            assert b.height == a.height
        if b.shape[0] > a.shape[0]:
            assert b.thick > a.thick
    side = maps[0].shape[1]  # the largest side gets the full height
    assert maps[0].height == pytest.approx(MAX_HEIGHT)
    last = maps[-1]
    assert last.height == pytest.approx(
        MIN_HEIGHT + (MAX_HEIGHT - MIN_HEIGHT) * math.sqrt(last.shape[1] / side))


def test_pool_boxes_show_the_shapes_torchvision_computes() -> None:
    """VGG-16's five max-pool outputs, from a real forward pass of torchvision's model."""
    model = torchvision.models.vgg16().eval()
    seen = []
    for m in model.features:
        if isinstance(m, torch.nn.MaxPool2d):
            m.register_forward_hook(lambda mod, i, o: seen.append(tuple(o.shape[1:])))
    with torch.no_grad():
        model.features(torch.zeros(1, 3, 224, 224))
    _, d = _diagram("vgg16")
    pools = [b.shape for b in d.boxes if b.kind == "pool" and b.key.startswith("stage")]
    assert pools == seen == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14),
                             (512, 7, 7)]
    dense = [b for b in d.boxes if b.kind == "dense"]
    assert [b.shape for b in dense] == [(4096,), (4096,), (1000,)]
    assert [b.label for b in dense] == ["fc 4096", "fc 4096", "fc 1000"]


def test_long_stages_collapse_into_one_box_and_expand_on_request() -> None:
    analysis, d = _diagram("resnet56_cifar", max_blocks=4)
    assert d.collapsed == ["stage1", "stage2", "stage3"]
    stages = [b for b in d.boxes if b.kind == "stage"]
    assert [b.count for b in stages] == [9, 9, 9]
    assert all("x 9 blocks" in b.label for b in stages)
    assert len(d.arcs) == 3  # one arc per collapsed residual stage
    _, opened = _diagram("resnet56_cifar", max_blocks=4, expanded=["stage2"])
    assert opened.collapsed == ["stage1", "stage3"]
    assert sum(1 for b in opened.boxes if b.stage == "stage2") == 9
    assert sum(b.params for b in opened.boxes) == analysis.num_params


def test_hover_text_carries_the_layer_table_numbers() -> None:
    _, d = _diagram("small_cnn")
    box = d.box("stage1.layer1")
    # hand-derived: a 3x3 conv from 3 to 32 channels without bias (batch norm follows), then
    # the norm's scale and shift per channel
    assert box.params == 3 * 3 * 3 * 32 + 2 * 32
    assert f"params {box.params:,}" in box.hover()
    assert "output 32x32x32" in box.hover()
    assert "RF 3x3" in box.hover()
    assert box.label == "conv 3x3, 32"


def test_unit_keys_group_rows_by_their_module_names() -> None:
    assert unit_key("stage2.block1.conv1") == "stage2.block1"
    assert unit_key("stage2.block1.shortcut.conv") == "stage2.block1"
    assert unit_key("stage3.pool") == "stage3.pool"
    assert unit_key("stem.norm") == "stem" and unit_key("stem.pool") == "stem.pool"
    assert unit_key("head.fc1") == "head.fc1"
    assert unit_key("layer1.0.conv1#2") == "layer1.0"  # torchvision naming, second call


def test_svg_is_well_formed_and_escapes_user_text() -> None:
    _, d = _diagram("resnet20_cifar")
    svg = to_svg(d, title='My <script>alert("x")</script> & net')
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert len(root.findall("s:g", ns)) == len(d.boxes)
    assert len(root.findall("s:path", ns)) == len(d.arcs)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert 'My <script>alert("x")</script> & net' in texts  # shown as text...
    assert "<script>" not in svg  # ...never as markup
    assert "block 2.1" in texts and "32x16x16" in texts


def test_figure_markers_map_clicks_back_to_boxes() -> None:
    from ui.diagram import diagram_figure, selected_key

    _, d = _diagram("lenet5")
    fig = diagram_figure(d, selected="stage2.layer1")
    markers = next(t for t in fig.data if t.name == "boxes")
    assert list(markers.customdata) == [b.key for b in d.boxes]
    assert "params 2,416" in markers.hovertext[[b.key for b in d.boxes].index("stage2.layer1")]
    event = {"selection": {"points": [{"customdata": "stage2.layer1", "x": 1, "y": 0}]}}
    assert selected_key(event) == "stage2.layer1"
    assert selected_key({"selection": {"points": []}}) is None
    assert selected_key(None) is None
