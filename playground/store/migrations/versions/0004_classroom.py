"""Classroom: claimed names with key hashes, class settings, and who stopped a run.

Revision ID: 0004
Revises: 0003

``identities`` holds one row per claimed name (the SHA-256 of its key, never the key);
``class_settings`` the teacher's settings as one JSON row; ``runs.stopped_by`` who asked a run
to stop. Nothing existing changes: names used before this revision have no key until someone
claims them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("stopped_by", sa.Text))
    op.create_table(
        "identities",
        sa.Column("owner_key", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("reset_at", sa.Double),
    )
    op.create_table(
        "class_settings",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value_json", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup instead")
