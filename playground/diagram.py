"""The architecture diagram: the classic LeNet/VGG figure of a network, as plain geometry.

Built from the same :class:`~playground.analysis.Analysis` the layer table shows, so the
picture and the numbers cannot disagree. Conventions:

- One **unit** per box: the stem, each layer or block of a stage (``stage2.block1``), each
  pooling step, each dense layer of the head. Rows are grouped by their module names
  (``stem.*``, ``stageK.layerJ.*`` / ``stageK.blockJ.*``, ``stageK.pool``, ``head.fcN``); a
  model named otherwise (torchvision's ``features.0``, ``layer1.0``) is grouped by the first two
  parts of its names. Activations, norms, dropout and flatten belong to the unit they follow.
- A feature map ``C x H x W`` is a cuboid: its **height follows H** (the feature-map side), the
  oblique **depth follows W**, both as ``sqrt(side / largest side)`` so a 224-px input and a
  7-px map both stay visible; its **thickness follows the channel count** on a log scale. So a
  stride or a pooling visibly shrinks the boxes and a widening stage visibly thickens them.
- A vector (a dense layer's output) is a bar whose height follows ``log2(features)``.
- A unit holding a shortcut (a module named ``shortcut`` or ``downsample``, or a block whose
  rows include an identity shortcut) is **residual**: the figure draws a skip arc over it.
- A stage with more than ``max_blocks`` units collapses into one box labelled
  ``"x N blocks"`` unless its name is in ``expanded``.
- Sizes are relative to a :class:`DiagramScale` (the largest side, the widest channel count,
  the widest vector): by default the network's own, so its largest map gets the full height;
  :func:`diagram_scale` of several analyses gives them one scale, so networks drawn side by
  side (the Compare page) can be compared box for box.
- A box's **main row** (:func:`main_row`) is the row the layer table selects for it: its first
  conv or linear layer off the shortcut path, else its first row.

Everything here is plain data (:class:`Diagram`, :class:`Box`, :class:`Arc`); the Build page
draws it with Plotly (``ui/diagram.py``) and :func:`to_svg` writes the same geometry as a
stand-alone SVG for slides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from playground.analysis import Analysis, LayerRow
from playground.format import fmt_si

MAX_HEIGHT = 100.0  # drawing units of the largest feature-map side
MIN_HEIGHT = 12.0
DEPTH_RATIO = 0.45  # oblique depth of a cuboid per unit of height
MIN_THICK, MAX_THICK = 3.0, 22.0  # box thickness for 1 channel ... the widest layer
GAP = 16.0  # space between boxes
_POOL_TYPES = ("Pool", "pool")
_SHORTCUT_NAMES = ("shortcut", "downsample")


@dataclass(frozen=True)
class Box:
    """One unit of the network as a cuboid (feature map) or a bar (vector).

    ``x`` is the left edge of the front face, ``thick`` its width; the front face spans
    ``-height/2 .. height/2`` vertically and the cuboid recedes ``depth`` up and to the right.
    ``rows`` are the analysis row indices the unit holds; ``params`` and ``macs`` their sums;
    ``rf`` the receptive field of its output (None where undefined).
    """

    key: str
    label: str
    kind: str  # "input", "conv", "block", "stage", "pool", "dense"
    shape: tuple[int, ...]
    rows: tuple[int, ...]
    params: int
    macs: int
    rf: tuple[int, ...] | None
    x: float
    thick: float
    height: float
    depth: float
    residual: bool = False
    count: int = 1  # units collapsed into this box (a stage's blocks)
    stage: str = ""  # the stage it belongs to ("" for stem, head, input)

    @property
    def shape_text(self) -> str:
        return "x".join(str(d) for d in self.shape)

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.thick / 2, 0.0

    def hover(self) -> str:
        """The layer-table facts of this box, one per line (plain text)."""
        lines = [self.label, f"output {self.shape_text}"]
        if self.kind != "input":
            lines += [f"params {self.params:,}", f"MACs {fmt_si(self.macs)}"]
        if self.rf is not None:
            lines.append("RF " + "x".join(str(r) for r in self.rf))
        return "\n".join(lines)


@dataclass(frozen=True)
class Arc:
    """A skip connection drawn over the boxes from ``x0`` to ``x1`` at height ``top``."""

    x0: float
    x1: float
    top: float
    key: str


@dataclass(frozen=True)
class DiagramScale:
    """What sizes are relative to: the largest feature-map side (full height), the widest
    channel count (full thickness) and the most features of a vector (tallest bar)."""

    largest: int
    widest: int
    features: int


@dataclass
class Diagram:
    boxes: list[Box]
    arcs: list[Arc] = field(default_factory=list)
    collapsed: list[str] = field(default_factory=list)  # stages shown as one box

    @property
    def width(self) -> float:
        return max((b.x + b.thick + b.depth for b in self.boxes), default=0.0)

    @property
    def top(self) -> float:
        tops = [b.height / 2 + b.depth for b in self.boxes] + [a.top for a in self.arcs]
        return max(tops, default=0.0)

    def box(self, key: str) -> Box:
        return next(b for b in self.boxes if b.key == key)


# -- grouping ----------------------------------------------------------------------------------
def unit_key(name: str) -> str:
    """The unit a row belongs to, from its module name (see the module doc)."""
    parts = name.split("#", 1)[0].split(".")
    head = parts[0]
    if head == "stem":
        return "stem.pool" if len(parts) > 1 and parts[1] == "pool" else "stem"
    if head.startswith("stage") and len(parts) > 1:
        if parts[1].startswith(("layer", "block")):
            return f"{head}.{parts[1]}"
        return f"{head}.{parts[1]}"  # stageK.pool, stageK.flatten
    if head == "head" and len(parts) > 1:
        return f"head.{parts[1]}"
    return ".".join(parts[:2])


def _is_pool(row: LayerRow) -> bool:
    return any(t in row.type for t in _POOL_TYPES)


def _is_weight(row: LayerRow) -> bool:
    return row.type.startswith(("Conv", "Linear", "LazyConv", "LazyLinear"))


def _is_shortcut(row: LayerRow) -> bool:
    return any(p in _SHORTCUT_NAMES for p in row.name.split("#", 1)[0].split("."))


@dataclass
class _Unit:
    key: str
    rows: list[LayerRow]

    @property
    def out(self) -> LayerRow:
        """The row whose output the box shows: the last one off the shortcut path that is not
        a flatten (a flatten only re-labels the same numbers as a vector)."""
        main = [r for r in self.rows if not _is_shortcut(r) and r.type != "Flatten"]
        return (main or self.rows)[-1]


def _units(rows: Iterable[LayerRow]) -> list[_Unit]:
    """Rows grouped into units in the order they run; shape-keeping rows with no weights of
    their own (activation, norm, dropout, flatten, an identity shortcut) join the unit before
    them when they have no unit of their own worth a box (``head.act1`` follows ``head.fc1``)."""
    units: list[_Unit] = []
    for row in rows:
        key = unit_key(row.name)
        if units and units[-1].key == key:
            units[-1].rows.append(row)
            continue
        same = next((u for u in units if u.key == key), None)
        if same is not None:  # a module called again later (rare): keep it with its unit
            same.rows.append(row)
            continue
        lonely = not _is_weight(row) and not _is_pool(row)
        if lonely and units and (key.startswith("head.") or key.endswith(".flatten")):
            units[-1].rows.append(row)  # head.act1, head.drop1, stageK.flatten
            continue
        if lonely and row.type == "Flatten" and not units:
            continue  # an MLP's flatten of the input: the input box shows it
        units.append(_Unit(key, [row]))
    return units


def _kind(unit: _Unit) -> str:
    if all(_is_pool(r) or not _is_weight(r) for r in unit.rows) and any(
            _is_pool(r) for r in unit.rows):
        return "pool"
    if len(unit.out.out_shape) == 1:
        return "dense"
    convs = sum(1 for r in unit.rows if _is_weight(r) and not _is_shortcut(r))
    return "block" if convs > 1 else "conv"


def _label(unit: _Unit, kind: str) -> str:
    """A short name for the box: ``conv 3x3 s2, 64`` for one conv, ``block 2`` for a block,
    ``max pool 2x2`` for a pool, ``fc 4096`` for a dense layer."""
    key = unit.key.split(".")
    weights = [r for r in unit.rows if _is_weight(r) and not _is_shortcut(r)]
    if kind == "pool":
        pool = next(r for r in unit.rows if _is_pool(r))
        k = pool.attrs.get("kernel_size")
        size = "x".join(str(v) for v in k) if isinstance(k, (list, tuple)) else k
        kind_name = ("max" if "Max" in pool.type else "avg" if "Avg" in pool.type else "") + " pool"
        if pool.type.startswith("Adaptive"):
            return f"global {kind_name}" if pool.out_shape[1:] in ((1, 1), (1,)) else kind_name
        return f"{kind_name} {size}" if size else kind_name
    if kind == "dense":
        return f"fc {unit.out.out_shape[0]}"
    if kind == "conv" and weights:
        conv = weights[0]
        k = conv.attrs.get("kernel_size")
        s = conv.attrs.get("stride")
        size = "x".join(str(v) for v in k) if isinstance(k, (list, tuple)) else str(k or "")
        stride = (s[0] if isinstance(s, (list, tuple)) else s) or 1
        return f"conv {size}" + (f" s{stride}" if stride != 1 else "") + \
            f", {conv.out_shape[0]}" if size else f"conv, {conv.out_shape[0]}"
    if key[0] == "stem":
        return "stem"
    if len(key) > 1 and key[0].startswith("stage") and key[1].startswith(("block", "layer")):
        kind_name = "block" if key[1].startswith("block") else "layer"
        return f"{kind_name} {key[0][5:]}.{key[1][len(kind_name):]}"  # block 2.1
    return unit.key


# -- geometry ----------------------------------------------------------------------------------
def _scale(side: int, largest: int) -> float:
    return MIN_HEIGHT + (MAX_HEIGHT - MIN_HEIGHT) * math.sqrt(max(side, 1) / max(largest, 1))


def _thickness(channels: int, widest: int) -> float:
    if widest <= 1:
        return MIN_THICK
    return MIN_THICK + (MAX_THICK - MIN_THICK) * math.log2(max(channels, 1)) / math.log2(widest)


def _geometry(shape: tuple[int, ...], largest: int, widest: int, features: int
              ) -> tuple[float, float, float]:
    """(thickness, height, depth) of an output of ``shape``."""
    if len(shape) >= 3:
        return (_thickness(shape[0], widest), _scale(shape[1], largest),
                DEPTH_RATIO * _scale(shape[2], largest))
    if len(shape) == 2:  # C x L (1-D signals)
        return _thickness(shape[0], widest), _scale(shape[1], largest), 0.0
    n = shape[0] if shape else 1
    height = MIN_HEIGHT + (MAX_HEIGHT * 0.8 - MIN_HEIGHT) * (
        math.log2(max(n, 1) + 1) / math.log2(max(features, 1) + 1))
    return MIN_THICK, height, 0.0


def _own_scale(analysis: Analysis, units: list[_Unit]) -> DiagramScale:
    shapes = [tuple(analysis.input_shape)] + [tuple(u.out.out_shape) for u in units]
    maps = [s for s in shapes if len(s) >= 2]
    return DiagramScale(largest=max((max(s[1:]) for s in maps), default=1),
                        widest=max((s[0] for s in maps), default=1),
                        features=max((s[0] for s in shapes if len(s) == 1), default=1))


def diagram_scale(analyses: Iterable[Analysis]) -> DiagramScale:
    """One scale for several networks: the largest side, widest channels and most features
    over all of them."""
    scales = [_own_scale(a, [u for u in _units(a.rows) if u.rows]) for a in analyses]
    return DiagramScale(largest=max((s.largest for s in scales), default=1),
                        widest=max((s.widest for s in scales), default=1),
                        features=max((s.features for s in scales), default=1))


def build_diagram(analysis: Analysis, max_blocks: int = 4,
                  expanded: Iterable[str] = (), scale: DiagramScale | None = None) -> Diagram:
    """The diagram of ``analysis`` (see the module doc for the conventions); ``scale``: sizes
    relative to this instead of the network's own largest side and widest layer."""
    open_stages = set(expanded)
    units = [u for u in _units(analysis.rows) if u.rows]
    scale = scale or _own_scale(analysis, units)
    largest, widest, features = scale.largest, scale.widest, scale.features

    # group each stage's units; collapse long stages
    groups: list[tuple[str, list[_Unit]]] = []
    for u in units:
        stage = u.key.split(".")[0] if u.key.startswith("stage") else ""
        if stage and groups and groups[-1][0] == stage:
            groups[-1][1].append(u)
        else:
            groups.append((stage, [u]))

    boxes: list[Box] = []
    arcs: list[Arc] = []
    collapsed: list[str] = []
    x = 0.0
    in_shape = tuple(analysis.input_shape)
    if len(in_shape) >= 2 and all(d == 1 for d in in_shape[1:]):  # an MLP's input: a vector
        in_shape = in_shape[:1]
    thick, height, depth = _geometry(in_shape, largest, widest, max(features, in_shape[0]))
    placed = {r.index for u in units for r in u.rows}
    leading = tuple(r.index for r in analysis.rows if r.index not in placed)  # a flatten
    boxes.append(Box("input", "input", "input", tuple(analysis.input_shape), leading, 0, 0,
                     (1,) * max(len(analysis.input_shape) - 1, 1), x, thick, height, depth))
    x += thick + depth + GAP

    def add(key: str, label: str, kind: str, members: list[_Unit], stage: str) -> None:
        nonlocal x
        rows = [r for u in members for r in u.rows]
        out = members[-1].out
        shape = tuple(out.out_shape)
        t, h, d = _geometry(shape, largest, widest, features)
        residual = any(_is_shortcut(r) for r in rows)
        prev = boxes[-1]
        box = Box(key, label, kind, shape, tuple(r.index for r in rows),
                  sum(r.num_params for r in rows), sum(r.macs for r in rows),
                  tuple(out.rf) if out.rf is not None else None, x, t, h, d, residual,
                  len(members), stage)
        boxes.append(box)
        if residual:
            top = max(prev.height / 2 + prev.depth, h / 2 + d) + 12.0
            arcs.append(Arc(prev.x + prev.thick, x + t, top, key))
        x += t + d + GAP

    for stage, members in groups:
        blocks = [u for u in members if _kind(u) != "pool"]
        if stage and len(blocks) > max_blocks and stage not in open_stages:
            collapsed.append(stage)
            pools = [u for u in members if _kind(u) == "pool" and u is members[-1]]
            body = [u for u in members if u not in pools]
            kinds = {_kind(u) for u in body}
            what = "blocks" if "block" in kinds else "layers"
            add(stage, f"{stage} x {len(body)} {what}", "stage", body, stage)
            for p in pools:
                add(p.key, _label(p, "pool"), "pool", [p], stage)
            continue
        for u in members:
            kind = _kind(u)
            add(u.key, _label(u, kind), kind, [u], stage)
    return Diagram(boxes, arcs, collapsed)


def main_row(analysis: Analysis, box: Box) -> LayerRow | None:
    """The row the layer table selects for ``box``: its first conv or linear layer off the
    shortcut path (a block's first conv), else its first row; None for a box without rows."""
    picked = [analysis.rows[i] for i in box.rows if i < len(analysis.rows)]
    for row in picked:
        if _is_weight(row) and not _is_shortcut(row):
            return row
    return picked[0] if picked else None


# -- SVG ---------------------------------------------------------------------------------------
_FILL = {"input": "#d9d9d9", "conv": "#9ecae1", "block": "#6baed6", "stage": "#4292c6",
         "pool": "#fdd0a2", "dense": "#a1d99b"}


def cuboid(box: Box) -> dict[str, list[tuple[float, float]]]:
    """The three visible faces of a box (front, top, side) as polygons, y up."""
    x0, x1 = box.x, box.x + box.thick
    y0, y1 = -box.height / 2, box.height / 2
    d = box.depth
    return {
        "front": [(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
        "top": [(x0, y1), (x1, y1), (x1 + d, y1 + d), (x0 + d, y1 + d)],
        "side": [(x1, y0), (x1 + d, y0 + d), (x1 + d, y1 + d), (x1, y1)],
    }


def to_svg(diagram: Diagram, title: str = "", scale: float = 2.0) -> str:
    """A stand-alone SVG of the diagram (shapes under each box, a title); all text escaped."""
    pad = 20.0
    width = (diagram.width + 2 * pad) * scale
    top = diagram.top + pad + (18 if title else 0)
    bottom = MAX_HEIGHT / 2 + pad + 24
    height = (top + bottom) * scale

    def pt(x: float, y: float) -> str:
        return f"{(x + pad) * scale:.1f},{(top - y) * scale:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
           'font-family="sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>']
    if title:
        out.append(f'<text x="{pad * scale:.1f}" y="{(pad + 4) * scale:.1f}" '
                   f'font-size="{8 * scale:.1f}">{escape(title)}</text>')
    for arc in diagram.arcs:
        mid = (arc.x0 + arc.x1) / 2
        out.append(f'<path d="M {pt(arc.x0, 0)} Q {pt(mid, 2 * arc.top)} {pt(arc.x1, 0)}" '
                   'fill="none" stroke="#e6550d" stroke-width="1.5"/>')
    for box in diagram.boxes:
        fill = _FILL.get(box.kind, "#9ecae1")
        out.append(f"<g><title>{escape(box.hover())}</title>")
        for face, shade in (("side", 0.8), ("top", 0.9), ("front", 1.0)):
            poly = cuboid(box)[face]
            if box.depth == 0 and face != "front":
                continue
            points = " ".join(pt(x, y) for x, y in poly)
            out.append(f'<polygon points="{points}" fill={quoteattr(fill)} '
                       f'fill-opacity="{shade}" stroke="#333" stroke-width="0.6"/>')
        out.append("</g>")
        cx = box.x + box.thick / 2
        for i, text in enumerate((box.label, box.shape_text)):
            out.append(f'<text x="{(cx + pad) * scale:.1f}" '
                       f'y="{(top + MAX_HEIGHT / 2 + 8 + 9 * i) * scale:.1f}" '
                       f'font-size="{4.5 * scale:.1f}" text-anchor="middle">'
                       f"{escape(text)}</text>")
    out.append("</svg>")
    return "\n".join(out)
