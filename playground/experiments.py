"""Ready-made experiment suites and custom grids: several ordinary runs that differ in one thing.

A :class:`Suite` is a registered list of :class:`Variant` (title, spec, training settings). All
variants of a suite share the data (same set, size and ``data_seed``) and the weight seed, so
the only difference between two runs is the one the suite is about. Each suite is scaled down
to finish in a few minutes on a laptop CPU; its ``scaled_down`` text says how (smaller inputs,
narrower layers, fewer steps than the papers). The numbers are measured, never copied: the
seed articles' VGG-19 table, for instance, is illustrative.

Suites (:data:`EXPERIMENTS`):

1. ``ladder``: the activation / normalisation ladder on a small VGG-style network (sigmoid;
   ReLU; ReLU + batch norm; + gradient clipping; + learning-rate decay).
2. ``depth``: plain vs residual CIFAR networks at 20, 32 and 56 layers (He et al. 2016, sec.
   4.2): the degradation problem.
3. ``init``: zeros, small normal, large normal, Xavier (Glorot & Bengio 2010) and Kaiming (He
   et al. 2015) on a deep ReLU and a deep tanh MLP without normalisation.
4. ``optimizers``: every optimiser of :data:`playground.optim.OPTIMIZERS` at its usual
   learning rate (``default_lr``).
5. ``batch_lr``: batch size x learning rate for the same number of epochs: noise vs speed.
6. ``lr_clip``: a learning-rate sweep with and without gradient clipping (exploding gradients).

:func:`custom_grid` builds a grid over one or two settings of one design. Runs are started
through any ``start_run(owner, title, spec_dict, settings_dict) -> run_id`` (the app's
:mod:`playground.runners`): :func:`launch` starts as many variants as the owner's
queue allows and records the whole plan in the store (``run_meta`` of the first run, key
:data:`PLAN_KEY`), so :func:`top_up` can start the rest as earlier runs finish, from any page
load. :func:`results_table` summarises a suite's runs from the store.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from playground.build import validate
from playground.compare import gradient_flow, status_text
from playground.errors import ConfigError, PlaygroundError, SpecError
from playground.layers import ACTIVATIONS, INITS, NORMS
from playground.optim import OPTIMIZERS, SCHEDULES
from playground.presets import cifar_resnet_spec, get_preset
from playground.registry import Registry
from playground.runs import ACTIVE_STATUSES, RunStore, normalise_owner
from playground.spec import (
    Defaults,
    HeadSpec,
    InputSpec,
    NetworkSpec,
    PoolSpec,
    StageSpec,
    spec_from_dict,
)
from playground.train import TrainSettings, settings_from_dict

__all__ = [
    "EXPERIMENTS",
    "MAX_GRID",
    "PLAN_KEY",
    "VARY_FIELDS",
    "Batch",
    "Suite",
    "Variant",
    "VaryField",
    "custom_grid",
    "get_suite",
    "launch",
    "list_batches",
    "parse_values",
    "results_table",
    "scale_steps",
    "shrink",
    "top_up",
]

PLAN_KEY = "experiment_plan"  # run_meta of a batch's first run: the whole plan
RUN_KEY = "experiment"  # run_meta of every run of a batch: {"batch", "index"}
MAX_GRID = 12  # most runs a custom grid may have
END_WINDOW = 10  # "at the end" = geometric mean over the last this-many recorded steps

StartRun = Callable[[str, str, dict[str, Any], dict[str, Any]], int]


@dataclass(frozen=True)
class Variant:
    """One run of a suite: what it is called, the network and the training settings."""

    title: str
    spec: NetworkSpec
    settings: TrainSettings
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "spec": self.spec.to_dict(),
                "settings": self.settings.to_dict(), "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Variant:
        return cls(str(data["title"]), spec_from_dict(data["spec"]),
                   settings_from_dict(data["settings"]), str(data.get("note", "")))


@dataclass(frozen=True)
class Suite:
    """A registered experiment: the question, what to look for, and how it was scaled down."""

    name: str
    title: str
    question: str  # what the suite asks, one or two sentences
    look_for: str  # what the results table and charts should show
    scaled_down: str  # how it differs from the paper-size experiment
    make: Callable[[], list[Variant]] = field(repr=False)
    lesson: str | None = None  # the lesson in playground.lessons it illustrates

    def variants(self) -> list[Variant]:
        return self.make()


EXPERIMENTS: Registry[Suite] = Registry("experiment")


def get_suite(name: str) -> Suite:
    return EXPERIMENTS.get(name)


def _add(suite: Suite) -> None:
    EXPERIMENTS.register(suite.name, suite, suite.question)


def _settings(**kw: Any) -> TrainSettings:
    base: dict[str, Any] = {"seed": 0, "data_seed": 0, "eval_every": 25, "stats_every": 25}
    return TrainSettings(**{**base, **kw})


# -- 1. activation / normalisation ladder ------------------------------------------------------
def mini_vgg(activation: str = "relu", norm: str = "batch", init: str = "kaiming_normal"
             ) -> NetworkSpec:
    """A VGG-style network for 3x16x16 inputs: four stages of two 3x3 convolutions (8, 16, 32,
    64 maps), each followed by a 2x2 max-pool, then a 64-unit hidden layer: 10 weight layers."""
    pool = PoolSpec(kind="max", kernel=2)
    return NetworkSpec(
        name=f"mini VGG ({activation}{', ' + norm + ' norm' if norm != 'none' else ''})",
        description="VGG-style: stacks of 3x3 convolutions and max-pools, scaled down.",
        input=InputSpec(channels=3, height=16, width=16),
        num_classes=10,
        stages=tuple(StageSpec(block="conv", depth=2, width=w, pool=pool) for w in (8, 16, 32, 64)),
        defaults=Defaults(activation=activation, norm=norm, init=init),
        head=HeadSpec(pool="flatten", hidden=(64,)),
    )


def _ladder() -> list[Variant]:
    steps = 300
    base = {"dataset": "shapes", "n_train": 4000, "n_val": 1000, "optimizer": "momentum",
            "lr": 0.05, "batch_size": 64, "steps": steps}
    relu_bn = mini_vgg("relu", "batch", "kaiming_normal")
    decay = {"schedule": "step", "schedule_params": {"step_size": steps * 2 // 3, "gamma": 0.1}}
    return [
        Variant("Sigmoid", mini_vgg("sigmoid", "none", "xavier_normal"), _settings(**base),
                "sigmoid everywhere, Xavier (Glorot) init, no normalisation"),
        Variant("ReLU", mini_vgg("relu", "none", "kaiming_normal"), _settings(**base),
                "ReLU with He (Kaiming) init, no normalisation"),
        Variant("ReLU + batch norm", relu_bn, _settings(**base), "batch norm after every conv"),
        Variant("ReLU + BN + clipping", relu_bn, _settings(**base, clip_norm=2.0),
                "total gradient norm clipped to 2"),
        Variant("ReLU + BN + clipping + LR decay", relu_bn,
                _settings(**base, clip_norm=2.0, **decay),
                f"learning rate x0.1 after step {steps * 2 // 3}"),
    ]


_add(Suite(
    "ladder", "Activation and normalisation ladder",
    "What does each fix add? The same VGG-style network with sigmoid, then ReLU, then batch "
    "norm, gradient clipping and learning-rate decay, one at a time.",
    "The sigmoid network's first-layer gradient is orders of magnitude below the last "
    "layer's and it stays at chance (10%); ReLU helps the gradient but this plain 10-layer "
    "network still learns slowly; batch norm makes it train. Clipping and decay are smaller, "
    "run-dependent refinements.",
    "The articles' table is about VGG-19 on ImageNet; this runs a 10-layer VGG-style network "
    "(widths 8-64 instead of 64-512) on 16x16 shapes images, 4,000 training examples, 300 "
    "steps of SGD with momentum.",
    _ladder, lesson="gradients",
))


# -- 2. depth: plain vs residual -----------------------------------------------------------------
def cifar_scaled(depth: int, residual: bool) -> NetworkSpec:
    """He et al.'s CIFAR network of ``depth`` layers at half width (8/16/32) for 3x16x16."""
    spec = cifar_resnet_spec(depth, residual=residual)
    assert spec.stem is not None
    spec = spec.model_copy(update={
        "name": f"{'ResNet' if residual else 'Plain'}-{depth} (half width, 16x16)",
        "input": InputSpec(channels=3, height=16, width=16),
        "stem": spec.stem.model_copy(update={"width": 8}),
    })
    return spec.with_stages([s.model_copy(update={"width": s.width // 2}) for s in spec.stages])


def _depth() -> list[Variant]:
    settings = _settings(dataset="shapes", n_train=4000, n_val=1000, optimizer="adam", lr=1e-3,
                         batch_size=32, steps=400)
    return [Variant(f"{'ResNet' if res else 'Plain'}-{d}", cifar_scaled(d, res), settings,
                    "identity shortcuts" if res else "no shortcuts")
            for res in (False, True) for d in (20, 32, 56)]


_add(Suite(
    "depth", "Depth: plain vs residual",
    "Does a deeper network train better? Plain and residual networks at 20, 32 and 56 layers.",
    "Plain networks get worse as they get deeper, even with batch norm: the degradation "
    "problem (He et al. 2016). With shortcuts every depth trains, far better than its plain "
    "twin; in a run this short the deeper ResNets may not yet catch up with the shallower "
    "one (He et al. trained for 64,000 iterations).",
    "He et al. train on CIFAR-10 (32x32, widths 16/32/64) for 64,000 iterations; this uses "
    "16x16 shapes images, half the widths (8/16/32) and 400 Adam steps.",
    _depth, lesson="residual",
))


# -- 3. initialisation ---------------------------------------------------------------------------
def deep_mlp(activation: str, init: str = "default", init_std: float = 0.01,
             depth: int = 10, width: int = 64) -> NetworkSpec:
    """``depth`` linear layers of ``width`` units without normalisation, for 1x16x16 digits."""
    return NetworkSpec(
        name=f"deep {activation} MLP ({init}{f' std {init_std:g}' if init == 'normal' else ''})",
        input=InputSpec(channels=1, height=16, width=16),
        num_classes=10,
        stages=(StageSpec(block="linear", depth=depth, width=width),),
        defaults=Defaults(activation=activation, norm="none", init=init, init_std=init_std),
        head=HeadSpec(pool="flatten"),
    )


INIT_CHOICES = (
    ("zeros", "zeros", 0.0, "all weights zero: every unit computes the same thing"),
    ("small normal", "normal", 0.01, "N(0, 0.01^2): signals shrink layer after layer"),
    ("large normal", "normal", 1.0, "N(0, 1): signals grow (ReLU) or saturate (tanh)"),
    ("Xavier", "xavier_normal", 0.0, "Glorot: Var = 2 / (fan_in + fan_out) x gain^2"),
    ("Kaiming", "kaiming_normal", 0.0, "He: Var = 2 / fan_in"),
)


def _init() -> list[Variant]:
    settings = _settings(dataset="digits", optimizer="momentum", lr=0.02, batch_size=64,
                         steps=300)
    return [Variant(f"{act} / {title}", deep_mlp(act, init, std or 0.01), settings, note)
            for act in ("relu", "tanh") for title, init, std, note in INIT_CHOICES]


_add(Suite(
    "init", "Initialisation",
    "How much does the starting point matter? Five initialisations of a 10-layer ReLU and a "
    "10-layer tanh network without normalisation.",
    "Zeros never learn (every unit stays equal); a small normal init starts with vanishing "
    "gradients; a large one explodes (ReLU) or saturates (tanh); Xavier and Kaiming keep "
    "the layers' gradients of similar size and train.",
    "Digits at 16x16 (1,437 training examples), 64-unit layers, 300 steps of SGD with "
    "momentum: the whole suite runs in seconds.",
    _init, lesson="init",
))


# -- 4. optimisers -------------------------------------------------------------------------------
def _optimizers() -> list[Variant]:
    spec = get_preset("small_cnn", input=InputSpec(channels=3, height=16, width=16))
    return [Variant(f"{e.title} (lr {e.default_lr:g})", spec,
                    _settings(dataset="shapes", n_train=4000, n_val=1000, optimizer=name,
                              lr=e.default_lr, batch_size=64, steps=200),
                    OPTIMIZERS.help(name))
            for name in OPTIMIZERS for e in [OPTIMIZERS.get(name)]]


_add(Suite(
    "optimizers", "Optimisers at their usual learning rates",
    "Which optimiser gets there fastest? SGD, momentum, Nesterov, RMSprop, Adagrad, Adam and "
    "AdamW, each at the learning rate people usually start from.",
    "Compare how fast the loss falls in the first hundred steps, not only where it ends: "
    "momentum and the adaptive methods usually pull ahead of plain SGD early.",
    "The small CNN on 16x16 shapes images, 4,000 training examples, 200 steps.",
    _optimizers, lesson="optimizers",
))


# -- 5. batch size x learning rate ---------------------------------------------------------------
def _batch_lr() -> list[Variant]:
    spec = get_preset("small_cnn", input=InputSpec(channels=3, height=16, width=16))
    return [Variant(f"batch {b}, lr {lr:g}", spec,
                    _settings(dataset="shapes", n_train=4000, n_val=1000, optimizer="momentum",
                              lr=lr, batch_size=b, epochs=3, eval_every=max(5, 750 // b)),
                    f"{math.ceil(3 * 4000 / b)} steps of {b} examples")
            for b in (16, 64, 256) for lr in (0.01, 0.1)]


_add(Suite(
    "batch_lr", "Batch size and learning rate",
    "Same data, same number of epochs: what do larger batches buy? Three batch sizes at two "
    "learning rates.",
    "Small batches take many noisy steps; large ones take few smooth steps and need a larger "
    "learning rate to keep up (Goyal et al. 2017's linear scaling rule). Look at the loss "
    "curves' noise and at steps/s.",
    "The small CNN on 16x16 shapes images, 4,000 training examples, 3 epochs each.",
    _batch_lr, lesson="batch",
))


# -- 6. learning rate x clipping -----------------------------------------------------------------
def _lr_clip() -> list[Variant]:
    spec = deep_mlp("relu", "kaiming_normal")
    return [Variant(f"lr {lr:g}" + (f", clip {clip:g}" if clip else ", no clipping"), spec,
                    _settings(dataset="digits", optimizer="sgd", lr=lr, batch_size=64,
                              steps=200, clip_norm=clip),
                    "total gradient norm clipped" if clip else "")
            for lr in (0.03, 0.3, 1.0, 3.0) for clip in (None, 1.0)]


_add(Suite(
    "lr_clip", "Exploding gradients: learning rate and clipping",
    "What happens as the learning rate grows, and what does gradient clipping change?",
    "Without clipping the larger learning rates blow up (\"diverged at step N\"); clipping "
    "the gradient norm to 1 keeps them finite and lets some of them learn, but it cannot "
    "rescue a learning rate that is far too high.",
    "A 10-layer ReLU MLP with He init and no normalisation on 16x16 digits, 200 steps of "
    "plain SGD.",
    _lr_clip, lesson="clipping",
))


# -- scaling for tests and quick previews ------------------------------------------------------
def shrink(variants: Sequence[Variant], steps: int, n_train: int | None = None,
           n_val: int | None = None) -> list[Variant]:
    """The same variants with ``steps`` steps (``epochs`` dropped) and optionally fewer
    examples; evaluation and statistics at the end. For tests and quick previews."""
    out = []
    for v in variants:
        update: dict[str, Any] = {"steps": steps, "epochs": None, "eval_every": steps,
                                  "stats_every": steps}
        if n_train is not None:
            update["n_train"] = n_train
        if n_val is not None:
            update["n_val"] = n_val
        s = v.settings
        sched = dict(s.schedule_params)
        if "step_size" in sched:
            sched["step_size"] = max(1, min(int(sched["step_size"]), steps))
        update["schedule_params"] = sched
        out.append(Variant(v.title, v.spec, settings_from_dict({**s.to_dict(), **update}),
                           v.note))
    return out


def scale_steps(variants: Sequence[Variant], factor: float) -> list[Variant]:
    """The same variants with ``factor`` x their steps (at least 10), for a quick preview.

    Runs given in epochs are turned into the equivalent steps first; evaluation, statistics
    and step-decay points scale with the run, so the curves keep their shape.
    """
    from playground.data import get_dataset_info

    out = []
    for v in variants:
        s = v.settings
        n_train = s.n_train or get_dataset_info(s.dataset).n_train
        steps = max(10, round(s.total_steps(n_train) * factor))
        sched = dict(s.schedule_params)
        if "step_size" in sched:
            sched["step_size"] = max(1, round(sched["step_size"] * factor))
        if "warmup_steps" in sched:
            sched["warmup_steps"] = max(0, round(sched["warmup_steps"] * factor))
        update = {"steps": steps, "epochs": None, "schedule_params": sched,
                  "eval_every": max(1, min(s.eval_every, steps // 4)),
                  "stats_every": max(1, min(s.stats_every, steps // 4)) if s.stats_every else 0}
        out.append(Variant(v.title, v.spec, settings_from_dict({**s.to_dict(), **update}),
                           v.note))
    return out


# -- custom grids --------------------------------------------------------------------------------
@dataclass(frozen=True)
class VaryField:
    """A setting a custom grid may vary: where it lives, its kind and example values."""

    name: str
    title: str
    kind: str  # "float", "int", "choice", "float_or_none"
    example: str  # comma-separated values offered by default
    choices: tuple[str, ...] = ()


VARY_FIELDS: dict[str, VaryField] = {f.name: f for f in (
    VaryField("lr", "learning rate", "float", "0.001, 0.01, 0.1"),
    VaryField("batch_size", "batch size", "int", "16, 64, 256"),
    VaryField("optimizer", "optimiser", "choice", "sgd, momentum, adam", tuple(OPTIMIZERS)),
    VaryField("schedule", "learning-rate schedule", "choice", "constant, cosine",
              tuple(SCHEDULES)),
    VaryField("clip_norm", "gradient clipping (norm)", "float_or_none", "none, 1.0"),
    VaryField("weight_decay", "weight decay", "float_or_none", "0, 0.0005"),
    VaryField("label_smoothing", "label smoothing", "float", "0, 0.1"),
    VaryField("steps", "steps", "int", "100, 300"),
    VaryField("seed", "seed (weights and batch order)", "int", "0, 1, 2"),
    VaryField("defaults.activation", "activation (every stage)", "choice", "sigmoid, relu",
              tuple(ACTIVATIONS)),
    VaryField("defaults.norm", "normalisation (every stage)", "choice", "none, batch",
              tuple(NORMS)),
    VaryField("defaults.init", "initialisation (every stage)", "choice",
              "xavier_normal, kaiming_normal", tuple(INITS)),
    VaryField("defaults.dropout", "dropout (every stage)", "float", "0, 0.2"),
)}


def parse_values(name: str, text: str) -> list[Any]:
    """Comma-separated values for the grid field ``name``: numbers, names or ``none``.

    Raises :class:`ConfigError` naming the value that does not fit. Nothing is evaluated.
    """
    f = VARY_FIELDS.get(name)
    if f is None:
        raise ConfigError(f"{name!r} cannot be varied; choose one of: {', '.join(VARY_FIELDS)}")
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ConfigError(f"give at least one value for {f.title}")
    out: list[Any] = []
    for t in items:
        try:
            if f.kind == "choice":
                if t not in f.choices:
                    raise ValueError
                out.append(t)
            elif f.kind == "int":
                out.append(int(t))
            elif f.kind == "float_or_none" and t.lower() in {"none", "off", "no"}:
                out.append(None)
            else:
                value = float(t)
                if not math.isfinite(value):
                    raise ValueError
                out.append(value)
        except ValueError:
            expect = (f"one of {', '.join(f.choices)}" if f.kind == "choice"
                      else "a whole number" if f.kind == "int"
                      else "a number or 'none'" if f.kind == "float_or_none" else "a number")
            raise ConfigError(f"{f.title}: {t!r} is not {expect}") from None
    return list(dict.fromkeys(out))


def _show(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def custom_grid(spec: NetworkSpec, base: TrainSettings, vary: Mapping[str, Sequence[Any]]
                ) -> list[Variant]:
    """Every combination of the values of one or two fields of :data:`VARY_FIELDS`.

    Training-setting fields replace the value in ``base``; ``defaults.*`` fields change the
    spec's defaults (and so every stage that does not set its own). At most :data:`MAX_GRID`
    variants; every variant is validated, and a problem raises :class:`PlaygroundError`
    naming the variant.
    """
    fields = [k for k, v in vary.items() if len(v)]
    if not 1 <= len(fields) <= 2:
        raise ConfigError("vary one or two settings")
    for name in fields:
        if name not in VARY_FIELDS:
            raise ConfigError(f"{name!r} cannot be varied; choose one of: "
                              f"{', '.join(VARY_FIELDS)}")
    combos = list(itertools.product(*(list(dict.fromkeys(vary[f])) for f in fields)))
    if len(combos) > MAX_GRID:
        raise ConfigError(f"that is {len(combos)} runs; a grid may have at most {MAX_GRID}")
    out = []
    for combo in combos:
        title = ", ".join(f"{VARY_FIELDS[f].title} {_show(v)}" for f, v in
                          zip(fields, combo, strict=True))
        settings_update: dict[str, Any] = {}
        defaults_update: dict[str, Any] = {}
        for f, v in zip(fields, combo, strict=True):
            if f.startswith("defaults."):
                defaults_update[f.split(".", 1)[1]] = v
            else:
                settings_update[f] = v
        try:
            settings = settings_from_dict({**base.to_dict(), **settings_update})
            new_spec = spec
            if defaults_update:
                new_spec = spec_from_dict({**spec.to_dict(), "defaults": {
                    **spec.defaults.model_dump(mode="json"), **defaults_update}})
            problems = validate(new_spec)
            if problems:
                raise SpecError(problems)
        except PlaygroundError as err:
            raise PlaygroundError(f"{title}: {err}") from None
        out.append(Variant(title, new_spec, settings))
    return out


# -- launching and tracking batches of runs ------------------------------------------------------
@dataclass(frozen=True)
class Batch:
    """One launch of a suite or grid: its plan and the runs started so far (``None`` = not
    started yet, waiting for a free place in the owner's queue)."""

    batch: str
    suite: str  # suite name, or "custom"
    title: str
    created: float
    titles: list[str]
    run_ids: list[int | None]
    first_run: int

    @property
    def pending(self) -> list[int]:
        return [i for i, r in enumerate(self.run_ids) if r is None]


def _title(suite_title: str, variant: Variant) -> str:
    return f"{suite_title}: {variant.title}"


def _start(start_run: StartRun, store: RunStore, owner: str, batch: str, index: int,
           suite_title: str, variant: Variant) -> int:
    run_id = start_run(owner, _title(suite_title, variant), variant.spec.to_dict(),
                       variant.settings.to_dict())
    store.set_meta(run_id, RUN_KEY, {"batch": batch, "index": index, "title": variant.title})
    return run_id


def launch(start_run: StartRun, store: RunStore, owner: str, suite: str, title: str,
           variants: Sequence[Variant], capacity: int) -> Batch:
    """Start up to ``capacity`` variants now; the plan of all of them goes to the store.

    ``capacity`` is how many more runs the owner may queue (the runner's ``max_queued``
    minus their active runs). Raises :class:`PlaygroundError` when it is 0 or a run cannot
    be started.
    """
    owner = normalise_owner(owner)
    if not variants:
        raise PlaygroundError("this experiment has no runs")
    if capacity < 1:
        raise PlaygroundError("you already have as many runs queued or running as allowed; "
                              "wait for one to finish or stop one")
    batch = f"{suite}-{uuid.uuid4().hex[:8]}"
    first = _start(start_run, store, owner, batch, 0, title, variants[0])
    run_ids: list[int | None] = [first] + [None] * (len(variants) - 1)
    plan = {"batch": batch, "suite": suite, "title": title, "created": time.time(),
            "variants": [v.to_dict() for v in variants], "run_ids": run_ids}
    store.set_meta(first, PLAN_KEY, plan)
    for i in range(1, min(capacity, len(variants))):
        run_ids[i] = _start(start_run, store, owner, batch, i, title, variants[i])
        store.set_meta(first, PLAN_KEY, plan)
    return _batch(plan, first)


def _batch(plan: Mapping[str, Any], first: int) -> Batch:
    return Batch(str(plan["batch"]), str(plan["suite"]), str(plan["title"]),
                 float(plan.get("created", 0.0)), [str(v["title"]) for v in plan["variants"]],
                 list(plan["run_ids"]), first)


def list_batches(store: RunStore, owner: str, limit: int = 200) -> list[Batch]:
    """The owner's launched suites and grids, newest first (from their last ``limit`` runs)."""
    runs = store.list_runs(owner, limit=limit)
    plans = store.get_meta_many((run.id for run in runs), PLAN_KEY)  # one query, not one a run
    out = []
    for run in runs:
        plan = plans.get(run.id)
        if isinstance(plan, dict) and plan.get("variants"):
            out.append(_batch(plan, run.id))
    return out


def top_up(start_run: StartRun, store: RunStore, owner: str, capacity: int) -> list[int]:
    """Start waiting variants of the owner's batches, oldest batch first, while ``capacity``
    lasts; returns the run ids started."""
    started: list[int] = []
    if capacity < 1:
        return started
    owner = normalise_owner(owner)
    for b in reversed(list_batches(store, owner)):
        if not b.pending:
            continue
        plan = store.get_meta(b.first_run, PLAN_KEY)
        for i in b.pending:
            if capacity < 1:
                return started
            variant = Variant.from_dict(plan["variants"][i])
            plan["run_ids"][i] = _start(start_run, store, owner, b.batch, i, plan["title"],
                                        variant)
            store.set_meta(b.first_run, PLAN_KEY, plan)
            started.append(plan["run_ids"][i])
            capacity -= 1
    return started


# -- results -------------------------------------------------------------------------------------
RESULT_COLUMNS: dict[str, str] = {
    "run": "run id",
    "variant": "what this run changes",
    "status": "how the run ended (or that it is still queued/running)",
    "final_val_acc": "validation accuracy at the last evaluation",
    "best_val_acc": "highest validation accuracy of the run",
    "final_loss": "training loss of the last good step",
    "grad_first_start": "first layer's weight-gradient norm at the first step (the initial "
                        "weights)",
    "grad_last_start": "last layer's weight-gradient norm at the first step",
    "grad_first_end": f"first layer's gradient norm at the end (geometric mean of the last "
                      f"{END_WINDOW} steps)",
    "grad_last_end": f"last layer's gradient norm at the end (geometric mean of the last "
                     f"{END_WINDOW} steps)",
    "act_std_last_start": "standard deviation of the last activation layer's output at "
                          "initialisation",
    "dead_end": "fraction of dead ReLU units at the last measurement (mean over layers)",
    "saturated_end": "fraction of saturated sigmoid/tanh units at the last measurement",
    "diverged": "the loss or gradients became inf/NaN, or the loss stayed far above its start",
    "steps_done": "optimiser steps done",
    "wall_s": "seconds from start to end",
}


def _first_last(values: Sequence[float]) -> tuple[float | None, float | None]:
    ok = [v if math.isfinite(v) else None for v in values]
    return (ok[0], ok[-1]) if ok else (None, None)


def _mean(values: Sequence[float]) -> float | None:
    ok = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(ok) / len(ok) if ok else None


def results_table(store: RunStore, run_ids: Sequence[int | None],
                  titles: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per run (keys of :data:`RESULT_COLUMNS`); runs not started yet (``None``) get
    a row saying they wait. Values are ``None`` where nothing was recorded."""
    rows = []
    for i, rid in enumerate(run_ids):
        title = titles[i] if titles and i < len(titles) else ""
        row: dict[str, Any] = dict.fromkeys(RESULT_COLUMNS)
        row["variant"] = title
        if rid is None:
            row["status"] = "waiting for a free place in your queue"
            rows.append(row)
            continue
        run = store.find_run(rid)
        if run is None:
            row.update(run=rid, status="deleted")
            rows.append(row)
            continue
        meta = store.get_meta(rid, RUN_KEY) or {}
        s = run.summary or {}
        row.update(run=rid, variant=title or meta.get("title") or run.title,
                   status=status_text(run), final_val_acc=s.get("final_val_acc"),
                   best_val_acc=s.get("best_val_acc"), final_loss=s.get("final_loss"),
                   diverged=run.status == "diverged" if run.status not in ACTIVE_STATUSES
                   else None, steps_done=s.get("steps_done"),
                   wall_s=s.get("wall_s") if s.get("wall_s") is not None else run.duration_s)
        m = store.get_metrics(rid, ["grad_norm_layer", "act_std", "act_dead", "act_saturated",
                                    "loss"])
        gl = m.get("grad_norm_layer")
        if gl and gl["steps"]:
            _, start = gradient_flow(gl, gl["steps"][0])
            _, end = gradient_flow(gl, None, END_WINDOW)
            row["grad_first_start"], row["grad_last_start"] = _first_last(start)
            row["grad_first_end"], row["grad_last_end"] = _first_last(end)
        if row["steps_done"] is None and m.get("loss"):
            row["steps_done"] = int(m["loss"]["steps"][-1])
        std = m.get("act_std")
        if std and std["steps"] and std["steps"][0] == 0 and std["values"][0]:
            row["act_std_last_start"] = _first_last(std["values"][0])[1]
        for key, name in (("dead_end", "act_dead"), ("saturated_end", "act_saturated")):
            series = m.get(name)
            if series and series["values"]:
                row[key] = _mean(series["values"][-1])
        rows.append(row)
    return rows
