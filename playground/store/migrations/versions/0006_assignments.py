"""Assignments and their submissions.

Revision ID: 0006
Revises: 0005

``assignments`` holds one row per assignment (its fields as JSON, the secret seed of its
hidden test split included; the slug and state as columns for lookups); ``submissions`` one
row per scored submission: the student, the run, the design as scored, its parameters, MACs
and steps, and its validation (public) and test (private) accuracies.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("value_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("assignments_slug", "assignments", ["slug"], unique=True)
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("assignment_id", sa.Integer, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("owner_key", sa.Text, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("design", sa.Text, nullable=False),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("params", sa.BigInteger, nullable=False),
        sa.Column("macs", sa.BigInteger, nullable=False),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("val_acc", sa.Double, nullable=False),
        sa.Column("test_acc", sa.Double, nullable=False),
        sa.Column("submitted_at", sa.Double, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("submissions_assignment_owner", "submissions",
                    ["assignment_id", "owner_key"])
    op.create_index("submissions_assignment_run", "submissions", ["assignment_id", "run_id"],
                    unique=True)


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup instead")
