"""Owner and design-name keys: case-insensitive matching on every engine.

Revision ID: 0003
Revises: 0002

The earlier store compared owners and design names with SQLite's ``COLLATE NOCASE``, which
PostgreSQL lacks. Each row now carries ``owner_key`` (and designs ``name_key``): the name with
ASCII letters lower-cased, exactly NOCASE's equivalence, so an upgraded file keeps apart the
same owners and designs as before. Existing rows are filled here (the function is copied, not
imported, so this revision keeps meaning what it meant). ``runs (owner_key, status)`` replaces
the index on ``(owner, status)``; ``designs (owner_key, name_key)`` is unique.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _key(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("runs", sa.Column("owner_key", sa.Text, nullable=False, server_default=""))
    op.add_column("designs", sa.Column("owner_key", sa.Text, nullable=False, server_default=""))
    op.add_column("designs", sa.Column("name_key", sa.Text, nullable=False, server_default=""))
    runs = bind.execute(sa.text("SELECT id, owner FROM runs")).all()
    if runs:
        bind.execute(sa.text("UPDATE runs SET owner_key = :key WHERE id = :id"),
                     [{"key": _key(owner), "id": rid} for rid, owner in runs])
    designs = bind.execute(sa.text("SELECT owner, name FROM designs")).all()
    if designs:
        bind.execute(
            sa.text("UPDATE designs SET owner_key = :okey, name_key = :nkey "
                    "WHERE owner = :owner AND name = :name"),
            [{"okey": _key(o), "nkey": _key(n), "owner": o, "name": n} for o, n in designs],
        )
    op.drop_index("runs_owner_status", table_name="runs")
    op.create_index("runs_owner_key_status", "runs", ["owner_key", "status"])
    op.create_index("designs_key", "designs", ["owner_key", "name_key"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup instead")
