"""Run lists grouped by the experiment launch each run belongs to, and filtered by status.

A launch of a suite or a custom grid (:func:`playground.experiments.launch`) tags every run it
starts with ``run_meta`` :data:`~playground.experiments.RUN_KEY` = ``{"batch", "index",
"title"}`` (the launch id, the variant's place in the plan and its title) and keeps the whole
plan, titles and creation time included, on the launch's first run
(:data:`~playground.experiments.PLAN_KEY`). A run without that tag was started on its own
(the Train page or the CLI). :func:`group_runs` turns a plain list of runs into one group of
single runs plus one group per launch, so a 13-run suite is one entry of a run list rather
than 13; :data:`STATUS_FILTERS` names the coarse status classes a person filters by.

Everything here reads the store and returns plain data; the Train page draws it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from playground.experiments import PLAN_KEY, RUN_KEY
from playground.runs import STATUSES, Run, RunStore

SINGLE = "single"  # the group key of runs started on their own

# Coarse status classes for filtering: every status is in exactly one.
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "active": ("queued", "running"),
    "finished": ("finished", "early_stopped"),
    "stopped": ("stopped", "interrupted"),
    "failed": ("diverged", "failed"),
}
STATUS_FILTER_TITLES = {  # short: they are pill labels; STATUS_FILTERS says what each holds
    "active": "Running", "finished": "Finished", "stopped": "Stopped", "failed": "Failed",
}
assert sorted(s for group in STATUS_FILTERS.values() for s in group) == sorted(STATUSES)


@dataclass(frozen=True)
class RunGroup:
    """Runs that belong together: every single run, or the runs of one experiment launch."""

    key: str  # SINGLE, or the launch id (``"<suite>-<8 hex digits>"``)
    title: str  # "Single runs", or the launch's title ("Learning rate x clipping (quick)")
    suite: str | None  # the suite's name ("lr_clip", "custom"); None for single runs
    created: float | None  # when the launch was made (Unix seconds); None for single runs
    planned: int  # runs in the launch's plan (started or not); len(runs) for single runs
    runs: tuple[Run, ...]  # single runs newest first; a launch's runs in plan order
    labels: Mapping[int, str]  # run id -> its name inside the group (variant or run title)

    @property
    def is_experiment(self) -> bool:
        return self.key != SINGLE

    def describe(self) -> str:
        """'Learning rate x clipping (quick) · 12 Mar 10:15 · 8 runs' (plain text)."""
        if not self.is_experiment:
            return f"Single runs · {len(self.runs)}"
        when = time.strftime("%d %b %H:%M", time.localtime(self.created)) \
            if self.created else "date unknown"
        return f"{self.title} · {when} · {self.planned} runs"


def statuses_for(filters: Iterable[str]) -> tuple[str, ...] | None:
    """The run statuses the chosen :data:`STATUS_FILTERS` keys stand for; ``None`` (no
    filter) when none is chosen. Unknown keys are ignored."""
    chosen = [s for f in filters for s in STATUS_FILTERS.get(f, ())]
    return tuple(chosen) or None


def _as_tag(tag: Any) -> dict[str, Any] | None:
    return tag if isinstance(tag, dict) and isinstance(tag.get("batch"), str) else None


def experiment_tag(store: RunStore, run_id: int) -> dict[str, Any] | None:
    """The run's launch tag ``{"batch", "index", "title"}``, or ``None`` for a single run."""
    return _as_tag(store.get_meta(run_id, RUN_KEY))


def group_key(store: RunStore, run_id: int) -> str:
    """The key of the group ``run_id`` belongs to (:data:`SINGLE` or its launch id)."""
    tag = experiment_tag(store, run_id)
    return tag["batch"] if tag else SINGLE


def _title_from_run(run: Run, variant: str) -> str:
    """A launch's title when its plan is out of reach: runs are titled '<launch>: <variant>'."""
    suffix = f": {variant}"
    return run.title[: -len(suffix)] if variant and run.title.endswith(suffix) else run.title


def group_runs(store: RunStore, runs: Sequence[Run]) -> list[RunGroup]:
    """Group ``runs`` (newest first, as :meth:`RunStore.list_runs` gives them) into single
    runs and experiment launches; groups are ordered by their newest run, newest first.

    A launch's title, creation time and size come from its plan, kept on its first run, when
    that run is among ``runs``; otherwise the title is taken from a run's own title
    ('<launch title>: <variant title>'). Costs one ``run_meta`` query for all the runs' tags,
    plus one small read per launch.
    """
    found = store.get_meta_many((r.id for r in runs), RUN_KEY)
    tags = {r.id: _as_tag(found.get(r.id)) for r in runs}
    members: dict[str, list[tuple[int, Run]]] = {}
    order: list[str] = []
    for run in runs:
        tag = tags[run.id]
        key = tag["batch"] if tag else SINGLE
        if key not in members:
            members[key] = []
            order.append(key)
        index = int(tag.get("index", 0)) if tag and isinstance(tag.get("index"), int) else 0
        members[key].append((index, run))
    groups = []
    for key in order:
        if key == SINGLE:
            single = tuple(r for _, r in members[key])
            groups.append(RunGroup(SINGLE, "Single runs", None, None, len(single), single,
                                   {r.id: r.title for r in single}))
            continue
        entries = sorted(members[key], key=lambda e: (e[0], e[1].id))
        labels = {r.id: str((tags[r.id] or {}).get("title") or r.title) for _, r in entries}
        plan = _plan(store, [r for i, r in entries if i == 0])
        first = entries[0][1]
        if plan:
            title, suite = str(plan["title"]), str(plan["suite"])
            created, planned = float(plan.get("created") or 0.0) or None, len(plan["variants"])
        else:
            title, suite = _title_from_run(first, labels[first.id]), key.rsplit("-", 1)[0]
            created, planned = None, len(entries)
        groups.append(RunGroup(key, title, suite, created, planned,
                               tuple(r for _, r in entries), labels))
    return groups


def _plan(store: RunStore, firsts: Sequence[Run]) -> dict[str, Any] | None:
    for run in firsts:
        plan = store.get_meta(run.id, PLAN_KEY)
        if isinstance(plan, dict) and isinstance(plan.get("variants"), list) \
                and "title" in plan and "suite" in plan:
            return plan
    return None


_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def same_owner(a: str, b: str) -> bool:
    """Whether two stored owner names are one person, as the store compares them (SQLite's
    ``COLLATE NOCASE`` folds ASCII letters only)."""
    return a.translate(_ASCII_FOLD) == b.translate(_ASCII_FOLD)
