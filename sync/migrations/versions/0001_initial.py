"""Initial schema: inbox, outbox, decisions, snapshots, links, bugs, writes, cursors.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(96), nullable=False),
        sa.Column("entity_key", sa.String(128), nullable=False),
        sa.Column("change_key", sa.String(192), unique=True),
        sa.Column("delivery_id", sa.String(192), unique=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", TS),
        sa.Column("available_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("processed_at", TS),
        sa.Column("outcome", sa.Text),
    )
    op.create_index("ix_inbox_claim", "inbox", ["status", "entity_key", "id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("idem_key", sa.String(96), nullable=False, unique=True),
        sa.Column("inbox_id", sa.Integer),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("order_key", sa.String(256), nullable=False),
        sa.Column("depends_on", sa.String(96)),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("available_at", TS, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", TS),
        sa.Column("progress", sa.JSON),
        sa.Column("result", sa.JSON),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_outbox_claim", "outbox", ["status", "order_key", "id"])
    op.create_index("ix_outbox_ticket", "outbox", ["ticket_id"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("matched", sa.Boolean, nullable=False),
        sa.Column("trace", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_decisions_ticket", "decisions", ["ticket_id"])
    op.create_table(
        "snapshots",
        sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("saved_at", TS, nullable=False),
    )
    op.create_table(
        "links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("ticket_id", "system", "ref", name="uq_links_ticket_ref"),
    )
    op.create_index("ix_links_ref", "links", ["system", "ref"])
    op.create_table(
        "bugs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("jira_key", sa.String(64), nullable=False),
        sa.Column("jira_id", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("project", "dedupe_key", name="uq_bugs_dedupe"),
    )
    op.create_table(
        "writes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("stamp", sa.String(64), nullable=False),
        sa.Column("outbox_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("system", "entity_id", "stamp", name="uq_writes_stamp"),
    )
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
