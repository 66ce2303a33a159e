"""Problem tickets: the Zendesk problem ticket of an escalation and which members it holds.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("zd_problem_id", sa.BigInteger))
    with op.batch_alter_table("escalation_members") as batch:
        batch.add_column(sa.Column("problem_id", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("escalation_members") as batch:
        batch.drop_column("problem_id")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("zd_problem_id")
