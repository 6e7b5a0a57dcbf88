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

Records leave in batches: ``emit`` is called at each flush (after step 1, so that a live view
has a first point at once; then every ``flush_every`` steps, but at most about four times a
second, always at evaluations and at the end) with the records since the last one; a batch is
grouped by series, not sorted by step.

Cost: per-step values stay on the device until a flush (no host sync per step on a GPU, except
the inf check of fp16's GradScaler, which PyTorch does on the host). The gradients and the layer
weights are copied into one padded buffer, so all the norms of a step take four calls whatever
the depth; the accuracy is computed at the flush from the kept logits. Activation hooks are
attached only for the forward passes that record statistics (all of it in
:mod:`playground.instrument`). Step 1's loss and accuracy are sent right after its forward pass
(one host sync), so a live chart has a point before a big network's first step is done. The
divergence rules (:mod:`playground.divergence`: inf/NaN, and a loss that stays far above its
starting value) run at each flush, on the host copy; the inf/NaN check names the first bad step
exactly.
``benchmarks/train.py`` compares ``train()`` with a bare loop.

Statuses (:data:`STATUSES`): ``finished``, ``early_stopped`` (validation loss stopped improving),
``stopped`` (``should_stop()``, or the wall-clock limit ``PLAYGROUND_MAX_WALL_S``, which is
checked from the second step on: every run makes at least one step), ``diverged`` (inf/NaN loss
or gradient, or a loss stuck far above its starting value; ``summary["diverged_rule"]`` names
the rule) and ``failed`` (out of memory or another error inside the loop). Problems found
before the first step (a spec that cannot be built, an unknown name, data that does not fit the
network) raise a :class:`~playground.errors.PlaygroundError` instead.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
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
from playground.instrument import ActivationStats, Emit, Recorder, StepNorms
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
    "prefetch_data",
    "resolve_device",
    "settings_from_dict",
    "settings_from_json",
    "train",
    "validation_split",
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

_EVAL_BATCH = 512
_FLUSH_MIN_S = 0.25  # at most ~4 flushes a second...
_FLUSH_MAX_STEPS = 256  # ...unless this many steps wait on the device (the table's rows)


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
                             "most ~4 a second; always after step 1, at evaluations and the "
                             "end)")

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
    weights: dict[str, Weights] = field(default_factory=dict)  # "final", "best"; not in to_dict

    @property
    def ok(self) -> bool:
        return self.status in {"finished", "early_stopped"}

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "summary": dict(self.summary)}


@dataclass
class Weights:
    """A copy of a model's ``state_dict`` on the CPU, with the step it is from and the
    validation accuracy :func:`_evaluate` measured on exactly these weights (``None``: none
    was measured)."""

    state: dict[str, Tensor]
    step: int
    val_acc: float | None
    val_loss: float | None = None
    pred: Tensor | None = None  # each validation example's predicted class (int64)
    conf: Tensor | None = None  # ...and its softmax probability (float32)


def cpu_state(model: nn.Module) -> dict[str, Tensor]:
    """A copy of ``model.state_dict()`` on the CPU that later updates do not change."""
    return {k: v.detach().to("cpu", copy=True).contiguous()
            for k, v in model.state_dict().items()}


def state_nbytes(model: nn.Module) -> int:
    """Bytes of the model's ``state_dict`` (parameters and buffers)."""
    return sum(v.numel() * v.element_size() for v in model.state_dict().values())


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


def _load_split(spec: NetworkSpec, settings: TrainSettings, device: torch.device,
                n_train: int | None = None, n_val: int | None = None) -> DataSplit:
    """The data set named in ``settings``, loaded at the shape ``spec`` needs."""
    info = get_dataset_info(settings.dataset)
    shape = (2,) if info.kind == "points" else spec.input.shape
    return load_dataset(
        settings.dataset, seed=settings.data_seed, input_shape=shape,
        n_train=n_train if n_train is not None else settings.n_train,
        n_val=n_val if n_val is not None else settings.n_val,
        noise=settings.noise, device=device,
    )


def _prepare_data(spec: NetworkSpec, settings: TrainSettings, data: DataSplit | None,
                  device: torch.device, n_train: int | None = None,
                  n_val: int | None = None) -> _Data:
    """Load (or take) the data set and shape it to the network's input."""
    if data is None:
        data = _load_split(spec, settings, device, n_train, n_val)
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


def prefetch_data(spec: NetworkSpec, settings: TrainSettings) -> None:
    """Load the data :func:`train` would load for ``spec`` and ``settings``, on the CPU, into
    :func:`playground.data.load_dataset`'s in-process cache (a worker's warm-up)."""
    _prepare_data(spec, settings, None, torch.device("cpu"))


def validation_split(spec: NetworkSpec, settings: TrainSettings, data: DataSplit | None = None,
                     device: str | torch.device = "cpu") -> tuple[DataSplit, Tensor, Tensor]:
    """``(split, val_x, val_y)``: the data set :func:`train` loads for ``spec`` and ``settings``
    (or ``data``, as ``train(data=...)``) and its validation inputs shaped to the network's
    input and labels, exactly the tensors :func:`train` evaluates on."""
    dev = torch.device(device)
    split = data if data is not None else _load_split(spec, settings, dev)
    d = _prepare_data(spec, settings, split, dev)
    return split, d.val_x, d.val_y


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


# -- evaluation --------------------------------------------------------------------------------
@torch.no_grad()
def _evaluate(model: nn.Module, x: Tensor, y: Tensor, amp_ctx: Callable[[], Any],
              batch: int = _EVAL_BATCH, predictions: list[Tensor] | None = None
              ) -> tuple[float, float]:
    """(mean loss, accuracy) on ``x, y`` in eval mode, without label smoothing. With
    ``predictions`` (a list), it is set to ``[pred, confidence]``: each example's predicted
    class (int64) and its softmax probability (float32), on the CPU."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    preds: list[Tensor] = []
    confs: list[Tensor] = []
    for start in range(0, int(x.shape[0]), batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        with amp_ctx():
            out = model(xb)
        loss_sum += F.cross_entropy(out.float(), yb, reduction="sum")
        pred = out.argmax(1)
        correct += (pred == yb).sum()
        if predictions is not None:
            preds.append(pred.cpu())
            confs.append(out.float().softmax(1).gather(1, pred[:, None])[:, 0].cpu())
    model.train(was_training)
    if predictions is not None:
        predictions[:] = [torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long),
                          torch.cat(confs) if confs else torch.zeros(0)]
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
    keep_weights_bytes: int = 0,
) -> TrainResult:
    """Train ``spec`` with ``settings``, emitting batches of metric records; see the module doc.

    ``data`` skips loading (tests, benchmarks). ``should_stop`` is called once per step.
    With ``keep_weights_bytes`` at least the size of the model's ``state_dict``, the result's
    ``weights`` hold copies of the weights at the best validation accuracy (``"best"``,
    copied when that evaluation ran) and at the end (``"final"``, when the last evaluation
    was at the last step and the run neither diverged nor failed); ``summary["weights_bytes"]``
    is that size either way.
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
    weights_bytes = state_nbytes(model)
    keep_weights = 0 < weights_bytes <= keep_weights_bytes
    kept: dict[str, Weights] = {}
    predictions: list[Tensor] = []  # the last evaluation's [pred, conf] when keep_weights
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
    step_norms = StepNorms([p.detach() for p in params], weights, _FLUSH_MAX_STEPS)
    layer_grad_cols = [step_norms.grad_col[pos[id(m.weight)]] for _, m in layers]
    samples_per_step = settings.batch_size * settings.accumulate
    hooks = ActivationStats(acts)
    rec = Recorder(emit, step_norms, layer_grad_cols, step_norms.start(weights),
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
        val_loss, val_acc = _evaluate(model, d.val_x, d.val_y, amp_ctx,
                                      predictions=predictions if keep_weights else None)
        eval_time += time.perf_counter() - te
        last_eval = at
        rec.scalar(at, "val_loss", val_loss)
        rec.scalar(at, "val_acc", val_acc)
        if best_val_acc is None or val_acc > best_val_acc:
            best_val_acc, best_val_step = val_acc, at
            if keep_weights:
                kept["best"] = Weights(cpu_state(model), at, val_acc, val_loss, *predictions)
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
            if step and time.perf_counter() - t_call > max_wall_s:  # every run makes one step
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
                if step == 0 and accumulate == 1:
                    rec.send_early(1, loss, out, yb)  # before the first backward pass
                if scaler is not None:
                    scaler.scale(scaled).backward()
                else:
                    scaled.backward()
                rec.add_batch(out.detach(), yb)
                loss_t = scaled.detach() if micro == 0 else loss_t + scaled.detach()
            if scaler is not None:
                scaler.unscale_(optimizer)
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            step_norms.grads(grads)  # copied before clipping: the records' norms are unclipped
            clipped = None
            if clip_value is not None:
                # clamp each element, as torch.nn.utils.clip_grad_value_
                torch._foreach_clamp_min_(grads, -clip_value)
                torch._foreach_clamp_max_(grads, clip_value)
            if clip_value is not None or clip_norm is not None:
                # the total norm as torch.nn.utils.clip_grad_norm_ computes it (the norm of the
                # per-tensor norms): the same arithmetic, so the same clipped gradients to the
                # last bit. Adam turns last-bit differences in near-zero gradient elements into
                # full-size steps of either sign, and runs clipped two ways drift apart.
                clipped = nn.utils.get_total_norm(grads)
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
            rec.add_step(step, lr, loss_t, clipped, weights)

            at_eval = step % eval_every == 0 or step == total
            # flush after the first step (a live chart gets its first point at once), then
            # every flush_every steps but not more than ~4 times a second: fast small models
            # then pay the fixed cost of a flush once per many steps
            if at_eval or step == 1 or len(rec.steps) == rec.cap or (
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
        result = _result(status, message, step, total, t_call, t0, eval_time,
                         samples_per_step, device, amp, num_params, notes, rec.last_loss,
                         val_loss, val_acc, best_val_acc, best_val_step)
        result.summary["weights_bytes"] = weights_bytes
        result.weights = kept
        return result

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
    if keep_weights and status != "diverged" and last_eval == step and val_acc is not None:
        kept["final"] = Weights(cpu_state(model), step, val_acc, val_loss, *predictions)
    result.summary["weights_bytes"] = weights_bytes
    result.weights = kept
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
