"""Plain-text explanations of analysis rows: what each layer does and how its output size,
parameters, MACs and receptive field follow from its settings, with the numbers plugged in.

The formulas follow the conventions of :mod:`playground.analysis`:

* Output size of a conv/pool window, per spatial dimension (PyTorch's ``Conv2d``/``MaxPool2d``
  docs): ``o = floor((i + 2p - d(k-1) - 1)/s) + 1`` (``ceil`` with ``ceil_mode``).
* Parameters of a convolution: ``k·(C_in/groups)·C_out`` (+ ``C_out`` bias).
* MACs as fvcore counts them: one multiply-add = one FLOP; FLOPs = 2 x MACs
  (fvcore ``flop_count.py``).
* Receptive field (Araujo et al., Distill 2019): ``r_out = r_in + (k-1)·d·j_in``,
  ``j_out = j_in·s``.

:data:`EXPLAINERS` maps a module type name to its builder; any other type (or a row a builder
cannot read) gets a generic explanation from the row's own numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.analysis import LayerRow, Shape

__all__ = ["ACTIVATION_FORMULAS", "EXPLAINERS", "explain_row"]

_DOT = "·"
_FVCORE = "MACs as fvcore counts them: one multiply-add = one FLOP; FLOPs = 2 x MACs"


def _dims(n: int) -> list[str]:
    return {1: ["length"], 2: ["height", "width"], 3: ["depth", "height", "width"]}.get(
        n, [f"dim {i}" for i in range(n)]
    )


def _tup(value: Any, n: int) -> tuple[Any, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(value) if len(value) == n else (value[0],) * n
    return (value,) * n


def _size(value: Any) -> str:
    """(2, 2) -> "2", (3, 1) -> "3x1", 5 -> "5"."""
    if isinstance(value, (tuple, list)):
        return str(value[0]) if len(set(value)) == 1 else "x".join(map(str, value))
    return str(value)


def _shape(s: Shape) -> str:
    return "(" + ", ".join(str(v) for v in s) + ")"


def _batch(row: LayerRow) -> tuple[str, str]:
    """Formula prefix and value prefix for the batch factor (omitted for one sample)."""
    return ("N" + _DOT, f"{row.batch_size}{_DOT}") if row.batch_size > 1 else ("", "")


def _macs_line(row: LayerRow, formula: str, values: str) -> list[str]:
    n_f, n_v = _batch(row)
    return [
        f"MACs: {n_f}{formula} = {n_v}{values} = {row.macs:,}",
        f"  ({_FVCORE} = {row.flops:,})",
    ]


def _rf_lines(row: LayerRow, kernel: tuple[int, ...] | None = None,
              stride: tuple[int, ...] | None = None,
              dilation: tuple[int, ...] | None = None) -> list[str]:
    if row.rf is None:
        return ["Receptive field: not defined here (mixes all positions, or not modelled)."]
    if kernel is None or row.in_rf is None or row.in_jump is None:
        return [f"Receptive field: {'x'.join(map(str, row.rf))}, jump "
                f"{'x'.join(map(str, row.jump or ()))} (unchanged by this layer)"]
    n = len(row.rf)
    kernel, stride = _tup(kernel, n), _tup(stride or 1, n)
    dilation = _tup(dilation or 1, n)
    lines = ["Receptive field: r_out = r_in + (k-1)·d·j_in ; jump: j_out = j_in·s"]
    dims = _dims(n)
    parts = list(zip(dims, row.in_rf, row.in_jump, kernel, stride, dilation, row.rf,
                     row.jump or row.rf, strict=False))
    if len({p[1:] for p in parts}) == 1:
        parts = [(" = ".join(dims), *parts[0][1:])]
    for dim, r, j, k, s, d, r_out, j_out in parts:
        lines.append(f"  {dim}: r = {r} + ({k}-1)·{d}·{j} = {r_out} ; j = {j}·{s} = {j_out}")
    return lines


def _size_lines(row: LayerRow, kernel: Any, stride: Any, padding: Any, dilation: Any,
                ceil_mode: bool = False) -> list[str]:
    n = len(row.out_shape) - 1
    if n < 1 or len(row.in_shape) != n + 1:
        return []
    rnd = "ceil" if ceil_mode else "floor"
    if isinstance(padding, str):
        return [f"Output size: padding={padding!r} "
                + ("keeps the size (stride 1)" if padding == "same" else "means no padding")
                + f": {_shape(row.in_shape[1:])} -> {_shape(row.out_shape[1:])}"]
    kernel, stride = _tup(kernel, n), _tup(stride if stride else kernel, n)
    padding, dilation = _tup(padding, n), _tup(dilation, n)
    lines = [f"Output size: {rnd}((i + 2p - d(k-1) - 1)/s) + 1"]
    dims = _dims(n)
    parts = [(dims[a], row.in_shape[1 + a], padding[a], dilation[a], kernel[a], stride[a],
              row.out_shape[1 + a]) for a in range(n)]
    if len({p[1:] for p in parts}) == 1:
        parts = [(" = ".join(dims), *parts[0][1:])]
    for dim, i, p, d, k, s, o in parts:
        lines.append(f"  {dim}: {rnd}(({i} + 2·{p} - {d}·({k}-1) - 1)/{s}) + 1 = {o}")
    return lines


def _explain_conv(row: LayerRow) -> list[str]:
    a = row.attrs
    n = len(a["kernel_size"]) if isinstance(a.get("kernel_size"), tuple) else 1
    kernel = _tup(a["kernel_size"], n)
    cin, cout, g = a["in_channels"], a["out_channels"], a.get("groups", 1)
    bias = a.get("bias", False)
    if a.get("transposed"):
        return _explain_generic(row)
    kname = _DOT.join(f"k_{d[0]}" for d in _dims(n)) if n > 1 else "k"
    knum = _DOT.join(map(str, kernel))
    cin_f, cin_v = ("(C_in/groups)", f"({cin}/{g})") if g > 1 else ("C_in", str(cin))
    lines = [
        f"{row.type} {row.name}: {cin} -> {cout} channels, kernel {'x'.join(map(str, kernel))}, "
        f"stride {_size(a.get('stride'))}, padding {_size(a.get('padding'))}, "
        f"dilation {_size(a.get('dilation'))}, groups {g}"
    ]
    lines += _size_lines(row, kernel, a.get("stride"), a.get("padding", 0), a.get("dilation", 1))
    weights = math.prod(kernel) * (cin // g) * cout
    total = weights + (cout if bias else 0)
    lines.append(
        f"Parameters: {kname}·{cin_f}·C_out" + (" + bias" if bias else "")
        + f" = {knum}·{cin_v}·{cout}" + (f" + {cout}" if bias else "") + f" = {total:,}"
        + ("" if row.num_params else " (shared with an earlier call)")
    )
    out_sp = _DOT.join(map(str, row.out_shape[1:]))
    sp_f = _DOT.join(f"{d[0].upper()}_out" for d in _dims(n)) if n > 1 else "L_out"
    lines += _macs_line(row, f"C_out·{sp_f}·{cin_f}·{kname}",
                        f"{cout}·{out_sp}·{cin_v}·{knum}")
    lines += _rf_lines(row, kernel, a.get("stride"), a.get("dilation"))
    return lines


def _explain_linear(row: LayerRow) -> list[str]:
    a = row.attrs
    fin, fout, bias = a["in_features"], a["out_features"], a.get("bias", False)
    rows = math.prod(row.in_shape[:-1]) if len(row.in_shape) > 1 else 1
    total = fin * fout + (fout if bias else 0)
    lines = [
        f"Linear {row.name}: {fin} -> {fout} features "
        f"(acts on the last dimension: {_shape(row.in_shape)} -> {_shape(row.out_shape)})",
        "Parameters: in·out" + (" + bias" if bias else "") + f" = {fin}·{fout}"
        + (f" + {fout}" if bias else "") + f" = {total:,}",
    ]
    if rows > 1:
        lines += _macs_line(row, "positions·in·out", f"{rows}·{fin}·{fout}")
    else:
        lines += _macs_line(row, "in·out", f"{fin}·{fout}")
    lines += _rf_lines(row)
    return lines


def _explain_norm(row: LayerRow) -> list[str]:
    a = row.attrs
    affine = a.get("affine", a.get("elementwise_affine", False))
    lines = [f"{row.type} {row.name}: normalises, shape unchanged {_shape(row.out_shape)}"]
    if row.type.startswith("BatchNorm"):
        c = a.get("num_features", row.in_shape[0] if row.in_shape else 0)
        lines.append(
            f"Parameters: γ and β per channel = 2·{c} = {2 * c if affine else 0:,}"
            " (running mean and variance are buffers, not parameters)"
            if affine else "Parameters: 0 (no affine γ, β)"
        )
        per = 2 if affine else 1
        lines += _macs_line(row, f"{per} per element (eval: scale" + (" and shift" if affine
                            else "") + ")", _DOT.join(map(str, (per, *row.out_shape))))
        lines.append("  (at inference it can be folded into the preceding convolution)")
    else:
        shape = a.get("normalized_shape") or (a.get("num_channels") or a.get("num_features"),)
        size = math.prod(_tup(shape, len(shape) if isinstance(shape, tuple) else 1))
        lines.append(f"Parameters: γ and β = 2·{size} = {2 * size:,}" if affine
                     else "Parameters: 0 (no affine γ, β)")
        per = 5 if affine else 4
        lines += _macs_line(row, f"{per} per element (fvcore's rough estimate for norms)",
                            _DOT.join(map(str, (per, *row.out_shape))))
    lines += _rf_lines(row)
    return lines


def _explain_pool(row: LayerRow) -> list[str]:
    a = row.attrs
    kind = "max" if "Max" in row.type else "average"
    n = max(len(row.out_shape) - 1, 1)
    window = "x".join(map(str, _tup(a.get("kernel_size"), n)))
    lines = [f"{row.type} {row.name}: {kind} over each {window} window, "
             f"stride {_size(a.get('stride') or a.get('kernel_size'))}, "
             f"padding {_size(a.get('padding', 0))}"]
    lines += _size_lines(row, a.get("kernel_size"), a.get("stride"), a.get("padding", 0),
                         a.get("dilation", 1), bool(a.get("ceil_mode")))
    lines.append("Parameters: 0")
    lines.append(f"MACs: {row.macs:,} (fvcore does not count max or average pooling)")
    lines += _rf_lines(row, a.get("kernel_size"), a.get("stride") or a.get("kernel_size"),
                       a.get("dilation", 1))
    return lines


def _explain_adaptive(row: LayerRow) -> list[str]:
    n = len(row.out_shape) - 1
    size_in, size_out = row.in_shape[1:], row.out_shape[1:]
    lines = [f"{row.type} {row.name}: output fixed at {_shape(size_out)} whatever the input "
             f"size ({_shape(size_in)} here)"]
    if n >= 1 and len(size_in) == n:
        kernel = tuple(-(-i // o) for i, o in zip(size_in, size_out, strict=True))
        stride = tuple(max(1, i // o) for i, o in zip(size_in, size_out, strict=True))
        parts = sorted({f"k = ceil({i}/{o}) = {k}, s = floor({i}/{o}) = {s}"
                        for i, o, k, s in zip(size_in, size_out, kernel, stride, strict=True)})
        lines.append("Window (largest): " + "; ".join(parts))
    else:
        kernel = stride = None
    lines.append("Parameters: 0")
    if "Avg" in row.type and row.macs:
        lines += _macs_line(row, "one per input element", _DOT.join(map(str, row.in_shape)))
    else:
        lines.append(f"MACs: {row.macs:,} (fvcore counts only adaptive average pooling in 2-D)")
    lines += _rf_lines(row, kernel, stride, 1)
    return lines


ACTIVATION_FORMULAS: dict[str, str] = {
    "ReLU": "max(0, x)",
    "ReLU6": "min(max(0, x), 6)",
    "LeakyReLU": "max(0, x) + slope·min(0, x)",
    "PReLU": "max(0, x) + a·min(0, x), a learned per channel",
    "ELU": "x if x > 0 else α·(exp(x) - 1)",
    "SELU": "scale·(max(0, x) + min(0, α·(exp(x) - 1)))",
    "GELU": "x·Φ(x)",
    "SiLU": "x·σ(x)",
    "Mish": "x·tanh(softplus(x))",
    "Sigmoid": "σ(x) = 1/(1 + exp(-x))",
    "Tanh": "tanh(x)",
    "Hardswish": "x·ReLU6(x + 3)/6",
    "Hardsigmoid": "ReLU6(x + 3)/6",
    "Softplus": "log(1 + exp(x))",
    "Softmax": "exp(x_i)/Σ_j exp(x_j)",
    "LogSoftmax": "x_i - log Σ_j exp(x_j)",
    "Identity": "x",
}


def _explain_activation(row: LayerRow) -> list[str]:
    how = f"along dim {row.attrs.get('dim')}:" if "Softmax" in row.type else "elementwise"
    return [
        f"{row.type} {row.name}: {how} {ACTIVATION_FORMULAS[row.type]}, "
        f"shape unchanged {_shape(row.out_shape)}",
        f"Parameters: {row.num_params:,}",
        f"MACs: {row.macs:,} (fvcore does not count activations)",
        *_rf_lines(row),
    ]


def _explain_dropout(row: LayerRow) -> list[str]:
    p = float(row.attrs.get("p", 0.5))
    scale = f"1/(1-p) = {1 / (1 - p):.3g}" if p < 1 else "0"
    return [
        f"{row.type} {row.name}: identity at inference (eval mode), shape unchanged "
        f"{_shape(row.out_shape)}",
        f"In training each value is zeroed with probability p = {p:g} and the rest are scaled "
        f"by {scale}",
        "Parameters: 0",
        "MACs: 0",
        *_rf_lines(row),
    ]


def _explain_flatten(row: LayerRow) -> list[str]:
    return [
        f"{row.type} {row.name}: {_shape(row.in_shape)} -> {_shape(row.out_shape)}, a view "
        "(no compute): " + _DOT.join(map(str, row.in_shape)) + f" = {math.prod(row.in_shape):,}"
        if row.type == "Flatten" else
        f"{row.type} {row.name}: {_shape(row.in_shape)} -> {_shape(row.out_shape)}, a view",
        "Parameters: 0",
        "MACs: 0",
        *_rf_lines(row),
    ]


def _explain_forward(row: LayerRow) -> list[str]:
    ops = ", ".join(f"{k} {v:,}" for k, v in sorted(row.ops.items(), key=lambda kv: -kv[1]))
    lines = [
        f"{row.type} {row.name or '(root)'}: ops run in its own forward code, outside any "
        f"sub-module ({_shape(row.in_shape)} -> {_shape(row.out_shape)})",
        f"Parameters used directly: {row.num_params:,}",
        f"MACs: {row.macs:,}" + (f" ({ops})" if ops else ""),
        f"  ({_FVCORE} = {row.flops:,})",
    ]
    return lines + _rf_lines(row)


def _explain_generic(row: LayerRow) -> list[str]:
    ops = ", ".join(f"{k} {v:,}" for k, v in row.ops.items())
    return [
        f"{row.type} {row.name}: {_shape(row.in_shape)} -> {_shape(row.out_shape)}",
        f"Parameters: {row.num_params:,}",
        f"MACs: {row.macs:,}" + (f" ({ops})" if ops else "") + f"; FLOPs = 2 x MACs = "
        f"{row.flops:,}",
        *_rf_lines(row),
    ]


_NORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "GroupNorm", "LayerNorm",
          "LayerNorm2d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "RMSNorm")

#: module type name -> explanation builder (fallback: a generic one).
EXPLAINERS: dict[str, Callable[[LayerRow], list[str]]] = {
    **{f"Conv{n}d": _explain_conv for n in (1, 2, 3)},
    "Linear": _explain_linear,
    "NonDynamicallyQuantizableLinear": _explain_linear,
    **{name: _explain_norm for name in _NORMS},
    **{f"{k}Pool{n}d": _explain_pool for k in ("Max", "Avg") for n in (1, 2, 3)},
    **{f"Adaptive{k}Pool{n}d": _explain_adaptive for k in ("Max", "Avg") for n in (1, 2, 3)},
    **{name: _explain_activation for name in ACTIVATION_FORMULAS},
    **{name: _explain_dropout for name in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
                                           "AlphaDropout")},
    "Flatten": _explain_flatten,
    "Unflatten": _explain_flatten,
}


def explain_row(row: LayerRow) -> str:
    """A short plain-text explanation of one row: what the layer does and how its output size,
    parameters, MACs and receptive field follow from its settings, numbers plugged in."""
    if row.kind == "forward":
        return "\n".join(_explain_forward(row))
    build = EXPLAINERS.get(row.type, _explain_generic)
    try:
        lines = build(row)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        lines = _explain_generic(row)
    return "\n".join(lines)
