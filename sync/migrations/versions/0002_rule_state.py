"""Rule gate state: window matches, window episodes, throttle fires.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rule_window_matches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("group_key", sa.String(255), nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_rule_window_matches_group", "rule_window_matches",
                    ["rule_id", "group_key", "at"])
    op.create_index("ix_rule_window_matches_at", "rule_window_matches", ["rule_id", "at"])
    op.create_table(
        "rule_episodes",
        sa.Column("rule_id", sa.String(128), primary_key=True),
        sa.Column("group_key", sa.String(255), primary_key=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("last_match_at", TS, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("tickets", sa.JSON, nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
    )
    op.create_table(
        "rule_fires",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_rule_fires_scope", "rule_fires", ["rule_id", "scope", "at"])
    op.create_index("ix_rule_fires_any_rule", "rule_fires", ["scope"])


def downgrade() -> None:
    op.drop_table("rule_fires")
    op.drop_table("rule_episodes")
    op.drop_table("rule_window_matches")
