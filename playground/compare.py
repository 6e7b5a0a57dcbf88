"""Side-by-side comparison of designs, presets, torchvision models and finished runs.

Everything here returns plain data for the Compare page, the CLI and the tests:

- :class:`CompareItem` is one thing to compare, made by :func:`preset_item`, :func:`zoo_item`,
  :func:`design_item`, :func:`spec_item` or :func:`run_item`.
- :func:`compare_row` / :func:`compare_rows` give one row per item (a dict whose keys are the
  :data:`COLUMNS`): parameters, MACs, FLOPs, depth, receptive field, final feature map and
  training memory from the analysis, and for runs the outcome (final/best validation accuracy,
  final loss, steps/s, wall time, status such as "diverged at step 37") and settings.
- :func:`settings_diff` names the training settings that differ between runs.
- :func:`spec_diff` compares two specs stage by stage (stem, ``stage1``..``stageN``, head):
  what changed in each stage's settings and what that did to its output shape, parameters and
  MACs, read from the analysis (``Analysis.macs_by_module`` under the same ``stageN`` names).
- :func:`stage_breakdown` splits an analysis by top-level module, for per-stage bars.
- :func:`gradient_flow` reads the per-layer gradient norms of a run at a step, or averaged over
  a window of steps (a geometric mean: the chart is on a log scale).
- :func:`rows_to_csv` / :func:`rows_from_csv` export the table and read it back.

Conventions follow :mod:`playground.analysis`: MACs as fvcore counts them (one multiply-add =
one FLOP), FLOPs = 2 x MACs, depth = weight layers on the longest path, receptive field of one
unit of the final feature map (Araujo et al., Distill 2019), training memory an estimate in
float32 (:func:`playground.analysis.training_memory`). Run numbers come from the run's stored
summary (:class:`playground.train.TrainResult`), never from a re-computation.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from playground.access import Actor
from playground.analysis import Analysis, training_memory
from playground.designs import load_design
from playground.errors import PlaygroundError
from playground.presets import PRESETS, get_preset
from playground.runs import Run, RunStore
from playground.spec import NetworkSpec, StageSpec, spec_from_dict
from playground.targets import (
    analyse_spec,
    analyse_zoo,
    final_feature_map,
    final_receptive_field,
)
from playground.train import TrainSettings
from playground.zoo import is_zoo_model, native_input

__all__ = [
    "COLUMNS",
    "MAX_ITEMS",
    "CompareItem",
    "SpecDiff",
    "StageDiff",
    "compare_row",
    "compare_rows",
    "design_item",
    "gradient_flow",
    "item_analysis",
    "preset_item",
    "rows_from_csv",
    "rows_to_csv",
    "run_item",
    "settings_diff",
    "spec_diff",
    "spec_item",
    "stage_breakdown",
    "status_text",
    "zoo_item",
]

MAX_ITEMS = 4
ItemKind = Literal["design", "preset", "zoo", "run", "spec"]


# -- items -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompareItem:
    """One thing to compare. ``spec`` is set for everything but torchvision models (``zoo``);
    ``run`` for finished (or running) trainings, whose spec is the one they trained."""

    kind: ItemKind
    key: str  # preset / zoo / design name, or the run id as text
    label: str  # shown in tables and chart legends
    spec: NetworkSpec | None = None
    zoo: str | None = None
    input_shape: tuple[int, ...] = ()
    num_classes: int = 0
    run: Run | None = None
    problem: str = ""  # why the analysis columns are empty (e.g. a run's spec no longer loads)


def preset_item(name: str) -> CompareItem:
    """A preset as the registry builds it (its own input and classes)."""
    preset = PRESETS.get(name)
    spec = get_preset(name)
    return CompareItem("preset", name, preset.title, spec=spec, input_shape=spec.input.shape,
                       num_classes=spec.num_classes)


def zoo_item(name: str, input_shape: tuple[int, ...] | None = None,
             num_classes: int = 1000) -> CompareItem:
    """A torchvision model at its native input size unless ``input_shape`` is given."""
    if not is_zoo_model(name):
        raise PlaygroundError(f"{name!r} is not one of the torchvision models offered here")
    shape = tuple(input_shape) if input_shape else native_input(name)
    return CompareItem("zoo", name, f"{name} (torchvision)", zoo=name, input_shape=shape,
                       num_classes=num_classes)


def design_item(owner: str, name: str, *, by: Actor | None = None,
                path: Any = None) -> CompareItem:
    """A design ``owner`` saved as ``name``, if ``by`` may read it (``path``: another store
    file, for tests)."""
    spec = load_design(owner, name, by=by, path=path)
    return CompareItem("design", name, name, spec=spec, input_shape=spec.input.shape,
                       num_classes=spec.num_classes)


def spec_item(spec: NetworkSpec, label: str | None = None) -> CompareItem:
    """Any spec, e.g. the design currently open on Build."""
    return CompareItem("spec", spec.name, label or spec.name, spec=spec,
                       input_shape=spec.input.shape, num_classes=spec.num_classes)


def run_item(store: RunStore, run_id: int, by: Actor | None = None) -> CompareItem:
    """A run from the store, if ``by`` may read it; its spec is analysed as it was trained."""
    run = store.get_run(run_id, by)
    label = f"#{run.id} {run.title}".strip()
    try:
        spec = spec_from_dict(run.spec)
    except PlaygroundError as err:
        return CompareItem("run", str(run.id), label, run=run,
                           problem=f"its design cannot be read any more ({err})")
    return CompareItem("run", str(run.id), label, spec=spec, input_shape=spec.input.shape,
                       num_classes=spec.num_classes, run=run)


def item_analysis(item: CompareItem) -> Analysis:
    """The (cached) per-layer analysis of an item; raises :class:`PlaygroundError`."""
    if item.spec is not None:
        return analyse_spec(item.spec)
    if item.zoo is not None:
        return analyse_zoo(item.zoo, tuple(item.input_shape), item.num_classes)
    raise PlaygroundError(f"{item.label}: {item.problem or 'nothing to analyse'}")


# -- the comparison table ----------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One column of the comparison: its title for people and what it means."""

    title: str
    help: str
    run_only: bool = False


COLUMNS: dict[str, Column] = {
    "item": Column("item", "what is compared"),
    "kind": Column("kind", "preset, saved design, torchvision model or training run"),
    "input": Column("input", "input shape C x H x W"),
    "num_classes": Column("classes", "outputs of the classifier"),
    "params": Column("parameters", "learnable weights and biases"),
    "macs": Column("MACs", "multiply-accumulates for one input, as fvcore counts them "
                   "(one multiply-add = one FLOP)"),
    "flops": Column("FLOPs", "2 x MACs: multiplies and adds counted separately, as "
                    "torch.utils.flop_counter does"),
    "depth": Column("depth", "weight layers (conv, linear) on the longest path"),
    "receptive_field": Column("receptive field (px)", "input pixels one unit of the final "
                              "feature map can see"),
    "final_feature_map": Column("final feature map", "C x H x W the head works on"),
    "train_memory": Column("training memory (bytes)", "estimate: weights + gradients + "
                           "optimiser state + saved activations, float32"),
    "status": Column("status", "how the run ended", run_only=True),
    "final_val_acc": Column("final val. accuracy", "validation accuracy at the last "
                            "evaluation", run_only=True),
    "best_val_acc": Column("best val. accuracy", "highest validation accuracy of the run",
                           run_only=True),
    "final_loss": Column("final loss", "training loss of the last good step", run_only=True),
    "steps_done": Column("steps", "optimiser steps done", run_only=True),
    "steps_per_s": Column("steps/s", "training steps per second (evaluation excluded)",
                          run_only=True),
    "wall_s": Column("wall time (s)", "seconds from start to end of the run", run_only=True),
    "device": Column("device", "where the run trained", run_only=True),
}


def status_text(run: Run) -> str:
    """"finished", "diverged at step 37", "failed: out of memory..." in a few words."""
    if run.status == "diverged":
        head = run.message.split(":", 1)[0].strip()
        return head if head.startswith("diverged") else "diverged"
    if run.status in {"failed", "interrupted"} and run.message:
        return f"{run.status}: {run.message[:120]}"
    if run.status in {"stopped", "early_stopped"} and run.message:
        return run.message.split(":", 1)[0].strip()
    return run.status.replace("_", " ")


def _shape_text(shape: Sequence[int] | None) -> str:
    return "x".join(str(s) for s in shape) if shape else ""


def compare_row(item: CompareItem, batch_size: int = 32, optimizer: str = "adam"
                ) -> dict[str, Any]:
    """One row of the comparison (keys of :data:`COLUMNS`); ``None`` where a value is unknown.

    ``train_memory`` is :func:`~playground.analysis.training_memory` at ``batch_size`` with
    ``optimizer``'s state (the same for every item, so the column compares like with like).
    """
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(item=item.label, kind=item.kind, input=_shape_text(item.input_shape),
               num_classes=item.num_classes or None)
    try:
        analysis = item_analysis(item)
    except PlaygroundError:
        analysis = None
    if analysis is not None:
        rf = final_receptive_field(analysis)
        row.update(
            params=analysis.num_params, macs=analysis.macs, flops=analysis.flops,
            depth=analysis.depth, receptive_field=max(rf) if rf else None,
            final_feature_map=_shape_text(final_feature_map(analysis)),
            train_memory=training_memory(analysis, batch_size, optimizer)["total"],
        )
    run = item.run
    if run is not None:
        s = run.summary or {}
        wall = s.get("wall_s")
        row.update(
            status=status_text(run), final_val_acc=s.get("final_val_acc"),
            best_val_acc=s.get("best_val_acc"), final_loss=s.get("final_loss"),
            steps_done=s.get("steps_done"), steps_per_s=s.get("steps_per_s"),
            wall_s=wall if wall is not None else run.duration_s, device=s.get("device"),
        )
    return row


def compare_rows(items: Iterable[CompareItem], batch_size: int = 32,
                 optimizer: str = "adam") -> list[dict[str, Any]]:
    return [compare_row(i, batch_size, optimizer) for i in items]


# -- settings ------------------------------------------------------------------------------------
_DEFAULT_SETTINGS = TrainSettings().to_dict()


def _canon(value: Any) -> Any:
    """Dicts and lists compared by content (schedule_params)."""
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True)
    return value


def settings_diff(settings: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """``{field: [value per run]}`` for the training settings that are not the same in every
    run, in :class:`~playground.train.TrainSettings` field order. A field a stored run lacks
    counts as its default."""
    full = [{**_DEFAULT_SETTINGS, **dict(s)} for s in settings]
    if len(full) < 2:
        return {}
    names = list(_DEFAULT_SETTINGS) + sorted({k for s in full for k in s} - set(_DEFAULT_SETTINGS))
    out: dict[str, list[Any]] = {}
    for name in names:
        values = [s.get(name) for s in full]
        if len({_canon(v) for v in values}) > 1:
            out[name] = values
    return out


# -- per-stage breakdown and diff ----------------------------------------------------------------
def _top(name: str) -> str:
    return name.split("#", 1)[0].split(".", 1)[0]


def stage_breakdown(analysis: Analysis) -> list[dict[str, Any]]:
    """Parameters, MACs and output shape per top-level module (``stem``, ``stage1``...,
    ``head`` for designs; ``features``, ``layer1``... for torchvision models), in execution
    order. Parameters add up to the total; MACs are fvcore's ``by_module`` values."""
    order: dict[str, dict[str, Any]] = {}
    for row in analysis.rows:
        top = _top(row.name) or "(model)"
        entry = order.setdefault(top, {"name": top, "params": 0, "macs": 0, "out_shape": ()})
        entry["params"] += row.num_params
        entry["out_shape"] = row.out_shape
    for name, entry in order.items():
        entry["macs"] = analysis.macs_by_module.get(name, 0) if name != "(model)" else sum(
            r.macs for r in analysis.rows if not _top(r.name))
    return list(order.values())


_STAGE_FIELDS = tuple(StageSpec.model_fields)
_INHERITED = ("activation", "norm", "init", "dropout")


def _stage_values(spec: NetworkSpec, index: int) -> dict[str, Any]:
    """A stage's settings with inherited fields resolved, and ``residual`` made explicit."""
    stage = spec.stages[index]
    values = {f: getattr(stage, f) for f in _STAGE_FIELDS}
    for f in _INHERITED:
        values[f] = spec.stage_value(index, f)
    if values["residual"] is None:
        values["residual"] = stage.block in {"basic", "bottleneck"}
    if values["pool"] is not None:
        p = stage.pool
        values["pool"] = f"{p.kind} {p.kernel}x{p.kernel}/{p.effective_stride}" + (
            f" pad {p.padding}" if p.padding else "")
    if values["block"] != "bottleneck":
        values.pop("expansion")
    if not values["residual"]:
        values.pop("shortcut")
    return values


def _stem_values(spec: NetworkSpec) -> dict[str, Any] | None:
    if spec.stem is None:
        return None
    values = spec.stem.model_dump()
    p = spec.stem.pool
    values["pool"] = None if p is None else f"{p.kind} {p.kernel}x{p.kernel}/{p.effective_stride}"
    return values


def _head_values(spec: NetworkSpec) -> dict[str, Any]:
    values = spec.head.model_dump()
    values["hidden"] = list(spec.head.hidden)
    values["num_classes"] = spec.num_classes
    return values


def _changed(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict[str, tuple]:
    a, b = a or {}, b or {}
    return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])
            if _canon(a.get(k)) != _canon(b.get(k))}


@dataclass(frozen=True)
class StageDiff:
    """One stage (or the stem, or the head) in two specs.

    ``change``: ``"added"`` / ``"removed"`` (only in the second / first spec), ``"changed"``
    (its own settings differ) or ``"same"`` (same settings; its numbers may still change when
    an earlier stage changed its input). ``fields`` maps each differing setting to
    ``(before, after)`` with inherited values resolved. Numbers are ``None`` where the stage
    does not exist or the spec cannot be analysed.
    """

    name: str
    where: str
    change: Literal["same", "changed", "added", "removed"]
    fields: dict[str, tuple[Any, Any]]
    out_before: tuple[int, ...] | None
    out_after: tuple[int, ...] | None
    params_before: int | None
    params_after: int | None
    macs_before: int | None
    macs_after: int | None

    @property
    def effect(self) -> bool:
        """Whether the stage's output shape, parameters or MACs differ."""
        return (self.out_before != self.out_after or self.params_before != self.params_after
                or self.macs_before != self.macs_after)

    def summary(self) -> str:
        """A short sentence for people: "depth 1 -> 2; params +36,928; MACs x2.0"."""
        if self.change == "added":
            return "added in the second design"
        if self.change == "removed":
            return "only in the first design"
        parts = [f"{k} {_show(a)} -> {_show(b)}" for k, (a, b) in self.fields.items()]
        if self.out_before != self.out_after:
            parts.append(f"output {_shape_text(self.out_before)} -> "
                         f"{_shape_text(self.out_after)}")
        if self.params_before is not None and self.params_after is not None and \
                self.params_before != self.params_after:
            parts.append(f"params {self.params_after - self.params_before:+,}")
        if self.macs_before and self.macs_after is not None and \
                self.macs_before != self.macs_after:
            parts.append(f"MACs x{self.macs_after / self.macs_before:.2f}")
        if not parts:
            return "unchanged"
        if self.change == "same":
            parts.insert(0, "same settings, new input")
        return "; ".join(parts)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


@dataclass(frozen=True)
class SpecDiff:
    """Two specs compared: network-wide settings, then stem, stages and head."""

    general: dict[str, tuple[Any, Any]]
    stages: list[StageDiff]
    totals: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def changed_stages(self) -> list[str]:
        """Names of the stages whose settings changed, or that were added or removed."""
        return [s.name for s in self.stages if s.change != "same"]

    def to_rows(self) -> list[dict[str, Any]]:
        """One plain row per stage, for a table or CSV."""
        return [{
            "stage": s.where, "change": s.change, "what changed": s.summary(),
            "output before": _shape_text(s.out_before), "output after": _shape_text(s.out_after),
            "params before": s.params_before, "params after": s.params_after,
            "MACs before": s.macs_before, "MACs after": s.macs_after,
        } for s in self.stages]


def _numbers(spec: NetworkSpec) -> dict[str, dict[str, Any]]:
    try:
        analysis = analyse_spec(spec)
    except PlaygroundError:
        return {}
    return {e["name"]: e for e in stage_breakdown(analysis)} | {
        "": {"params": analysis.num_params, "macs": analysis.macs, "out_shape": None}}


def spec_diff(before: NetworkSpec, after: NetworkSpec) -> SpecDiff:
    """Stage-by-stage difference of two specs (stages are matched by position)."""
    general: dict[str, tuple[Any, Any]] = {}
    if before.input != after.input:
        general["input"] = (_shape_text(before.input.shape), _shape_text(after.input.shape))
    if before.num_classes != after.num_classes:
        general["num_classes"] = (before.num_classes, after.num_classes)
    general |= {f"defaults.{k}": v for k, v in _changed(before.defaults.model_dump(),
                                                         after.defaults.model_dump()).items()}
    nb, na = _numbers(before), _numbers(after)

    def diff(name: str, where: str, a: Mapping[str, Any] | None,
             b: Mapping[str, Any] | None) -> StageDiff:
        change = ("added" if a is None else "removed" if b is None
                  else "changed" if _changed(a, b) else "same")
        x, y = nb.get(name) if a is not None else None, na.get(name) if b is not None else None
        return StageDiff(
            name, where, change, _changed(a, b) if a is not None and b is not None else {},
            tuple(x["out_shape"]) if x else None, tuple(y["out_shape"]) if y else None,
            x["params"] if x else None, y["params"] if y else None,
            x["macs"] if x else None, y["macs"] if y else None,
        )

    stages: list[StageDiff] = []
    sa, sb = _stem_values(before), _stem_values(after)
    if sa is not None or sb is not None:
        stages.append(diff("stem", "stem", sa, sb))
    for i in range(max(len(before.stages), len(after.stages))):
        a = _stage_values(before, i) if i < len(before.stages) else None
        b = _stage_values(after, i) if i < len(after.stages) else None
        stages.append(diff(f"stage{i + 1}", f"stage {i + 1}", a, b))
    stages.append(diff("head", "head", _head_values(before), _head_values(after)))
    totals = {}
    if nb and na:
        totals = {"params": (nb[""]["params"], na[""]["params"]),
                  "macs": (nb[""]["macs"], na[""]["macs"])}
    return SpecDiff(general, stages, totals)


# -- runs: gradient flow -------------------------------------------------------------------------
def gradient_flow(series: Mapping[str, Any], step: int | None = None, window: int = 1
                  ) -> tuple[int | None, list[float]]:
    """Per-layer gradient norms of a run at ``step`` (default: its last recorded step).

    ``series`` is the store's ``{"steps": [...], "values": [[...], ...]}`` of
    ``grad_norm_layer``. The step used is the last recorded one at or before ``step``; with
    ``window > 1`` the values are the geometric mean over the ``window`` recorded steps ending
    there (the profile is drawn on a log scale, so this is the average of what one sees).
    Non-positive or non-finite values are skipped. Returns ``(step used, values)``, or
    ``(None, [])`` when nothing was recorded up to ``step``.
    """
    steps = list(series.get("steps") or [])
    values = list(series.get("values") or [])
    idx = [i for i, s in enumerate(steps) if step is None or s <= step]
    if not idx:
        return None, []
    end = idx[-1]
    chosen = idx[-max(int(window), 1):]
    width = max(len(values[i]) for i in chosen)
    out: list[float] = []
    for layer in range(width):
        ok = [v[layer] for v in (values[i] for i in chosen)
              if layer < len(v) and isinstance(v[layer], int | float)
              and math.isfinite(v[layer]) and v[layer] > 0]
        if len(ok) == 1:
            out.append(float(ok[0]))
        else:
            out.append(math.exp(sum(map(math.log, ok)) / len(ok)) if ok else math.nan)
    return int(steps[end]), out


# -- CSV -----------------------------------------------------------------------------------------
def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text with a header of the rows' keys (first-seen order); ``None`` becomes empty."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in names})
    return buf.getvalue()


def _parse(text: str) -> Any:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """Rows read back from :func:`rows_to_csv`: numbers become ``int``/``float`` again."""
    return [{k: _parse(v) for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]
