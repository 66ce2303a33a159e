"""Productboard notes: the note Switchboard keeps for a ticket and rule (feedback to product).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "productboard_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("note_id", sa.String(64), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("feature_id", sa.String(64)),
        sa.Column("requester_email", sa.String(255)),
        sa.Column("organization", sa.String(255)),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("appended", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("record_id", name="uq_productboard_notes_record"),
        sa.Index("ix_productboard_notes_ticket", "ticket_id"),
    )


def downgrade() -> None:
    op.drop_table("productboard_notes")
