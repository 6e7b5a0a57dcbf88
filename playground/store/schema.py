"""The store's tables at the schema head, as SQLAlchemy Core ``Table`` objects.

This module describes the *current* schema that :mod:`playground.runs` and
:mod:`playground.designs` query; the history that gets a database there lives in
``migrations/versions/`` (one small Alembic revision per change, as MLflow keeps
``store/db_migrations/`` next to its ``dbmodels``). A test upgrades an empty database and
compares it with this metadata (Alembic's ``compare_metadata``), so the two cannot drift.

Conventions
-----------
- Times are Unix seconds (``time.time()``) in double-precision columns.
- JSON values are stored as text (``*_json``), written with Python's ``json`` so NaN and inf
  survive a round trip on every engine.
- Owners (and design names) are matched through ``*_key`` columns: the name with ASCII
  letters lower-cased (:func:`name_key`), the same equivalence SQLite's ``COLLATE NOCASE``
  gave the earlier store, so upgraded files keep exactly the owners apart they kept before,
  and PostgreSQL compares owners the same way with plain indexes.
- ``metrics.id`` is the polling cursor: ids grow in commit order for any one run (SQLite
  serialises writers; on PostgreSQL a writer holds a per-run lock while it inserts, see
  :meth:`playground.runs.RunStore.append_metrics`).
- Integer columns that must alias SQLite's ``rowid`` are declared ``INTEGER`` there
  (``BIGINT`` elsewhere): only a column declared exactly ``INTEGER PRIMARY KEY`` is the rowid.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # rowid alias on SQLite
NOCASE_TEXT = sa.Text().with_variant(sa.Text(collation="NOCASE"), "sqlite")

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def name_key(text: str) -> str:
    """The matching key of an owner or design name: ASCII letters lower-cased (like SQLite's
    ``NOCASE``, which folds only ``A-Z``)."""
    return text.translate(_ASCII_LOWER)


runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", NOCASE_TEXT, nullable=False),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("settings_json", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("summary_json", sa.Text),
    sa.Column("versions_json", sa.Text),
    sa.Column("worker_pid", sa.BigInteger),
    sa.Column("worker_host", sa.Text),
    sa.Column("stop_requested", sa.Integer, nullable=False, server_default="0"),
    sa.Column("heartbeat_at", sa.Double),  # last sign of life of the training process
    sa.Column("runner", sa.Text),  # runner backend ("local", "ray")
    sa.Column("device", sa.Text),  # torch device ("cpu", "cuda:0")
    sa.Column("owner_key", sa.Text, nullable=False, server_default=""),  # name_key(owner)
    sa.Column("stopped_by", sa.Text),  # who asked it to stop (Actor.label)
    sa.Index("runs_status", "status"),
    sa.Index("runs_owner_key_status", "owner_key", "status"),
    sqlite_autoincrement=True,  # ids of deleted runs are never reused
)

metrics = sa.Table(
    "metrics", metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),  # the polling cursor
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("value", sa.Double),  # scalar records (SQLite stores NaN as NULL)
    sa.Column("values_json", sa.Text),  # per-layer vectors: a JSON list
    sa.Index("metrics_run_name_step", "run_id", "name", "step"),
    sa.Index("metrics_run_id", "run_id", "id"),
)

run_meta = sa.Table(
    "run_meta", metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value_json", sa.Text, nullable=False),
)

designs = sa.Table(
    "designs", metadata,
    sa.Column("owner", NOCASE_TEXT, primary_key=True),
    sa.Column("name", NOCASE_TEXT, primary_key=True),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("owner_key", sa.Text, nullable=False, server_default=""),  # name_key(owner)
    sa.Column("name_key", sa.Text, nullable=False, server_default=""),  # name_key(name)
    sa.Index("designs_key", "owner_key", "name_key", unique=True),
)

identities = sa.Table(
    "identities", metadata,
    sa.Column("owner_key", sa.Text, primary_key=True),  # name_key(owner)
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False),  # SHA-256 of the key, hex
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("reset_at", sa.Double),
)

class_settings = sa.Table(
    "class_settings", metadata,
    sa.Column("key", sa.Text, primary_key=True),  # "class": one row today
    sa.Column("value_json", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

checkpoints = sa.Table(
    "checkpoints", metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.Text, primary_key=True),  # "final" or "best"
    sa.Column("step", sa.Integer, nullable=False),  # the step the weights are from
    sa.Column("val_acc", sa.Double),  # validation accuracy of exactly these weights
    sa.Column("nbytes", sa.BigInteger, nullable=False),  # len(data)
    sa.Column("data", sa.LargeBinary, nullable=False),  # safetensors bytes, never pickle
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("val_loss", sa.Double),  # validation loss of these weights
    # the predictions of that evaluation, safetensors {"pred": int64, "conf": float32}
    sa.Column("predictions", sa.LargeBinary),
)

assignments = sa.Table(
    "assignments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slug", sa.Text, nullable=False),  # lower-case letters, digits, dashes
    sa.Column("state", sa.Text, nullable=False),  # "open" or "closed"
    sa.Column("value_json", sa.Text, nullable=False),  # the Assignment, test_seed included
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Index("assignments_slug", "slug", unique=True),
    sqlite_autoincrement=True,  # ids in links are never reused
)

submissions = sa.Table(
    "submissions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("assignment_id", sa.Integer, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),  # the run's owner: the student
    sa.Column("owner_key", sa.Text, nullable=False),  # name_key(owner)
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("design", sa.Text, nullable=False),  # one-line summary of the design
    sa.Column("spec_json", sa.Text, nullable=False),  # the design as scored
    sa.Column("params", sa.BigInteger, nullable=False),
    sa.Column("macs", sa.BigInteger, nullable=False),  # fvcore convention
    sa.Column("steps", sa.Integer, nullable=False),  # optimiser steps the run asked for
    sa.Column("val_acc", sa.Double, nullable=False),  # public score: validation split
    sa.Column("test_acc", sa.Double, nullable=False),  # private score: hidden test split
    sa.Column("submitted_at", sa.Double, nullable=False),
    sa.Index("submissions_assignment_owner", "assignment_id", "owner_key"),
    sa.Index("submissions_assignment_run", "assignment_id", "run_id", unique=True),
    sqlite_autoincrement=True,
)
