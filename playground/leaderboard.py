"""Ranking an assignment's submissions: public and private leaderboards, the accuracy-MACs
Pareto front, and the teacher's CSV export. Pure functions over plain data; the store and its
access rules are in :mod:`playground.assignments`.

Conventions (after Kaggle InClass's public/private leaderboards)
----------------------------------------------------------------
- One row per student: the submission that ranks best on the *public* key (highest validation
  accuracy, then fewer MACs, then the earlier submission). That same submission counts on the
  private leaderboard, as Kaggle counts the submissions a team selected (by default its best
  public ones): picking among one's own test scores would reward luck on the hidden set.
- Public ranking: by validation accuracy; private ranking: by test accuracy. Ties are broken by
  fewer MACs, then the earlier submission, then the lower submission id, so every place is
  distinct and the order is the same on every engine.
- ``rank_change`` = public place - private place: ``+2`` moved up two places when the hidden
  test split was revealed, ``-1`` dropped one.
- Anonymised names are "Student 1".."Student N", numbered by each student's first submission,
  so a student keeps the same number in both rankings.
- Test accuracies are only put into rows when the caller says they may be shown
  (``show_private``); otherwise ``test_acc``, ``private_rank`` and ``rank_change`` are ``None``.
- CSV: RFC 4180 through Python's ``csv`` module; text cells that a spreadsheet would read as a
  formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) get a leading
  ``'``, the OWASP "CSV injection" advice. Times are ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from playground.store.schema import name_key

__all__ = ["EXPORT_COLUMNS", "Leaderboard", "LeaderboardRow", "Submission", "anonymous_names",
           "csv_safe", "pareto_front", "rank_submissions", "to_csv"]

View = Literal["public", "private"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = ("submission", "student", "run", "design", "params", "macs", "steps",
                  "val_acc", "test_acc", "submitted_at")


@dataclass(frozen=True)
class Submission:
    """One recorded submission. Accuracies are fractions in 0..1; ``test_acc`` is ``None``
    when the caller may not see it yet. ``spec`` is the design as it was scored (a
    :class:`~playground.spec.NetworkSpec` dict), so a point on the scatter opens as its design
    even after the run is deleted. ``params``/``macs`` as :func:`~playground.targets.analyse_spec`
    counts them (MACs: fvcore's convention), ``steps`` the optimiser steps the run asked for."""

    id: int
    assignment_id: int
    student: str
    run_id: int
    design: str
    spec: dict[str, Any]
    params: int
    macs: int
    steps: int
    val_acc: float
    test_acc: float | None
    submitted_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LeaderboardRow:
    """One student's place. ``rank`` is the place in the leaderboard's own view;
    ``public_rank``/``private_rank`` the places in each ranking (``private_rank`` and
    ``rank_change`` are ``None`` while the test accuracies are hidden)."""

    rank: int
    student: str
    submission_id: int
    run_id: int
    design: str
    params: int
    macs: int
    steps: int
    val_acc: float
    test_acc: float | None
    public_rank: int
    private_rank: int | None
    rank_change: int | None
    submitted_at: float
    submissions: int  # how many times this student submitted
    is_you: bool = False  # the row of the student asking

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Leaderboard:
    """A ranking of one assignment. ``private_visible``: whether the rows carry test
    accuracies (the teacher, or anyone once the assignment is closed)."""

    assignment_id: int
    title: str
    state: str
    view: View
    private_visible: bool
    rows: list[LeaderboardRow] = field(default_factory=list)
    n_submissions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _public_key(s: Submission) -> tuple[float, int, float, int]:
    return (-s.val_acc, s.macs, s.submitted_at, s.id)


def _private_key(s: Submission) -> tuple[float, int, float, int]:
    assert s.test_acc is not None
    return (-s.test_acc, s.macs, s.submitted_at, s.id)


def anonymous_names(submissions: Iterable[Submission]) -> dict[str, str]:
    """``name_key(student) -> "Student k"``, numbered by each student's first submission."""
    first: dict[str, tuple[float, int]] = {}
    for s in submissions:
        k = name_key(s.student)
        first[k] = min(first.get(k, (s.submitted_at, s.id)), (s.submitted_at, s.id))
    return {k: f"Student {i + 1}" for i, k in enumerate(sorted(first, key=first.__getitem__))}


def rank_submissions(submissions: Iterable[Submission], *, view: View = "public",
                     show_private: bool = False, viewer: str | None = None,
                     anonymise: bool = False) -> list[LeaderboardRow]:
    """The leaderboard rows of ``submissions`` (one assignment's), in ``view``'s order.

    ``view="private"`` needs ``show_private`` and every counted submission's ``test_acc``.
    ``viewer``: the asking student's name (marks ``is_you``). See the module docstring for the
    choice of each student's submission, ties and anonymised names.
    """
    if view == "private" and not show_private:
        raise ValueError("the private view needs show_private")
    subs = list(submissions)
    by_student: dict[str, list[Submission]] = {}
    for s in subs:
        by_student.setdefault(name_key(s.student), []).append(s)
    alias = anonymous_names(subs)
    chosen = {k: min(group, key=_public_key) for k, group in by_student.items()}
    public = sorted(chosen.values(), key=_public_key)
    public_rank = {s.id: i + 1 for i, s in enumerate(public)}
    private_rank: dict[int, int] = {}
    if show_private:
        private = sorted(public, key=_private_key)
        private_rank = {s.id: i + 1 for i, s in enumerate(private)}
    order = sorted(public, key=_private_key) if view == "private" else public
    me = name_key(viewer) if viewer else None
    rows = []
    for place, s in enumerate(order, start=1):
        k = name_key(s.student)
        pr = private_rank.get(s.id) if show_private else None
        rows.append(LeaderboardRow(
            rank=place, student=alias[k] if anonymise else s.student, submission_id=s.id,
            run_id=s.run_id, design=s.design, params=s.params, macs=s.macs, steps=s.steps,
            val_acc=s.val_acc, test_acc=s.test_acc if show_private else None,
            public_rank=public_rank[s.id], private_rank=pr,
            rank_change=None if pr is None else public_rank[s.id] - pr,
            submitted_at=s.submitted_at, submissions=len(by_student[k]), is_you=k == me))
    return rows


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the ``(macs, accuracy)`` points no other point dominates (as accurate or
    more with as few MACs or fewer, better in one), ordered by MACs: the accuracy-for-MACs
    trade-off the class found. Equal points are all on the front."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")
    last: tuple[float, float] | None = None
    for i in order:
        macs, acc = points[i]
        if acc > best or (last is not None and (macs, acc) == last):
            front.append(i)
            best = max(best, acc)
            last = (macs, acc)
    return front


def csv_safe(value: Any) -> Any:
    """A cell a spreadsheet shows as the text it is: text starting like a formula gets a
    leading ``'``; numbers and ``None`` pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def to_csv(submissions: Iterable[Submission]) -> str:
    """Every submission as CSV with :data:`EXPORT_COLUMNS` (accuracies as fractions, empty
    when unknown; ``submitted_at`` ISO 8601 UTC), oldest first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for s in sorted(submissions, key=lambda s: (s.submitted_at, s.id)):
        writer.writerow([csv_safe(v) for v in (
            s.id, s.student, s.run_id, s.design, s.params, s.macs, s.steps, repr(s.val_acc),
            "" if s.test_acc is None else repr(s.test_acc), _iso(s.submitted_at))])
    return out.getvalue()
