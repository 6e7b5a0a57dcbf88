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


@pytest.mark.parametrize(("name", "blocks"), [
    ("googlenet", ["inception3a", "inception4e", "inception5b"]),  # four branches, concatenated
    ("squeezenet1_0", ["features.3", "features.12"]),  # Fire: two expand branches, concatenated
    ("densenet121", ["features.denseblock1", "features.denseblock4"]),  # features grow by 32s
])
def test_blocks_of_parallel_branches_show_what_they_hand_on(name: str,
                                                             blocks: list[str]) -> None:
    """The oracle: torchvision's own forward pass, with a hook on every module drawn as a node.
    A block that concatenates branches used to show its last branch's shape (inception3a:
    32 channels instead of 256)."""
    _, graph = _graph(name)
    kwargs = {"init_weights": False} if name == "googlenet" else {}  # its FutureWarning
    model = getattr(torchvision.models, name)(**kwargs).eval()
    seen: dict[str, tuple[int, ...]] = {}
    module_ids = [n.id for n in graph.nodes if n.kind == "module"]
    for path in module_ids:
        model.get_submodule(path).register_forward_hook(
            lambda m, i, o, path=path: seen.__setitem__(path, tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, *native_input(name)))
    by_id = {n.id: n for n in graph.nodes}
    assert set(blocks) <= set(module_ids)
    assert {p: by_id[p].shape for p in module_ids} == {p: seen[p] for p in module_ids}
    if name == "googlenet":  # 64 + 128 + 32 + 32 channels (Szegedy et al. 2015, table 1)
        assert by_id["inception3a"].shape == (256, 28, 28)
    if name == "densenet121":  # a block is a module even though its first operation is a cat
        assert by_id["features.denseblock1"].label == "features.denseblock1: _DenseBlock"


def test_additions_and_flatten_show_their_shapes() -> None:
    _, layers = _graph("resnet18", depth=3)
    by_id = {n.id: n for n in layers.nodes}
    assert by_id["layer1.0.add"].shape == (64, 56, 56)
    assert by_id["layer4.1.add"].shape == (512, 7, 7)
    assert by_id["flatten"].shape == (512,) and by_id["flatten"].kind == "function"


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


# -- SVG for slides --------------------------------------------------------------------------
_SVG = "{http://www.w3.org/2000/svg}"


def _svg_nodes(root):  # type: ignore[no-untyped-def]
    """(rect, [texts]) of each node group, in document order."""
    return [(g.find(f"{_SVG}rect"), [t.text for t in g.iter(f"{_SVG}text")])
            for g in root.iter(f"{_SVG}g") if g.get("class") == "node"]


def test_svg_has_one_box_per_node_top_to_bottom_and_arcs_for_skips() -> None:
    import xml.etree.ElementTree as ET

    from playground.graph import to_svg

    _, graph = _graph("resnet18", depth=3)
    root = ET.fromstring(to_svg(graph, title="resnet18"))
    nodes = _svg_nodes(root)
    assert len(nodes) == len(graph.nodes)
    for (_, texts), node in zip(nodes, graph.nodes, strict=True):
        assert texts[0] == node.label  # every label, in order
        if node.shape is not None:
            assert "x".join(map(str, node.shape)) in texts
        if node.params:
            assert f"{node.params:,} params" in texts
    tops = [float(rect.get("y")) for rect, _ in nodes]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)  # one row per node, in order
    edges = [e for e in root.iter(f"{_SVG}path") if e.get("class") == "edge"]
    assert len(edges) == len(graph.edges)
    # the residual additions' shortcut inputs skip nodes: arcs (curves), never straight lines
    row = {n.id: i for i, n in enumerate(graph.nodes)}
    curved = [e.get("d") for e in edges if " C " in e.get("d")]
    skipping = [(a, b) for a, b in graph.edges if row[b] - row[a] > 1]
    assert len(curved) == len(skipping) >= 8  # resnet18: 8 blocks, each adds its shortcut
    assert all(row[b] > row[a] for a, b in graph.edges)  # topological: every edge points down


def test_svg_escapes_odd_names_and_stays_well_formed() -> None:
    import xml.etree.ElementTree as ET

    from playground.graph import Graph, GraphNode, to_svg

    odd = 'a<b>&"c\' ]]> <script>x</script>'
    graph = Graph([GraphNode("input", "input", "input", (3, 8, 8), 0),
                   GraphNode(odd, f"{odd}: Weird", "module", (4, 8, 8), 12),
                   GraphNode("fn&1", "fn&1: add", "function", None, 0),
                   GraphNode("output", "output", "output", (4, 8, 8), 0)],
                  [("input", odd), (odd, "fn&1"), ("input", "fn&1"), ("fn&1", "output")],
                  depth=1, max_depth=1)
    svg = to_svg(graph, title=odd)
    assert "<script>" not in svg
    root = ET.fromstring(svg)  # parses: every text escaped
    texts = [t.text for t in root.iter(f"{_SVG}text")]
    assert odd in texts and f"{odd}: Weird" in texts and "fn&1: add" in texts
    assert [t for _, t in _svg_nodes(root)][1] == [f"{odd}: Weird", "4x8x8", "12 params"]
    titles = [t.text for t in root.iter(f"{_SVG}title")]
    assert titles == ["input", odd, "fn&1", "output"]
    assert sum(" C " in (e.get("d") or "") for e in root.iter(f"{_SVG}path")
               if e.get("class") == "edge") == 1  # input -> add skips the odd node
