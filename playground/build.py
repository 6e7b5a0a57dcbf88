"""Spec -> plan -> ``nn.Module``, carrying the shape through one loop (yolov5 ``parse_model``).

One walker serves both validation and building: it follows the spec layer by layer with integer
shape arithmetic (no tensors), records a :class:`PlanEntry` per layer and collects every
:class:`~playground.errors.Problem` it meets instead of stopping at the first. ``validate`` runs
it without making modules; ``build_model`` runs it making modules and raises ``SpecError`` if any
problem was found.

Output size of a convolution or pooling window (PyTorch ``Conv2d`` docs)::

    out = floor((i + 2p - d(k - 1) - 1) / s) + 1

Module names map back to the spec: ``stem.conv``, ``stage2.layer1.conv``,
``stage3.block1.conv2``, ``stage3.block1.shortcut.conv``, ``stage4.pool``, ``head.fc1``,
``head.fc``. Stages, layers and blocks count from 1 in names and messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from playground.errors import Problem, SpecError
from playground.layers import (
    init_layer,
    make_activation,
    make_norm,
    norm_is_affine_shift,
)
from playground.limits import MAX_LAYER_PARAMS, MAX_TOTAL_STRIDE
from playground.spec import NetworkSpec, PoolSpec, StageSpec, spec_problems

# Caps that keep one request from taking the server down live in playground/limits.py.

Shape = tuple[int, ...]  # (C, H, W) for feature maps, (F,) for flat features


@dataclass(frozen=True)
class PlanEntry:
    """One layer as the spec sees it: module name, plain-language place, stage, shapes."""

    name: str
    where: str
    stage: int | None
    kind: str
    in_shape: Shape
    out_shape: Shape


@dataclass
class Plan:
    entries: list[PlanEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    out_shape: Shape | None = None

    def labels(self) -> dict[str, PlanEntry]:
        return {e.name: e for e in self.entries}


def conv_out(i: int, k: int, s: int, p: int, d: int = 1) -> int:
    """floor((i + 2p - d(k-1) - 1)/s) + 1, PyTorch's Conv2d/MaxPool2d output size."""
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def same_padding(kernel: int, padding: int | str) -> int:
    """"same" means k // 2 (exactly "same" for odd kernels at stride 1)."""
    return kernel // 2 if padding == "same" else int(padding)


# -- modules -----------------------------------------------------------------------------------
class PadShortcut(nn.Module):
    """Option A shortcut (He et al. 2016, CIFAR): strided identity, zero-padded channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            front = self.extra // 2
            x = F.pad(x, (0, 0, 0, 0, front, self.extra - front))  # pad the channel dim
        return x


class Residual(nn.Module):
    """``act(body(x) + shortcut(x))``; children are registered flat so names stay short."""

    def __init__(self, body: list[tuple[str, nn.Module]], shortcut: nn.Module, act: nn.Module,
                 act_name: str, tail: list[tuple[str, nn.Module]] | None = None):
        super().__init__()
        self._body = [n for n, _ in body]
        for n, m in body:
            self.add_module(n, m)
        self.shortcut = shortcut
        self.add_module(act_name, act)
        self._act = act_name
        self._tail = [n for n, _ in tail or []]
        for n, m in tail or []:
            self.add_module(n, m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for n in self._body:
            out = getattr(self, n)(out)
        out = getattr(self, self._act)(out + self.shortcut(x))
        for n in self._tail:
            out = getattr(self, n)(out)
        return out


class PlaygroundNet(nn.Module):
    """A network built from a :class:`NetworkSpec`; ``spec`` is kept for export and labels."""

    def __init__(self, spec: NetworkSpec, parts: list[tuple[str, nn.Module]]):
        super().__init__()
        self.spec = spec
        self._parts = [n for n, _ in parts]
        for n, m in parts:
            self.add_module(n, m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for n in self._parts:
            x = getattr(self, n)(x)
        return x


# -- the walker --------------------------------------------------------------------------------
def _fmt(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


class _Walker:
    def __init__(self, spec: NetworkSpec, make: bool):
        self.spec = spec
        self.make = make
        self.plan = Plan()
        self.shape: Shape = spec.input.shape
        self.ok = True  # False once the shape can no longer be tracked

    # bookkeeping
    def problem(self, where: str, message: str, hint: str = "", stage: int | None = None,
                path: tuple[str | int, ...] = ()) -> None:
        self.plan.problems.append(Problem(where, message, hint, path=path, stage=stage))

    def record(self, name: str, where: str, stage: int | None, kind: str, out: Shape,
               inp: Shape | None = None) -> None:
        self.plan.entries.append(
            PlanEntry(name, where, stage, kind, inp or self.shape, out)
        )
        self.shape = out

    # layers: each returns a module (or None when not making) and advances self.shape
    def conv(self, name: str, where: str, stage: int | None, cout: int, k: int, s: int, p: int,
             bias: bool, path: tuple[str | int, ...] = ()) -> nn.Module | None:
        if not self.ok:
            return None
        if len(self.shape) != 3:
            self.problem(where, "a convolution needs a feature map, but its input is flat "
                         f"features ({_fmt(self.shape)})",
                         "put conv stages before linear stages", stage, path)
            self.ok = False
            return None
        cin, h, w = self.shape
        for side in (h, w):
            if k > side + 2 * p:
                self.problem(
                    where, f"its input is {h}x{w}, smaller than the {k}x{k} kernel even with "
                    f"padding {p} ({side} + 2·{p} = {side + 2 * p})",
                    "lower a stride or remove a pool earlier, add padding, or use a smaller kernel",
                    stage, path)
                self.ok = False
                return None
        if not _layer_params(self, where, stage, cin * cout * k * k, path):
            return None
        out = (cout, conv_out(h, k, s, p), conv_out(w, k, s, p))
        self.record(name, where, stage, "conv", out)
        if not self.make:
            return None
        return nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=bias)

    def pool(self, name: str, where: str, stage: int | None, pool: PoolSpec,
             path: tuple[str | int, ...] = ()) -> nn.Module | None:
        if not self.ok or pool.kind == "none":
            return None
        k, s, p = pool.kernel, pool.effective_stride, pool.padding
        if len(self.shape) != 3:
            self.problem(where, "pooling needs a feature map, but its input is flat features",
                         "remove this pool", stage, path)
            self.ok = False
            return None
        if p * 2 > k:
            self.problem(where, f"padding {p} is more than half the kernel {k}",
                         f"use padding at most {k // 2}", stage, path)
            self.ok = False
            return None
        c, h, w = self.shape
        if k > min(h, w) + 2 * p:
            self.problem(where, f"its input is {h}x{w}, smaller than the {k}x{k} kernel",
                         "remove this pool or lower a stride earlier", stage, path)
            self.ok = False
            return None
        out = (c, conv_out(h, k, s, p), conv_out(w, k, s, p))
        self.record(name, where, stage, f"{pool.kind}_pool", out)
        if not self.make:
            return None
        if pool.kind == "max":
            return nn.MaxPool2d(k, stride=s, padding=p)
        return nn.AvgPool2d(k, stride=s, padding=p)

    def norm(self, name: str, where: str, stage: int | None, norm: str,
             groups: int) -> nn.Module | None:
        if not self.ok or norm == "none":
            return None
        feats = self.shape[0]
        if norm == "group" and feats % groups:
            self.problem(where, f"group norm with {groups} groups cannot split {feats} channels",
                         f"use a width divisible by {groups} or change norm_groups", stage,
                         ("defaults", "norm_groups"))
            return None
        self.record(name, where, stage, f"{norm}_norm", self.shape)
        if not self.make:
            return None
        return make_norm(norm, feats, groups, len(self.shape) == 3)

    def simple(self, name: str, where: str, stage: int | None, kind: str,
               module: nn.Module | None) -> nn.Module | None:
        """A layer that keeps the shape (activation, dropout)."""
        if not self.ok:
            return None
        self.record(name, where, stage, kind, self.shape)
        return module if self.make else None

    def flatten(self, name: str, where: str, stage: int | None) -> nn.Module | None:
        if not self.ok:
            return None
        out = (int(torch.Size(self.shape).numel()),)
        self.record(name, where, stage, "flatten", out)
        return nn.Flatten() if self.make else None

    def linear(self, name: str, where: str, stage: int | None, out_f: int,
               bias: bool) -> nn.Module | None:
        if not self.ok:
            return None
        in_f = self.shape[0]
        if not _layer_params(self, where, stage, in_f * out_f, ()):
            return None
        self.record(name, where, stage, "linear", (out_f,))
        return nn.Linear(in_f, out_f, bias=bias) if self.make else None


def _seq(parts: list[tuple[str, nn.Module | None]]) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in parts if m is not None]


def _container(parts: list[tuple[str, nn.Module | None]]) -> nn.Sequential:
    from collections import OrderedDict

    return nn.Sequential(OrderedDict(_seq(parts)))


def _check_fields(spec: NetworkSpec, w: _Walker) -> None:
    """The schema's checks (types, bounds in ``limits.BOUNDS``, registry names), run again on
    the spec's data: the editor makes specs with ``model_copy``, which does not validate."""
    w.plan.problems.extend(spec_problems(spec.to_dict()))
    if w.plan.problems:
        return
    total = 1  # the product of every stride along the main path
    pools = [spec.stem.pool] if spec.stem is not None else []
    strides = [spec.stem.stride] if spec.stem is not None else []
    for s in spec.stages:
        strides.append(s.stride)
        pools.append(s.pool)
    for value in strides + [p.effective_stride for p in pools if p and p.kind != "none"]:
        total *= value
    if total > MAX_TOTAL_STRIDE:
        w.problem("network", f"its strides multiply to {total:,}; at most "
                  f"{MAX_TOTAL_STRIDE:,} (the input is at most 1,024 px, so more cannot be used)",
                  "lower some strides or remove some pools")


def _layer_params(w: _Walker, where: str, stage: int | None, count: int,
                  path: tuple[str | int, ...]) -> bool:
    """Refuse one layer with more than ``MAX_LAYER_PARAMS`` weights (False = refused)."""
    if count <= MAX_LAYER_PARAMS:
        return True
    w.problem(where, f"this layer would hold {count:,} parameters; at most "
              f"{MAX_LAYER_PARAMS:,}", "lower the width or pool the features to fewer values "
              "first", stage, path)
    w.ok = False
    return False


def _pool_label(pool: PoolSpec) -> str:
    return f"{pool.kind}-pool {pool.kernel}x{pool.kernel}"


def _walk(spec: NetworkSpec, make: bool) -> tuple[Plan, list[tuple[str, nn.Module]]]:
    w = _Walker(spec, make)
    _check_fields(spec, w)
    if w.plan.problems:  # shapes are meaningless with broken fields
        return w.plan, []
    d = spec.defaults
    parts: list[tuple[str, nn.Module | None]] = []

    def bias_for(norm: str) -> bool:
        return (not norm_is_affine_shift(norm)) if d.bias is None else d.bias

    # stem
    if spec.stem is not None:
        st = spec.stem
        p = same_padding(st.kernel, st.padding)
        items = [
            ("conv", w.conv("stem.conv", f"stem (conv {st.kernel}x{st.kernel})", None, st.width,
                            st.kernel, st.stride, p, bias_for(d.norm), ("stem",))),
            ("norm", w.norm("stem.norm", "stem (norm)", None, d.norm, d.norm_groups)),
            ("act", w.simple("stem.act", "stem (activation)", None, "act",
                             make_activation(d.activation) if make else None)),
        ]
        if st.pool is not None:
            items.append(("pool", w.pool("stem.pool", f"stem ({_pool_label(st.pool)})", None,
                                         st.pool, ("stem", "pool"))))
        stem = _container(items) if make else None
        if stem is not None:
            init_layer(stem.conv, d.init, d.activation, d.init_std)
        parts.append(("stem", stem))

    for i, s in enumerate(spec.stages):
        parts.append((f"stage{i + 1}", _stage(spec, i, s, w, bias_for)))

    _head(spec, w, parts)
    plan = w.plan
    plan.out_shape = w.shape if w.ok else None
    return plan, _seq(parts)


def _stage(spec: NetworkSpec, i: int, s: StageSpec, w: _Walker, bias_for) -> nn.Module | None:
    make = w.make
    d = spec.defaults
    act = spec.stage_value(i, "activation")
    norm = spec.stage_value(i, "norm")
    init = spec.stage_value(i, "init")
    drop = spec.stage_value(i, "dropout")
    residual = s.residual if s.residual is not None else s.block in {"basic", "bottleneck"}
    pre = f"stage{i + 1}"
    sname = f"stage {i + 1}"
    items: list[tuple[str, nn.Module | None]] = []
    path: tuple[str | int, ...] = ("stages", i)

    def A() -> nn.Module | None:
        return make_activation(act) if make else None

    def D() -> nn.Module | None:
        return nn.Dropout(drop) if make and drop > 0 else None

    if s.block == "linear" and len(w.shape) == 3 and w.ok:
        items.append(("flatten", w.flatten(f"{pre}.flatten", f"{sname} (flatten)", i)))

    for j in range(s.depth):
        stride = s.stride if j == 0 else 1
        if s.block in {"conv", "linear"}:
            unit = f"layer{j + 1}"
            base = f"{pre}.{unit}"
            where = f"{sname}, layer {j + 1}"
            in_shape = w.shape
            if s.block == "conv":
                p = same_padding(s.kernel, s.padding)
                main = w.conv(f"{base}.conv", f"{where} (conv {s.kernel}x{s.kernel})", i,
                              s.width, s.kernel, stride, p, bias_for(norm), path)
                mname = "conv"
            else:
                if stride != 1 and j == 0 and s.stride != 1:
                    w.problem(sname, "a linear stage has no stride", "set stride to 1", i,
                              (*path, "stride"))
                main = w.linear(f"{base}.fc", f"{where} (linear {s.width})", i, s.width,
                                bias_for(norm) if norm != "layer" else True)
                mname = "fc"
            body = [
                (mname, main),
                ("norm", w.norm(f"{base}.norm", f"{where} (norm)", i, norm, d.norm_groups)),
            ]
            if residual:
                sc = _shortcut(w, in_shape, base, where, i, s, stride, path)
                act_m = w.simple(f"{base}.act", f"{where} (activation)", i, "act", A())
                tail = [("drop", w.simple(f"{base}.drop", f"{where} (dropout)", i, "drop", D()))
                        if drop > 0 else ("drop", None)]
                unit_m = Residual(_seq(body), sc, act_m, "act", _seq(tail)) if make else None
            else:
                body.append(("act", w.simple(f"{base}.act", f"{where} (activation)", i, "act",
                                             A())))
                if drop > 0:
                    body.append(("drop", w.simple(f"{base}.drop", f"{where} (dropout)", i,
                                                  "drop", D())))
                unit_m = _container(body) if make else None
        else:
            unit = f"block{j + 1}"
            base = f"{pre}.{unit}"
            where = f"{sname}, block {j + 1}"
            in_shape = w.shape
            k = s.kernel
            p = same_padding(k, s.padding)
            if s.block == "basic":
                out_c = s.width
                body = [
                    ("conv1", w.conv(f"{base}.conv1", f"{where}, conv1 ({k}x{k})", i, out_c, k,
                                     stride, p, bias_for(norm), path)),
                    ("norm1", w.norm(f"{base}.norm1", f"{where}, norm1", i, norm, d.norm_groups)),
                    ("act1", w.simple(f"{base}.act1", f"{where}, act1", i, "act", A())),
                    ("drop", w.simple(f"{base}.drop", f"{where}, dropout", i, "drop", D())
                     if drop > 0 else None),
                    ("conv2", w.conv(f"{base}.conv2", f"{where}, conv2 ({k}x{k})", i, out_c, k,
                                     1, p, bias_for(norm), path)),
                    ("norm2", w.norm(f"{base}.norm2", f"{where}, norm2", i, norm, d.norm_groups)),
                ]
                last_act = "act2"
            else:
                out_c = s.width * s.expansion
                body = [
                    ("conv1", w.conv(f"{base}.conv1", f"{where}, conv1 (1x1)", i, s.width, 1, 1,
                                     0, bias_for(norm), path)),
                    ("norm1", w.norm(f"{base}.norm1", f"{where}, norm1", i, norm, d.norm_groups)),
                    ("act1", w.simple(f"{base}.act1", f"{where}, act1", i, "act", A())),
                    ("conv2", w.conv(f"{base}.conv2", f"{where}, conv2 ({k}x{k})", i, s.width, k,
                                     stride, p, bias_for(norm), path)),
                    ("norm2", w.norm(f"{base}.norm2", f"{where}, norm2", i, norm, d.norm_groups)),
                    ("act2", w.simple(f"{base}.act2", f"{where}, act2", i, "act", A())),
                    ("drop", w.simple(f"{base}.drop", f"{where}, dropout", i, "drop", D())
                     if drop > 0 else None),
                    ("conv3", w.conv(f"{base}.conv3", f"{where}, conv3 (1x1)", i, out_c, 1, 1, 0,
                                     bias_for(norm), path)),
                    ("norm3", w.norm(f"{base}.norm3", f"{where}, norm3", i, norm, d.norm_groups)),
                ]
                last_act = "act3"
            if residual:
                sc = _shortcut(w, in_shape, base, where, i, s, stride, path)
                act_m = w.simple(f"{base}.{last_act}", f"{where}, {last_act}", i, "act", A())
                unit_m = Residual(_seq(body), sc, act_m, last_act) if make else None
            else:
                body.append((last_act, w.simple(f"{base}.{last_act}", f"{where}, {last_act}", i,
                                                "act", A())))
                unit_m = _container(body) if make else None
        if make and unit_m is not None:
            for m in unit_m.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    init_layer(m, init, act, d.init_std)
        items.append((unit, unit_m))
    if s.pool is not None:
        items.append(("pool", w.pool(f"{pre}.pool", f"{sname}, pool ({_pool_label(s.pool)})", i,
                                     s.pool, (*path, "pool"))))
    return _container(items) if make else None


def _shortcut(w: _Walker, in_shape: Shape, base: str, where: str, i: int, s: StageSpec,
              stride: int, path: tuple[str | int, ...]) -> nn.Module | None:
    """Build the shortcut of a residual unit and check that it adds up with the main path.

    Called after the main path was walked: ``w.shape`` is the main path's output.
    """
    if not w.ok:
        return None
    out_shape = w.shape
    if len(in_shape) == 1:  # linear residual
        if in_shape == out_shape:
            return nn.Identity() if w.make else None
        w.record(f"{base}.shortcut.fc", f"{where}, shortcut (linear)", i, "linear", out_shape,
                 in_shape)
        if not w.make:
            return None
        return _container([("fc", nn.Linear(in_shape[0], out_shape[0], bias=False))])
    cin, h, wd = in_shape
    cout = out_shape[0]
    sc_hw = (conv_out(h, 1, stride, 0), conv_out(wd, 1, stride, 0))
    if sc_hw != out_shape[1:]:
        w.problem(f"{where}", f"the residual cannot add up: the main path gives "
                  f"{_fmt(out_shape)} but the shortcut gives {cout}x{sc_hw[0]}x{sc_hw[1]}",
                  "use padding 'same' in residual stages, or turn residual off", i,
                  (*path, "padding"))
        w.ok = False
        return None
    if stride == 1 and cin == cout:
        return nn.Identity() if w.make else None
    saved = w.shape
    if s.shortcut == "pad":
        if cout < cin:
            w.problem(where, f"a 'pad' shortcut can only add channels ({cin} -> {cout})",
                      "use the 'projection' shortcut or a wider stage", i, (*path, "shortcut"))
            w.ok = False
            return None
        w.record(f"{base}.shortcut", f"{where}, shortcut (pad)", i, "shortcut", out_shape,
                 in_shape)
        return PadShortcut(cin, cout, stride) if w.make else None
    norm = w.spec.stage_value(i, "norm")
    d = w.spec.defaults
    w.shape = in_shape
    conv = w.conv(f"{base}.shortcut.conv", f"{where}, shortcut (conv 1x1)", i, cout, 1, stride, 0,
                  (not norm_is_affine_shift(norm)) if d.bias is None else d.bias, path)
    nm = w.norm(f"{base}.shortcut.norm", f"{where}, shortcut norm", i, norm, d.norm_groups)
    w.shape = saved
    if not w.make:
        return None
    return _container([("conv", conv), ("norm", nm)])


def _head(spec: NetworkSpec, w: _Walker, parts: list[tuple[str, nn.Module | None]]) -> None:
    hd = spec.head
    make = w.make
    act = hd.activation or spec.defaults.activation
    items: list[tuple[str, nn.Module | None]] = []
    if w.ok and len(w.shape) == 3:
        c, _h, _wd = w.shape
        if hd.pool in {"avg", "max"}:
            w.record("head.pool", f"head (global {hd.pool}-pool)", None, f"{hd.pool}_pool",
                     (c, 1, 1))
            mod: nn.Module = (
                nn.AdaptiveAvgPool2d(1) if hd.pool == "avg" else nn.AdaptiveMaxPool2d(1)
            )
            items.append(("pool", mod if make else None))
        elif hd.pool in {"adaptive_avg", "adaptive_max"}:
            n = hd.pool_size
            w.record("head.pool", f"head (adaptive pool to {n}x{n})", None, hd.pool, (c, n, n))
            cls = nn.AdaptiveAvgPool2d if hd.pool == "adaptive_avg" else nn.AdaptiveMaxPool2d
            items.append(("pool", cls(n) if make else None))
        items.append(("flatten", w.flatten("head.flatten", "head (flatten)", None)))
    for j, n in enumerate(hd.hidden):
        items.append((f"fc{j + 1}", w.linear(f"head.fc{j + 1}", f"head, hidden {j + 1} "
                                              f"(linear {n})", None, n, True)))
        items.append((f"act{j + 1}", w.simple(f"head.act{j + 1}", f"head, act {j + 1}", None,
                                              "act", make_activation(act) if make else None)))
        if hd.dropout > 0:
            items.append((f"drop{j + 1}", w.simple(f"head.drop{j + 1}", f"head, dropout {j + 1}",
                                                   None, "drop",
                                                   nn.Dropout(hd.dropout) if make else None)))
    items.append(("fc", w.linear("head.fc", f"head (classifier, {spec.num_classes} classes)",
                                 None, spec.num_classes, True)))
    if make:
        head = _container(items)
        for m in head.modules():
            if isinstance(m, nn.Linear):
                init_layer(m, spec.defaults.init, act, spec.defaults.init_std)
        parts.append(("head", head))


# -- public API --------------------------------------------------------------------------------
def plan_network(spec: NetworkSpec) -> Plan:
    """Walk the spec without making modules: layer entries with shapes, and every problem."""
    plan, _ = _walk(spec, make=False)
    return plan


def validate(spec: NetworkSpec) -> list[Problem]:
    """Every problem with ``spec`` (empty when it can be built). No tensors are made."""
    return plan_network(spec).problems


def check(spec: NetworkSpec) -> None:
    """Raise :class:`SpecError` with every problem, or return quietly."""
    problems = validate(spec)
    if problems:
        raise SpecError(problems)


def build_model(spec: NetworkSpec, device: torch.device | str | None = None) -> PlaygroundNet:
    """Build the ``nn.Module`` for ``spec``; its forward maps (N, C, H, W) to (N, num_classes).

    ``device="meta"`` builds without allocating weights (for analysis).
    """
    ctx = torch.device(device) if device is not None else None
    if ctx is not None:
        with ctx:
            plan, parts = _walk(spec, make=True)
    else:
        plan, parts = _walk(spec, make=True)
    if plan.problems:
        raise SpecError(plan.problems)
    model = PlaygroundNet(spec, parts)
    model.plan = plan  # type: ignore[attr-defined]
    return model
