"""Run lists grouped by experiment launch: the groups follow the launch's own plan (its run ids
and variant titles), single runs stay together, and status filters cover every status once."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.experiments import get_suite, launch
from playground.run_groups import (
    SINGLE,
    STATUS_FILTERS,
    group_key,
    group_runs,
    same_owner,
    statuses_for,
)
from playground.runs import STATUSES, RunStore


@pytest.fixture()
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.sqlite")


def _single(store: RunStore, owner: str, title: str) -> int:
    return store.create_run(owner, title, {"name": "x"}, {"seed": 0})


def test_a_launch_is_one_group_in_plan_order_and_single_runs_another(store: RunStore) -> None:
    before = _single(store, "Ada", "small_cnn on Shapes")
    variants = get_suite("lr_clip").variants()
    batch = launch(store.create_run, store, "Ada", "lr_clip", "Clipping (quick)", variants,
                   capacity=len(variants))
    after = _single(store, "Ada", "lenet5 on Digits")
    groups = group_runs(store, store.list_runs("Ada"))

    # newest group first: the last single run is newer than the launch
    assert [g.key for g in groups] == [SINGLE, batch.batch]
    single, launched = groups
    assert [r.id for r in single.runs] == [after, before]
    assert [r.id for r in launched.runs] == batch.run_ids  # the plan's order
    assert [launched.labels[r] for r in batch.run_ids] == [v.title for v in variants]
    assert (launched.title, launched.suite, launched.planned) == ("Clipping (quick)", "lr_clip",
                                                                  len(variants))
    assert launched.created == pytest.approx(batch.created)
    assert launched.describe().startswith("Clipping (quick) · ")
    assert launched.describe().endswith(f" · {len(variants)} runs")
    assert group_key(store, batch.run_ids[3]) == batch.batch
    assert group_key(store, before) == SINGLE


def test_a_launch_whose_first_run_is_out_of_the_list_keeps_its_title(store: RunStore) -> None:
    variants = get_suite("lr_clip").variants()[:3]
    batch = launch(store.create_run, store, "Ada", "lr_clip", "Sweep", variants, capacity=3)
    newest_two = store.list_runs("Ada", limit=2)  # the plan lives on the oldest run
    [group] = group_runs(store, newest_two)
    assert [r.id for r in group.runs] == batch.run_ids[1:]
    assert group.title == "Sweep" and group.suite == "lr_clip"
    assert group.planned == 2 and group.created is None  # what the list alone can tell


def test_queued_runs_of_a_launch_not_started_yet_are_not_invented(store: RunStore) -> None:
    variants = get_suite("lr_clip").variants()
    batch = launch(store.create_run, store, "Ada", "lr_clip", "Sweep", variants, capacity=2)
    [group] = group_runs(store, store.list_runs("Ada"))
    assert [r.id for r in group.runs] == batch.run_ids[:2]
    assert group.planned == len(variants)


def test_status_filters_cover_every_status_once() -> None:
    listed = [s for group in STATUS_FILTERS.values() for s in group]
    assert sorted(listed) == sorted(STATUSES) and len(listed) == len(set(listed))
    assert statuses_for([]) is None
    assert set(statuses_for(["failed", "active"]) or ()) == {"diverged", "failed", "queued",
                                                             "running"}
    assert statuses_for(["nonsense"]) is None


def test_same_owner_folds_ascii_case_like_the_store(store: RunStore) -> None:
    rid = _single(store, "Ada", "t")
    assert same_owner(store.get_run(rid).owner, "ada")
    assert [r.id for r in store.list_runs("ADA")] == [rid]  # the store agrees
    assert not same_owner("Ada", "Adam")
    # SQLite's NOCASE folds ASCII only: "É" and "é" are two names there, and here
    _single(store, "Émile", "t")
    assert store.list_runs("émile") == [] and not same_owner("Émile", "émile")
