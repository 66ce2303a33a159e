"""Jira issues: the last state Switchboard processed of each issue tickets are linked to.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jira_issues",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("issue_id", sa.String(32), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.Column("gone", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("saved_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("jira_issues")
