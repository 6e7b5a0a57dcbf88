"""Baseline: the store as the playground made it before Alembic; adopts such files.

Revision ID: 0001
Revises: (none)

Before Alembic, ``runs.py`` and ``designs.py`` created their tables with ``CREATE TABLE IF NOT
EXISTS`` and added the columns ``heartbeat_at``, ``runner`` and ``device`` when missing. This
revision does the same, so it both creates an empty database and adopts a file made by any
earlier version (tables present, no ``alembic_version``): missing tables, columns and indexes
are created, existing rows are left as they are. The definitions below are that schema,
frozen (later changes are later revisions).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOCASE_TEXT = sa.Text().with_variant(sa.Text(collation="NOCASE"), "sqlite")
ADDED_RUN_COLUMNS = (("heartbeat_at", sa.Double), ("runner", sa.Text), ("device", sa.Text))


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "runs" not in tables:
        op.create_table(
            "runs",
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
            *(sa.Column(name, type_) for name, type_ in ADDED_RUN_COLUMNS),
            sqlite_autoincrement=True,
        )
    else:
        have = {c["name"] for c in inspector.get_columns("runs")}
        for name, type_ in ADDED_RUN_COLUMNS:
            if name not in have:
                op.add_column("runs", sa.Column(name, type_))
    if "metrics" not in tables:
        op.create_table(
            "metrics",
            sa.Column("run_id", sa.Integer, nullable=False),
            sa.Column("step", sa.Integer, nullable=False),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("value", sa.Double),
            sa.Column("values_json", sa.Text),
        )
    if "run_meta" not in tables:
        op.create_table(
            "run_meta",
            sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("value_json", sa.Text, nullable=False),
        )
    if "designs" not in tables:
        op.create_table(
            "designs",
            sa.Column("owner", NOCASE_TEXT, primary_key=True),
            sa.Column("name", NOCASE_TEXT, primary_key=True),
            sa.Column("spec_json", sa.Text, nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
            sa.Column("updated_at", sa.Double, nullable=False),
        )
    op.create_index("runs_owner_status", "runs", ["owner", "status"], if_not_exists=True)
    op.create_index("runs_status", "runs", ["status"], if_not_exists=True)
    op.create_index("metrics_run_name_step", "metrics", ["run_id", "name", "step"],
                    if_not_exists=True)


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup instead")
