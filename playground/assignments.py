"""Assignments: "best accuracy on this data with at most 100 k parameters and 20 M MACs",
submissions checked on the server, scored on a hidden test split, and ranked.

The seeds' lesson is that architecture is a trade-off; a class learns it fastest as a
challenge. The anchors are Kaggle InClass (a public score to climb while working, a private
score on held-out data for the final ranking, submissions capped) and nbgrader (grades
exported as a table).

- :class:`Assignment`: what the teacher sets: title, instructions (the teacher's markdown),
  the data (set, input shape, ``data_seed``, ``n_train``, ``n_val``, ``noise``: every run
  must train on exactly these, so every public score is measured on the same validation
  examples), budgets (parameters, MACs, training steps, optionally training memory), locked
  training settings, submissions per student, an optional deadline, open or closed, and the
  hidden test split's size and secret seed (``test_seed``, never sent to a page:
  :meth:`Assignment.public_dict`).
- :func:`budget_report`: the live gauge of a design against the budgets, with the parts that
  cost most and what to change.
- :class:`AssignmentStore`: the ``assignments`` and ``submissions`` tables in the run store's
  database (migration 0006). The teacher creates, edits, opens and closes
  (:func:`~playground.access.check_staff`); :meth:`AssignmentStore.submit` re-checks everything
  from the stored run (owner, status, data, design, budgets, steps, locked settings, the cap),
  then evaluates the run's stored *best* checkpoint on the validation split (the public score,
  :func:`playground.results.evaluate`, equal to what training measured) and on the hidden
  test split (the private score, :mod:`playground.holdout`).
- Leaderboards and the CSV export: :mod:`playground.leaderboard`. Students never receive test
  accuracies while an assignment is open; the teacher and the system always may.

Conventions
-----------
- Parameters and MACs are :func:`playground.targets.analyse_spec`'s (MACs as fvcore counts
  them: one multiply-add = one FLOP). Training memory is
  :func:`playground.analysis.training_memory`'s estimate for the run's micro-batch and
  optimiser state (momentum SGD one slot per parameter, Adam two). Fractions are used / limit.
- Steps: the optimiser steps a run asks for (``TrainSettings.total_steps``: ``epochs`` wins).
- Times are Unix seconds; the deadline is inclusive (a submission at the deadline counts).
- Every refusal is a :class:`~playground.errors.PlaygroundError` whose message is one line
  (an owner refusal is :class:`~playground.access.AccessDenied`).
"""

from __future__ import annotations

import builtins
import json
import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from playground.access import SYSTEM, AccessDenied, Actor, check_staff
from playground.classroom import LOCKABLE, _same
from playground.errors import ConfigError, PlaygroundError
from playground.format import fmt_bytes, fmt_si
from playground.leaderboard import (
    Leaderboard,
    Submission,
    anonymous_names,
    rank_submissions,
    to_csv,
)
from playground.runs import StoreBase, clean_name
from playground.store.schema import assignments, name_key, submissions

if TYPE_CHECKING:
    from playground.analysis import Analysis
    from playground.data import DatasetInfo
    from playground.results import ValidationData
    from playground.spec import NetworkSpec
    from playground.train import TrainSettings

__all__ = [
    "ASSIGNMENT_LOCKABLE", "SUBMITTABLE_STATUSES", "Assignment", "AssignmentStore",
    "BudgetItem", "BudgetReport", "CostPart", "SubmissionError", "assignment_from_dict",
    "budget_report", "design_summary", "run_problems",
]

State = Literal["open", "closed"]
MAX_TITLE_CHARS = 120
MAX_INSTRUCTIONS_CHARS = 20_000
MAX_SLUG_CHARS = 48
SUBMITTABLE_STATUSES = ("finished", "early_stopped", "stopped")
SUBMIT_LOCK_CLASS = 0x7375  # "su": pg_advisory_xact_lock(class, assignment id) around a submit
# training settings a teacher may lock (the data set is the assignment's own field)
ASSIGNMENT_LOCKABLE = {k: v for k, v in LOCKABLE.items() if k != "dataset"}
# fields that decide what a submission was scored on: fixed once someone has submitted
SCORING_FIELDS = ("dataset", "input_shape", "data_seed", "n_train", "n_val", "noise", "n_test",
                  "test_seed")
_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class SubmissionError(PlaygroundError):
    """A submission the assignment does not accept; the message says why, in one line."""


def _slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:MAX_SLUG_CHARS].strip("-")
    return slug or "assignment"


def _default_n_test(info: DatasetInfo) -> int:
    if info.name == "digits":
        return 360
    return info.n_val if not info.needs_download else 2_000


class Assignment(BaseModel):
    """One assignment (see the module docstring). Values are resolved when validated: the
    input shape, sizes and noise hold the set's defaults where none were given, so a stored
    assignment keeps meaning the same data if defaults change.

    ``id`` and the times are set by the store; ``test_seed`` draws the hidden test split and
    stays on the server.
    """

    model_config = {"extra": "forbid", "frozen": True}

    id: int | None = None
    slug: str = ""  # the assignment's name in links and the CLI; from the title when empty
    title: str
    instructions: str = Field("", max_length=MAX_INSTRUCTIONS_CHARS)  # markdown (the teacher's)
    dataset: str
    input_shape: tuple[int, int, int] | None = None  # the network input (C, H, W)
    data_seed: int = 0
    n_train: int | None = None
    n_val: int | None = None
    noise: float | None = None  # point sets: coordinate noise std
    n_test: int | None = None  # examples in the hidden test split
    max_params: int = Field(ge=1, le=10**12)
    max_macs: int = Field(ge=1, le=10**16)
    max_steps: int = Field(ge=1, le=10**7)
    max_train_memory_bytes: int | None = Field(None, ge=1)
    locked: dict[str, Any] = Field(default_factory=dict)
    submissions_per_student: int = Field(5, ge=1, le=1000)
    deadline: float | None = None
    state: State = "open"
    test_seed: int = Field(default_factory=lambda: secrets.randbelow(2**62), ge=0, lt=2**63)
    created_by: str = ""
    created_at: float | None = None
    updated_at: float | None = None
    closed_at: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        """Fill the slug, input shape, sizes and noise from the title and the data set."""
        if not isinstance(data, Mapping):
            return data
        from playground.data import get_dataset_info
        from playground.errors import UnknownNameError

        out = dict(data)
        if not out.get("slug") and isinstance(out.get("title"), str):
            out["slug"] = _slugify(out["title"])
        try:
            info = get_dataset_info(str(out.get("dataset")))
        except UnknownNameError:
            return out  # the field validator names it
        if out.get("input_shape") is None:
            out["input_shape"] = (2, 1, 1) if info.kind == "points" else info.input_shape
        if out.get("n_val") is None:
            out["n_val"] = info.n_val
        if out.get("n_test") is None:
            out["n_test"] = _default_n_test(info)
        if out.get("n_train") is None:
            out["n_train"] = info.n_train
            if info.name == "digits":  # the test split comes out of the 1,797 images
                from playground.data import _DIGITS_TOTAL

                val, test = out["n_val"], out["n_test"]
                if isinstance(val, int) and isinstance(test, int):
                    out["n_train"] = max(10, _DIGITS_TOTAL - val - test)
        if out.get("noise") is None and info.default_noise is not None:
            out["noise"] = info.default_noise
        return out

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        try:
            return clean_name(value, MAX_TITLE_CHARS, "the title", "give the assignment a title")
        except PlaygroundError as err:
            raise ValueError(str(err)) from None

    @field_validator("instructions")
    @classmethod
    def _instructions(cls, value: str) -> str:
        return value.replace("\x00", "")  # PostgreSQL text cannot hold NUL

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not (len(value) <= MAX_SLUG_CHARS and _SLUG_RE.match(value)):
            raise ValueError(f"use lower-case letters, digits and dashes (at most "
                             f"{MAX_SLUG_CHARS}), e.g. small-cnn-challenge; got {value!r}")
        if value.isdigit():
            raise ValueError("use at least one letter: a number names an assignment by its id")
        return value

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        from playground.data import DATASETS
        from playground.errors import UnknownNameError
        from playground.holdout import has_test_split, holdout_datasets

        try:
            DATASETS.get(value)
        except UnknownNameError as err:
            raise ValueError(str(err)) from None
        if not has_test_split(value):
            raise ValueError(f"{value} cannot hold back a hidden test split; use one of "
                             f"{', '.join(holdout_datasets())}")
        return value

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError("the deadline is a time in Unix seconds, or none")
        return value

    @field_validator("locked")
    @classmethod
    def _lockable(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(ASSIGNMENT_LOCKABLE))
        if unknown:
            raise ValueError(f"these settings cannot be locked: {', '.join(unknown)} (lockable: "
                             f"{', '.join(ASSIGNMENT_LOCKABLE)})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Assignment:
        from playground.data import DatasetError, _make_request, get_dataset_info
        from playground.holdout import _check
        from playground.train import settings_from_dict

        info = get_dataset_info(self.dataset)
        shape = tuple(self.input_shape or ())
        if info.kind == "points" and shape != (2, 1, 1):
            raise ValueError(f"{info.title} gives 2-D points: the input shape is 2x1x1")
        data_shape = (2,) if info.kind == "points" else shape
        try:
            req = _make_request(info, self.data_seed, data_shape, self.n_train, self.n_val, None,
                                self.noise if info.default_noise is not None else None)
            if self.noise is not None and info.default_noise is None:
                raise DatasetError(f"{info.title} has no noise setting")
            _check(info, req, int(self.n_test or 0))
        except DatasetError as err:
            raise ValueError(str(err)) from None
        if self.locked:
            try:
                settings_from_dict({**self.locked, "dataset": self.dataset})
            except ConfigError as err:
                raise ValueError(f"locked settings: {err}") from None
            steps = self.locked.get("steps")
            if isinstance(steps, int) and steps > self.max_steps:
                raise ValueError(f"the locked steps ({steps}) exceed max_steps "
                                 f"({self.max_steps})")
        return self

    # -- derived -------------------------------------------------------------------------------
    @property
    def info(self) -> DatasetInfo:
        from playground.data import get_dataset_info

        return get_dataset_info(self.dataset)

    @property
    def num_classes(self) -> int:
        """The data set's classes: every design must have exactly this many outputs."""
        return self.info.num_classes

    def data_settings(self) -> dict[str, Any]:
        """The data every run must train on, as :class:`~playground.train.TrainSettings`
        fields (``dataset``, ``data_seed``, ``n_train``, ``n_val``, ``noise``)."""
        return {"dataset": self.dataset, "data_seed": self.data_seed, "n_train": self.n_train,
                "n_val": self.n_val, "noise": self.noise}

    def training_locks(self) -> dict[str, Any]:
        """Every training setting fixed for a run of this assignment (data and ``locked``):
        what the Train page locks. ``steps`` is capped by :attr:`max_steps` besides."""
        return {**self.data_settings(), **self.locked}

    def accepts_submissions(self, now: float | None = None) -> bool:
        """Open and not past its deadline."""
        now = time.time() if now is None else now
        return self.state == "open" and (self.deadline is None or now <= self.deadline)

    def public_dict(self) -> dict[str, Any]:
        """JSON-ready, without the secret ``test_seed``: what a page may send to a browser."""
        data = self.model_dump(mode="json")
        data.pop("test_seed", None)
        data["num_classes"] = self.num_classes
        return data


def _plain(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "value_error":
            text = str(e.get("ctx", {}).get("error", e["msg"]))
        elif e["type"] == "missing":
            text = "is required"
        else:
            text = str(e["msg"])
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts)


def assignment_from_dict(data: Any) -> Assignment:
    """Validate plain data into an :class:`Assignment`; problems raise one ``ConfigError``."""
    if not isinstance(data, Mapping):
        raise ConfigError("an assignment is a mapping of fields to values (a JSON object)")
    try:
        return Assignment.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_plain(exc)) from None


# -- budgets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostPart:
    """One part of the network (``stem``, ``stage1``..., ``head``) and its share of the
    parameters and MACs (fractions of the totals; 0 when the total is 0)."""

    key: str
    label: str
    params: int
    macs: int
    params_share: float
    macs_share: float


@dataclass(frozen=True)
class BudgetItem:
    """One budget: ``used`` of ``limit`` (``fraction`` = used / limit, ``over`` = used >
    limit); ``top_part``/``top_share``: the part that costs most of it (``None`` for memory,
    whose ``top_part`` names the largest component instead); ``hint``: the one line the gauge
    shows, e.g. "stage 1 holds 64 % of the MACs: add a stride or a pool earlier"."""

    key: Literal["params", "macs", "train_memory"]
    label: str
    used: int
    limit: int
    fraction: float
    over: bool
    top_part: str | None
    top_share: float | None
    hint: str


@dataclass(frozen=True)
class BudgetReport:
    """A design against an assignment: one :class:`BudgetItem` per budget (``params``,
    ``macs``, and ``train_memory`` when the assignment has that budget), the parts of the
    network by cost, and ``problems``: one line for each reason a submission of this design
    would be refused (an input or output that does not fit, each budget exceeded)."""

    items: list[BudgetItem]
    parts: list[CostPart]
    problems: list[str] = field(default_factory=list)

    @property
    def within(self) -> bool:
        return not self.problems

    def item(self, key: str) -> BudgetItem | None:
        return next((i for i in self.items if i.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {"items": [asdict(i) for i in self.items], "parts": [asdict(p) for p in self.parts],
                "problems": list(self.problems), "within": self.within}


def _part_label(key: str) -> str:
    if key.startswith("stage") and key[5:].isdigit():
        return f"stage {key[5:]}"
    return f"the {key}" if key in ("stem", "head") else key or "the network"


@dataclass(frozen=True)
class _Traits:
    dense: bool  # no convolution in the part
    area: int  # the largest feature-map area (H x W) it produces
    flattens: bool  # it flattens a feature map larger than 1x1 (pooling first would shrink it)


def _parts(analysis: Analysis) -> tuple[list[CostPart], dict[str, _Traits]]:
    """Rows grouped by their top-level module, in network order, with their traits."""
    params: dict[str, int] = {}
    macs: dict[str, int] = {}
    traits: dict[str, _Traits] = {}
    for row in analysis.rows:
        key = row.name.split(".", 1)[0]
        params[key] = params.get(key, 0) + row.num_params
        macs[key] = macs.get(key, 0) + row.macs
        t = traits.get(key) or _Traits(True, 0, False)
        area = row.out_shape[1] * row.out_shape[2] if len(row.out_shape) == 3 else 0
        flat = (row.type == "Flatten" and len(row.in_shape) == 3
                and row.in_shape[1] * row.in_shape[2] > 1)
        traits[key] = _Traits(t.dense and row.type != "Conv2d", max(t.area, area),
                              t.flattens or flat)
    tp, tm = max(analysis.num_params, 0), max(analysis.macs, 0)
    parts = [CostPart(k, _part_label(k), params[k], macs[k], params[k] / tp if tp else 0.0,
                      macs[k] / tm if tm else 0.0) for k in params]
    return parts, traits


def _pct(share: float) -> str:
    return f"{round(share * 100)} %"


def _macs_hint(part: CostPart, t: _Traits, input_area: int) -> str:
    text = f"{part.label} holds {_pct(part.macs_share)} of the MACs: "
    if part.key == "head" and t.flattens:
        return text + "pool the features to fewer values before the dense layers"
    if part.key == "head" or t.dense:
        return text + _dense_advice(part, t)
    if part.key == "stem":
        return text + "give the stem a stride of 2 or a pool"
    if t.area * 4 >= input_area:  # at (nearly) the input's resolution
        return text + "add a stride or a pool earlier"
    return text + f"narrow {part.label} (fewer channels) or give it fewer layers"


def _dense_advice(part: CostPart, t: _Traits) -> str:
    if part.key == "head":
        return ("narrow the head: pool to 1x1 before the classifier or use fewer hidden units"
                if t.flattens else "narrow the head: use fewer hidden units")
    return f"narrow {part.label} (fewer units)" + (" or pool the features before it"
                                                   if t.flattens else "")


def _params_hint(part: CostPart, t: _Traits) -> str:
    text = f"{part.label} holds {_pct(part.params_share)} of the parameters: "
    if part.key == "head" or t.dense:
        return text + _dense_advice(part, t)
    return text + (f"narrow {part.label} (fewer channels; a convolution's parameters grow "
                   "with its input times its output channels)")


def _memory_optimizer(settings: TrainSettings) -> str:
    """The :data:`~playground.analysis.OPTIMIZER_STATE_SLOTS` name for a run's optimiser."""
    from playground.analysis import OPTIMIZER_STATE_SLOTS

    name = settings.optimizer
    if name == "momentum" or (name == "sgd" and (settings.momentum or 0.0) > 0):
        return "sgd_momentum"
    return name if name in OPTIMIZER_STATE_SLOTS else "adam"


def _default_settings(a: Assignment) -> TrainSettings:
    from playground.train import settings_from_dict

    return settings_from_dict({**a.training_locks(), "steps": min(300, a.max_steps)})


def budget_report(assignment: Assignment, spec: NetworkSpec | Mapping[str, Any],
                  settings: TrainSettings | Mapping[str, Any] | None = None) -> BudgetReport:
    """``spec`` against ``assignment``'s budgets (see :class:`BudgetReport`).

    ``settings`` (the run's, or the Train page's) give the batch size and optimiser of the
    training-memory estimate; default: the assignment's locked settings over the defaults.
    A design that cannot be built raises its ``SpecError``.
    """
    from playground.analysis import training_memory
    from playground.spec import NetworkSpec, spec_from_dict
    from playground.targets import analyse_spec
    from playground.train import TrainSettings, settings_from_dict

    net: NetworkSpec = spec if isinstance(spec, NetworkSpec) else spec_from_dict(spec)
    if settings is None:
        settings = _default_settings(assignment)
    elif not isinstance(settings, TrainSettings):
        settings = settings_from_dict(settings)
    analysis = analyse_spec(net)
    problems = []
    want = tuple(assignment.input_shape or ())
    got = tuple(net.input.shape)
    if got != want:
        problems.append(f"the assignment's input is {'x'.join(map(str, want))}; this design "
                        f"takes {'x'.join(map(str, got))}")
    if net.num_classes != assignment.num_classes:
        problems.append(f"{assignment.info.title} has {assignment.num_classes} classes; this "
                        f"design has {net.num_classes} outputs")
    parts, traits = _parts(analysis)
    input_area = got[1] * got[2] if len(got) == 3 else 1
    items = []
    for key, label, used, limit in (("params", "parameters", analysis.num_params,
                                     assignment.max_params),
                                    ("macs", "MACs", analysis.macs, assignment.max_macs)):
        share = "params_share" if key == "params" else "macs_share"
        top = max(parts, key=lambda p: getattr(p, share), default=None)
        hint = ""
        if top is not None:
            hint = (_params_hint(top, traits[top.key]) if key == "params"
                    else _macs_hint(top, traits[top.key], input_area))
        items.append(BudgetItem(key, label, int(used), int(limit), used / limit, used > limit,
                                None if top is None else top.label,
                                None if top is None else getattr(top, share), hint))
    if assignment.max_train_memory_bytes is not None:
        mem = training_memory(analysis, settings.batch_size, _memory_optimizer(settings))
        total = int(mem["total"])
        act = mem["activations"] / total if total else 0.0
        hint = (f"activations take {_pct(act)} of it: lower the batch size or downsample earlier"
                if act >= 0.5 else
                f"weights, gradients and optimiser state take {_pct(1 - act)} of it: use fewer "
                "parameters or an optimiser with less state (SGD)")
        limit = assignment.max_train_memory_bytes
        items.append(BudgetItem("train_memory", "training memory", total, limit, total / limit,
                                total > limit, "activations" if act >= 0.5 else "weights",
                                act if act >= 0.5 else 1 - act, hint))
    for item in items:
        if item.over:
            show = fmt_bytes if item.key == "train_memory" else fmt_si
            problems.append(f"this design uses {show(item.used)} {item.label}, over the budget of "
                            f"{show(item.limit)} ({item.hint})".replace("  ", " "))
    return BudgetReport(items, parts, problems)


def design_summary(spec: NetworkSpec, title: str = "") -> str:
    """One line naming a design and its stages, e.g.
    ``small_cnn: conv 16 / conv 32 s2 / conv 64x2 s2, head avg``."""
    name = spec.name if spec.name and spec.name != "custom" else (title or spec.name)
    stages = []
    for s in spec.stages:
        text = f"{s.block} {s.width}" + (f"x{s.depth}" if s.depth > 1 else "")
        text += f" s{s.stride}" if s.stride > 1 else ""
        text += f" +{s.pool.kind}pool" if s.pool is not None else ""
        stages.append(text)
    line = " ".join(f"{name}: {' / '.join(stages)}, head {spec.head.pool}".split())
    return line[:200]


def run_problems(assignment: Assignment, run: Any) -> list[str]:
    """Why ``run`` (a :class:`~playground.runs.Run`) cannot be submitted to ``assignment``,
    from its stored status, settings and design: one line each (empty: it can). Checks the
    state and deadline, the status, the data, steps, locked settings and budgets; not the
    owner, the checkpoint or the submission cap (:meth:`AssignmentStore.submit` does)."""
    from playground.errors import SpecError
    from playground.spec import spec_from_dict
    from playground.train import settings_from_dict

    problems: list[str] = []
    if not assignment.accepts_submissions():
        problems.append(_closed_reason(assignment))
    if run.status not in SUBMITTABLE_STATUSES:
        problems.append(f"run #{run.id} is {run.status.replace('_', ' ')}; only a finished, "
                        "early-stopped or stopped run can be submitted")
    try:
        settings = settings_from_dict(run.settings)
    except ConfigError as err:
        return [*problems, f"run #{run.id}'s settings no longer read ({err})"]
    if settings.dataset != assignment.dataset:
        problems.append(f"run #{run.id} trained on {settings.dataset}; the assignment uses "
                        f"{assignment.dataset}")
    else:
        info = assignment.info
        used = {"dataset": settings.dataset, "data_seed": settings.data_seed,
                "n_train": info.n_train if settings.n_train is None else settings.n_train,
                "n_val": info.n_val if settings.n_val is None else settings.n_val,
                "noise": (info.default_noise if settings.noise is None else settings.noise)
                if info.default_noise is not None else None}
        wrong = [k for k, v in assignment.data_settings().items() if not _same(used[k], v)]
        if wrong:
            fixed = ", ".join(f"{k} {assignment.data_settings()[k]}" for k in wrong)
            ran = ", ".join(f"{k} {used[k]}" for k in wrong)
            problems.append(f"the assignment fixes the data ({fixed}); run #{run.id} used {ran}")
        steps = settings.total_steps(int(used["n_train"]))
        if steps > assignment.max_steps:
            problems.append(f"run #{run.id} trains {steps:,} steps; the assignment allows at "
                            f"most {assignment.max_steps:,}")
    given = settings.to_dict()
    for key, value in assignment.locked.items():
        if not _same(given.get(key), value):
            problems.append(f"the assignment fixes {ASSIGNMENT_LOCKABLE[key].lower()} at "
                            f"{value!r}; run #{run.id} used {given.get(key)!r}")
    try:
        problems += budget_report(assignment, spec_from_dict(run.spec), settings).problems
    except SpecError as err:
        problems.append(f"run #{run.id}'s design no longer builds ({err})")
    return problems


def _closed_reason(a: Assignment) -> str:
    if a.state != "open":
        return f"the assignment {a.title!r} is closed"
    return f"the deadline of {a.title!r} has passed"


def _test_data(a: Assignment, spec: NetworkSpec) -> ValidationData:
    """The hidden test split shaped for ``spec``, as :func:`playground.results.evaluate`
    takes it (stays in this process: never sent to a page)."""
    from playground.holdout import load_test_split
    from playground.results import ValidationData

    info = a.info
    ts = load_test_split(a.dataset, test_seed=a.test_seed, n_test=int(a.n_test or 0),
                         data_seed=a.data_seed,
                         input_shape=(2,) if info.kind == "points" else spec.input.shape,
                         n_train=a.n_train, n_val=a.n_val, noise=a.noise)
    x = ts.x.reshape(ts.n, *spec.input.shape)
    return ValidationData(x, ts.y, list(ts.classes), info.kind, tuple(spec.input.shape),
                          ts.mean, ts.std, info.name, info.title)


# -- the store -------------------------------------------------------------------------------
_SUB_COLUMNS = (submissions.c.id, submissions.c.assignment_id, submissions.c.owner,
                submissions.c.run_id, submissions.c.design, submissions.c.spec_json,
                submissions.c.params, submissions.c.macs, submissions.c.steps,
                submissions.c.val_acc, submissions.c.test_acc, submissions.c.submitted_at)


def _submission(row: tuple[Any, ...], show_test: bool) -> Submission:
    (sid, aid, owner, run_id, design, spec_json, params, macs, steps, val, test, at) = row
    return Submission(int(sid), int(aid), str(owner), int(run_id), str(design),
                      json.loads(spec_json), int(params), int(macs), int(steps), float(val),
                      float(test) if show_test else None, float(at))


class AssignmentStore(StoreBase):
    """Assignments and their submissions, in the run store's database (a path, a URL or the
    settings'; see :class:`~playground.runs.StoreBase`). An assignment is named by its id or
    its slug (``ref``)."""

    # -- the teacher's side --------------------------------------------------------------------
    def create(self, assignment: Assignment | Mapping[str, Any], *, by: Actor) -> Assignment:
        """Store a new assignment (the teacher only); returns it with its id and times. A
        given ``id`` or times are ignored; a given ``test_seed`` is kept (tests)."""
        check_staff(by, "create assignments")
        data = (assignment.model_dump() if isinstance(assignment, Assignment)
                else dict(assignment))
        now = time.time()
        data.update(id=None, created_at=now, updated_at=now, created_by=by.label,
                    closed_at=now if data.get("state") == "closed" else None)
        value = assignment_from_dict(data)
        if self._find(value.slug) is not None:
            raise ConfigError(f"an assignment called {value.slug!r} exists already; choose "
                              "another slug")
        try:
            with self._db.write() as con:
                rid = con.execute(sa.insert(assignments).values(
                    slug=value.slug, state=value.state, value_json=value.model_dump_json(),
                    created_at=now, updated_at=now).returning(assignments.c.id)).scalar_one()
                value = value.model_copy(update={"id": int(rid)})
                con.execute(sa.update(assignments).where(assignments.c.id == int(rid))
                            .values(value_json=value.model_dump_json()))
        except sa.exc.IntegrityError:  # created a moment ago by another server
            raise ConfigError(f"an assignment called {value.slug!r} exists already; choose "
                              "another slug") from None
        return value

    def update(self, ref: int | str, changes: Assignment | Mapping[str, Any], *,
               by: Actor) -> Assignment:
        """Change an assignment's fields (the teacher only); the result is validated whole.
        ``id``, ``test_seed`` and the times cannot change; once someone has submitted, nor can
        the data the scores were measured on (:data:`SCORING_FIELDS`)."""
        check_staff(by, "change assignments")
        current = self.get(ref)
        new = changes.model_dump() if isinstance(changes, Assignment) else dict(changes)
        fixed = ("id", "test_seed", "created_at", "created_by", "updated_at", "closed_at")
        new = {k: v for k, v in new.items() if k not in fixed}
        merged = {**current.model_dump(), **new}
        if merged.get("dataset") != current.dataset:  # the new set's defaults, unless given
            for key in ("input_shape", "n_train", "n_val", "noise", "n_test"):
                merged[key] = new.get(key)
        value = assignment_from_dict(merged)
        if self._count_submissions(int(current.id or 0)):
            moved = [k for k in SCORING_FIELDS
                     if getattr(value, k) != getattr(current, k)]
            if moved:
                raise ConfigError(f"{', '.join(moved)} cannot change: submissions were scored "
                                  "on this data; create a new assignment instead")
        if value.slug != current.slug:
            other = self._find(value.slug)
            if other is not None and other != current.id:
                raise ConfigError(f"an assignment called {value.slug!r} exists already; "
                                  "choose another slug")
        now = time.time()
        closed_at = current.closed_at
        if value.state != current.state:
            closed_at = now if value.state == "closed" else None
        value = value.model_copy(update={"updated_at": now, "closed_at": closed_at})
        with self._db.write() as con:
            con.execute(sa.update(assignments).where(assignments.c.id == int(current.id or 0))
                        .values(slug=value.slug, state=value.state, updated_at=now,
                                value_json=value.model_dump_json()))
        return value

    def open(self, ref: int | str, *, by: Actor) -> Assignment:
        """Accept submissions (again); the test accuracies are hidden from students again."""
        return self._set_state(ref, "open", by)

    def close(self, ref: int | str, *, by: Actor) -> Assignment:
        """Stop accepting submissions and reveal the private leaderboard."""
        return self._set_state(ref, "closed", by)

    def reopen(self, ref: int | str, *, by: Actor) -> Assignment:
        """The same as :meth:`open`: a closed assignment accepts submissions again."""
        return self._set_state(ref, "open", by)

    def _set_state(self, ref: int | str, state: State, by: Actor) -> Assignment:
        check_staff(by, "open or close assignments")
        current = self.get(ref)
        if current.state == state:
            return current
        return self.update(current.id or 0, {"state": state}, by=by)

    # -- reading ---------------------------------------------------------------------------
    def _find(self, slug: str) -> int | None:
        rows = self._read(sa.select(assignments.c.id).where(assignments.c.slug == slug))
        return int(rows[0][0]) if rows else None

    def get(self, ref: int | str) -> Assignment:
        """One assignment by id (an int or a string of digits) or slug; an unknown one is a
        :class:`~playground.errors.PlaygroundError`. Holds ``test_seed``: send pages
        :meth:`Assignment.public_dict` only."""
        text = str(ref).strip()
        cond = (assignments.c.id == int(text)) if text.isdigit() and len(text) < 10 else (
            assignments.c.slug == text.lower())
        rows = self._read(sa.select(assignments.c.value_json, assignments.c.id,
                                    assignments.c.state).where(cond))
        if not rows:
            raise PlaygroundError(f"no assignment {_clip(text)!r}; `python -m playground "
                                  "assignment list` lists them")
        data = json.loads(rows[0][0])
        data.update(id=int(rows[0][1]), state=rows[0][2])
        return Assignment.model_validate(data)

    def list(self, *, state: State | None = None) -> builtins.list[Assignment]:
        """Every assignment (or those in ``state``), newest first."""
        query = sa.select(assignments.c.value_json, assignments.c.id, assignments.c.state)
        if state is not None:
            query = query.where(assignments.c.state == state)
        out = []
        for value_json, rid, st in self._read(query.order_by(assignments.c.id.desc())):
            data = json.loads(value_json)
            data.update(id=int(rid), state=st)
            out.append(Assignment.model_validate(data))
        return out

    def _count_submissions(self, assignment_id: int, owner: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(submissions).where(
            submissions.c.assignment_id == assignment_id)
        if owner is not None:
            query = query.where(submissions.c.owner_key == name_key(owner))
        return int(self._read(query)[0][0])

    def submissions_left(self, ref: int | str, student: str) -> int:
        """How many more times ``student`` may submit to the assignment."""
        a = self.get(ref)
        return max(0, a.submissions_per_student - self._count_submissions(int(a.id or 0),
                                                                          student))

    def _test_visible(self, a: Assignment, by: Actor) -> bool:
        return by.is_staff or a.state == "closed"

    def submissions(self, ref: int | str, *, by: Actor, student: str | None = None,
                    anonymise: bool = False) -> builtins.list[Submission]:
        """The assignment's submissions (or one student's), oldest first: every point of the
        class's accuracy-MACs scatter. Test accuracies are ``None`` for a student while the
        assignment is open; ``anonymise`` names students "Student 1".."Student N" as the
        leaderboard does."""
        a = self.get(ref)
        query = sa.select(*_SUB_COLUMNS).where(submissions.c.assignment_id == int(a.id or 0))
        if student is not None:
            query = query.where(submissions.c.owner_key == name_key(student))
        rows = self._read(query.order_by(submissions.c.submitted_at, submissions.c.id))
        show = self._test_visible(a, by)
        subs = [_submission(tuple(r), show) for r in rows]
        if anonymise:
            names = anonymous_names(self.submissions(a.id or 0, by=SYSTEM) if student else subs)
            subs = [replace(s, student=names[name_key(s.student)]) for s in subs]
        return subs

    def leaderboard(self, ref: int | str, *, by: Actor, private: bool = False,
                    anonymise: bool = False) -> Leaderboard:
        """The public ranking (``private=False``) or the private one. A student gets the
        private ranking, and any test accuracy, only once the assignment is closed; the
        teacher and the system always. ``anonymise`` shows "Student 1".."Student N"."""
        a = self.get(ref)
        show = self._test_visible(a, by)
        if private and not show:
            raise AccessDenied("the private leaderboard is shown when the teacher closes the "
                               "assignment")
        subs = self.submissions(a.id or 0, by=by)
        rows = rank_submissions(subs, view="private" if private else "public",
                                show_private=show,
                                viewer=None if by.is_staff else by.name, anonymise=anonymise)
        return Leaderboard(int(a.id or 0), a.title, a.state, "private" if private else "public",
                           show, rows, len(subs))

    def export_csv(self, ref: int | str, *, by: Actor) -> str:
        """Every submission as CSV (the teacher only): see
        :data:`playground.leaderboard.EXPORT_COLUMNS`."""
        check_staff(by, "export the submissions")
        return to_csv(self.submissions(ref, by=by))

    def remove_submission(self, ref: int | str, submission_id: int, *,
                          by: Actor) -> Submission:
        """Delete one submission of the assignment (the teacher only) and return it: one
        submitted by mistake, or against the rules. It leaves the leaderboard and the CSV, and
        its student gets that submission back; the run itself is kept. Works whether the
        assignment is open or closed."""
        check_staff(by, "remove submissions")
        a = self.get(ref)
        aid = int(a.id or 0)
        with self._db.write() as con:
            row = con.execute(sa.select(*_SUB_COLUMNS).where(
                submissions.c.assignment_id == aid,
                submissions.c.id == int(submission_id))).first()
            if row is None:
                raise PlaygroundError(f"{a.title!r} has no submission {int(submission_id)}")
            con.execute(sa.delete(submissions).where(submissions.c.id == int(submission_id)))
        return _submission(tuple(row), True)

    # -- the student's side ------------------------------------------------------------------
    def submit(self, ref: int | str, run_id: int, *, by: Actor) -> Submission:
        """Submit run ``run_id`` (``by``'s own, or anyone's for the teacher: the submission is
        the run owner's) and return the scored submission.

        Everything is re-read from the store, never taken from a page: the assignment is open
        and before its deadline; ``by`` may act on the run; the run ended finished, early
        stopped or stopped, on the assignment's data, within the steps, locked settings and
        every budget (:func:`run_problems`); it has a best checkpoint; the student has
        submissions left and has not submitted this run. Then the best weights are evaluated
        on the validation split (public score) and the hidden test split (private score).
        """
        from playground import checkpoints, results
        from playground.runs import RunStore
        from playground.spec import spec_from_dict
        from playground.train import settings_from_dict

        a = self.get(ref)
        if not a.accepts_submissions():
            raise SubmissionError(_closed_reason(a))
        runs = RunStore(self.url)
        run = runs.get_run(run_id, by)  # AccessDenied for someone else's run
        problems = run_problems(a, run)
        if problems:
            raise SubmissionError("; ".join(problems))
        aid = int(a.id or 0)
        self._check_cap(a, run.owner, int(run_id), None)
        model, _, _ = checkpoints.load_model(runs, run_id, "best", by)
        spec = spec_from_dict(run.spec)
        settings = settings_from_dict(run.settings)
        val_acc = results.evaluate(model, results.validation_data(spec, settings)).accuracy
        test_acc = results.evaluate(model, _test_data(a, spec)).accuracy
        analysis = budget_report(a, spec, settings).items
        params, macs = analysis[0].used, analysis[1].used
        steps = settings.total_steps(int(a.n_train or 0))
        now = time.time()
        row = {"assignment_id": aid, "owner": run.owner, "owner_key": name_key(run.owner),
               "run_id": int(run_id), "design": design_summary(spec, run.title),
               "spec_json": json.dumps(run.spec, separators=(",", ":")), "params": params,
               "macs": macs, "steps": steps, "val_acc": val_acc, "test_acc": test_acc,
               "submitted_at": now}
        with self._db.write() as con:
            if con.dialect.name == "postgresql":  # one submit per assignment at a time
                con.execute(sa.select(sa.func.pg_advisory_xact_lock(SUBMIT_LOCK_CLASS, aid)))
            state = con.execute(sa.select(assignments.c.state, assignments.c.value_json)
                                .where(assignments.c.id == aid)).first()
            if state is None or state[0] != "open":
                raise SubmissionError(f"the assignment {a.title!r} was closed meanwhile")
            self._check_cap(a, run.owner, int(run_id), con)
            sid = con.execute(sa.insert(submissions).values(**row)
                              .returning(submissions.c.id)).scalar_one()
        return Submission(int(sid), aid, run.owner, int(run_id), row["design"], dict(run.spec),
                          params, macs, steps, val_acc,
                          test_acc if self._test_visible(a, by) else None, now)

    def _check_cap(self, a: Assignment, owner: str, run_id: int,
                   con: sa.Connection | None) -> None:
        """Refuse a run submitted before, or a student with no submissions left (inside the
        submit's write transaction when ``con`` is given)."""
        aid = int(a.id or 0)
        dup = sa.select(sa.func.count()).select_from(submissions).where(
            submissions.c.assignment_id == aid, submissions.c.run_id == run_id)
        mine = sa.select(sa.func.count()).select_from(submissions).where(
            submissions.c.assignment_id == aid, submissions.c.owner_key == name_key(owner))

        def count(q: sa.Select[Any]) -> int:
            return int(con.execute(q).scalar_one() if con is not None
                       else self._db.read(q)[0][0])

        if count(dup):
            raise SubmissionError(f"run #{run_id} was submitted to {a.title!r} already")
        if count(mine) >= a.submissions_per_student:
            raise SubmissionError(f"{owner} has used all {a.submissions_per_student} "
                                  f"submissions of {a.title!r}")


def _clip(text: str, limit: int = 60) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
