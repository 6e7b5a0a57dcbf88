"""The design editor: widgets that edit the NetworkSpec held in ``st.session_state.spec``.

Each widget's key carries ``gen`` (bumped when the design is replaced wholesale) and its
on-change callback writes one field back into a new frozen spec. Stage operations (add, remove,
duplicate, move) rebuild the stage tuple and bump ``gen``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.errors import Problem
from playground.layers import ACTIVATIONS, INITS, NORMS
from playground.limits import BOUNDS
from playground.spec import (
    Defaults,
    HeadSpec,
    InputSpec,
    NetworkSpec,
    PoolSpec,
    StageSpec,
    StemSpec,
)
from ui.state import set_spec
from ui.text import md_escape

BLOCKS = {
    "conv": "conv layers",
    "basic": "basic residual blocks",
    "bottleneck": "bottleneck blocks",
    "linear": "linear layers (MLP)",
}
POOLS = ["none", "max", "avg"]
HEAD_POOLS = {
    "avg": "global average pool",
    "max": "global max pool",
    "adaptive_avg": "adaptive average pool to n x n",
    "adaptive_max": "adaptive max pool to n x n",
    "flatten": "flatten (no pooling)",
}


def _widen(lo: Any, hi: Any, value: Any) -> tuple[Any, Any]:
    """Widget bounds that include ``value``: Streamlit raises for a value outside them, and a
    design from a file or a link is only as bounded as the schema."""
    return min(lo, value), max(hi, value)


def _span(field: str, value: int) -> tuple[int, int]:
    """The schema's bounds for ``field`` (``playground.limits.BOUNDS``), widened to ``value``."""
    return _widen(*BOUNDS[field], value)


def _int_input(col: Any, label: str, field: str, value: int, *args: Any, **kwargs: Any) -> None:
    """A whole-number box for a spec field, bounded as the schema bounds it."""
    col.number_input(label, *_span(field, value), value, *args, **kwargs)


def _float_input(col: Any, label: str, lo: float, hi: float, value: float, *args: Any,
                 **kwargs: Any) -> None:
    col.number_input(label, *_widen(lo, hi, value), value, *args, **kwargs)


def problem_text(p: Problem) -> str:
    """One problem as markdown: where (bold), what, and the fix; every part escaped, since
    messages quote the values a file or a link supplied."""
    text = f"**{md_escape(p.where)}**: {md_escape(p.message)}"
    return text + (f". *Fix:* {md_escape(p.hint)}" if p.hint else "")


def _k(*parts: object) -> str:
    return f"g{st.session_state.gen}_" + "_".join(str(p) for p in parts)


def _spec():
    return st.session_state.spec


def _put(spec) -> None:
    st.session_state.spec = spec


# -- callbacks ---------------------------------------------------------------------------------
def _stale(key: str) -> bool:
    """True for a widget of a design that has since been replaced: ignore its events."""
    return not key.startswith(f"g{st.session_state.gen}_")


def _set_stage(i: int, field: str, key: str) -> None:
    if _stale(key):
        return
    _put(_spec().with_stage(i, **{field: st.session_state[key]}))


def _set_stage_inherit(i: int, field: str, key: str) -> None:
    if _stale(key):
        return
    value = st.session_state[key]
    _put(_spec().with_stage(i, **{field: None if value == "inherit" else value}))


def _set_pool(i: int | None, kind_key: str, k_key: str, s_key: str, p_key: str) -> None:
    if _stale(kind_key):
        return
    kind = st.session_state[kind_key]
    pool = None
    if kind != "none":
        k = int(st.session_state.get(k_key) or 2)
        s = int(st.session_state.get(s_key) or k)
        pad = int(st.session_state.get(p_key) or 0)
        pool = PoolSpec(kind=kind, kernel=k, stride=s, padding=pad)
    spec = _spec()
    if i is None:
        _put(spec.model_copy(update={"stem": spec.stem.model_copy(update={"pool": pool})}))
    else:
        _put(spec.with_stage(i, pool=pool))


def _set_part(part: str, field: str, key: str, convert=None) -> None:
    if _stale(key):
        return
    spec = _spec()
    value = st.session_state[key]
    if convert is not None:
        value = convert(value)
    current = getattr(spec, part)
    _put(spec.model_copy(update={part: current.model_copy(update={field: value})}))


def _set_top(field: str, key: str) -> None:
    if _stale(key):
        return
    _put(_spec().model_copy(update={field: st.session_state[key]}))


def _on_expand(i: int, key: str) -> None:
    opened = set(st.session_state.open_stages)
    if st.session_state[key]:
        opened.add(i)
    else:
        opened.discard(i)
    st.session_state.open_stages = opened


def _stage_op(op: str, i: int) -> None:
    stages = list(_spec().stages)
    if op == "up" and i > 0:
        stages[i - 1], stages[i] = stages[i], stages[i - 1]
    elif op == "down" and i < len(stages) - 1:
        stages[i + 1], stages[i] = stages[i], stages[i + 1]
    elif op == "dup":
        stages.insert(i + 1, stages[i])
    elif op == "remove" and len(stages) > 1:
        stages.pop(i)
    elif op == "add":
        last = stages[-1] if stages else StageSpec()
        stages.append(last.model_copy(update={"pool": None}))
    st.session_state.open_stages = set()
    set_spec(_spec().with_stages(stages))


def _toggle_stem(key: str) -> None:
    if _stale(key):
        return
    spec = _spec()
    stem = StemSpec(width=64, kernel=3, stride=1) if st.session_state[key] else None
    _put(spec.model_copy(update={"stem": stem}))


def _set_hidden(key: str) -> None:
    if _stale(key):
        return
    text = st.session_state[key]
    try:
        hidden = tuple(int(p) for p in text.replace(",", " ").split())
    except ValueError:
        st.session_state.flash.append(
            ("error", f"Hidden layers must be whole numbers separated by commas; got {text!r}.")
        )
        return
    _set_part_value("head", "hidden", hidden)


def _set_part_value(part: str, field: str, value: Any) -> None:
    spec = _spec()
    current = getattr(spec, part)
    _put(spec.model_copy(update={part: current.model_copy(update={field: value})}))


def _set_input(field: str, key: str) -> None:
    _set_part("input", field, key, int)


# -- widgets -----------------------------------------------------------------------------------
def input_editor() -> None:
    spec = _spec()
    c1, c4 = st.columns(2)
    c2, c3 = st.columns(2)
    _int_input(c1, "Channels", "channels", spec.input.channels, key=_k("in_c"),
               on_change=_set_input, args=("channels", _k("in_c")),
               help="1 for grey images, 3 for RGB, 2 for 2-D points (with 1x1 size)")
    _int_input(c2, "Height (px)", "height", spec.input.height, key=_k("in_h"),
               on_change=_set_input, args=("height", _k("in_h")))
    _int_input(c3, "Width (px)", "input_width", spec.input.width, key=_k("in_w"),
               on_change=_set_input, args=("width", _k("in_w")))
    _int_input(c4, "Classes", "num_classes", spec.num_classes, key=_k("classes"),
               on_change=_set_top, args=("num_classes", _k("classes")))


def defaults_editor() -> None:
    d: Defaults = _spec().defaults
    c1, c2, c3 = st.columns(3)
    acts, norms, inits = ACTIVATIONS.names(), NORMS.names(), INITS.names()
    c1.selectbox("Activation", acts, acts.index(d.activation) if d.activation in acts else 0,
                 key=_k("d_act"), on_change=_set_part, args=("defaults", "activation", _k("d_act")),
                 help="\n".join(f"- **{n}**: {ACTIVATIONS.help(n)}" for n in acts))
    c2.selectbox("Normalisation", norms, norms.index(d.norm) if d.norm in norms else 0,
                 key=_k("d_norm"), on_change=_set_part, args=("defaults", "norm", _k("d_norm")),
                 help="\n".join(f"- **{n}**: {NORMS.help(n)}" for n in norms))
    c3.selectbox("Initialisation", inits, inits.index(d.init) if d.init in inits else 0,
                 key=_k("d_init"), on_change=_set_part, args=("defaults", "init", _k("d_init")),
                 help="\n".join(f"- **{n}**: {INITS.help(n)}" for n in inits))
    c4, c5, c6 = st.columns(3)
    _float_input(c4, "Dropout", 0.0, 0.95, float(d.dropout), 0.05, key=_k("d_drop"),
                 on_change=_set_part, args=("defaults", "dropout", _k("d_drop")),
                 help="Probability of zeroing a unit after each activation (training only).")
    _float_input(c5, "Init std", 1e-4, 10.0, float(d.init_std), key=_k("d_std"), format="%.4f",
                 on_change=_set_part, args=("defaults", "init_std", _k("d_std")),
                 disabled=d.init != "normal", help="Standard deviation for the 'normal' init.")
    _int_input(c6, "Group-norm groups", "norm_groups", d.norm_groups, key=_k("d_groups"),
               on_change=_set_part, args=("defaults", "norm_groups", _k("d_groups")),
               disabled=d.norm != "group" and not any(s.norm == "group"
                                                      for s in _spec().stages))


def stem_editor() -> None:
    spec = _spec()
    st.toggle("Stem (one convolution before the stages, as ResNet's 7x7/2)",
              spec.stem is not None, key=_k("stem_on"), on_change=_toggle_stem,
              args=(_k("stem_on"),))
    if spec.stem is None:
        return
    stem = spec.stem
    c1, c2, c3 = st.columns(3)
    _int_input(c1, "Width", "width", stem.width, key=_k("stem_w"), on_change=_set_part,
               args=("stem", "width", _k("stem_w")))
    _int_input(c2, "Kernel", "kernel", stem.kernel, key=_k("stem_k"), on_change=_set_part,
               args=("stem", "kernel", _k("stem_k")))
    _int_input(c3, "Stride", "stride", stem.stride, key=_k("stem_s"), on_change=_set_part,
               args=("stem", "stride", _k("stem_s")))
    _pool_widgets(None, stem.pool, "stem")


def _pool_widgets(i: int | None, pool: PoolSpec | None, tag: str) -> None:
    """One row: pool kind, kernel, stride, padding (the last three only when pooling)."""
    kind = pool.kind if pool else "none"
    keys = (_k(tag, "pk"), _k(tag, "pkk"), _k(tag, "pks"), _k(tag, "pkp"))
    a, b, c, d = st.columns(4)
    a.selectbox("Pool after", POOLS, POOLS.index(kind), key=keys[0], on_change=_set_pool,
                args=(i, *keys), help="Pooling after the stage: none, max or average.")
    if pool is not None and pool.kind != "none":
        _int_input(b, "Pool kernel", "kernel", pool.kernel, key=keys[1], on_change=_set_pool,
                   args=(i, *keys))
        _int_input(c, "Pool stride", "stride", pool.effective_stride, key=keys[2],
                   on_change=_set_pool, args=(i, *keys))
        _int_input(d, "Pool padding", "pool_padding", pool.padding, key=keys[3],
                   on_change=_set_pool, args=(i, *keys))


def _inherit_select(col, label: str, i: int, field: str, names: list[str], value: str | None,
                    default: str) -> None:
    options = ["inherit", *names]
    col.selectbox(label, options, options.index(value) if value in options else 0,
                  key=_k("s", i, field), on_change=_set_stage_inherit,
                  args=(i, field, _k("s", i, field)),
                  format_func=lambda v: f"inherit ({default})" if v == "inherit" else v)


STAGE_SECTIONS = ["Shape", "Layers", "Pooling"]


def _shape_section(i: int, stage: StageSpec, spec: NetworkSpec) -> None:
    """Block, depth, width, kernel, stride, padding."""
    c1, c2, c3 = st.columns(3)
    blocks = list(BLOCKS)
    c1.selectbox("Block", blocks, blocks.index(stage.block), key=_k("s", i, "block"),
                 format_func=BLOCKS.get, on_change=_set_stage,
                 args=(i, "block", _k("s", i, "block")))
    _int_input(c2, "Depth", "depth", stage.depth, key=_k("s", i, "depth"),
               on_change=_set_stage, args=(i, "depth", _k("s", i, "depth")),
               help="Layers (conv, linear) or blocks (basic, bottleneck) in this stage.")
    _int_input(c3, "Width", "width", stage.width, key=_k("s", i, "width"),
               on_change=_set_stage, args=(i, "width", _k("s", i, "width")),
               help="Output channels (features for linear). Bottleneck blocks output "
               "width x expansion channels.")
    if stage.block != "linear":
        c4, c5, c6 = st.columns(3)
        _int_input(c4, "Kernel", "kernel", stage.kernel, key=_k("s", i, "kernel"),
                   on_change=_set_stage, args=(i, "kernel", _k("s", i, "kernel")))
        _int_input(c5, "Stride (first layer)", "stride", stage.stride,
                   key=_k("s", i, "stride"), on_change=_set_stage,
                   args=(i, "stride", _k("s", i, "stride")))
        lo, hi = _span("padding", stage.padding if isinstance(stage.padding, int) else 0)
        pad_options = ["same", *range(lo, hi + 1)]
        c6.selectbox("Padding", pad_options,
                     pad_options.index(stage.padding) if stage.padding in pad_options else 0,
                     key=_k("s", i, "padding"), on_change=_set_stage,
                     args=(i, "padding", _k("s", i, "padding")),
                     help="'same' = kernel // 2 (keeps the size at stride 1)")


def _layers_section(i: int, stage: StageSpec, spec: NetworkSpec) -> None:
    """Activation, normalisation, init (each may inherit the defaults), residual, dropout."""
    c7, c8, c9 = st.columns(3)
    d = spec.defaults
    _inherit_select(c7, "Activation", i, "activation", ACTIVATIONS.names(), stage.activation,
                    d.activation)
    _inherit_select(c8, "Normalisation", i, "norm", NORMS.names(), stage.norm, d.norm)
    _inherit_select(c9, "Init", i, "init", INITS.names(), stage.init, d.init)
    c10, c11 = st.columns(2)
    residual_default = stage.block in {"basic", "bottleneck"}
    c10.toggle("Residual", stage.residual if stage.residual is not None else residual_default,
               key=_k("s", i, "residual"), on_change=_set_stage,
               args=(i, "residual", _k("s", i, "residual")),
               help="Add each layer's/block's input to its output (He et al. 2016). Off on "
               "basic blocks gives the 'plain' network.")
    dropout = float(stage.dropout if stage.dropout is not None else d.dropout)
    _float_input(c11, "Dropout", 0.0, 0.95, dropout, 0.05,
                 key=_k("s", i, "dropout"), on_change=_set_stage,
                 args=(i, "dropout", _k("s", i, "dropout")))


def _pool_section(i: int, stage: StageSpec, spec: NetworkSpec) -> None:
    """Pooling after the stage (a linear stage has none)."""
    if stage.block == "linear":
        st.caption("A linear stage has no pooling.")
        return
    _pool_widgets(i, stage.pool, f"s{i}")


def stage_editor(i: int, stage: StageSpec, problems: list[Problem], summary: str) -> None:
    spec = _spec()
    title = f"Stage {i + 1}: {stage.depth} x {BLOCKS[stage.block]}, width {stage.width}"
    if stage.stride != 1:
        title += f", stride {stage.stride}"
    title += f"  ->  {summary}" if summary else ""
    if problems:
        title = ":red[:material/error:] " + title
    # The expander's identity includes its label, which changes with every edit; keep the
    # open/closed state ourselves so a stage stays open while it is being edited.
    is_open = i in st.session_state.open_stages or bool(problems)
    box = st.expander(title, expanded=is_open, key=_k("exp", i), on_change=_on_expand,
                      args=(i, _k("exp", i)))
    with box:
        for p in problems:
            st.error(problem_text(p))
        if box.open is False:  # lazy: a closed stage draws no widgets (None = not lazy)
            return
        # Lazy sections: only the open one draws its widgets (a stage's ~20 widgets cost the
        # server about a millisecond each on every edit; issue 12). Shape first: it holds
        # what most edits change.
        sections = st.tabs(STAGE_SECTIONS, key=_k("sec", i), on_change="rerun")
        for tab, draw in zip(sections, (_shape_section, _layers_section, _pool_section),
                             strict=True):
            with tab:
                if tab.open is not False:
                    draw(i, stage, spec)
        b1, b2, b3, b4, _ = st.columns([1, 1, 1, 1, 3])
        n = len(spec.stages)
        b1.button(":material/arrow_upward:", key=_k("s", i, "up"), on_click=_stage_op,
                  args=("up", i), disabled=i == 0, help="Move this stage up")
        b2.button(":material/arrow_downward:", key=_k("s", i, "down"), on_click=_stage_op,
                  args=("down", i), disabled=i == n - 1, help="Move this stage down")
        b3.button(":material/content_copy:", key=_k("s", i, "dup"), on_click=_stage_op,
                  args=("dup", i), help="Duplicate this stage")
        b4.button(":material/delete:", key=_k("s", i, "rm"), on_click=_stage_op,
                  args=("remove", i), disabled=n == 1, help="Remove this stage")


def head_editor() -> None:
    hd: HeadSpec = _spec().head
    c1, c2, c3, c4 = st.columns(4)
    pools = list(HEAD_POOLS)
    c1.selectbox("Head pooling", pools, pools.index(hd.pool), key=_k("h_pool"),
                 format_func=HEAD_POOLS.get, on_change=_set_part,
                 args=("head", "pool", _k("h_pool")))
    _int_input(c2, "Pool to n x n", "pool_size", hd.pool_size, key=_k("h_size"),
               on_change=_set_part, args=("head", "pool_size", _k("h_size")),
               disabled=not hd.pool.startswith("adaptive"))
    c3.text_input("Hidden layers", ", ".join(str(h) for h in hd.hidden), key=_k("h_hidden"),
                  on_change=_set_hidden, args=(_k("h_hidden"),),
                  help="Sizes of fully connected layers before the classifier, e.g. 4096, 4096")
    _float_input(c4, "Head dropout", 0.0, 0.95, float(hd.dropout), 0.05, key=_k("h_drop"),
                 on_change=_set_part, args=("head", "dropout", _k("h_drop")))


def add_stage_button() -> None:
    st.button("Add stage", icon=":material/add:", key=_k("add"), on_click=_stage_op,
              args=("add", 0))


def new_input(c: int, h: int, w: int) -> InputSpec:
    return InputSpec(channels=c, height=h, width=w)


def _set_zoo(field: str, key: str) -> None:
    if _stale(key):
        return
    zoo = dict(st.session_state.zoo)
    value = int(st.session_state[key])
    if field == "side":
        zoo["input"] = (3, value, value)
    else:
        zoo[field] = value
    st.session_state.zoo = zoo


def zoo_editor() -> None:
    """Input size and classes for a torchvision model (its layers are fixed)."""
    zoo = st.session_state.zoo
    c1, c2 = st.columns(2)
    c1.number_input("Input size (px, square)", 32, 1024, int(zoo["input"][1]), 16,
                    key=_k("zoo_side"), on_change=_set_zoo, args=("side", _k("zoo_side")),
                    help="ViT needs exactly 224; Swin a multiple of 32.")
    c2.number_input("Classes", 1, 100_000, int(zoo["num_classes"]), key=_k("zoo_classes"),
                    on_change=_set_zoo, args=("num_classes", _k("zoo_classes")))
