"""The instrumented training loop: settings in, plain metric records out.

``train(spec, settings, emit=...)`` builds the network of a :class:`~playground.spec.NetworkSpec`,
loads the data set named in :class:`TrainSettings` and runs ``steps`` optimiser updates, handing
batches of plain records to ``emit`` (the run store writes them; tests collect them). It returns
a :class:`TrainResult` of plain data. Nothing here knows about a UI.

Conventions
-----------
- A *step* is one optimiser update; it consumes ``accumulate`` micro-batches of ``batch_size``
  examples. Per-step records carry ``step = 1..steps``; step 0 is the network at initialisation.
- Per-layer series follow the labels of two step-0 records: ``"layers"`` lists every
  ``Conv``/``Linear`` module in registration order (depth order for spec-built models) by its
  module name (``stage1.layer1.conv``, ``head.fc``), the names the analysis table uses;
  ``"activations"`` lists the activation modules (names ending in ``.act``, ``.act1``...).
- Activation statistics labelled step ``k`` describe the forward pass of update ``k + 1``,
  i.e. the network after ``k`` updates (so step 0 is the network at initialisation).
- ``grad_norm`` is the L2 norm over all parameters' gradients before clipping (as
  ``torch.nn.utils.clip_grad_norm_`` computes it); ``grad_norm_layer`` the norm of each layer's
  weight gradient, before clipping; ``update_ratio_layer`` is ``||w_after - w_before|| /
  ||w_before||`` of each layer's weight for the step (Karpathy's "update/data ratio", CS231n
  notes; healthy training sits around 1e-3).
- Dead units: an element of a ReLU's output (one channel at one position) that is zero for
  every example of the batch. Saturated units: sigmoid outputs below 0.03 or above 0.97, tanh
  outputs with ``|y| > 0.97`` (slope below ~6% of its maximum); 0 for other activations.
- Every value in a record is a finite float: a value that is inf/NaN is never emitted.

Records leave in batches: ``emit`` is called at each flush (every ``flush_every`` steps, but at
most about four times a second, always at evaluations and at the end) with the records since
the last one; a batch is grouped by series, not sorted by step.

Cost: per-step values stay on the device until a flush (no host sync per step on a GPU, except
the inf check of fp16's GradScaler, which PyTorch does on the host). The gradients and the layer
weights are copied into one padded buffer, so all the norms of a step take four calls whatever
the depth (:class:`_StepNorms`); the accuracy is computed at the flush from the kept logits.
Activation hooks are attached only for the forward passes that record statistics. The
divergence rules (:mod:`playground.divergence`: inf/NaN, and a loss that stays far above its
starting value) run at each flush, on the host copy; the inf/NaN check names the first bad step
exactly.
``benchmarks/train.py`` compares ``train()`` with a bare loop.

Statuses (:data:`STATUSES`): ``finished``, ``early_stopped`` (validation loss stopped improving),
``stopped`` (``should_stop()`` or the wall-clock limit), ``diverged`` (inf/NaN loss or gradient,
or a loss stuck far above its starting value; ``summary["diverged_rule"]`` names the rule) and
``failed`` (out of memory or another error inside the loop). Problems found before the
first step (a spec that cannot be built, an unknown name, data that does not fit the network)
raise a :class:`~playground.errors.PlaygroundError` instead.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from torch import Tensor, nn

from playground.build import build_model
from playground.data import DATASETS, DataSplit, augment, get_dataset_info, load_dataset
from playground.divergence import LossGrowth, non_finite_message
from playground.errors import ConfigError, UnknownNameError
from playground.optim import (
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    build_schedule,
    resolve_schedule_params,
)
from playground.settings import get_settings
from playground.spec import NetworkSpec, plain_type_error, read_json

__all__ = [
    "SERIES",
    "STATUSES",
    "SeriesInfo",
    "TrainResult",
    "TrainSettings",
    "activation_labels",
    "gradient_profile",
    "layer_labels",
    "resolve_device",
    "settings_from_dict",
    "settings_from_json",
    "train",
]

Status = Literal["finished", "early_stopped", "stopped", "diverged", "failed"]
STATUSES: dict[str, str] = {
    "finished": "ran every step",
    "early_stopped": "the validation loss stopped improving for early_stopping_patience evals",
    "stopped": "stopped on request, or by the wall-clock limit",
    "diverged": "the loss or the gradients became inf/NaN, or the loss stayed far above its "
                "starting value",
    "failed": "out of memory, or another error inside the training loop",
}
Record = dict[str, Any]
Emit = Callable[[list[Record]], None]

_SATURATION = 0.97  # |tanh| above, or sigmoid outside [0.03, 0.97]: slope under ~6-12% of max
_EVAL_BATCH = 512
_FLUSH_MIN_S = 0.25  # at most ~4 flushes a second...
_FLUSH_MAX_STEPS = 256  # ...unless this many steps wait on the device (the table's rows)
_SERIAL_NUMEL = 1 << 22  # instrumentation buffers up to this size use one CPU thread


# -- the record contract -----------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesInfo:
    """One metric series: how its records look and when they are written.

    ``kind``: ``"scalar"`` records carry ``value``; ``"vector"`` records carry ``values``, one
    per label of the ``labels`` record named here; ``"labels"`` records carry ``labels``.
    ``when``: ``"start"`` (step 0 only), ``"step"`` (every step), ``"eval"`` (every
    ``eval_every`` steps and at the end), ``"stats"`` (step 0 and every ``stats_every`` steps),
    ``"flush"`` (whenever records are emitted).
    """

    name: str
    kind: Literal["scalar", "vector", "labels"]
    when: Literal["start", "step", "eval", "stats", "flush"]
    help: str
    labels: str | None = None


SERIES: dict[str, SeriesInfo] = {
    s.name: s
    for s in (
        SeriesInfo("layers", "labels", "start", "Conv/Linear module names, in depth order"),
        SeriesInfo("activations", "labels", "start", "activation module names, in depth order"),
        SeriesInfo("loss", "scalar", "step", "training loss of the step's batch"),
        SeriesInfo("acc", "scalar", "step", "training accuracy of the step's batch"),
        SeriesInfo("lr", "scalar", "step", "learning rate used for the step"),
        SeriesInfo("grad_norm", "scalar", "step", "L2 norm of all gradients, before clipping"),
        SeriesInfo("grad_norm_clipped", "scalar", "step", "L2 norm of all gradients, after "
                   "clipping (equal to grad_norm without clipping)"),
        SeriesInfo("grad_norm_layer", "vector", "step", "L2 norm of each layer's weight "
                   "gradient, before clipping", "layers"),
        SeriesInfo("update_ratio_layer", "vector", "step", "||change of weight|| / ||weight|| "
                   "of each layer for the step", "layers"),
        SeriesInfo("val_loss", "scalar", "eval", "validation loss (eval mode)"),
        SeriesInfo("val_acc", "scalar", "eval", "validation accuracy (eval mode)"),
        SeriesInfo("act_mean", "vector", "stats", "mean of each activation's output",
                   "activations"),
        SeriesInfo("act_std", "vector", "stats", "standard deviation of each activation's "
                   "output", "activations"),
        SeriesInfo("act_dead", "vector", "stats", "fraction of units that are zero for every "
                   "example of the batch (dead ReLUs)", "activations"),
        SeriesInfo("act_saturated", "vector", "stats", "fraction of sigmoid/tanh outputs in "
                   "the flat ends (sigmoid < 0.03 or > 0.97, |tanh| > 0.97)", "activations"),
        SeriesInfo("elapsed_s", "scalar", "flush", "seconds since the first step started"),
    )
}


# -- settings ----------------------------------------------------------------------------------
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class TrainSettings(BaseModel):
    """Everything a run needs besides the spec; round-trips through JSON (share links, store).

    The defaults train the ``small_cnn`` preset on ``shapes`` in well under a minute on a
    laptop CPU.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # data
    dataset: str = Field("shapes", description="data set name (see playground.data.DATASETS)")
    n_train: int | None = Field(None, description="training examples; None = the set's default")
    n_val: int | None = Field(None, description="validation examples; None = the set's default")
    noise: float | None = Field(None, description="point sets: coordinate noise std")
    data_seed: int = Field(0, description="seed of the data set itself (kept apart from `seed` "
                           "so runs with different seeds see the same examples)")
    augment: bool = Field(False, description="random crops (+ flips where the set allows)")
    # optimiser and schedule
    optimizer: str = Field("adam", description="optimiser name (see playground.optim)")
    lr: float = Field(1e-3, description="base learning rate")
    momentum: float | None = Field(None, description="SGD/RMSprop momentum or Adam beta1; "
                                   "None = the optimiser's own")
    weight_decay: float | None = Field(None, description="L2 / decoupled weight decay on "
                                       "weights; None = the optimiser's own (AdamW: 0.01)")
    schedule: str = Field("constant", description="learning-rate schedule name")
    schedule_params: dict[str, float] = Field(
        default_factory=dict, description="the schedule's parameters; missing ones default"
    )
    clip_norm: float | None = Field(None, description="clip the total gradient norm to this")
    clip_value: float | None = Field(None, description="clip each gradient element to +-this")
    # loop
    batch_size: int = Field(64, description="examples per micro-batch")
    accumulate: int = Field(1, description="micro-batches per optimiser step")
    steps: int = Field(300, description="optimiser steps")
    epochs: float | None = Field(None, description="if set, steps = epochs x n_train / "
                                 "(batch_size x accumulate), rounded up")
    label_smoothing: float = Field(0.0, description="cross-entropy label smoothing")
    amp: Literal["off", "bf16", "fp16"] = Field("off", description="mixed precision (CUDA "
                                                "only; ignored with a note elsewhere)")
    seed: int = Field(0, description="seed of the initial weights, batch order and augmentation")
    device: str = Field("auto", description="auto (cuda, then mps, then cpu), cpu, cuda[:N], mps")
    # instrumentation
    eval_every: int = Field(25, description="steps between validation passes")
    early_stopping_patience: int | None = Field(
        None, description="stop after this many evaluations without a lower validation loss"
    )
    stats_every: int = Field(25, description="steps between activation statistics (0 = never)")
    flush_every: int = Field(10, description="steps between flushes of records to emit (at "
                             "most ~4 a second; always at evaluations and the end)")

    @field_validator("dataset", "optimizer", "schedule")
    @classmethod
    def _registered(cls, v: str, info: ValidationInfo) -> str:
        registry = {"dataset": DATASETS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES}
        try:
            registry[info.field_name].get(v)  # the registry's own "unknown ...; choose" text
        except UnknownNameError as err:
            raise ValueError(str(err)) from None
        return v

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str) -> str:
        if not _DEVICE_RE.match(v):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps; got {v!r}")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> TrainSettings:
        def need(ok: bool, text: str) -> None:
            if not ok:
                raise ValueError(text)

        need(math.isfinite(self.lr) and self.lr > 0, f"lr must be a positive number; got {self.lr}")
        need(1 <= self.batch_size <= 65_536,
             f"batch_size must be 1 to 65536; got {self.batch_size}")
        need(1 <= self.accumulate <= 1024, f"accumulate must be 1 to 1024; got {self.accumulate}")
        need(self.steps >= 1, f"steps must be at least 1; got {self.steps}")
        need(self.epochs is None or self.epochs > 0, f"epochs must be positive; got {self.epochs}")
        need(self.eval_every >= 1, f"eval_every must be at least 1; got {self.eval_every}")
        need(self.stats_every >= 0, f"stats_every must be 0 or more; got {self.stats_every}")
        need(self.flush_every >= 1, f"flush_every must be at least 1; got {self.flush_every}")
        need(self.n_train is None or self.n_train >= 1, "n_train must be at least 1")
        need(self.n_val is None or self.n_val >= 1, "n_val must be at least 1")
        need(self.momentum is None or 0.0 <= self.momentum < 1.0,
             f"momentum must be in [0, 1); got {self.momentum}")
        need(self.weight_decay is None or self.weight_decay >= 0.0,
             f"weight_decay must be 0 or more; got {self.weight_decay}")
        need(self.clip_norm is None or self.clip_norm > 0,
             f"clip_norm must be positive; got {self.clip_norm}")
        need(self.clip_value is None or self.clip_value > 0,
             f"clip_value must be positive; got {self.clip_value}")
        need(0.0 <= self.label_smoothing < 1.0,
             f"label_smoothing must be in [0, 1); got {self.label_smoothing}")
        need(self.early_stopping_patience is None or self.early_stopping_patience >= 1,
             "early_stopping_patience must be at least 1")
        try:
            resolve_schedule_params(self.schedule, self.schedule_params)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return self

    def total_steps(self, n_train: int) -> int:
        """Steps of the run for a training set of ``n_train`` examples (``epochs`` wins)."""
        if self.epochs is None:
            return self.steps
        per_step = self.batch_size * self.accumulate
        return max(1, math.ceil(self.epochs * n_train / per_step))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)


def _plain_error(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
    if kind == "value_error":
        text = str(err.get("ctx", {}).get("error", err.get("msg", "is invalid")))
        return text if not err.get("loc") else f"{where}: {text}"
    if kind == "extra_forbidden":
        return f"{where} is not a training setting (check its spelling)"
    plain = plain_type_error(err)
    return f"{where} {plain}" if plain else f"{where}: {err.get('msg', 'is invalid')}"


def settings_from_dict(data: Any) -> TrainSettings:
    """Validate plain data into :class:`TrainSettings`; problems raise one ``ConfigError``."""
    if not isinstance(data, Mapping):
        raise ConfigError("training settings must be a mapping of names to values (a JSON object)")
    try:
        return TrainSettings.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError("; ".join(_plain_error(e) for e in exc.errors())) from None


def settings_from_json(text: str | bytes) -> TrainSettings:
    return settings_from_dict(read_json(text, "the training settings"))


# -- results -----------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """How a run ended, in plain data (``to_dict`` is JSON-ready).

    ``summary`` keys: ``steps_done``, ``total_steps``, ``final_loss`` (last step's training
    loss), ``final_val_loss``, ``final_val_acc``, ``best_val_acc``, ``best_val_step``,
    ``steps_per_s`` and ``samples_per_s`` (training steps only: evaluation time excluded),
    ``wall_s`` (the whole call), ``device``, ``amp``, ``num_params``, ``notes``; a diverged
    run adds ``diverged_rule`` (a key of :data:`playground.divergence.RULES`). Values are
    ``None`` when unknown (no evaluation happened).
    """

    status: Status
    message: str
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in {"finished", "early_stopped"}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- labels and devices ------------------------------------------------------------------------
_ACT_NAME = re.compile(r"(^|\.)act\d*$")
_ACT_TYPES = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid)


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.modules.conv._ConvNd | nn.Linear)]


def _activation_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    named = [(n, m) for n, m in model.named_modules() if n and _ACT_NAME.search(n)]
    if named:
        return named
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _ACT_TYPES)]


def layer_labels(model: nn.Module) -> list[str]:
    """Names of the Conv/Linear modules in registration (= depth) order: per-layer labels."""
    return [n for n, _ in _weight_layers(model)]


def activation_labels(model: nn.Module) -> list[str]:
    """Names of the activation modules (``....act``, ``....act2``) in depth order."""
    return [n for n, _ in _activation_modules(model)]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` defers to ``PLAYGROUND_DEVICE``, then picks cuda, then mps, then cpu."""
    if name == "auto":
        name = get_settings().device or "auto"
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA is not available on this machine; use device 'auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"there is no {name}: this machine has {torch.cuda.device_count()} "
                          "GPU(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise ConfigError("MPS (Apple GPU) is not available here; use device 'auto' or 'cpu'")
    return dev


# -- data --------------------------------------------------------------------------------------
@dataclass
class _Data:
    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    hflip: bool
    is_image: bool
    notes: list[str]


def _prepare_data(spec: NetworkSpec, settings: TrainSettings, data: DataSplit | None,
                  device: torch.device, n_train: int | None = None,
                  n_val: int | None = None) -> _Data:
    """Load (or take) the data set and shape it to the network's input."""
    if data is None:
        info = get_dataset_info(settings.dataset)
        shape = (2,) if info.kind == "points" else spec.input.shape
        data = load_dataset(
            settings.dataset, seed=settings.data_seed, input_shape=shape,
            n_train=n_train if n_train is not None else settings.n_train,
            n_val=n_val if n_val is not None else settings.n_val,
            noise=settings.noise, device=device,
        )
    notes: list[str] = []
    want = tuple(spec.input.shape)
    got = tuple(data.train_x.shape[1:])
    title = data.info.title
    if math.prod(got) != math.prod(want):
        shown = "x".join(map(str, got))
        hint = (f"set the input to channels={got[0]}, height=1, width=1" if len(got) == 1
                else f"set the input to {shown}")
        raise ConfigError(f"{title} gives inputs of shape {shown}, but the network expects "
                          f"{'x'.join(map(str, want))}; {hint}")
    if data.num_classes > spec.num_classes:
        raise ConfigError(f"{title} has {data.num_classes} classes but the network has only "
                          f"{spec.num_classes} outputs; set num_classes to {data.num_classes}")
    if data.num_classes < spec.num_classes:
        notes.append(f"the network has {spec.num_classes} outputs for {data.num_classes} "
                     "classes; the extra outputs are never the right answer")

    def fit(x: Tensor) -> Tensor:
        return x.to(device).reshape(x.shape[0], *want)

    return _Data(fit(data.train_x), data.train_y.to(device), fit(data.val_x),
                 data.val_y.to(device), bool(data.info.hflip_safe), len(want) == 3 and
                 data.info.kind == "image", notes)


def _batches(x: Tensor, y: Tensor, batch_size: int, gen: torch.Generator) -> Iterator[
        tuple[Tensor, Tensor]]:
    """Endless shuffled batches, epoch after epoch; the last partial batch of each is dropped
    (batch norm needs more than one example, and equal batches keep steps comparable)."""
    n = int(x.shape[0])
    while True:
        order = torch.randperm(n, generator=gen).to(x.device)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            yield x[idx], y[idx]


# -- instrumentation ---------------------------------------------------------------------------
@dataclass
class _StatsGroup:
    """Statistics of some activations of one forward pass, computed together (device tensors).

    ``index``: which activations; ``mean``, ``sq_dev`` (the sum of squared deviations from the
    mean, ``sum (x - mean)^2``) and ``count`` (live units for ReLU, saturated elements for
    sigmoid/tanh; None otherwise) have one entry per activation; ``numel`` and ``units``
    (elements per example) are the same for all of them.
    """

    index: list[int]
    mean: Tensor
    sq_dev: Tensor
    count: Tensor | None
    numel: int
    units: int


_StatsSample = list[_StatsGroup]
_STATS_STACK_NUMEL = 1 << 24  # activations stacked for one set of kernels, at most (elements)


class _ActivationStats:
    """Forward hooks on the activation modules, attached only for the passes that record.

    A hook only keeps the output (a reference, plus its version counter). :meth:`detach` then
    stacks the outputs of one shape and kind (up to ``_STATS_STACK_NUMEL`` elements at a time)
    and computes their statistics together, a handful of kernels for ten layers instead of
    seven per layer, leaving small tensors on the device (no host sync):
    - the mean and the sum of squared deviations from it (two passes, exact where
      ``E[x^2] - E[x]^2`` would cancel; ``sum`` adds pairwise and stays accurate over millions
      of elements, where a float32 ``vector_norm`` was off by 3e-4);
    - a count: live units for ReLU (``amax`` over the batch is > 0), saturated elements for
      sigmoid/tanh.
    They become records at the next flush (``_Recorder.collect``). An output that something
    changed in place after its activation (its version counter moved) is left out rather than
    misreported: its statistics of that step are missing.
    """

    def __init__(self, modules: list[tuple[str, nn.Module]]):
        self.modules = modules
        self.kinds = ["relu" if isinstance(m, nn.ReLU) else "sigmoid" if isinstance(m, nn.Sigmoid)
                      else "tanh" if isinstance(m, nn.Tanh) else "" for _, m in modules]
        self.seen: dict[int, tuple[Tensor, int]] = {}
        self.handles: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self) -> None:
        self.seen = {}
        for i, (_, m) in enumerate(self.modules):
            self.handles.append(m.register_forward_hook(self._hook(i)))

    def _hook(self, index: int) -> Callable[..., None]:
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            if isinstance(out, Tensor):  # a module called twice: its last output counts
                self.seen[index] = (out.detach(), out._version)

        return hook

    def detach(self) -> _StatsSample | None:
        """Remove the hooks; the statistics of what they saw (None: no hook was called)."""
        for h in self.handles:
            h.remove()
        self.handles = []
        if not self.seen:
            return None
        seen, self.seen = self.seen, {}
        batches: dict[tuple[Any, ...], list[list[int]]] = {}
        for i, (o, version) in seen.items():
            if o._version != version:
                continue  # changed in place since: its values are no longer the activation's
            chunks = batches.setdefault((self.kinds[i], o.shape, o.dtype, o.device), [[]])
            if chunks[-1] and (len(chunks[-1]) + 1) * o.numel() > _STATS_STACK_NUMEL:
                chunks.append([])
            chunks[-1].append(i)
        with torch.no_grad():
            return [self._summarise(index, [seen[i][0] for i in index], kind)
                    for (kind, *_), chunks in batches.items() for index in chunks]

    @staticmethod
    def _summarise(index: list[int], outs: list[Tensor], kind: str) -> _StatsGroup:
        x = torch.stack(outs) if len(outs) > 1 else outs[0][None]
        if x.dtype != torch.float32:
            x = x.float()
        k = len(outs)
        flat = x.reshape(k, -1)
        mean = flat.mean(1)
        sq_dev = (flat - mean[:, None]).square_().sum(1)
        count: Tensor | None = None
        if kind == "relu":  # units (one channel at one position) alive for any example
            alive = x.reshape(k, x.shape[1], -1).amax(1) if x.dim() > 1 else flat
            count = torch.count_nonzero(alive, dim=1)
        elif kind == "sigmoid":  # below 0.03 or above 0.97
            count = torch.count_nonzero((flat - 0.5).abs_() > _SATURATION - 0.5, dim=1)
        elif kind == "tanh":
            count = torch.count_nonzero(flat.abs() > _SATURATION, dim=1)
        numel = outs[0].numel()
        units = outs[0][0].numel() if outs[0].dim() else 1
        return _StatsGroup(index, mean, sq_dev, count, numel, units)


def _chunk_size(numel: int) -> int:
    """Row length of :class:`_StepNorms` buffers: about 512 rows for all the tensors, a power
    of two from 64 to 16384 (the padding, under one row per tensor, stays small)."""
    return 1 << min(max((max(numel, 1) // 512).bit_length(), 6), 14)


@dataclass
class _Segment:
    """The tensors of one dtype and device in one ``(rows, C)`` buffer (see _StepNorms)."""

    buf: Tensor  # gradient rows, then bank 0, then bank 1
    grad_index: list[int]  # which parameters
    grad_views: list[Tensor]  # where each one is copied
    weight_index: list[int]  # which layers
    bank_views: tuple[list[Tensor], list[Tensor]]  # where each weight is copied, per bank
    grad_rows: Tensor  # buf's gradient rows
    bank_rows: Tensor  # buf's two banks
    # (rows written after update k, rows holding update k) for k even and k odd
    now_before: tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]


class _StepNorms:
    """Per-step L2 norms of every gradient, every layer weight and every layer's update.

    All tensors of one dtype and device (in practice: all) are copied into one zero-padded
    ``(rows, C)`` buffer: each tensor fills whole rows of ``C`` elements (the rest of its last
    row stays zero, which changes no norm). The buffer holds the gradients, then two banks of
    the layer weights used in turn: after update ``k`` the weights are copied into bank
    ``k % 2``, the other bank still holds the weights after update ``k - 1``, and subtracting
    the new ones from it leaves the (negated) update of step ``k`` there. A step then costs
    two ``torch._foreach_copy_`` (one per-tensor loop in C++), one subtraction and one
    ``vector_norm(dim=1)`` giving every row's norm: four calls whatever the depth, where
    per-tensor copies and norms from Python cost dozens of kernel launches, which dominate a
    small network's instrumentation on a CPU. The row norms of a flush are gathered per
    tensor once, in :meth:`tensor_norms` (sums of squared row norms, in float64 where the
    device has it, so that vanishing gradients do not underflow). ``||w_before||`` of step
    ``k`` is the weight norm of step ``k - 1``; :meth:`start` gives the one at
    initialisation. Memory: one copy of the parameters and two of the layer weights, plus
    padding.

    With ``split`` (clipping by norm needs the gradient norms before the update)
    :meth:`grads` returns the gradient rows' norms and :meth:`weights` the banks'. Either way a
    step's output is what the two calls return, ``width`` row norms; row ``r`` belongs to
    column ``owner[r]`` of :meth:`tensor_norms`: ``grad_col[i]`` for parameter ``i``,
    ``bank_col[b][j]`` for layer ``j`` in bank ``b``.

    On a CPU, buffers up to ``_SERIAL_NUMEL`` elements are processed on one thread: the work
    is a few microseconds of memory traffic, and waking an idle OpenMP worker for each of the
    larger calls cost more than the whole of it (measured: 52 us against 22 us a step for a
    deep MLP on two cores).
    """

    def __init__(self, params: list[Tensor], weights: list[Tensor], split: bool,
                 chunk: int | None = None):
        P, L = len(params), len(weights)
        size = chunk or _chunk_size(sum(t.numel() for t in params + weights + weights))
        keys = list(dict.fromkeys((t.dtype, t.device) for t in params + weights))
        self.split = split
        self.grad_col = list(range(P))
        self.bank_col = [[P + j for j in range(L)], [P + L + j for j in range(L)]]
        self.n_cols = P + 2 * L
        self.segments: list[_Segment] = []
        owners: list[int] = []
        later: list[int] = []  # with split: the banks' rows come after every gradient row
        for dtype, device in keys:
            gi = [i for i, t in enumerate(params) if (t.dtype, t.device) == (dtype, device)]
            wi = [j for j, t in enumerate(weights) if (t.dtype, t.device) == (dtype, device)]
            plan = [(params[i], i) for i in gi] + [
                (weights[j], self.bank_col[b][j]) for b in (0, 1) for j in wi]
            rows = [-(-t.numel() // size) for t, _ in plan]
            buf = torch.zeros(sum(rows), size, dtype=dtype, device=device)
            flat, start = buf.view(-1), 0
            views: list[Tensor] = []
            owner: list[int] = []
            for (t, col), r in zip(plan, rows, strict=True):
                views.append(flat[start * size:start * size + t.numel()].view_as(t))
                owner += [col] * r
                start += r
            g = sum(rows[:len(gi)])
            w = (buf.shape[0] - g) // 2
            bank0, bank1 = buf[g:g + w], buf[g + w:]
            n = len(gi)
            self.segments.append(_Segment(
                buf, gi, views[:n], wi, (views[n:n + len(wi)], views[n + len(wi):]),
                buf[:g], buf[g:], ((bank0, bank1), (bank1, bank0))))
            owners += owner[:g] if split else owner
            later += owner[g:] if split else []
        self.width = len(owners) + len(later)
        self.owner = torch.tensor(owners + later, dtype=torch.long)
        self._one = len(keys) == 1  # one segment holds every tensor: no index lists per step
        self._serial = all(s.buf.device.type == "cpu" and s.buf.numel() <= _SERIAL_NUMEL
                           for s in self.segments)

    def _one_thread(self) -> int:
        """Switch to one intra-op thread when serial; the count to restore (0: unchanged)."""
        if not self._serial:
            return 0
        threads = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)
            return threads
        return 0

    def _pick(self, tensors: list[Tensor], index: list[int]) -> list[Tensor]:
        return tensors if self._one else [tensors[i] for i in index]

    def start(self, weights: list[Tensor]) -> Tensor:
        """Copy the initial weights into bank 0; their norms, in layer order."""
        for s in self.segments:
            if s.weight_index:
                torch._foreach_copy_(s.bank_views[0], self._pick(weights, s.weight_index))
        if not weights:
            return torch.zeros(0, device=self.segments[0].buf.device if self.segments else None)
        return torch.stack(torch._foreach_norm(weights)).float()

    def grads(self, grads: list[Tensor]) -> list[Tensor]:
        """Copy the gradients in (before any clipping); with ``split``, their row norms now."""
        out = []
        threads = self._one_thread()
        try:
            for s in self.segments:
                if s.grad_index:
                    torch._foreach_copy_(s.grad_views, self._pick(grads, s.grad_index))
                if self.split:
                    out.append(torch.linalg.vector_norm(s.grad_rows, dim=1))
        finally:
            if threads:
                torch.set_num_threads(threads)
        return out

    def weights(self, weights: list[Tensor], step: int) -> list[Tensor]:
        """After update ``step``: copy the weights in, form the updates, return row norms."""
        out = []
        threads = self._one_thread()
        try:
            for s in self.segments:
                if s.weight_index:
                    torch._foreach_copy_(s.bank_views[step % 2],
                                         self._pick(weights, s.weight_index))
                    now, before = s.now_before[step % 2]
                    before.sub_(now)
                out.append(torch.linalg.vector_norm(s.bank_rows if self.split else s.buf, dim=1))
        finally:
            if threads:
                torch.set_num_threads(threads)
        return out

    def tensor_norms(self, rows: Tensor) -> Tensor:
        """``(n, width)`` row norms of ``n`` steps -> ``(n, n_cols)`` *squared* tensor norms."""
        wide = torch.float32 if rows.device.type == "mps" else torch.float64
        out = torch.zeros(rows.shape[0], self.n_cols, dtype=wide, device=rows.device)
        return out.index_add_(1, self.owner.to(rows.device), rows.to(wide).square())


class _Recorder:
    """Keeps per-step values on the device; turns them into records at each flush.

    Each step leaves on the device its loss, its logits and labels (the accuracy is computed
    at the flush) and the 1-d tensors of :class:`_StepNorms`. At the flush they become one
    ``(steps, width)`` table: the total norm, the reordering by layer and the update ratios
    are computed once for all buffered steps, followed by one copy to the host.
    """

    def __init__(self, emit: Emit, norms: _StepNorms, layer_grad_cols: list[int],
                 weight_norms: Tensor, samples_per_step: int, act_kinds: list[str], cap: int):
        self.emit = emit
        self.cap = cap
        self.width = norms.width
        self.step_norms = norms
        device = weight_norms.device
        self.n_params = len(norms.grad_col)  # the first columns of tensor_norms
        self.layer_grad_cols = torch.tensor(layer_grad_cols, device=device)  # layer weights
        self.bank_cols = torch.tensor(norms.bank_col, device=device)  # (2, L)
        self.prev_weight_norms = weight_norms  # (L,) norms before the next buffered step
        self.n_layers = len(layer_grad_cols)
        self.act_kinds = act_kinds
        self.samples = samples_per_step
        self.out: list[Record] = []
        self.last_loss: float | None = None  # training loss of the last good step
        self.flush_losses: list[float] = []  # the good steps' losses of the last collect
        self._reset()

    def _reset(self) -> None:
        self.steps: list[int] = []
        self.lrs: list[float] = []
        self.loss: list[Tensor] = []
        self.logits: list[Tensor] = []  # (B, classes) per micro-batch
        self.labels: list[Tensor] = []  # (B,) per micro-batch
        self.clipped: list[Tensor] = []  # total norm after clipping (only when clipping)
        self.norms: list[Tensor] = []  # what _StepNorms returned, step after step
        self.stats: list[tuple[int, _StatsSample]] = []

    def add_batch(self, logits: Tensor, labels: Tensor) -> None:
        self.logits.append(logits)
        self.labels.append(labels)

    def add_step(self, step: int, lr: float, loss: Tensor, clipped: Tensor | None,
                 norms: list[Tensor]) -> None:
        self.steps.append(step)
        self.norms += norms
        self.lrs.append(lr)
        self.loss.append(loss)
        if clipped is not None:
            self.clipped.append(clipped)

    def add_stats(self, step: int, stats: _StatsSample) -> None:
        self.stats.append((step, stats))

    def collect(self, check_grads: bool = True) -> tuple[int | None, str]:
        """Move the buffer to host records. Returns (first bad step, what went bad) or (None, "").

        Records from the first step whose loss (or, with ``check_grads``, gradient norm) is
        not finite onwards are dropped; so are records holding any non-finite value.
        """
        n, L = len(self.steps), self.n_layers
        bad: int | None = None
        what = ""
        self.flush_losses = []
        if n:
            rows = torch.cat(self.norms).view(n, self.width)
            sq = self.step_norms.tensor_norms(rows)  # (n, P + 2L) squared norms, float64
            gn = sq[:, :self.n_params].sum(1).sqrt().float()  # (n,) total, before clipping
            gnc = torch.stack(self.clipped).float() if self.clipped else gn
            layer_gn = sq[:, self.layer_grad_cols].sqrt().float()  # (n, L) weight gradients
            # step k wrote its weights to bank k % 2 and its update to the other bank
            parity = torch.tensor(self.steps, device=sq.device) % 2
            wn = sq.gather(1, self.bank_cols[parity]).sqrt()  # (n, L) after each step
            dn = sq.gather(1, self.bank_cols[1 - parity]).sqrt()  # (n, L) each update
            before = torch.cat([self.prev_weight_norms[None].to(wn.dtype), wn[:-1]])
            self.prev_weight_norms = wn[-1]
            ratio = (dn / before.clamp_min(1e-12)).float()
            m = n * self.samples  # every step sees samples_per_step examples; a step that
            # failed half-way may have left more logits: they are not counted
            hits = torch.cat(self.logits)[:m].argmax(1) == torch.cat(self.labels)[:m]
            correct = hits.view(n, -1).sum(1).float()
            flat = torch.cat([
                torch.stack(self.loss).float(), correct, gn, gnc,
                layer_gn.reshape(-1), ratio.reshape(-1),
            ]).cpu().tolist()  # one device -> host copy per flush
            loss, correct = flat[:n], flat[n:2 * n]
            gn_h, gnc_h = flat[2 * n:3 * n], flat[3 * n:4 * n]
            lg, rt = flat[4 * n:4 * n + n * L], flat[4 * n + n * L:]
            out, samples, isfinite = self.out, self.samples, math.isfinite
            good = n
            for i, step in enumerate(self.steps):
                lo, g = loss[i], gn_h[i]
                if not isfinite(lo):
                    bad, what, good = step, "the loss", i
                    break
                if not isfinite(g) and check_grads:
                    bad, what, good = step, "the gradients", i
                    break
                self.last_loss = lo
                out += [
                    {"step": step, "name": "loss", "value": lo},
                    {"step": step, "name": "acc", "value": correct[i] / samples},
                    {"step": step, "name": "lr", "value": self.lrs[i]},
                ]
                if not isfinite(g):  # an fp16 step the grad scaler skipped: no grad records
                    continue
                a, b = i * L, (i + 1) * L
                out += [
                    {"step": step, "name": "grad_norm", "value": g},
                    {"step": step, "name": "grad_norm_clipped", "value": gnc_h[i]},
                    {"step": step, "name": "grad_norm_layer", "values": lg[a:b]},
                ]
                self._vector(step, "update_ratio_layer", rt[a:b])
            self.flush_losses = loss[:good]
        self._collect_stats(bad)
        self._reset()
        return bad, what

    def _collect_stats(self, bad: int | None) -> None:
        keep = [(step, sample) for step, sample in self.stats if bad is None or step < bad]
        groups = [g for _, sample in keep for g in sample]
        if not groups:
            return
        # one copy for all the sums, one for all the counts
        fl = torch.cat([t for g in groups for t in (g.mean, g.sq_dev)]).float().cpu().tolist()
        counts = [g.count for g in groups if g.count is not None]
        ct = torch.cat(counts).cpu().tolist() if counts else []
        f = c = 0
        n_act = len(self.act_kinds)
        for step, sample in keep:
            mean, std, dead, sat = ([math.nan] * n_act for _ in range(4))
            for g in sample:
                k = len(g.index)
                means, sq_devs = fl[f:f + k], fl[f + k:f + 2 * k]
                f += 2 * k
                live = ct[c:c + k] if g.count is not None else [0] * k
                c += k if g.count is not None else 0
                for i, m, d, n_c in zip(g.index, means, sq_devs, live, strict=True):
                    kind = self.act_kinds[i]
                    mean[i] = m
                    std[i] = math.sqrt(max(d, 0.0) / max(g.numel, 1))
                    # relu: n_c counts live units (of `units` per example); else none is dead
                    dead[i] = 1.0 - n_c / max(g.units, 1) if kind == "relu" else 0.0
                    sat[i] = n_c / max(g.numel, 1) if kind in {"sigmoid", "tanh"} else 0.0
            for name, row in zip(("act_mean", "act_std", "act_dead", "act_saturated"),
                                 (mean, std, dead, sat), strict=True):
                self._vector(step, name, row)

    def scalar(self, step: int, name: str, value: float) -> None:
        """Queue one scalar record for the next ``send`` (left out when not finite)."""
        if math.isfinite(value):
            self.out.append({"step": step, "name": name, "value": float(value)})

    def _vector(self, step: int, name: str, values: list[float]) -> None:
        # the sum of float32 values in float64 is finite exactly when every value is
        if math.isfinite(sum(values)):
            self.out.append({"step": step, "name": name, "values": values})

    def send(self) -> None:
        if self.out:
            batch, self.out = self.out, []
            self.emit(batch)


# -- evaluation --------------------------------------------------------------------------------
@torch.no_grad()
def _evaluate(model: nn.Module, x: Tensor, y: Tensor, amp_ctx: Callable[[], Any],
              batch: int = _EVAL_BATCH) -> tuple[float, float]:
    """(mean loss, accuracy) on ``x, y`` in eval mode, without label smoothing."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, int(x.shape[0]), batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        with amp_ctx():
            out = model(xb)
        loss_sum += F.cross_entropy(out.float(), yb, reduction="sum")
        correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(int(x.shape[0]), 1)
    return float(loss_sum) / n, int(correct) / n


# -- the loop ----------------------------------------------------------------------------------
def _is_oom(err: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(err, oom) or "out of memory" in str(err).lower()


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


def train(
    spec: NetworkSpec,
    settings: TrainSettings,
    *,
    emit: Emit,
    should_stop: Callable[[], bool] = lambda: False,
    data: DataSplit | None = None,
) -> TrainResult:
    """Train ``spec`` with ``settings``, emitting batches of metric records; see the module doc.

    ``data`` skips loading (tests, benchmarks). ``should_stop`` is called once per step.
    Seeds ``torch.manual_seed(settings.seed)`` (global RNG: initial weights, dropout); batch
    order and augmentation use their own generators, so the same settings give the same
    numbers on CPU. Raises ``PlaygroundError`` for problems found before the first step.
    """
    t_call = time.perf_counter()
    limits = get_settings()
    device = resolve_device(settings.device)
    notes: list[str] = []

    # count on the meta device first: a network over the limit is never allocated
    num_params = sum(p.numel() for p in build_model(spec, device="meta").parameters())
    if num_params > limits.max_params:
        raise ConfigError(f"the network has {num_params:,} parameters; the limit here is "
                          f"{limits.max_params:,} (PLAYGROUND_MAX_PARAMS)")
    torch.manual_seed(settings.seed)
    model = build_model(spec).to(device)
    d = _prepare_data(spec, settings, data, device)
    notes += d.notes
    n_train = int(d.train_x.shape[0])
    if settings.batch_size > n_train:
        raise ConfigError(f"batch_size {settings.batch_size} is larger than the {n_train} "
                          "training examples; lower it or use more examples")
    total = settings.total_steps(n_train)
    if total > limits.max_steps:
        raise ConfigError(f"{total:,} steps is more than the limit of {limits.max_steps:,} "
                          "(PLAYGROUND_MAX_STEPS); lower steps or epochs")

    # mixed precision only where it helps and is well supported
    amp = settings.amp
    scaler: torch.amp.GradScaler | None = None
    if amp != "off" and device.type != "cuda":
        notes.append(f"mixed precision ({amp}) runs only on CUDA; this run used float32 on "
                     f"{device.type}")
        amp = "off"
    if amp == "off":
        amp_ctx: Callable[[], Any] = contextlib.nullcontext
    else:
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16

        def amp_ctx() -> Any:
            return torch.autocast(device_type="cuda", dtype=dtype)

        if amp == "fp16":
            scaler = torch.amp.GradScaler("cuda")

    optimizer = build_optimizer(settings.optimizer, model, lr=settings.lr,
                                momentum=settings.momentum, weight_decay=settings.weight_decay)
    scheduler = (None if settings.schedule == "constant" else
                 build_schedule(settings.schedule, optimizer, total, settings.schedule_params))

    layers = _weight_layers(model)
    acts = _activation_modules(model)
    # detached aliases share storage with the weights (they see every update) and keep the
    # instrumentation out of autograd
    weights = [m.weight.detach() for _, m in layers]
    params = [p for p in model.parameters() if p.requires_grad]
    pos = {id(p): i for i, p in enumerate(params)}
    step_norms = _StepNorms([p.detach() for p in params], weights,
                            split=settings.clip_norm is not None)
    layer_grad_cols = [step_norms.grad_col[pos[id(m.weight)]] for _, m in layers]
    samples_per_step = settings.batch_size * settings.accumulate
    hooks = _ActivationStats(acts)
    rec = _Recorder(emit, step_norms, layer_grad_cols, step_norms.start(weights),
                    samples_per_step, hooks.kinds, _FLUSH_MAX_STEPS)

    batch_gen = torch.Generator().manual_seed(settings.seed)
    try:
        aug_gen = torch.Generator(device=device).manual_seed(settings.seed + 1)
    except RuntimeError:  # a device without its own generator
        aug_gen = torch.Generator().manual_seed(settings.seed + 1)
    batches = _batches(d.train_x, d.train_y, settings.batch_size, batch_gen)
    do_augment = settings.augment and d.is_image
    if settings.augment and not d.is_image:
        notes.append("augmentation applies to images only; this data set has none")
    ls = settings.label_smoothing
    clip_norm, clip_value = settings.clip_norm, settings.clip_value
    zero = torch.zeros((), device=device)

    emit([{"step": 0, "name": "layers", "labels": [n for n, _ in layers]},
          {"step": 0, "name": "activations", "labels": [n for n, _ in acts]}])

    status: Status = "finished"
    message = ""
    rule = ""  # the divergence rule that fired
    growth = LossGrowth()
    step = 0
    last_eval = -1
    best_val_loss = math.inf
    best_val_acc: float | None = None
    best_val_step: int | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    evals_since_best = 0
    eval_time = 0.0
    t0 = last_flush = time.perf_counter()
    stats_every, accumulate = settings.stats_every, settings.accumulate
    eval_every, flush_every = settings.eval_every, settings.flush_every
    max_wall_s = limits.max_wall_s

    def evaluate(at: int) -> None:
        nonlocal val_loss, val_acc, best_val_loss, best_val_acc, best_val_step
        nonlocal evals_since_best, last_eval, eval_time
        te = time.perf_counter()
        val_loss, val_acc = _evaluate(model, d.val_x, d.val_y, amp_ctx)
        eval_time += time.perf_counter() - te
        last_eval = at
        rec.scalar(at, "val_loss", val_loss)
        rec.scalar(at, "val_acc", val_acc)
        if best_val_acc is None or val_acc > best_val_acc:
            best_val_acc, best_val_step = val_acc, at
        if val_loss < best_val_loss:
            best_val_loss, evals_since_best = val_loss, 0
        else:
            evals_since_best += 1

    def flush() -> tuple[int | None, str]:
        nonlocal last_flush
        last_flush = time.perf_counter()
        bad, what = rec.collect(check_grads=scaler is None)
        rec.scalar(step if bad is None else bad - 1, "elapsed_s", time.perf_counter() - t0)
        return bad, what

    try:
        model.train()
        while step < total:
            if should_stop():
                status, message = "stopped", f"stopped at step {step} on request"
                break
            if time.perf_counter() - t_call > max_wall_s:
                status = "stopped"
                message = (f"stopped at step {step}: the run reached the time limit of "
                           f"{limits.max_wall_s} s (PLAYGROUND_MAX_WALL_S)")
                break
            stats_now = stats_every > 0 and step % stats_every == 0
            optimizer.zero_grad(set_to_none=True)
            loss_t = zero
            for micro in range(accumulate):
                xb, yb = next(batches)
                if do_augment:
                    xb = augment(xb, hflip=d.hflip, generator=aug_gen)
                if stats_now and micro == 0:
                    hooks.attach()
                if amp == "off":
                    out = model(xb)
                    loss = F.cross_entropy(out, yb, label_smoothing=ls)
                else:
                    with amp_ctx():
                        out = model(xb)
                        loss = F.cross_entropy(out, yb, label_smoothing=ls)
                if stats_now and micro == 0:
                    act_stats = hooks.detach()
                    if act_stats is not None:
                        rec.add_stats(step, act_stats)
                scaled = loss / accumulate if accumulate > 1 else loss
                if scaler is not None:
                    scaler.scale(scaled).backward()
                else:
                    scaled.backward()
                rec.add_batch(out.detach(), yb)
                loss_t = scaled.detach() if micro == 0 else loss_t + scaled.detach()
            if scaler is not None:
                scaler.unscale_(optimizer)
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            norms = step_norms.grads(grads)  # copied before clipping (norms with clip_norm)
            clipped = None
            if clip_value is not None:
                # clamp each element, as torch.nn.utils.clip_grad_value_
                torch._foreach_clamp_min_(grads, -clip_value)
                torch._foreach_clamp_max_(grads, clip_value)
                clipped = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            elif clip_norm is not None:
                clipped = torch.linalg.vector_norm(torch.cat(norms))
            if clip_norm is not None:
                # as torch.nn.utils.clip_grad_norm_: scale by min(1, max_norm / (norm + 1e-6))
                coef = torch.clamp(clip_norm / (clipped + 1e-6), max=1.0)
                torch._foreach_mul_(grads, coef)
                clipped = clipped * coef
            lr = float(optimizer.param_groups[0]["lr"])
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            norms += step_norms.weights(weights, step)
            rec.add_step(step, lr, loss_t, clipped, norms)

            at_eval = step % eval_every == 0 or step == total
            # flush every flush_every steps, but not more than ~4 times a second: fast small
            # models then pay the fixed cost of a flush once per many steps
            if at_eval or len(rec.steps) == rec.cap or (
                    step % flush_every == 0 and time.perf_counter() - last_flush >= _FLUSH_MIN_S):
                bad, what = flush()
                if bad is not None:
                    status, rule = "diverged", "non_finite"
                    message = non_finite_message(bad, what)
                    step = bad - 1
                    rec.send()
                    break
                grown = growth.check(rec.flush_losses, step)
                if grown is not None:
                    status, rule, message = "diverged", "loss_growth", grown
                    rec.send()
                    break
                if at_eval:
                    evaluate(step)
                rec.send()
                pat = settings.early_stopping_patience
                if at_eval and pat is not None and evals_since_best >= pat and step < total:
                    status = "early_stopped"
                    message = (f"stopped early at step {step}: the validation loss has not "
                               f"improved for {pat} evaluations (best {best_val_loss:.4g})")
                    break
    except Exception as err:  # the loop must always end with a result, never an exception
        hooks.detach()
        done = step
        if _is_oom(err):
            message = (f"out of memory on {device}: lower the batch size or use a smaller "
                       "model")
        else:
            message = f"failed at step {done + 1}: {_one_line(err)}"
        status = "failed"
        with contextlib.suppress(Exception):
            bad, _ = flush()
            if bad is not None:
                step = bad - 1
            rec.send()
        return _result(status, message, step, total, t_call, t0, eval_time, samples_per_step,
                       device, amp, num_params, notes, rec.last_loss, val_loss, val_acc,
                       best_val_acc, best_val_step)

    train_time = time.perf_counter() - t0 - eval_time
    if status in {"stopped"}:
        with contextlib.suppress(Exception):
            bad, _ = flush()
            if bad is None and last_eval != step:
                evaluate(step)
            rec.send()
    if status == "finished":
        message = (f"finished {step} steps: validation accuracy {_pct(val_acc)} (best "
                   f"{_pct(best_val_acc)} at step {best_val_step})")
    result = _result(status, message, step, total, t_call, t0, eval_time, samples_per_step,
                     device, amp, num_params, notes, rec.last_loss, val_loss, val_acc,
                     best_val_acc, best_val_step, train_time)
    if rule:
        result.summary["diverged_rule"] = rule
    return result


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _result(status: Status, message: str, step: int, total: int, t_call: float, t0: float,
            eval_time: float, samples_per_step: int, device: torch.device, amp: str,
            num_params: int, notes: list[str], last_loss: float | None,
            val_loss: float | None, val_acc: float | None, best_val_acc: float | None,
            best_val_step: int | None, train_time: float | None = None) -> TrainResult:
    now = time.perf_counter()
    if train_time is None:
        train_time = now - t0 - eval_time
    train_time = max(train_time, 1e-9)
    summary = {
        "steps_done": step,
        "total_steps": total,
        "final_loss": last_loss,
        "final_val_loss": val_loss,
        "final_val_acc": val_acc,
        "best_val_acc": best_val_acc,
        "best_val_step": best_val_step,
        "steps_per_s": step / train_time,
        "samples_per_s": step * samples_per_step / train_time,
        "wall_s": now - t_call,
        "device": str(device),
        "amp": amp,
        "num_params": num_params,
        "notes": list(notes),
    }
    return TrainResult(status, message, summary)


# -- gradient profile --------------------------------------------------------------------------
def gradient_profile(
    spec: NetworkSpec,
    source: TrainSettings | tuple[Tensor, Tensor] | None = None,
    n_batches: int = 1,
    *,
    data: DataSplit | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Per-layer gradient norms of a freshly initialised network: the vanishing-gradient view.

    ``source`` is training settings (their data set, batch size and seeds; default
    ``TrainSettings()``) or one batch ``(x, y)``. The network is built with
    ``torch.manual_seed(seed)`` exactly as :func:`train` builds it, in training mode, and one
    backward pass of the mean loss over ``n_batches`` batches is taken. Without ``data`` only
    ``n_batches x batch_size`` examples are loaded (fast); with the ``data`` that
    :func:`train` gets, the norms equal ``grad_norm_layer`` of its first step (without
    augmentation or accumulation).

    Returns ``{"labels": [...], "grad_norm": [...], "weight_norm": [...], "loss": float,
    "batch_size": int, "n_batches": int}``; lists follow :func:`layer_labels`.
    """
    settings = source if isinstance(source, TrainSettings) else TrainSettings()
    dev = resolve_device(device)
    torch.manual_seed(settings.seed)
    model = build_model(spec).to(dev)
    model.train()
    if isinstance(source, tuple):
        xs = [source[0].to(dev).reshape(source[0].shape[0], *spec.input.shape)]
        ys = [source[1].to(dev)]
    else:
        n_train = n_val = None
        if data is None:
            info = get_dataset_info(settings.dataset)
            n_train = min(max(n_batches, 1) * settings.batch_size, info.max_train)
            n_val = 10  # the smallest split every set accepts; unused here
        d = _prepare_data(spec, settings, data, dev, n_train=n_train, n_val=n_val)
        batch = min(settings.batch_size, int(d.train_x.shape[0]))
        it = _batches(d.train_x, d.train_y, batch, torch.Generator().manual_seed(settings.seed))
        pairs = [next(it) for _ in range(max(n_batches, 1))]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    layers = _weight_layers(model)
    model.zero_grad(set_to_none=True)
    total_loss = 0.0
    for xb, yb in zip(xs, ys, strict=True):
        loss = F.cross_entropy(model(xb), yb) / len(xs)
        loss.backward()
        total_loss += float(loss.detach())
    zero = torch.zeros((), device=dev)
    grads = [m.weight.grad if m.weight.grad is not None else zero for _, m in layers]
    weights = [m.weight.detach() for _, m in layers]
    return {
        "labels": [n for n, _ in layers],
        "grad_norm": [float(v) for v in torch._foreach_norm(grads)],
        "weight_norm": [float(v) for v in torch._foreach_norm(weights)],
        "loss": total_loss,
        "batch_size": int(xs[0].shape[0]),
        "n_batches": len(xs),
    }
