"""Optimisers and learning-rate schedules as name -> builder registries.

Training settings store names (``"adamw"``, ``"warmup_cosine"``); these tables turn them into
``torch.optim`` objects. Each optimiser entry carries its usual learning rate (``default_lr``),
so a UI can propose a sensible value when the user switches optimiser.

Optimisers (``torch.optim``; papers as PyTorch's docs cite them):

- ``sgd``: plain stochastic gradient descent (Robbins & Monro 1951).
- ``momentum``: SGD with heavy-ball momentum 0.9 (Polyak 1964; PyTorch's formulation
  ``v = mu v + g; w -= lr v``, Sutskever et al. 2013).
- ``nesterov``: SGD with Nesterov momentum 0.9 (Nesterov 1983; Sutskever et al. 2013).
- ``adam``: Kingma & Ba 2015, betas (0.9, 0.999).
- ``adamw``: Adam with decoupled weight decay, default 0.01 (Loshchilov & Hutter 2019).
- ``rmsprop``: Hinton's lecture 6e (2012), smoothing 0.99 as PyTorch.
- ``adagrad``: Duchi et al. 2011.

``momentum`` in the training settings overrides the optimiser's own: the momentum of the SGD
family and RMSprop, or Adam's ``beta1`` (its first-moment decay plays the same role). Weight
decay applies only to weights with two or more dimensions (conv kernels, linear matrices), not
to biases and normalisation scales, as nanoGPT's ``configure_optimizers`` does.

Schedules are multipliers of the base learning rate. Convention (PyTorch's ``LambdaLR``, and
``CosineAnnealingLR`` with ``T_max`` = the run): optimiser update ``s`` (1-based, as recorded in
the metrics) uses ``lr(s) = base_lr * f(s - 1)`` where ``f(t)`` is written for ``t`` updates
already done out of ``T`` in the run:

- ``constant``: ``f(t) = 1``
- ``step``: ``f(t) = gamma ** floor(t / step_size)`` (``StepLR``)
- ``exponential``: ``f(t) = gamma ** t`` (``ExponentialLR``)
- ``cosine``: ``f(t) = (1 + cos(pi t / T)) / 2``: 1 at the start, 1/2 half-way, 0 after the
  run (Loshchilov & Hutter 2017, SGDR, without restarts)
- ``warmup_cosine``: ``f(t) = (t + 1) / W`` for ``t < W`` (linear warm-up over ``W =
  warmup_steps`` updates, as nanoGPT), then the cosine over the remaining ``T - W`` updates
  (Goyal et al. 2017 for the warm-up).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from playground.errors import ConfigError
from playground.registry import Registry

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "OptimizerEntry",
    "ScheduleEntry",
    "build_optimizer",
    "build_schedule",
    "param_groups",
    "resolve_schedule_params",
    "schedule_factor",
]


# -- optimisers --------------------------------------------------------------------------------
OptimizerBuilder = Callable[[list[dict[str, Any]], float, float | None], torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerEntry:
    """An optimiser: its usual learning rate, its own momentum/weight decay, and a builder.

    ``build(groups, lr, momentum)`` receives parameter groups that already carry their
    ``weight_decay``; ``momentum`` is ``None`` for the optimiser's own default.
    """

    name: str
    title: str
    default_lr: float  # the learning rate people usually start from with this optimiser
    default_momentum: float | None  # None: the optimiser has no momentum knob (Adagrad)
    default_weight_decay: float
    build: OptimizerBuilder = field(repr=False)


OPTIMIZERS: Registry[OptimizerEntry] = Registry("optimiser")


def _add_optimizer(entry: OptimizerEntry, help: str) -> None:
    OPTIMIZERS.register(entry.name, entry, help)


def _mom(momentum: float | None, default: float) -> float:
    return default if momentum is None else momentum


_add_optimizer(
    OptimizerEntry(
        "sgd", "SGD", 0.1, 0.0, 0.0,
        lambda g, lr, m: torch.optim.SGD(g, lr=lr, momentum=_mom(m, 0.0)),
    ),
    "plain gradient descent: w -= lr * g",
)
_add_optimizer(
    OptimizerEntry(
        "momentum", "SGD + momentum", 0.05, 0.9, 0.0,
        lambda g, lr, m: torch.optim.SGD(g, lr=lr, momentum=_mom(m, 0.9)),
    ),
    "SGD with heavy-ball momentum 0.9: a running sum of gradients smooths the path",
)
_add_optimizer(
    OptimizerEntry(
        "nesterov", "SGD + Nesterov momentum", 0.05, 0.9, 0.0,
        lambda g, lr, m: torch.optim.SGD(g, lr=lr, momentum=_mom(m, 0.9), nesterov=True),
    ),
    "SGD with Nesterov momentum 0.9: looks one step ahead before correcting",
)
_add_optimizer(
    OptimizerEntry(
        "adam", "Adam", 1e-3, 0.9, 0.0,
        lambda g, lr, m: torch.optim.Adam(g, lr=lr, betas=(_mom(m, 0.9), 0.999)),
    ),
    "per-weight step sizes from running means of the gradient and its square",
)
_add_optimizer(
    OptimizerEntry(
        "adamw", "AdamW", 1e-3, 0.9, 0.01,
        lambda g, lr, m: torch.optim.AdamW(g, lr=lr, betas=(_mom(m, 0.9), 0.999)),
    ),
    "Adam with weight decay applied to the weights directly, not through the gradient",
)
_add_optimizer(
    OptimizerEntry(
        "rmsprop", "RMSprop", 1e-3, 0.0, 0.0,
        lambda g, lr, m: torch.optim.RMSprop(g, lr=lr, alpha=0.99, momentum=_mom(m, 0.0)),
    ),
    "divides each step by a running root-mean-square of recent gradients",
)
_add_optimizer(
    OptimizerEntry(
        "adagrad", "Adagrad", 1e-2, None, 0.0,
        lambda g, lr, m: torch.optim.Adagrad(g, lr=lr),
    ),
    "divides each step by the root of all squared gradients so far: steps only shrink",
)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weights with >= 2 dims get ``weight_decay``; biases and norm scales get 0."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(
    name: str,
    model: nn.Module,
    *,
    lr: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``model``'s parameters; ``None`` means the entry's default."""
    entry = OPTIMIZERS.get(name)
    wd = entry.default_weight_decay if weight_decay is None else weight_decay
    return entry.build(param_groups(model, wd), entry.default_lr if lr is None else lr, momentum)


# -- schedules ---------------------------------------------------------------------------------
ScheduleFn = Callable[..., float]  # f(t, total, **params) -> multiplier of the base lr


@dataclass(frozen=True)
class ScheduleEntry:
    """A schedule: its multiplier ``f(t, total, **params)`` and its parameters' defaults."""

    name: str
    title: str
    factor: ScheduleFn = field(repr=False)
    params: Mapping[str, float] = field(default_factory=dict)  # name -> default
    param_help: Mapping[str, str] = field(default_factory=dict)


SCHEDULES: Registry[ScheduleEntry] = Registry("schedule")


def _cosine(t: float, total: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), total) / max(total, 1.0)))


def _constant(t: int, total: int) -> float:
    return 1.0


def _step(t: int, total: int, step_size: float = 100, gamma: float = 0.1) -> float:
    return gamma ** (t // max(int(step_size), 1))


def _exponential(t: int, total: int, gamma: float = 0.99) -> float:
    return gamma**t


def _cosine_run(t: int, total: int) -> float:
    return _cosine(t, total)


def _warmup_cosine(t: int, total: int, warmup_steps: float = 20) -> float:
    warm = min(max(int(warmup_steps), 0), total)
    if t < warm:
        return (t + 1) / warm
    return _cosine(t - warm, total - warm)


SCHEDULES.register("constant", ScheduleEntry("constant", "Constant", _constant),
                   "the same learning rate for the whole run")
SCHEDULES.register(
    "step",
    ScheduleEntry("step", "Step decay", _step, {"step_size": 100, "gamma": 0.1},
                  {"step_size": "updates between drops", "gamma": "factor at each drop"}),
    "multiply the learning rate by gamma every step_size updates",
)
SCHEDULES.register(
    "exponential",
    ScheduleEntry("exponential", "Exponential decay", _exponential, {"gamma": 0.99},
                  {"gamma": "factor per update"}),
    "multiply the learning rate by gamma after every update",
)
SCHEDULES.register(
    "cosine",
    ScheduleEntry("cosine", "Cosine to zero", _cosine_run),
    "half a cosine wave from the base learning rate down to zero at the end of the run",
)
SCHEDULES.register(
    "warmup_cosine",
    ScheduleEntry("warmup_cosine", "Warm-up, then cosine", _warmup_cosine,
                  {"warmup_steps": 20}, {"warmup_steps": "updates of linear warm-up"}),
    "rise linearly from almost zero for warmup_steps updates, then the cosine to zero",
)


def resolve_schedule_params(name: str, params: Mapping[str, float] | None) -> dict[str, float]:
    """The schedule's defaults updated with ``params``; unknown or invalid ones raise."""
    entry = SCHEDULES.get(name)
    given = dict(params or {})
    unknown = sorted(set(given) - set(entry.params))
    if unknown:
        known = ", ".join(entry.params) or "none"
        raise ConfigError(
            f"schedule {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters: {known}"
        )
    out = {**entry.params, **given}
    if "step_size" in out and out["step_size"] < 1:
        raise ConfigError(f"step_size must be at least 1; got {out['step_size']}")
    if "gamma" in out and not 0.0 < out["gamma"] <= 1.0:
        raise ConfigError(f"gamma must be in (0, 1]; got {out['gamma']}")
    if "warmup_steps" in out and out["warmup_steps"] < 0:
        raise ConfigError(f"warmup_steps must be 0 or more; got {out['warmup_steps']}")
    return out


def schedule_factor(name: str, t: int, total: int,
                    params: Mapping[str, float] | None = None) -> float:
    """``f(t)``: the multiplier of the base lr after ``t`` of ``total`` updates."""
    return float(SCHEDULES.get(name).factor(t, total, **resolve_schedule_params(name, params)))


def build_schedule(
    name: str,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    params: Mapping[str, float] | None = None,
) -> LambdaLR:
    """A ``LambdaLR`` stepping once per optimiser update over a run of ``total_steps``."""
    entry = SCHEDULES.get(name)
    kwargs = resolve_schedule_params(name, params)
    total = max(int(total_steps), 1)
    return LambdaLR(optimizer, lambda t: entry.factor(t, total, **kwargs))

