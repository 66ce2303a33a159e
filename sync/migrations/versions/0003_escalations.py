"""Escalations: one PagerDuty incident and one Slack thread per escalation, and its tickets.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False, unique=True),
        sa.Column("pd_service", sa.String(64)),
        sa.Column("pd_status", sa.String(16)),
        sa.Column("pd_own_status", sa.String(16)),
        sa.Column("pd_agent", sa.String(255)),
        sa.Column("pd_incident_id", sa.String(64)),
        sa.Column("pd_url", sa.Text),
        sa.Column("slack_channel", sa.String(64)),
        sa.Column("slack_ts", sa.String(32)),
        sa.Column("slack_root_digest", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "escalation_members",
        sa.Column("escalation_key", sa.String(255), primary_key=True),
        sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("organization_id", sa.BigInteger),
        sa.Column("organization_name", sa.String(255)),
        sa.Column("added_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("escalation_members")
    op.drop_table("escalations")
