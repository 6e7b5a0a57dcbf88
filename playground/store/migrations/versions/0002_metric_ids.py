"""Metric rows get an explicit id: the polling cursor on every engine.

Revision ID: 0002
Revises: 0001

The earlier store polled with SQLite's implicit ``rowid``; PostgreSQL has none. On SQLite the
table is rebuilt with ``id INTEGER PRIMARY KEY`` (an alias of the rowid) and every row keeps
its rowid as its id, so a page's cursor stays valid across the upgrade (one copy of the
table, inside the upgrade's transaction). On PostgreSQL the column is a ``BIGSERIAL``.
An index on ``(run_id, id)`` makes a poll a range scan.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = "run_id, step, name, value, values_json"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "metrics_new",
            sa.Column("id", sa.Integer, primary_key=True),  # INTEGER PRIMARY KEY: the rowid
            sa.Column("run_id", sa.Integer, nullable=False),
            sa.Column("step", sa.Integer, nullable=False),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("value", sa.Double),
            sa.Column("values_json", sa.Text),
        )
        op.execute(f"INSERT INTO metrics_new (id, {COLUMNS}) SELECT rowid, {COLUMNS} "
                   f"FROM metrics ORDER BY rowid")
        op.drop_table("metrics")  # drops its index too
        op.rename_table("metrics_new", "metrics")
        op.create_index("metrics_run_name_step", "metrics", ["run_id", "name", "step"])
    else:
        op.execute("ALTER TABLE metrics ADD COLUMN id BIGSERIAL PRIMARY KEY")
    op.create_index("metrics_run_id", "metrics", ["run_id", "id"])


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup instead")
