"""Checkpoints: a run's final weights and its weights at the best validation accuracy.

Revision ID: 0005
Revises: 0004

One row per run and kind (``final``, ``best``), the weights as ``safetensors`` bytes in the
database itself, so a store on PostgreSQL needs no shared disk between the web server and the
GPU workers, and the validation predictions of those weights (what the Results tab shows
without evaluating again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("val_acc", sa.Double),
        sa.Column("nbytes", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("val_loss", sa.Double),
        sa.Column("predictions", sa.LargeBinary),
    )


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup instead")
