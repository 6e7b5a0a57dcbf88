"""The module graph of torchvision's models: data flow from torch.fx, numbers from the analysis,
checked against torchvision's real forward pass and the analysis totals."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision

from playground.graph import MAX_NODES, module_graph, to_dot
from playground.targets import analyse_zoo
from playground.zoo import build_zoo_model, native_input, zoo_names


def _graph(name: str, **kw):  # type: ignore[no-untyped-def]
    analysis = analyse_zoo(name, native_input(name))
    return analysis, module_graph(build_zoo_model(name, 1000, device="meta"), analysis, **kw)


@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_model_draws_with_all_its_parameters(name: str) -> None:
    analysis, graph = _graph(name)
    assert sum(n.params for n in graph.nodes) == analysis.num_params
    assert graph.nodes[0].id == "input" and graph.nodes[-1].id == "output"
    assert graph.nodes[-1].shape == tuple(analysis.final_shape)
    assert len(graph.nodes) <= MAX_NODES or graph.depth == 1
    ids = {n.id for n in graph.nodes}
    assert all(a in ids and b in ids for a, b in graph.edges)
    # every node is reachable from the input along the edges
    reach, frontier = {"input"}, ["input"]
    while frontier:
        node = frontier.pop()
        for a, b in graph.edges:
            if a == node and b not in reach:
                reach.add(b)
                frontier.append(b)
    assert "output" in reach


def test_resnet18_blocks_and_their_skip_connections() -> None:
    _, blocks = _graph("resnet18", depth=2)
    ids = [n.id for n in blocks.nodes]
    assert ids[:6] == ["input", "conv1", "bn1", "relu", "maxpool", "layer1.0"]
    assert blocks.depth == 2 and blocks.max_depth >= 3
    # the oracle for the shapes: torchvision's own forward pass, with hooks on the blocks
    model = torchvision.models.resnet18().eval()
    seen: dict[str, tuple[int, ...]] = {}
    for path in ("layer1.0", "layer2.0", "layer3.1", "layer4.1"):
        model.get_submodule(path).register_forward_hook(
            lambda m, i, o, path=path: seen.__setitem__(path, tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    by_id = {n.id: n for n in blocks.nodes}
    for path, shape in seen.items():
        assert by_id[path].shape == shape
        assert by_id[path].label == f"{path}: BasicBlock"
        assert by_id[path].params == sum(p.numel() for p in model.get_submodule(path).parameters())

    # one level deeper the addition of each block shows its two inputs: the block's main path
    # (bn2) and the shortcut (torchvision's BasicBlock: out = bn2(...) + identity/downsample(x))
    _, layers = _graph("resnet18", depth=3)
    into = {b: sorted(a for a, b2 in layers.edges if b2 == b) for _, b in layers.edges}
    assert into["layer1.0.add"] == ["layer1.0.bn2", "maxpool"]
    assert into["layer2.0.add"] == ["layer2.0.bn2", "layer2.0.downsample"]
    kinds = {n.id: n.kind for n in layers.nodes}
    assert kinds["layer1.0.add"] == "function" and kinds["layer1.0.conv1"] == "module"


def test_depth_is_chosen_to_fit_and_clamped() -> None:
    _, auto = _graph("vgg11")
    assert auto.sizes[auto.depth] <= MAX_NODES
    assert all(auto.sizes[d] > MAX_NODES for d in auto.sizes if d > auto.depth)
    _, deep = _graph("vgg11", depth=99)
    assert deep.depth == deep.max_depth


def test_dot_text_declares_every_node_and_escapes_labels() -> None:
    _, graph = _graph("alexnet")
    dot = to_dot(graph, title='AlexNet "demo" \\ test')
    assert dot.startswith("digraph model {") and dot.rstrip().endswith("}")
    declared = set(re.findall(r"^\s+(n\d+) \[label=", dot, flags=re.M))
    used = set(re.findall(r"(n\d+) -> (n\d+)", dot))
    assert declared == {f"n{i}" for i in range(len(graph.nodes))}
    assert {x for pair in used for x in pair} <= declared
    assert 'label="AlexNet \\"demo\\" \\\\ test"' in dot
    assert "features.0: Conv2d\\n64x55x55\\n23,296 params" in dot  # 11*11*3*64 + 64
