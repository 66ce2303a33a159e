"""SLA alerts: the sla.warning and sla.breached events the SLA watch raised, once per target.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sla_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("fired_at", TS, nullable=False),
        sa.Column("priority", sa.String(16)),
        sa.Column("plan", sa.String(64)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("inbox_id", sa.Integer),
        sa.UniqueConstraint("ticket_id", "target", "kind", "due_at", name="uq_sla_alerts_once"),
        sa.Index("ix_sla_alerts_fired", "fired_at"),
    )


def downgrade() -> None:
    op.drop_table("sla_alerts")
