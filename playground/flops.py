"""Per-op counting rules: MACs exactly as fvcore counts them, and receptive-field rules.

MACs as fvcore counts them: one multiply-add = one FLOP (fvcore ``flop_count.py``,
``FlopCountAnalysis``); FLOPs = 2 x MACs. Every formula below mirrors a handler in fvcore's
``_DEFAULT_SUPPORTED_OPS`` table (``fvcore/nn/jit_handles.py``), keyed here by the PyTorch
builtin that the JIT tracer would record as that ``aten::`` op:

* ``aten::_convolution`` (``conv{1,2,3}d``, ``conv_transpose{1,2,3}d``, ``convolution``):
  N·prod(weight shape)·prod(output spatial size); the input's spatial size when transposed;
  bias ignored.
* ``aten::linear``: prod(input shape)·out_features.
* ``aten::addmm``: n·k·m for ``mat1 (n, k) @ mat2 (k, m)``.
* ``aten::matmul`` (``matmul``, ``@``) and ``aten::mm``: prod(a.shape)·b.shape[-1].
* ``aten::bmm``: n·c·t·d for ``(n, c, t) @ (n, t, d)``.
* ``aten::einsum``: two bmm-like equations by formula, else numpy's optimal ``einsum_path``
  flop count / 2.
* ``aten::batch_norm``: eval: 2 per element with affine, 1 without; training: 5 / 4.
* ``aten::group_norm``, ``aten::layer_norm``, ``aten::instance_norm``: 5 per element with
  affine, 4 without.
* ``aten::upsample_nearest2d`` / ``aten::upsample_bilinear2d``: 1 / 4 per output element.
* ``aten::adaptive_avg_pool2d``: 1 per input element.
* ``aten::grid_sampler``: 4 per output element.

Everything else counts 0: max/avg pooling, activations, additions, softmax,
``scaled_dot_product_attention``, ``baddbmm``... (fvcore has no handler for them).

Receptive field (Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019): for a sliding window with kernel k, stride s and dilation d,
``r_out = r_in + (k - 1)·d·j_in`` and ``j_out = j_in·s`` where j is the jump (effective stride,
in input pixels). Adaptive pooling uses k = ceil(in/out), s = max(1, floor(in/out)).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType
from typing import Any

import numpy as np
import torch

#: How an op changes the receptive field of its output.
#: ``propagate``: elementwise / reshaping, the output's RF is the max of the inputs';
#: ``window``: sliding window (conv, pooling); ``adaptive``: adaptive pooling;
#: ``index``: ``x[..., ::2, ::2]`` subsampling multiplies the jump by the step;
#: ``global``: every output depends on every input position (matmul, attention, linear on
#: a flattened vector); ``unknown``: not modelled (transposed conv, upsampling), RF undefined.
RF_KINDS = ("propagate", "window", "adaptive", "index", "global", "unknown")

MacFn = Callable[[tuple[Any, ...], dict[str, Any], Any], int]
Window = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]  # kernel, stride, dilation
WindowFn = Callable[[tuple[Any, ...], dict[str, Any], int], Window | None]


@dataclass(frozen=True)
class OpRule:
    """How one builtin is counted.

    ``name`` is fvcore's operator name (the key of ``FlopCountAnalysis.by_operator()``);
    ``macs(args, kwargs, out)`` returns the op's MACs; ``rf`` is one of :data:`RF_KINDS`;
    ``window(args, kwargs, ndim)`` returns (kernel, stride, dilation) for ``rf == "window"``
    (None: not modelled);
    ``weight_layer`` marks conv/linear ops, which count towards the network's depth.
    """

    name: str
    macs: MacFn | None = None
    rf: str = "propagate"
    window: WindowFn | None = None
    weight_layer: bool = False


# ----------------------------------------------------------------------------- helpers


def arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str,
        default: Any = None) -> Any:
    """Positional argument ``i`` or keyword ``name`` of a call."""
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    return next(t for t in out if isinstance(t, torch.Tensor))


def _ntuple(value: Any, n: int, default: int) -> tuple[int, ...]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return (default,) * n
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value) if len(value) == n else (int(value[0]),) * n
    return (int(value),) * n


# ----------------------------------------------------------------------------- MAC formulas
# Each mirrors the fvcore handler named in its docstring; shapes include the batch dim.


def _conv_macs(transposed: bool | None) -> MacFn:
    def macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
        """fvcore ``conv_flop_count``: N·prod(w)·prod(spatial); bias is ignored."""
        x, w = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "weight")
        t = transposed if transposed is not None else bool(arg(args, kwargs, 6, "transposed"))
        spatial = (x if t else _first_tensor(out)).shape[2:]
        return int(x.shape[0]) * math.prod(w.shape) * math.prod(spatial)

    return macs


def _linear_macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """fvcore ``linear_flop_jit``: prod(input)·out_features."""
    x, w = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "weight")
    return math.prod(x.shape) * int(w.shape[0])


def _addmm_macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """fvcore ``addmm_flop_jit``: (n, k) @ (k, m) -> n·k·m."""
    a, b = arg(args, kwargs, 1, "mat1"), arg(args, kwargs, 2, "mat2")
    return int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])


def _matmul_macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """fvcore ``matmul_flop_jit`` (also used for ``mm``): prod(a)·b[-1]."""
    a, b = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "other")
    if b is None:  # Tensor.mm(self, mat2)
        b = kwargs.get("mat2")
    return math.prod(a.shape) * (int(b.shape[-1]) if b.dim() >= 2 else 1)


def _bmm_macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """fvcore ``bmm_flop_jit``: (n, c, t) @ (n, t, d) -> n·c·t·d."""
    a, b = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "mat2")
    n, c, t = (int(v) for v in a.shape)
    return n * c * t * int(b.shape[-1])


def einsum_macs(equation: str, shapes: list[tuple[int, ...]]) -> int:
    """fvcore ``einsum_flop_jit``: two bmm-like equations by formula, else numpy's
    ``einsum_path(optimize="optimal")`` flop estimate halved (numpy counts mul and add)."""
    equation = equation.replace(" ", "")
    # Rename letters in order of appearance so "nct,ncp->ntp" and "abc,abd->acd" match.
    letters = OrderedDict((k, 0) for k in equation if k.isalpha()).keys()
    equation = equation.translate({ord(x): 97 + i for i, x in enumerate(letters)})
    if equation == "abc,abd->acd":
        n, c, t = shapes[0]
        return n * c * t * shapes[-1][-1]
    if equation == "abc,adc->adb":
        n, t, g = shapes[0]
        return n * t * g * shapes[-1][1]
    # Zero-stride views: einsum_path only reads shapes, so no memory is allocated.
    arrays = [np.broadcast_to(np.zeros((), dtype=np.float64), s) for s in shapes]
    report = np.einsum_path(equation, *arrays, optimize="optimal")[1]
    for line in report.split("\n"):
        if "optimized flop" in line.lower():
            return int(np.floor(float(line.split(":")[-1]) / 2))
    return 0


def _einsum_macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    equation, operands = args[0], args[1] if len(args) > 1 else kwargs["tensors"]
    if isinstance(operands, torch.Tensor):
        operands = args[1:]
    return einsum_macs(str(equation), [tuple(int(v) for v in t.shape) for t in operands])


def _batch_norm_macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """fvcore ``batchnorm_flop_jit``: eval 1 (+1 with affine) per element; training uses the
    generic norm estimate (4, +1 with affine)."""
    x = arg(args, kwargs, 0, "input")
    affine = arg(args, kwargs, 1, "weight") is not None
    if bool(arg(args, kwargs, 5, "training")):
        return x.numel() * (5 if affine else 4)
    return x.numel() * (2 if affine else 1)


def _norm_macs(weight_index: int) -> MacFn:
    def macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
        """fvcore ``norm_flop_counter``: 5 per element with affine, 4 without ("a rough
        estimate" in fvcore's words)."""
        x = arg(args, kwargs, 0, "input")
        affine = arg(args, kwargs, weight_index, "weight") is not None
        return x.numel() * (5 if affine else 4)

    return macs


def _output_elements(scale: int) -> MacFn:
    def macs(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
        """fvcore ``elementwise_flop_counter(0, scale)``: scale per output element."""
        return scale * _first_tensor(out).numel()

    return macs


def _input_elements(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """fvcore ``elementwise_flop_counter(1, 0)``: one per input element."""
    return int(arg(args, kwargs, 0, "input").numel())


# ----------------------------------------------------------------------------- RF windows


def _conv_window(args: tuple[Any, ...], kwargs: dict[str, Any], n: int) -> Window | None:
    kernel = tuple(int(k) for k in arg(args, kwargs, 1, "weight").shape[2:])
    stride = _ntuple(arg(args, kwargs, 3, "stride"), n, 1)
    dilation = _ntuple(arg(args, kwargs, 5, "dilation"), n, 1)
    return kernel, stride, dilation


def _convolution_window(args: tuple[Any, ...], kwargs: dict[str, Any], n: int) -> Window | None:
    """``torch.convolution`` / ``_convolution``: transposed ones are not modelled."""
    if bool(arg(args, kwargs, 6, "transposed")):
        return None
    return _conv_window(args, kwargs, n)


def _pool_window(dilation_index: int | None) -> WindowFn:
    def window(args: tuple[Any, ...], kwargs: dict[str, Any], n: int) -> Window | None:
        kernel = _ntuple(arg(args, kwargs, 1, "kernel_size"), n, 1)
        stride_arg = arg(args, kwargs, 2, "stride")
        stride = kernel if not stride_arg else _ntuple(stride_arg, n, 1)
        dilation = (1,) * n
        if dilation_index is not None:
            dilation = _ntuple(arg(args, kwargs, dilation_index, "dilation"), n, 1)
        return kernel, stride, dilation

    return window


# ----------------------------------------------------------------------------- the table

_CONV = OpRule("conv", _conv_macs(False), "window", _conv_window, weight_layer=True)
_CONV_T = OpRule("conv", _conv_macs(True), "unknown", weight_layer=True)
_CONV_ANY = OpRule("conv", _conv_macs(None), "window", _convolution_window, weight_layer=True)
_MAX_POOL = OpRule("max_pool", None, "window", _pool_window(4))
_AVG_POOL = OpRule("avg_pool", None, "window", _pool_window(None))
_GLOBAL = OpRule("", None, "global")

#: builtin name -> rule; resolved below to the builtin objects in ``torch``, ``torch._C._nn``,
#: ``torch._C._VariableFunctions`` and ``torch.Tensor`` (Python-level wrappers are excluded:
#: the analysis runs through them and sees these builtins, as the JIT tracer does).
OP_RULES: dict[str, OpRule] = {
    "conv1d": _CONV,
    "conv2d": _CONV,
    "conv3d": _CONV,
    "convolution": _CONV_ANY,
    "_convolution": _CONV_ANY,
    "conv_transpose1d": _CONV_T,
    "conv_transpose2d": _CONV_T,
    "conv_transpose3d": _CONV_T,
    "linear": OpRule("linear", _linear_macs, "propagate", weight_layer=True),
    "addmm": OpRule("addmm", _addmm_macs, "global", weight_layer=True),
    "matmul": OpRule("matmul", _matmul_macs, "global"),
    "__matmul__": OpRule("matmul", _matmul_macs, "global"),
    "mm": OpRule("mm", _matmul_macs, "global"),
    "bmm": OpRule("bmm", _bmm_macs, "global"),
    "einsum": OpRule("einsum", _einsum_macs, "global"),
    "batch_norm": OpRule("batch_norm", _batch_norm_macs),
    "group_norm": OpRule("group_norm", _norm_macs(2)),
    "layer_norm": OpRule("layer_norm", _norm_macs(2)),
    "instance_norm": OpRule("instance_norm", _norm_macs(1)),
    "upsample_nearest2d": OpRule("upsample_nearest2d", _output_elements(1), "unknown"),
    "upsample_bilinear2d": OpRule("upsample_bilinear2d", _output_elements(4), "unknown"),
    "adaptive_avg_pool2d": OpRule("adaptive_avg_pool2d", _input_elements, "adaptive"),
    "grid_sampler": OpRule("grid_sampler", _output_elements(4), "unknown"),
    # Counted as 0 by fvcore, listed for the receptive field.
    "max_pool1d": _MAX_POOL,
    "max_pool2d": _MAX_POOL,
    "max_pool3d": _MAX_POOL,
    "max_pool1d_with_indices": _MAX_POOL,
    "max_pool2d_with_indices": _MAX_POOL,
    "max_pool3d_with_indices": _MAX_POOL,
    "avg_pool1d": _AVG_POOL,
    "avg_pool2d": _AVG_POOL,
    "avg_pool3d": _AVG_POOL,
    "adaptive_avg_pool1d": OpRule("adaptive_avg_pool", None, "adaptive"),
    "adaptive_avg_pool3d": OpRule("adaptive_avg_pool", None, "adaptive"),
    "adaptive_max_pool1d": OpRule("adaptive_max_pool", None, "adaptive"),
    "adaptive_max_pool2d": OpRule("adaptive_max_pool", None, "adaptive"),
    "adaptive_max_pool3d": OpRule("adaptive_max_pool", None, "adaptive"),
    "baddbmm": _GLOBAL,
    "scaled_dot_product_attention": _GLOBAL,
    "upsample_nearest1d": OpRule("", None, "unknown"),
    "upsample_nearest3d": OpRule("", None, "unknown"),
    "upsample_linear1d": OpRule("", None, "unknown"),
    "upsample_bicubic2d": OpRule("", None, "unknown"),
    "upsample_trilinear3d": OpRule("", None, "unknown"),
    "_upsample_nearest_exact2d": OpRule("", None, "unknown"),
    "_upsample_bilinear2d_aa": OpRule("", None, "unknown"),
    "pixel_shuffle": OpRule("", None, "unknown"),
    "pixel_unshuffle": OpRule("", None, "unknown"),
    "im2col": OpRule("", None, "unknown"),
    "col2im": OpRule("", None, "unknown"),
    "__getitem__": OpRule("", None, "index"),
}

_NAMESPACES: tuple[Any, ...] = (torch, torch._C._VariableFunctions, torch._C._nn, torch.Tensor)


def _resolve(table: dict[str, OpRule]) -> dict[Any, OpRule]:
    """Map every builtin object reachable under each name to its rule."""
    resolved: dict[Any, OpRule] = {}
    for name, rule in table.items():
        for ns in _NAMESPACES:
            obj = getattr(ns, name, None)
            if obj is None:
                continue
            if isinstance(obj, FunctionType):
                continue  # a Python wrapper: the analysis sees the builtin it calls
            resolved[obj] = rule
    return resolved


#: builtin object -> rule, used by :mod:`playground.analysis` for every call it sees.
RULES_BY_FUNC: dict[Any, OpRule] = _resolve(OP_RULES)
