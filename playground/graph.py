"""A graph drawing of any model's modules with their output shapes (torchvision's zoo, or any
``nn.Module`` the analysis accepts), as plain data and as Graphviz DOT text.

The data flow comes from ``torch.fx``: torchvision's :class:`NodePathTracer` (the tracer behind
``torchvision.models.feature_extraction``) traces the model symbolically, treating torchvision's
own layers as leaves, and names every node by the module path it runs in (``layer1.0.conv1``,
``layer1.0.add`` for the residual addition). Nodes are then merged by the first ``depth`` parts
of those paths (``depth=2``: ``layer1.0`` is one node, a whole basic block), so a deep network
stays readable; raising the depth opens the blocks and shows their skip connections, drawn as
the edges into the addition. Shapes and parameter counts come from the analysis rows of the
same modules (so they equal the layer table); nodes the analysis has no row for (additions,
flatten) show none.

The DOT text is drawn by ``st.graphviz_chart`` in the browser (no system Graphviz needed).
Tracing runs on the ``meta`` device and takes 0.05-2 s for torchvision's models (6 s for
MaxViT): callers cache it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from torch import fx, nn

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

    out: list[GraphNode] = []
    for g in order:
        rows = rows_by_group.get(g, [])
        main = [r for r in rows if not any(p in ("downsample", "shortcut")
                                           for p in r.name.split(".")[depth:])]
        last = (main or rows)[-1] if rows else None
        if g == "input":
            shape: tuple[int, ...] | None = tuple(analysis.input_shape)
            label = "input"
        elif g == "output":
            shape, label = tuple(analysis.final_shape), "output"
        else:
            shape = tuple(last.out_shape) if last is not None else None
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


def _type_name(model: nn.Module, path: str, kind: str) -> str:
    if kind == "function":
        return path.rsplit(".", 1)[-1].rstrip("_0123456789") or path
    try:
        return type(model.get_submodule(path)).__name__
    except AttributeError:
        return path.rsplit(".", 1)[-1]


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
