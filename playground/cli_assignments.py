"""``python -m playground leaderboard`` and ``python -m playground assignment ...``.

The command line acts for the server's operator (:data:`~playground.access.SYSTEM`): it sees
the private scores (the test accuracies) whatever the assignment's state, and may create,
open and close assignments like the teacher.

    python -m playground assignment create --title "Shapes under 50k" --dataset shapes \\
        --input 3x32x32 --max-params 50k --max-macs 5M --max-steps 300 --lock optimizer=adam
    python -m playground assignment create --file challenge.json --deadline 2025-06-01T18:00
    python -m playground assignment list
    python -m playground assignment close shapes-under-50k
    python -m playground assignment submit shapes-under-50k 42
    python -m playground leaderboard shapes-under-50k --format csv > grades.csv
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

from playground.access import SYSTEM
from playground.errors import ConfigError
from playground.format import fmt_bytes, fmt_si

__all__ = ["add_parsers", "parse_bytes", "parse_count", "parse_time"]

_SI = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BYTES = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
          "gib": 2**30}
_NUMBER = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def _number(text: str, units: dict[str, int], what: str, example: str) -> int:
    m = _NUMBER.match(str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in units:
        raise ConfigError(f"{what} {text!r} is not a count like {example}")
    value = float(m.group(1).replace("_", "").replace(",", "")) * units[unit]
    if not math.isfinite(value) or value < 1 or value > 1e18:
        raise ConfigError(f"{what} {text!r} is out of range")
    return round(value)


def parse_count(text: str, what: str = "the value") -> int:
    """``"100k"`` -> 100000, ``"20M"`` -> 20000000, ``"1.5G"``, ``"12_000"``, ``"12,000"``."""
    return _number(text, _SI, what, "100k, 20M or 150000")


def parse_bytes(text: str, what: str = "the memory") -> int:
    """``"64MiB"``, ``"1.5GB"``, ``"500000"`` (bytes) -> bytes."""
    return _number(text, _BYTES, what, "64MiB, 1GB or 500000")


def parse_time(text: str) -> float:
    """A deadline: Unix seconds, or ISO 8601 (``2025-06-01T18:00``; without a zone: this
    machine's local time) -> Unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"the deadline {text!r} is neither Unix seconds nor an ISO 8601 time "
                          "like 2025-06-01T18:00") from None
    return when.timestamp()


def _lock(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--lock {text!r}: write KEY=VALUE, e.g. optimizer=adam or lr=0.01")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _assignment_data(args: argparse.Namespace) -> dict[str, Any]:
    from playground.limits import load_json
    from playground.settings import get_settings
    from playground.targets import parse_shape

    data: dict[str, Any] = {}
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise ConfigError(f"no such file: {args.file}")
        if path.stat().st_size > get_settings().max_upload_bytes:
            raise ConfigError(f"{args.file} is too large for an assignment file")
        data = load_json(path.read_bytes(), args.file)
        if not isinstance(data, dict):
            raise ConfigError(f"{args.file} must hold a JSON object of assignment fields")
    if args.instructions_file:
        try:
            data["instructions"] = Path(args.instructions_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read {args.instructions_file}: "
                              f"{getattr(err, 'strerror', None) or err}") from None
    simple = {"title": args.title, "slug": args.slug, "dataset": args.dataset,
              "data_seed": args.data_seed, "n_train": args.n_train, "n_val": args.n_val,
              "n_test": args.n_test, "submissions_per_student": args.submissions}
    data.update({k: v for k, v in simple.items() if v is not None})
    if args.input:
        data["input_shape"] = parse_shape(args.input)
    for key, text in (("max_params", args.max_params), ("max_macs", args.max_macs),
                      ("max_steps", args.max_steps)):
        if text is not None:
            data[key] = parse_count(text, f"--{key.replace('_', '-')}")
    if args.max_memory is not None:
        data["max_train_memory_bytes"] = parse_bytes(args.max_memory, "--max-memory")
    if args.lock:
        data["locked"] = {**data.get("locked", {}), **dict(_lock(t) for t in args.lock)}
    if args.deadline is not None:
        data["deadline"] = parse_time(args.deadline)
    if args.closed:
        data["state"] = "closed"
    return data


def _print_assignment(a: Any, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(a.public_dict(), indent=2))
        return
    deadline = ("none" if a.deadline is None else
                dt.datetime.fromtimestamp(a.deadline).isoformat(timespec="minutes"))
    shape = "x".join(map(str, a.input_shape))
    memory = ("" if a.max_train_memory_bytes is None
              else f", training memory {fmt_bytes(a.max_train_memory_bytes)}")
    print(f"assignment {a.id} ({a.slug}): {_clip(a.title, 80)} [{a.state}]")
    print(f"  data: {a.dataset} {shape}, {a.num_classes} classes, {a.n_train:,} training / "
          f"{a.n_val:,} validation / {a.n_test:,} hidden test examples, data seed {a.data_seed}")
    print(f"  budgets: {fmt_si(a.max_params)} parameters, {fmt_si(a.max_macs)} MACs, "
          f"{a.max_steps:,} steps{memory}")
    if a.locked:
        print("  locked: " + ", ".join(f"{k}={v!r}" for k, v in a.locked.items()))
    print(f"  submissions per student: {a.submissions_per_student}; deadline: {deadline}")


def _clip(text: str, limit: int) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def cmd_assignment(args: argparse.Namespace) -> int:
    """Create, list, show, open or close assignments, submit a run or remove a submission (as
    the system)."""
    from playground.assignments import AssignmentStore

    store = AssignmentStore()
    if args.action == "create":
        _print_assignment(store.create(_assignment_data(args), by=SYSTEM), args.format)
    elif args.action == "list":
        items = store.list()
        if args.format == "json":
            print(json.dumps([a.public_dict() for a in items], indent=2))
        elif not items:
            print("no assignments yet: python -m playground assignment create --help")
        else:
            from playground.cli import _table

            rows = [[a.id, a.slug, _clip(a.title, 40), a.state, a.dataset,
                     fmt_si(a.max_params), fmt_si(a.max_macs), a.max_steps,
                     a.submissions_per_student] for a in items]
            print(_table(["id", "slug", "title", "state", "dataset", "params", "MACs", "steps",
                          "submissions"], rows, right={0, 5, 6, 7, 8}))
    elif args.action == "show":
        _print_assignment(store.get(args.assignment), args.format)
    elif args.action in ("open", "close"):
        act = store.open if args.action == "open" else store.close
        _print_assignment(act(args.assignment, by=SYSTEM), args.format)
    elif args.action == "remove-submission":
        s = store.remove_submission(args.assignment, args.submission_id, by=SYSTEM)
        _print_submission(s, args.format, "removed submission",
                          "the student may submit once more")
    elif args.action == "submit":
        s = store.submit(args.assignment, args.run_id, by=SYSTEM)
        _print_submission(s, args.format, "submission", f"validation {s.val_acc:.2%}, test "
                          f"{s.test_acc:.2%} (private)")
    return 0


def _print_submission(s: Any, fmt: str, what: str, tail: str) -> None:
    """A submission as JSON, or as one line: ``<what> <id>: run <n> of <student>, <design>;
    <tail>``."""
    if fmt == "json":
        print(json.dumps(s.to_dict(), indent=2))
    else:
        print(f"{what} {s.id}: run {s.run_id} of {_clip(s.student, 30)}, "
              f"{_clip(s.design, 60)}; {tail}")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """The leaderboard of one assignment, with the private scores (as the system)."""
    from playground.assignments import AssignmentStore

    store = AssignmentStore()
    if args.format == "csv":
        print(store.export_csv(args.assignment, by=SYSTEM), end="")
        return 0
    board = store.leaderboard(args.assignment, by=SYSTEM, private=args.private,
                              anonymise=args.anonymise)
    if args.format == "json":
        print(json.dumps(board.to_dict(), indent=2))
        return 0
    order = "test accuracy (private)" if args.private else "validation accuracy (public)"
    print(f"{_clip(board.title, 80)} [{board.state}]: {len(board.rows)} students, "
          f"{board.n_submissions} submissions, ranked by {order}")
    if not board.rows:
        return 0
    from playground.cli import _table

    def change(n: int | None) -> str:
        return "" if n is None else ("=" if n == 0 else f"{n:+d}")

    rows = [[r.rank, _clip(r.student, 24), _clip(r.design, 40), f"{r.params:,}", fmt_si(r.macs),
             r.steps, f"{r.val_acc:.2%}", "" if r.test_acc is None else f"{r.test_acc:.2%}",
             r.public_rank, "" if r.private_rank is None else r.private_rank,
             change(r.rank_change), r.submissions] for r in board.rows]
    print(_table(["rank", "student", "design", "params", "MACs", "steps", "val acc",
                  "test acc*", "public", "private*", "change*", "subs"], rows,
                 right={0, 3, 4, 5, 6, 7, 8, 9, 10, 11}))
    print("\n* private: scored on the hidden test split; students see these columns once the "
          "assignment is closed. Ties go to fewer MACs, then the earlier submission.")
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``leaderboard`` and ``assignment`` on the CLI's subparsers."""
    p = sub.add_parser(
        "leaderboard", help="an assignment's ranking, with the private (test) scores",
        description="Rank each student's best submission (highest validation accuracy, then "
        "fewer MACs, then the earlier one). The command line sees the private scores: the "
        "table marks their columns with *. --format csv exports every submission.")
    p.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment's id or slug")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table",
                   help="csv: every submission (student, design, params, MACs, steps, "
                   "validation and test accuracy, submitted at)")
    p.add_argument("--private", action="store_true",
                   help="order by test accuracy (default: by validation accuracy)")
    p.add_argument("--anonymise", "--anonymize", action="store_true",
                   help="show Student 1..N instead of names")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("assignment", help="create, list, show, open or close assignments, "
                       "submit a run, or remove a submission")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser(
        "create", help="create an assignment (from options, a JSON file, or both)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create an assignment. Give the fields as options, or as a JSON object "
        "in --file whose keys are the Assignment fields (title, instructions, dataset, "
        "input_shape, data_seed, n_train, n_val, noise, n_test, max_params, max_macs, "
        "max_steps, max_train_memory_bytes, locked, submissions_per_student, deadline, state, "
        "slug); options override the file.\n\nexample:\n  python -m playground assignment "
        "create --title 'Shapes under 50k' --dataset shapes --input 3x32x32 \\\n"
        "      --max-params 50k --max-macs 5M --max-steps 300 --lock optimizer=adam")
    c.add_argument("--file", help="a JSON file of assignment fields")
    c.add_argument("--title")
    c.add_argument("--slug", help="its name in links and commands (default: from the title)")
    c.add_argument("--instructions-file", help="a markdown file with the instructions")
    c.add_argument("--dataset", help="data set name (shapes, digits, spirals, mnist...)")
    c.add_argument("--input", help="the network input CxHxW (default: the set's; points 2x1x1)")
    c.add_argument("--data-seed", type=int, help="the data seed every run must use (default 0)")
    c.add_argument("--n-train", type=int, help="training examples (default: the set's)")
    c.add_argument("--n-val", type=int, help="validation examples (default: the set's)")
    c.add_argument("--n-test", type=int, help="hidden test examples (default: the set's)")
    c.add_argument("--max-params", metavar="N", help="parameter budget: 100k, 1.5M, 120000")
    c.add_argument("--max-macs", metavar="N", help="MAC budget (fvcore MACs): 20M, 1G")
    c.add_argument("--max-steps", metavar="N", help="most optimiser steps per run")
    c.add_argument("--max-memory", metavar="BYTES", help="training-memory budget: 64MiB, 1GB")
    c.add_argument("--lock", action="append", metavar="KEY=VALUE",
                   help="fix a training setting (repeatable): optimizer=adam, lr=0.01, "
                   "batch_size=64, augment=true")
    c.add_argument("--submissions", type=int, help="submissions per student (default 5)")
    c.add_argument("--deadline", help="Unix seconds or ISO 8601 (2025-06-01T18:00, local time)")
    c.add_argument("--closed", action="store_true", help="create it closed (open it later)")
    c.add_argument("--format", choices=["table", "json"], default="table")
    lst = actions.add_parser("list", help="every assignment, newest first")
    lst.add_argument("--format", choices=["table", "json"], default="table")
    for name, text in (("show", "one assignment's settings"),
                       ("open", "accept submissions (again)"),
                       ("close", "stop submissions and reveal the private leaderboard")):
        q = actions.add_parser(name, help=text)
        q.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment's id or slug")
        q.add_argument("--format", choices=["table", "json"], default="table")
    s = actions.add_parser("submit", help="submit a run to an assignment (for its owner)")
    s.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment's id or slug")
    s.add_argument("run_id", type=int, metavar="RUN_ID", help="the run's number (see `runs`)")
    s.add_argument("--format", choices=["table", "json"], default="table")
    r = actions.add_parser("remove-submission", help="delete a submission (its student gets "
                           "it back; the run is kept)")
    r.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment's id or slug")
    r.add_argument("submission_id", type=int, metavar="SUBMISSION_ID",
                   help="the submission's number (the CSV's 'submission' column)")
    r.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_assignment)
