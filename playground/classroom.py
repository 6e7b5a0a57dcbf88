"""Class settings: what the teacher sets for every student at once, without a restart.

One :class:`ClassSettings` lives in the run store's database (table ``class_settings``, one
JSON row), so every server of a class reads the same values and a change applies on the next
page rerun. The runner enforces them when a student starts a run
(:meth:`playground.runners.base.QueueingRunner.start_run` calls :func:`enforce`); the Train page
only mirrors them (locked widgets, offered options) so that a student never meets the refusal.
The teacher and the system are exempt.

- ``queue_limit``: runs one student may have queued or running (``None``: the server's
  ``PLAYGROUND_MAX_QUEUED``).
- ``max_steps``: most optimiser steps per run (within ``PLAYGROUND_MAX_STEPS``).
- ``datasets`` / ``presets``: the names offered (``None``: all).
- ``locked``: training settings fixed to a value (``{"steps": 300, "optimizer": "adam"}``);
  keys are :class:`playground.train.TrainSettings` fields from :data:`LOCKABLE`.
- ``message`` and ``message_link``: a line shown at the top of every student's page, with an
  optional link: ``preset:<name>`` (opens it on Train), ``lesson:<id>`` (opens it on Learn),
  ``experiment:<name>`` (opens the suite on Compare's Experiments tab).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError, field_validator

from playground.access import Actor, check_staff
from playground.errors import ConfigError
from playground.runs import StoreBase, upsert
from playground.store.schema import class_settings

ROW_KEY = "class"
MAX_MESSAGE_CHARS = 500

# TrainSettings fields a teacher may lock, with their labels on the Train page
LOCKABLE: dict[str, str] = {
    "dataset": "Data set",
    "optimizer": "Optimiser",
    "lr": "Learning rate",
    "steps": "Steps",
    "batch_size": "Batch size",
    "schedule": "Learning-rate schedule",
    "clip_norm": "Clip gradient norm",
    "weight_decay": "Weight decay",
    "seed": "Seed",
    "accumulate": "Gradient accumulation",
    "label_smoothing": "Label smoothing",
    "augment": "Augment",
    "amp": "Mixed precision",
}
LINK_KINDS = ("preset", "lesson", "experiment")


class ClassSettings(BaseModel):
    """The teacher's settings for the whole class (defaults: no limits beyond the server's)."""

    model_config = {"extra": "forbid", "frozen": True}

    queue_limit: int | None = Field(None, ge=1, le=1000)
    max_steps: int | None = Field(None, ge=1)
    datasets: list[str] | None = None
    presets: list[str] | None = None
    locked: dict[str, Any] = Field(default_factory=dict)
    message: str = Field("", max_length=MAX_MESSAGE_CHARS)
    message_link: str = ""

    @field_validator("locked")
    @classmethod
    def _lockable(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(LOCKABLE))
        if unknown:
            raise ValueError(f"these settings cannot be locked: {', '.join(unknown)}")
        if value:  # the values must make valid training settings
            from playground.train import settings_from_dict
            settings_from_dict(value)
        return value

    @field_validator("message_link")
    @classmethod
    def _link(cls, value: str) -> str:
        if not value:
            return value
        kind, _, name = value.partition(":")
        if kind not in LINK_KINDS or not name:
            raise ValueError("a link is preset:<name>, lesson:<id> or experiment:<name>")
        if kind == "preset":
            from playground.presets import PRESETS
            PRESETS.get(name)
        elif kind == "experiment":
            from playground.experiments import EXPERIMENTS
            EXPERIMENTS.get(name)
        else:
            from playground.lessons import LESSONS
            LESSONS.get(name)
        return value


def class_settings_from_dict(data: Any) -> ClassSettings:
    """Validate plain data into :class:`ClassSettings`; problems raise one ``ConfigError``."""
    try:
        return ClassSettings.model_validate(data)
    except ValidationError as exc:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"])
            parts.append(f"{where}: {e['msg']}" if where else str(e["msg"]))
        raise ConfigError("; ".join(parts)) from None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def enforce(settings: dict[str, Any], spec: dict[str, Any], cls: ClassSettings,
            actor: Actor) -> None:
    """Refuse (one :class:`ConfigError` line) a run the class settings do not allow.

    ``settings`` is ``TrainSettings.model_dump(mode="json")``; ``spec`` the network's dict (its
    ``name`` is checked against the offered presets when it is a preset's). Staff are exempt.
    """
    if actor.is_staff:
        return
    if cls.max_steps is not None and int(settings.get("steps") or 0) > cls.max_steps:
        raise ConfigError(f"the teacher allows at most {cls.max_steps} steps per run in this "
                          "class")
    if cls.datasets is not None and settings.get("dataset") not in cls.datasets:
        raise ConfigError("the teacher offers these data sets in this class: "
                          + ", ".join(cls.datasets))
    for key, value in cls.locked.items():
        if not _same(settings.get(key), value):
            raise ConfigError(f"the teacher fixed {LOCKABLE[key].lower()} at {value!r} for "
                              "this class")
    if cls.presets is not None:
        from playground.presets import PRESETS
        name = spec.get("name")
        if name in PRESETS.names() and name not in cls.presets:
            raise ConfigError(f"the teacher does not offer the preset {name} in this class")


class ClassStore(StoreBase):
    """The class settings, in the run store's database."""

    def get(self) -> ClassSettings:
        """The current settings (defaults when the teacher never saved any, or the saved row
        no longer validates: a class keeps working)."""
        rows = self._read(sa.select(class_settings.c.value_json)
                          .where(class_settings.c.key == ROW_KEY))
        if not rows:
            return ClassSettings()
        try:
            return class_settings_from_dict(json.loads(rows[0][0]))
        except (ConfigError, ValueError):
            return ClassSettings()

    def save(self, value: ClassSettings | dict[str, Any], *, by: Actor) -> ClassSettings:
        """Replace the settings (the teacher only); they apply on every page's next rerun."""
        check_staff(by, "change the class settings")
        if not isinstance(value, ClassSettings):
            value = class_settings_from_dict(value)
        with self._db.write() as con:
            upsert(con, class_settings, [{"key": ROW_KEY, "value_json": value.model_dump_json(),
                                          "updated_at": time.time()}], keys=("key",))
        return value


# -- the teacher's table -------------------------------------------------------------------------
CLASS_COLUMNS = ("run", "student", "design", "params", "MACs", "dataset", "status", "step",
                 "steps", "accuracy", "where", "started")


def _design_numbers(spec: dict[str, Any]) -> tuple[int | None, int | None]:
    """``(params, MACs)`` of a run's design (cached by the design's JSON), ``None`` if it no
    longer analyses."""
    from playground.spec import spec_from_dict
    from playground.targets import analyse_spec

    try:
        analysis = analyse_spec(spec_from_dict(spec))
    except Exception:  # a design an older version stored: the row still shows
        return None, None
    return int(analysis.num_params), int(analysis.macs)


def class_rows(store: Any, owner: str | None = None, limit: int = 200,
               by: Actor | None = None) -> list[dict[str, Any]]:
    """One row per run of the class, newest first (active runs before ended ones), for the
    teacher: run id, student, design name with parameters and MACs, data set, status, last
    step recorded and steps asked, validation accuracy (the last evaluation so far, else the
    final one), where it trains (device and node), started (Unix seconds or ``None``).

    ``store`` is a :class:`playground.runs.RunStore`; ``by`` must be staff (the teacher).
    """
    from playground.runs import ACTIVE_STATUSES

    check_staff(by or Actor(""), "see the whole class")
    runs = store.list_runs(owner=owner, limit=limit)
    runs.sort(key=lambda r: (r.status not in ACTIVE_STATUSES, -r.id))
    rows = []
    for r in runs:
        params, macs = _design_numbers(r.spec)
        acc = r.summary.get("final_val_acc")
        step = r.summary.get("steps_done")
        if r.status in ACTIVE_STATUSES:
            step = max(store.last_step(r.id), 0) if r.status == "running" else 0
            series = store.get_metrics(r.id, ["val_acc"]).get("val_acc", {})
            values = [v for v in series.get("values", []) if v is not None and v == v]
            acc = values[-1] if values else None
        where = " on ".join(x for x in (r.device, r.worker_host) if x) if r.started_at else ""
        rows.append({
            "run": r.id, "student": r.owner, "design": str(r.spec.get("name") or r.title),
            "params": params, "MACs": macs, "dataset": r.settings.get("dataset"),
            "status": r.status, "step": step, "steps": r.settings.get("steps"),
            "accuracy": acc, "where": where, "started": r.started_at,
        })
    return rows
