"""A graph drawing of any model's modules with their output shapes (torchvision's zoo, or any
``nn.Module`` the analysis accepts), as plain data and as Graphviz DOT text.

The data flow comes from ``torch.fx``: torchvision's :class:`NodePathTracer` (the tracer behind
``torchvision.models.feature_extraction``) traces the model symbolically, treating torchvision's
own layers as leaves, and names every node by the module path it runs in (``layer1.0.conv1``,
``layer1.0.add`` for the residual addition). Nodes are then merged by the first ``depth`` parts
of those paths (``depth=2``: ``layer1.0`` is one node, a whole basic block), so a deep network
stays readable; raising the depth opens the blocks and shows their skip connections, drawn as
the edges into the addition. Parameter counts come from the analysis rows of the same modules
(so they equal the layer table). A node's shape is the output shape, without the batch
dimension, of the value that leaves it: the last traced operation in the node whose result is
used outside it, found by running the traced graph once on the ``meta`` device (fx's
``ShapeProp``: shapes only, no arithmetic). So a block of parallel branches shows what it
hands on, the concatenation (GoogLeNet's ``inception3a``: 256 channels, not the 32 of its last
branch), and additions and flatten show theirs. Where that run fails, a node shows the last
analysis row of its main path (not a ResNet block's ``downsample``).

The DOT text is drawn by ``st.graphviz_chart`` in the browser (no system Graphviz needed).
For slides, :func:`to_svg` lays the graph out itself, in one column: nodes top to bottom in
the order they run (fx's order is topological, so every edge points down), an edge to the next
node a short arrow, an edge that skips nodes (a skip connection, a branch) an arc out to the
right, nested arcs in lanes further out so they never overlap.
Tracing runs on the ``meta`` device and takes 0.05-2 s for torchvision's models (6 s for
MaxViT): callers cache it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from playground.analysis import Analysis, LayerRow
from playground.errors import PlaygroundError

MAX_NODES = 60  # the automatic depth keeps at most this many nodes
HARD_MAX_NODES = 600  # no depth draws more


@dataclass(frozen=True)
class GraphNode:
    id: str  # the module path prefix ("layer1.0"), "input" or "output"
    label: str
    kind: str  # "input", "output", "module", "function"
    shape: tuple[int, ...] | None
    params: int


@dataclass
class Graph:
    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    depth: int  # the path depth the nodes were merged at
    max_depth: int  # the depth at which every traced node is its own node
    sizes: dict[int, int] = field(default_factory=dict)  # depth -> node count


def trace(model: nn.Module) -> tuple[fx.Graph, dict[fx.Node, str]]:
    """The fx graph of ``model`` and each node's module path; a model fx cannot trace (data
    dependent control flow) raises one :class:`PlaygroundError`."""
    from torchvision.models.feature_extraction import NodePathTracer

    tracer = NodePathTracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError...
        raise PlaygroundError(
            f"this model cannot be drawn as a graph ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else 'no detail'})") from None
    return graph, dict(tracer.node_to_qualname)


def _output_shapes(model: nn.Module, fx_graph: fx.Graph,
                   input_shape: tuple[int, ...]) -> dict[fx.Node, tuple[int, ...]]:
    """Each traced node's output shape without the batch dimension (nodes whose value is not
    one tensor are absent), from one run of the graph on a batch of one; ``{}`` if it fails.
    The input lies on the model's device: ``meta`` for the zoo's models, which costs no
    arithmetic."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("meta")
    try:
        ShapeProp(fx.GraphModule(model, fx_graph)).propagate(
            torch.zeros((1, *input_shape), device=device))
    except Exception:  # a model ShapeProp cannot run: fall back to the analysis rows
        return {}
    return {n: tuple(int(d) for d in meta.shape[1:]) for n in fx_graph.nodes
            if isinstance(meta := n.meta.get("tensor_meta"), TensorMetadata) and meta.shape}


def _prefix(path: str, depth: int) -> str:
    return ".".join(path.split(".")[:depth])


def module_graph(model: nn.Module, analysis: Analysis, depth: int | None = None,
                 max_nodes: int = MAX_NODES) -> Graph:
    """The graph of ``model`` merged at ``depth`` (None: the deepest with at most
    ``max_nodes`` nodes, at least 1)."""
    fx_graph, paths = trace(model)
    nodes = list(fx_graph.nodes)
    path_of = {n: ("input" if n.op == "placeholder" else "output" if n.op == "output"
                   else paths.get(n, n.name)) for n in nodes}
    deepest = max((len(p.split(".")) for n, p in path_of.items()
                   if n.op not in ("placeholder", "output")), default=1)

    def groups_at(d: int) -> dict[fx.Node, str]:
        return {n: p if n.op in ("placeholder", "output") else _prefix(p, d)
                for n, p in path_of.items()}

    sizes = {d: len(set(groups_at(d).values())) for d in range(1, deepest + 1)}
    if depth is None:
        fitting = [d for d, k in sizes.items() if k <= max_nodes]
        depth = max(fitting) if fitting else 1
    depth = min(max(1, int(depth)), deepest)
    if sizes[depth] > HARD_MAX_NODES:
        raise PlaygroundError(f"{sizes[depth]} nodes at depth {depth} are too many to draw; "
                              f"at most {HARD_MAX_NODES}")
    group = groups_at(depth)

    order: list[str] = []
    kinds: dict[str, str] = {}
    for n in nodes:
        g = group[n]
        if g not in kinds:
            order.append(g)
            kinds[g] = ("input" if n.op == "placeholder" else "output" if n.op == "output"
                        else "module" if n.op in ("call_module", "get_attr") else "function")
    for g in order:  # a block whose first operation is a function (DenseNet's cat) is a module
        if kinds[g] == "function" and _submodule(model, g) is not None:
            kinds[g] = "module"
    rows_by_group = _rows_by_group(analysis, [g for g in order if kinds[g] not in
                                              ("input", "output")])
    edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for n in nodes:
        for src in n.all_input_nodes:
            if src not in group:
                continue
            edge = (group[src], group[n])
            if edge[0] != edge[1] and edge not in seen:
                seen.add(edge)
                edges.append(edge)

    shapes = _output_shapes(model, fx_graph, tuple(analysis.input_shape))
    exits: dict[str, fx.Node] = {}  # the last node of each group whose value leaves it
    for n in nodes:
        if any(group[u] != group[n] for u in n.users):
            exits[group[n]] = n

    out: list[GraphNode] = []
    for g in order:
        rows = rows_by_group.get(g, [])
        if g == "input":
            shape: tuple[int, ...] | None = tuple(analysis.input_shape)
            label = "input"
        elif g == "output":
            shape, label = tuple(analysis.final_shape), "output"
        else:
            if shapes:  # the value leaving the node (none: it hands on no single tensor)
                shape = shapes.get(exits[g]) if g in exits else None
            else:  # the run on meta failed
                shape = _row_shape(rows, depth)
            label = f"{g}: {_type_name(model, g, kinds[g])}"
        params = sum(r.num_params for r in rows)
        out.append(GraphNode(g, label, kinds[g], shape, params))
    return Graph(out, edges, depth, deepest, sizes)


def _rows_by_group(analysis: Analysis, groups: list[str]) -> dict[str, list[LayerRow]]:
    """Each analysis row under the node that holds its module: the longest node path that is
    the row's path or a prefix of it; a row of a container drawn as several nodes (the ops
    in a ViT encoder's own forward, the root's class token) goes to the first of them."""
    out: dict[str, list[LayerRow]] = defaultdict(list)
    known = set(groups)
    for row in analysis.rows:
        path = row.name.split("#", 1)[0]
        parts = path.split(".") if path else []
        owner = next((".".join(parts[:k]) for k in range(len(parts), 0, -1)
                      if ".".join(parts[:k]) in known), None)
        if owner is None:
            owner = next((g for g in groups if not path or g.startswith(path + ".")),
                         groups[0] if groups else None)
        if owner is not None:
            out[owner].append(row)
    return out


def _row_shape(rows: list[LayerRow], depth: int) -> tuple[int, ...] | None:
    """The fallback shape: the last analysis row of the node's main path (not a ResNet
    block's ``downsample`` or ``shortcut``)."""
    main = [r for r in rows if not any(p in ("downsample", "shortcut")
                                       for p in r.name.split(".")[depth:])]
    last = (main or rows)[-1] if rows else None
    return tuple(last.out_shape) if last is not None else None


def _submodule(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


def _type_name(model: nn.Module, path: str, kind: str) -> str:
    if kind == "function":
        return path.rsplit(".", 1)[-1].rstrip("_0123456789") or path
    module = _submodule(model, path)
    return type(module).__name__ if module is not None else path.rsplit(".", 1)[-1]


_FILL = {"input": "#d9d9d9", "output": "#d9d9d9", "module": "#c6dbef", "function": "#fdd0a2"}


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(graph: Graph, title: str = "") -> str:
    """Graphviz DOT text of ``graph``, top to bottom; every label escaped."""
    lines = ["digraph model {", "  rankdir=TB;", '  bgcolor="transparent";',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  edge [color="#888888"];']
    if title:
        lines.append(f'  label="{_dot_text(title)}"; labelloc=t; fontname="Helvetica";')
    ids = {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}
    for n in graph.nodes:
        parts = [n.label]
        if n.shape is not None:
            parts.append("x".join(str(d) for d in n.shape))
        if n.params:
            parts.append(f"{n.params:,} params")
        lines.append(f'  {ids[n.id]} [label="{_dot_text(chr(10).join(parts))}", '
                     f'fillcolor="{_FILL.get(n.kind, "#c6dbef")}"];')
    for a, b in graph.edges:
        lines.append(f"  {ids[a]} -> {ids[b]};")
    lines.append("}")
    return "\n".join(lines)


# -- SVG -----------------------------------------------------------------------------------------
SVG_FONT = 11  # px
_CHAR_W = 0.62 * SVG_FONT  # a sans-serif character's mean width, for sizing boxes
_LINE_H = 14
_BOX_H = 3 * _LINE_H + 12  # room for label, shape and parameters
_ROW_GAP = 26
_LANE_0, _LANE_W = 28.0, 20.0  # first arc's reach to the right of the boxes; each next lane


def _node_lines(node: GraphNode) -> list[str]:
    lines = [node.label]
    if node.shape is not None:
        lines.append("x".join(str(d) for d in node.shape))
    if node.params:
        lines.append(f"{node.params:,} params")
    return lines


def _lanes(spans: list[tuple[int, int]]) -> list[int]:
    """A lane for each (top, bottom) row span, shortest spans innermost; spans that overlap
    (more than at an end) never share a lane."""
    taken: list[list[tuple[int, int]]] = []
    lanes = [0] * len(spans)
    for k in sorted(range(len(spans)), key=lambda k: (spans[k][1] - spans[k][0], spans[k])):
        a, b = spans[k]
        lane = next((i for i, used in enumerate(taken)
                     if all(b <= c or d <= a for c, d in used)), len(taken))
        if lane == len(taken):
            taken.append([])
        taken[lane].append((a, b))
        lanes[k] = lane
    return lanes


def to_svg(graph: Graph, title: str = "") -> str:
    """A stand-alone SVG of ``graph`` in one column (see the module doc): each node a rounded
    box with its label, output shape and parameters; every text XML-escaped."""
    pad = 16.0
    width = min(max(max((len(t) for n in graph.nodes for t in _node_lines(n)), default=8)
                    * _CHAR_W + 24, 140.0), 480.0)
    row = {n.id: i for i, n in enumerate(graph.nodes)}
    skips = [(a, b) for a, b in graph.edges if abs(row[b] - row[a]) != 1]
    lanes = dict(zip(skips, _lanes([(min(row[a], row[b]), max(row[a], row[b]))
                                    for a, b in skips]), strict=True))
    reach = _LANE_0 + _LANE_W * max(lanes.values(), default=-1) + _LANE_W if lanes else 0.0
    top = pad + (22 if title else 0)
    total_w = pad + width + reach + pad
    total_h = top + len(graph.nodes) * (_BOX_H + _ROW_GAP) - _ROW_GAP + pad
    x0, x1, cx = pad, pad + width, pad + width / 2

    def y_of(i: int) -> float:
        return top + i * (_BOX_H + _ROW_GAP)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" '
           f'height="{total_h:.0f}" viewBox="0 0 {total_w:.0f} {total_h:.0f}" '
           f'font-family="Helvetica, Arial, sans-serif" font-size="{SVG_FONT}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
           'fill="#888888"/></marker></defs>',
           '<rect width="100%" height="100%" fill="white"/>']
    if title:
        out.append(f'<text x="{pad:.1f}" y="{pad + 10:.1f}" font-size="{SVG_FONT + 3}" '
                   f'font-weight="bold">{escape(title)}</text>')
    for a, b in graph.edges:
        i, j = row[a], row[b]
        if (a, b) not in lanes:  # neighbours: straight down (or up)
            ya, yb = (y_of(i) + _BOX_H, y_of(j)) if j > i else (y_of(i), y_of(j) + _BOX_H)
            d = f"M {cx:.1f} {ya:.1f} L {cx:.1f} {yb:.1f}"
        else:  # out of the right side, round, back in
            ya, yb = y_of(i) + _BOX_H / 2, y_of(j) + _BOX_H / 2
            bulge = x1 + (_LANE_0 + _LANE_W * lanes[(a, b)]) * 4 / 3  # the curve reaches 3/4
            d = (f"M {x1:.1f} {ya:.1f} C {bulge:.1f} {ya:.1f} {bulge:.1f} {yb:.1f} "
                 f"{x1:.1f} {yb:.1f}")
        out.append(f'<path class="edge" d="{d}" fill="none" stroke="#888888" '
                   'stroke-width="1.2" marker-end="url(#arrow)"/>')
    for i, node in enumerate(graph.nodes):
        y = y_of(i)
        lines = _node_lines(node)
        out.append(f'<g class="node"><title>{escape(node.id)}</title>')
        out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{width:.1f}" height="{_BOX_H}" '
                   f'rx="8" ry="8" fill={quoteattr(_FILL.get(node.kind, "#c6dbef"))} '
                   'stroke="#555555" stroke-width="0.8"/>')
        first = y + _BOX_H / 2 - (len(lines) - 1) * _LINE_H / 2 + SVG_FONT * 0.35
        for k, text in enumerate(lines):
            weight = ' font-weight="bold"' if k == 0 else ""
            out.append(f'<text x="{cx:.1f}" y="{first + k * _LINE_H:.1f}" '
                       f'text-anchor="middle"{weight}>{escape(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
