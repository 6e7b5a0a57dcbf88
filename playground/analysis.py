"""Exact, instant per-layer analysis of any ``nn.Module``: shapes, parameters, MACs, receptive
field and memory, one row per layer call, as plain data.

Conventions
-----------
* **MACs as fvcore counts them: one multiply-add = one FLOP** (fvcore ``flop_count.py``);
  ``flops = 2 * macs``. Totals and :attr:`Analysis.macs_by_module` equal
  ``fvcore.nn.FlopCountAnalysis(model.eval(), torch.zeros(batch, *input_shape))``'s ``total()``
  and ``by_module()``: conv and linear/matmul multiply-adds, batch norm (eval: 2 per element
  with affine, 1 without), group/layer/instance norm (5 per element with affine, 4 without),
  adaptive average pooling (1 per input element), nearest/bilinear upsampling (1/4 per output
  element); max/avg pooling, activations, additions and attention kernels
  (``scaled_dot_product_attention``) count 0. The per-op formulas and their sources are in
  :mod:`playground.flops`. The model runs in eval mode (its modes are restored afterwards).
* **Receptive field** (Araujo et al., Distill 2019): ``r_out = r_in + (k-1)·d·j_in``,
  ``j_out = j_in·s`` for every conv/pool window, starting at ``r = j = 1`` on the input; an
  elementwise op (residual add, concat) takes the largest RF of its inputs, so a ResNet's
  shortcut never wins over its main path. ``rf`` is ``None`` where it is not defined by this
  model: after ops that mix all positions (matmul/attention, linear on a flattened vector), and
  after upsampling / transposed convolution (not modelled). Normalisation statistics (group
  norm, layer norm) are ignored, as is usual.
* **depth** of the network = the number of weight layers (conv, linear) on the longest path from
  input to output, tracked per tensor (ResNet-18 -> 18, VGG-16 -> 16). ``LayerRow.depth`` is the
  nesting level of the module's name instead.
* Shapes exclude the batch dimension (for a module with several outputs, the first tensor's).

How it works
------------
The model (built on the ``meta`` device, or a weight-free meta copy of a CPU/GPU model) runs one
forward pass on a meta input, so nothing is computed and no activation memory is allocated.
A :class:`~torch.overrides.TorchFunctionMode` sees every PyTorch builtin called from Python: the
same calls ``torch.jit.trace`` records as ``aten::`` ops for fvcore. Python-level torch functions
(``F.batch_norm``, ``F.interpolate``, ``F.multi_head_attention_forward``...) are run with their
own ``__torch_function__`` check bypassed so that the builtins inside them are seen one by one,
as the tracer sees them. Per-module forward hooks keep a module stack: each op's MACs go to the
innermost module being called ("owner" attribution, as fvcore's default), so the rows add up to
the total exactly.

Per-row plain-text explanations (the formulas with the numbers plugged in) are built in
:mod:`playground.explain`; :func:`explain_row` is re-exported here.
"""

from __future__ import annotations

import copy
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from types import CellType, FunctionType
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from playground.errors import PlaygroundError, UnknownNameError
from playground.explain import explain_row  # re-exported: callers import it from here
from playground.flops import RULES_BY_FUNC, OpRule, arg

__all__ = [
    "OPTIMIZER_STATE_SLOTS",
    "Analysis",
    "AnalysisError",
    "LayerRow",
    "analyse_module",
    "explain_row",
    "training_memory",
]

Shape = tuple[int, ...]
Pair = tuple[int, ...]  # (h, w) for 2-D inputs, (l,) for 1-D, (d, h, w) for 3-D


class AnalysisError(PlaygroundError):
    """The model cannot run on the given input; the message names the failing layer."""


@dataclass
class LayerRow:
    """One call of a leaf module, or the ops a non-leaf module runs in its own ``forward``.

    ``kind`` is ``"layer"`` for a leaf module call and ``"forward"`` for the ops executed in a
    container's own forward code (Swin's attention matmuls, a ViT's class token...). A module
    called more than once gets one row per call, named ``name#2``, ``name#3``...; its parameters
    are counted on the first call only, so ``sum(row.num_params) == Analysis.num_params``.
    ``macs`` cover the whole batch; ``ops`` splits them by fvcore operator name.
    ``rf``/``jump`` describe the output, ``in_rf``/``in_jump`` the input (None: undefined).
    """

    index: int
    name: str
    type: str
    kind: str
    depth: int
    in_shape: Shape
    out_shape: Shape
    num_params: int
    macs: int
    flops: int
    rf: Pair | None
    jump: Pair | None
    in_rf: Pair | None
    in_jump: Pair | None
    act_bytes: int
    batch_size: int
    attrs: dict[str, Any] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Analysis:
    """Totals for the whole model plus one :class:`LayerRow` per layer call.

    ``activation_bytes`` is the sum of the rows' output bytes for ``batch_size`` samples;
    ``macs_by_module`` maps every module name ("" = the root) to the MACs of that module and its
    descendants, as fvcore's ``FlopCountAnalysis.by_module()``. ``receptive_field`` is that of
    the last row whose output still has a spatial extent larger than 1 (None if there is none).
    ``notes`` lists anything the analysis could not see into.
    """

    rows: list[LayerRow]
    input_shape: Shape
    batch_size: int
    num_params: int
    trainable_params: int
    macs: int
    flops: int
    activation_bytes: int
    param_bytes: int
    depth: int
    final_shape: Shape
    receptive_field: Pair | None
    macs_by_module: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- tensor facts


@dataclass(frozen=True)
class _Info:
    """What the pass knows about one tensor: receptive field, jump, weight layers behind it."""

    rf: Pair | None
    jump: Pair | None
    depth: int


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """Tensors in an argument or result, one level into lists/tuples/dicts."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            if isinstance(v, torch.Tensor):
                yield v
    elif isinstance(value, dict):
        for v in value.values():
            if isinstance(v, torch.Tensor):
                yield v


def _first_tensor(value: Any) -> torch.Tensor | None:
    """First tensor anywhere in a nested result (models may return tuples or dicts)."""
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, dict) else value
    if isinstance(items, (list, tuple, type({}.values()))):
        for v in items:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _merge(inputs: list[tuple[_Info, torch.Tensor]], out: torch.Tensor | None,
           extra_depth: int) -> _Info:
    """Elementwise combination: the largest RF; the jump of the inputs that are not broadcast
    (a squeeze-excitation scale of size 1x1 has a huge jump that says nothing about the
    output's positions); undefined if any input's RF is."""
    infos = [i for i, _ in inputs]
    depth = max(i.depth for i in infos) + extra_depth
    first = infos[0]
    if len(infos) == 1:
        return _Info(first.rf, first.jump, depth)
    if any(i.rf is None or i.jump is None for i in infos):
        return _Info(None, None, depth)
    n = len(first.rf)  # type: ignore[arg-type]
    if any(len(i.rf) != n for i in infos):  # type: ignore[arg-type]
        return _Info(None, None, depth)
    rf = tuple(max(i.rf[k] for i in infos) for k in range(n))  # type: ignore[index]
    full = infos
    if out is not None and out.dim() >= n:
        size = out.shape[out.dim() - n:]
        full = [i for i, t in inputs if t.dim() >= n and t.shape[t.dim() - n:] == size] or infos
    jump = tuple(max(i.jump[k] for i in full) for k in range(n))  # type: ignore[index]
    return _Info(rf, jump, depth)


def _index_jump(index: Any, ndim: int, jump: Pair) -> Pair:
    """Jump after ``x[index]``: a slice step on a spatial (trailing) dim multiplies it."""
    items = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(i, slice) or i is Ellipsis for i in items) or \
            sum(i is Ellipsis for i in items) > 1:
        return jump  # integer / advanced indexing: not modelled
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (ndim - len(items) + 1) + items[at + 1:]
    n = len(jump)
    new = list(jump)
    for dim, item in enumerate(items):
        k = dim - (ndim - n)  # position among the trailing spatial dims
        if 0 <= k < n and isinstance(item, slice) and item.step:
            new[k] = jump[k] * int(item.step)
    return tuple(new)


def _no_torch_function(*args: Any, **kwargs: Any) -> bool:
    return False


_CHECKS = ("has_torch_function", "has_torch_function_unary", "has_torch_function_variadic")

try:  # factory functions that follow ``with torch.device(...)``
    from torch.utils._device import _device_constructors

    _CONSTRUCTORS: frozenset[Any] = frozenset(_device_constructors())
except ImportError:  # pragma: no cover - older torch
    _CONSTRUCTORS = frozenset()


def _resolve_builtins(names: tuple[str, ...]) -> list[Any]:
    found = []
    for name in names:
        for ns in (torch, torch._C._VariableFunctions, torch._C._nn, torch.Tensor):
            obj = getattr(ns, name, None)
            if obj is not None and type(obj) is not FunctionType:
                found.append(obj)
    return found


_UNARY = ("relu", "sigmoid", "tanh", "gelu", "silu", "hardswish", "hardsigmoid", "hardtanh",
          "relu6", "elu", "leaky_relu", "mish", "softplus", "dropout")
#: builtin -> shortcut kind, for ops whose meta kernels are slow Python decompositions but
#: whose output shape is plain: the pass makes the output itself (after the same checks).
_FAST: dict[Any, str] = {
    **{f: "unary" for f in _resolve_builtins(_UNARY)},
    **{f: "inplace" for f in _resolve_builtins(tuple(n + "_" for n in _UNARY))},
    **{f: n for n in ("batch_norm", "layer_norm", "group_norm", "linear")
       for f in _resolve_builtins((n,))},
}


def _numel_is(t: Any, n: int, dtype: torch.dtype) -> bool:
    return t is None or (isinstance(t, torch.Tensor) and t.numel() == n and t.dtype == dtype)


def _fast_meta(kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The op's meta output, or None to run its real meta kernel (which raises the proper
    error when the checks here fail)."""
    x = args[0] if args else kwargs.get("input")
    if (not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1
            or "out" in kwargs):
        return None
    if kind == "inplace":
        return x
    if kind == "unary":
        return torch.empty_like(x)
    if kind == "linear":
        w, b = arg(args, kwargs, 1, "weight"), arg(args, kwargs, 2, "bias")
        if (isinstance(w, torch.Tensor) and w.dim() == 2 and w.dtype == x.dtype
                and w.shape[1] == x.shape[-1] and _numel_is(b, w.shape[0], x.dtype)):
            return x.new_empty((*x.shape[:-1], w.shape[0]))
        return None
    if kind == "batch_norm":  # (input, weight, bias, running_mean, running_var, training...)
        c = x.shape[1] if x.dim() >= 2 else 0
        if x.dim() >= 2 and all(_numel_is(arg(args, kwargs, i, n), c, x.dtype) for i, n in
                                enumerate(("weight", "bias", "running_mean", "running_var"), 1)):
            return torch.empty_like(x)
        return None
    if kind == "layer_norm":  # (input, normalized_shape, weight, bias, ...)
        shape = tuple(arg(args, kwargs, 1, "normalized_shape"))
        n = math.prod(shape)
        if (0 < len(shape) <= x.dim() and tuple(x.shape[-len(shape):]) == shape
                and _numel_is(arg(args, kwargs, 2, "weight"), n, x.dtype)
                and _numel_is(arg(args, kwargs, 3, "bias"), n, x.dtype)):
            return torch.empty_like(x)
        return None
    if kind == "group_norm":  # (input, num_groups, weight, bias, ...)
        groups = arg(args, kwargs, 1, "num_groups")
        c = x.shape[1] if x.dim() >= 2 else 0
        if (x.dim() >= 2 and isinstance(groups, int) and groups > 0 and c % groups == 0
                and _numel_is(arg(args, kwargs, 2, "weight"), c, x.dtype)
                and _numel_is(arg(args, kwargs, 3, "bias"), c, x.dtype)):
            return torch.empty_like(x)
    return None


class _Mode(TorchFunctionMode):
    def __init__(self, run: _Run):
        super().__init__()
        self.run = run

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return self.run.call(self, func, args, kwargs or {})


@dataclass
class _Frame:
    name: str
    module: nn.Module
    leaf: bool
    call: int
    in_shape: Shape
    in_info: _Info | None
    macs: int = 0
    ops: Counter[str] = field(default_factory=Counter)


class _Run:
    """State of one analysis pass (nothing is kept after it)."""

    def __init__(self, root: nn.Module, on_meta: bool):
        self.on_meta = on_meta
        self.info: dict[int, _Info] = {}
        self.keep: list[torch.Tensor] = []  # keeps ids in ``info`` from being reused
        self.stack: list[_Frame] = []
        self.rows: list[tuple[LayerRow, nn.Module, bool]] = []  # row, module, first call
        self.calls: Counter[int] = Counter()
        self.own_macs: defaultdict[str, int] = defaultdict(int)
        self.patched: dict[Any, Callable[..., Any] | None] = {}
        self.globals: dict[int, dict[str, Any]] = {}
        self.in_progress: set[Any] = set()
        self.names = {id(m): n for n, m in root.named_modules()}

    # -- torch function mode ------------------------------------------------------------

    def call(self, mode: _Mode, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if type(func) is FunctionType and func not in self.in_progress:
            return self._call_python(mode, func, args, kwargs)
        # A builtin, or a Python function already being run through: a builtin method reports
        # its Python override (``Tensor.unflatten``) as the public API, so this is that builtin.
        try:
            hash(func)
        except TypeError:  # not a torch builtin we know of
            return func(*args, **kwargs)
        out = None
        if self.on_meta:
            if func in _CONSTRUCTORS and kwargs.get("device") is None:
                kwargs = {**kwargs, "device": "meta"}
            fast = _FAST.get(func)
            if fast is not None:
                out = _fast_meta(fast, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) or (
            isinstance(out, (tuple, list)) and not isinstance(out, torch.Size)
        ):
            self._record(RULES_BY_FUNC.get(func), args, kwargs, out)
        return out

    def _call_python(
        self, mode: _Mode, func: FunctionType, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run a Python-level torch function with the mode active inside it."""
        patched = self._patch(func, set())
        self.in_progress.add(func)
        try:
            with mode:
                return patched(*args, **kwargs)
        finally:
            self.in_progress.discard(func)

    def _patch(self, func: FunctionType, visiting: set[Any]) -> FunctionType:
        """A copy of ``func`` whose ``has_torch_function*`` checks say False (and likewise for
        functions it holds in its closure, e.g. ``boolean_dispatch`` wrappers)."""
        done = self.patched.get(func)
        if done is not None:
            return done  # type: ignore[return-value]
        visiting = visiting | {func}
        key = id(func.__globals__)
        glb = self.globals.get(key)
        if glb is None:
            glb = dict(func.__globals__)
            for name in _CHECKS:
                if name in glb:
                    glb[name] = _no_torch_function
            self.globals[key] = glb
        closure = func.__closure__
        if closure:
            cells = []
            for cell in closure:
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    cells.append(cell)
                    continue
                if type(value) is FunctionType and value not in visiting:
                    cells.append(CellType(self._patch(value, visiting)))
                else:
                    cells.append(cell)
            closure = tuple(cells)
        new = FunctionType(func.__code__, glb, func.__name__, func.__defaults__, closure)
        new.__kwdefaults__ = func.__kwdefaults__
        self.patched[func] = new
        return new

    def _record(self, rule: OpRule | None, args: tuple[Any, ...], kwargs: dict[str, Any],
                out: Any) -> None:
        """Count the op's MACs and derive the receptive field of its outputs."""
        if rule is not None and rule.macs is not None:
            macs = int(rule.macs(args, kwargs, out))
            frame = self.stack[-1]
            frame.macs += macs
            frame.ops[rule.name] += macs
        inputs: list[tuple[_Info, torch.Tensor]] = []
        for a in (*args, *kwargs.values()):
            for t in _tensors(a):
                i = self.info.get(id(t))
                if i is not None:
                    inputs.append((i, t))
        if not inputs:
            return  # computed from parameters and constants only
        first = inputs[0][1]
        out_t = out if isinstance(out, torch.Tensor) else next(_tensors(out), None)
        new = _merge(inputs, out_t, 1 if rule is not None and rule.weight_layer else 0)
        if rule is not None and rule.rf != "propagate" and new.rf is not None:
            new = self._rf_rule(rule, args, kwargs, out, first, new)
        elif rule is not None and rule.name == "linear" and first is not None and first.dim() <= 2:
            new = _Info(None, None, new.depth)  # a linear layer on a flat vector sees it all
        for t in _tensors(out):
            self.info[id(t)] = new
            self.keep.append(t)

    @staticmethod
    def _rf_rule(rule: OpRule, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
                 x: torch.Tensor | None, info: _Info) -> _Info:
        rf, jump = info.rf, info.jump
        assert rf is not None and jump is not None
        n = len(rf)
        if rule.rf == "window" and rule.window is not None:
            window = rule.window(args, kwargs, n)
            if window is None or len(window[0]) != n:
                return _Info(None, None, info.depth)
            kernel, stride, dilation = window
        elif rule.rf == "index" and x is not None:
            return _Info(rf, _index_jump(args[1] if len(args) > 1 else None, x.dim(), jump),
                         info.depth)
        elif rule.rf == "adaptive" and x is not None:
            o = next(_tensors(out))
            if x.dim() < n or o.dim() < n:
                return _Info(None, None, info.depth)
            pairs = [(int(i), max(int(s), 1)) for i, s in zip(x.shape[-n:], o.shape[-n:],
                                                               strict=True)]
            kernel = tuple(-(-i // s) for i, s in pairs)  # ceil(in/out)
            stride = tuple(max(1, i // s) for i, s in pairs)
            dilation = (1,) * n
        else:  # "global" and "unknown"
            return _Info(None, None, info.depth)
        # r_out = r_in + (k-1)·d·j_in ; j_out = j_in·s
        new_rf = tuple(r + (k - 1) * d * j
                       for r, k, d, j in zip(rf, kernel, dilation, jump, strict=True))
        new_jump = tuple(j * s for j, s in zip(jump, stride, strict=True))
        return _Info(new_rf, new_jump, info.depth)

    # -- module hooks --------------------------------------------------------------------

    def pre_hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        with torch._C.DisableTorchFunction():
            t = next((t for a in (*args, *kwargs.values()) for t in _tensors(a)), None)
            key = id(module)
            self.calls[key] += 1
            self.stack.append(
                _Frame(
                    name=self.names[key],
                    module=module,
                    leaf=next(iter(module.children()), None) is None,
                    call=self.calls[key],
                    in_shape=tuple(t.shape[1:]) if t is not None else (),
                    in_info=self.info.get(id(t)) if t is not None else None,
                )
            )

    def post_hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                  output: Any) -> None:
        with torch._C.DisableTorchFunction():
            frame = self.stack.pop()
            self.own_macs[frame.name] += frame.macs
            out = _first_tensor(output)
            info = self.info.get(id(out)) if out is not None else None
            in_info = frame.in_info
            batch = int(out.shape[0]) if out is not None and out.dim() > 0 else 1
            name = frame.name if frame.call == 1 else f"{frame.name}#{frame.call}"
            row = LayerRow(
                index=0,
                name=name,
                type=type(module).__name__,
                kind="layer" if frame.leaf else "forward",
                depth=frame.name.count(".") + 1 if frame.name else 0,
                in_shape=frame.in_shape,
                out_shape=tuple(out.shape[1:]) if out is not None else (),
                num_params=0,
                macs=frame.macs,
                flops=2 * frame.macs,
                rf=info.rf if info else None,
                jump=info.jump if info else None,
                in_rf=in_info.rf if in_info else None,
                in_jump=in_info.jump if in_info else None,
                act_bytes=out.numel() * out.element_size() if out is not None else 0,
                batch_size=batch,
                attrs=_module_attrs(module) if frame.leaf else {},
                ops={k: v for k, v in frame.ops.items() if v},
            )
            self.rows.append((row, module, frame.call == 1))


def _module_attrs(module: nn.Module) -> dict[str, Any]:
    """The module's hyper-parameters: its public plain attributes (all torch.nn layers keep
    their configuration this way), plus whether it has a bias."""
    attrs: dict[str, Any] = {}
    for key, value in vars(module).items():
        if key.startswith("_") or key == "training":
            continue
        if isinstance(value, (bool, int, float, str)) or value is None:
            attrs[key] = value
        elif isinstance(value, (tuple, list)) and len(value) <= 16 and all(
            isinstance(v, (bool, int, float, str)) or v is None for v in value
        ):
            attrs[key] = tuple(value)
    if "bias" in module._parameters or hasattr(module, "bias"):
        attrs["bias"] = getattr(module, "bias", None) is not None
    return attrs


# ----------------------------------------------------------------------------- the pass


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device (no data is
    copied: ``deepcopy`` finds them already in its memo)."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"),
                                   requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def _input_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _run(model: nn.Module, x: torch.Tensor, on_meta: bool) -> tuple[_Run, Any]:
    run = _Run(model, on_meta)
    modes = {m: m.training for m in model.modules()}
    handles = []
    try:
        for m in modes:
            handles.append(m.register_forward_pre_hook(run.pre_hook, with_kwargs=True))
            handles.append(m.register_forward_hook(run.post_hook, with_kwargs=True))
        model.eval()
        run.info[id(x)] = _Info((1,) * (x.dim() - 2), (1,) * (x.dim() - 2), 0) if x.dim() > 2 \
            else _Info(None, None, 0)
        run.keep.append(x)
        with torch.no_grad(), _Mode(run):
            out = model(x)
    except Exception as err:
        where = ""
        if run.stack:
            f = run.stack[-1]
            where = f" in layer {f.name or '(root)'!r} ({type(f.module).__name__})"
        raise AnalysisError(
            f"the model cannot run on input {tuple(x.shape[1:])}{where}: {err}"
        ) from err
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return run, out


def analyse_module(model: nn.Module, input_shape: tuple[int, ...], *,
                   batch_size: int = 1) -> Analysis:
    """Analyse ``model`` on an input of shape ``(batch_size, *input_shape)``.

    Build the model under ``with torch.device("meta"):`` for the fast path (no weights are
    allocated, nothing is computed). A model on another device is analysed through a weight-free
    meta copy and is not modified; if that copy cannot run (a model that reads tensor values),
    the model itself runs once on zeros. Either way the model is put in eval mode for the pass
    and every module's previous mode is restored.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if not input_shape or any(s < 1 for s in input_shape) or batch_size < 1:
        raise AnalysisError(
            f"input shape {input_shape} with batch size {batch_size} is not a valid input: "
            "give positive sizes without the batch dimension, e.g. (3, 224, 224)"
        )
    device = next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("meta"))
    dtype = _input_dtype(model)
    notes: list[str] = []
    if device.type == "meta":
        x = torch.empty(batch_size, *input_shape, device="meta", dtype=dtype)
        run, out = _run(model, x, on_meta=True)
    else:
        try:
            meta_model = _meta_copy(model)
            x = torch.empty(batch_size, *input_shape, device="meta", dtype=dtype)
            run, out = _run(meta_model, x, on_meta=True)
        except Exception as err:  # e.g. data-dependent control flow: run it for real
            notes.append(f"analysed with a real forward pass ({type(err).__name__}: {err})")
            x = torch.zeros(batch_size, *input_shape, device=device, dtype=dtype)
            run, out = _run(model, x, on_meta=False)
    return _summarise(model, run, out, input_shape, batch_size, notes)


def _own_params(module: nn.Module, called: set[int]) -> Iterator[nn.Parameter]:
    """Parameters a row of ``module`` accounts for: its own, plus those of sub-modules that were
    never called (e.g. ``MultiheadAttention.out_proj``, used through ``F.linear``)."""
    yield from module.parameters(recurse=False)
    for child in module.children():
        if id(child) not in called:
            yield from _own_params(child, called)


def _summarise(model: nn.Module, run: _Run, out: Any, input_shape: Shape, batch_size: int,
               notes: list[str]) -> Analysis:
    called = set(run.calls)
    seen: set[int] = set()
    rows: list[LayerRow] = []
    for row, module, first in run.rows:
        if first:
            for p in _own_params(module, called):
                if id(p) not in seen:
                    seen.add(id(p))
                    row.num_params += p.numel()
        if row.kind == "forward" and row.macs == 0 and row.num_params == 0:
            continue
        row.index = len(rows)
        rows.append(row)

    # fvcore "owner" attribution: an op belongs to the innermost module and its name-ancestors.
    by_module = {name: 0 for name, _ in model.named_modules()}
    for name, macs in run.own_macs.items():
        if not macs:
            continue
        parts = name.split(".") if name else []
        for k in range(len(parts) + 1):
            by_module[".".join(parts[:k])] = by_module.get(".".join(parts[:k]), 0) + macs

    params = list(model.parameters())
    out_t = _first_tensor(out)
    out_info = run.info.get(id(out_t)) if out_t is not None else None
    nd = len(input_shape) - 1
    rf = None
    for row in reversed(rows):
        if row.rf is not None and len(row.out_shape) == len(input_shape) and \
                math.prod(row.out_shape[1:]) > 1 and nd > 0:
            rf = row.rf
            break
    macs = sum(r.macs for r in rows)
    return Analysis(
        rows=rows,
        input_shape=input_shape,
        batch_size=batch_size,
        num_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        macs=macs,
        flops=2 * macs,
        activation_bytes=sum(r.act_bytes for r in rows),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        depth=out_info.depth if out_info else 0,
        final_shape=tuple(out_t.shape[1:]) if out_t is not None else (),
        receptive_field=rf,
        macs_by_module=by_module,
        notes=notes,
    )


# ----------------------------------------------------------------------------- training memory

#: optimiser name -> values of state kept per trainable parameter.
OPTIMIZER_STATE_SLOTS: dict[str, int] = {
    "sgd": 0,
    "sgd_momentum": 1,
    "nesterov": 1,
    "rmsprop": 1,
    "adagrad": 1,
    "adam": 2,
    "adamw": 2,
}


def training_memory(analysis: Analysis, batch_size: int, optimizer: str = "adam",
                    bytes_per_value: int = 4) -> dict[str, Any]:
    """Estimate the memory one training step needs, in bytes.

    ``weights`` = all parameters; ``gradients`` = one value per trainable parameter;
    ``optimizer_state`` = :data:`OPTIMIZER_STATE_SLOTS` values per trainable parameter (Adam
    keeps two moments, momentum SGD one); ``activations`` = the forward outputs saved for the
    backward pass, estimated as the sum of every row's output size for ``batch_size`` samples.
    It is an estimate: it ignores the allocator's overhead and fragmentation, cuDNN/cuBLAS
    workspaces, the CUDA context, buffers (batch-norm running statistics), the input batch,
    temporaries inside the backward pass, and that in-place ops or fused kernels save less.
    """
    if optimizer not in OPTIMIZER_STATE_SLOTS:
        raise UnknownNameError(
            f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZER_STATE_SLOTS)}"
        )
    values_per_sample = sum(math.prod(r.out_shape) for r in analysis.rows)
    weights = analysis.num_params * bytes_per_value
    gradients = analysis.trainable_params * bytes_per_value
    state = OPTIMIZER_STATE_SLOTS[optimizer] * analysis.trainable_params * bytes_per_value
    activations = values_per_sample * batch_size * bytes_per_value
    return {
        "batch_size": batch_size,
        "optimizer": optimizer,
        "bytes_per_value": bytes_per_value,
        "weights": weights,
        "gradients": gradients,
        "optimizer_state": state,
        "activations": activations,
        "total": weights + gradients + state + activations,
    }
