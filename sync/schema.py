"""The store's tables, as SQLAlchemy Core metadata (the live definition the code queries).

Schema changes are Alembic migrations under ``sync/migrations/versions``; this module must always
describe the schema at ``head``. Times are stored as timezone-aware UTC.

- ``inbox``: every accepted inbound event, deduped by change (``change_key``) and by delivery
  (``delivery_id``); claimed by workers with a lease; processed in order per ``entity_key``.
- ``outbox``: every planned action intent, keyed by its deterministic ``idem_key``; written in the
  same transaction as the decision that planned it; executed in order per ``order_key``.
- ``decisions``: the explain log — one row per (event, rule) with the condition trace.
- ``snapshots``: the last known state of each ticket, for diffs.
- ``links`` / ``bugs``: ticket ⇄ Jira issue, and the open bug per dedupe key.
- ``writes``: Switchboard's own writes, so that their echoes are recognised (no loops).
- ``cursors``: poller bookmarks, saved in the same transaction as the events they produced.
- ``rule_window_matches`` / ``rule_episodes`` / ``rule_fires``: the state of rule gates (windows
  and throttles, :mod:`rules.engine`), written in the transaction of the decision they gate.
- ``escalations`` / ``escalation_members``: one PagerDuty incident (dedup key) and one Slack
  thread (channel, ts) per escalation, optionally a Zendesk problem ticket, and the tickets that
  belong to it, with the problem ticket each is attached to (``sync.escalations``).
- ``jira_issues``: the last state processed of each Jira issue tickets are linked to (status,
  resolution, priority, fix versions, Jira's ``updated``), so that a webhook and the
  reconciliation poll never report one change twice (``sync.jira_poller``).
- ``sla_alerts``: every ``sla.warning`` / ``sla.breached`` event the SLA watch raised — once per
  (ticket, target, kind, due time), inserted in the transaction of the inbox row it produced
  (``sync.sla``); ``fired_at`` is the scan's clock, ``source`` is ``config`` or ``zendesk``.
"""

from __future__ import annotations

__all__ = [
    "UTCDateTime",
    "bugs",
    "cursors",
    "decisions",
    "escalation_members",
    "escalations",
    "inbox",
    "jira_issues",
    "links",
    "metadata",
    "outbox",
    "productboard_notes",
    "rule_episodes",
    "rule_fires",
    "rule_window_matches",
    "sla_alerts",
    "snapshots",
    "writes",
]

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone support: values are stored as naive UTC and given their zone back on
    the way out. Naive datetimes are refused, so a local time can never slip in.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()
TS = UTCDateTime()

inbox = sa.Table(
    "inbox",
    metadata,
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
    sa.Index("ix_inbox_claim", "status", "entity_key", "id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
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
    sa.Index("ix_outbox_claim", "status", "order_key", "id"),
    sa.Index("ix_outbox_ticket", "ticket_id"),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("inbox_id", sa.Integer, nullable=False),
    sa.Column("ticket_id", sa.BigInteger),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("rule_id", sa.String(128), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("matched", sa.Boolean, nullable=False),
    sa.Column("trace", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_decisions_ticket", "ticket_id"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("saved_at", TS, nullable=False),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.BigInteger, nullable=False),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("ref", sa.String(128), nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("ticket_id", "system", "ref", name="uq_links_ticket_ref"),
    sa.Index("ix_links_ref", "system", "ref"),
)

bugs = sa.Table(
    "bugs",
    metadata,
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

writes = sa.Table(
    "writes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("stamp", sa.String(64), nullable=False),
    sa.Column("outbox_id", sa.Integer),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("system", "entity_id", "stamp", name="uq_writes_stamp"),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

rule_window_matches = sa.Table(
    "rule_window_matches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule_id", sa.String(128), nullable=False),
    sa.Column("group_key", sa.String(255), nullable=False),
    sa.Column("ticket_id", sa.BigInteger, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_rule_window_matches_group", "rule_id", "group_key", "at"),
    sa.Index("ix_rule_window_matches_at", "rule_id", "at"),
)

rule_episodes = sa.Table(
    "rule_episodes",
    metadata,
    sa.Column("rule_id", sa.String(128), primary_key=True),
    sa.Column("group_key", sa.String(255), primary_key=True),
    sa.Column("opened_at", TS, nullable=False),
    sa.Column("last_match_at", TS, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("tickets", sa.JSON, nullable=False),
    sa.Column("context", sa.JSON, nullable=False),
)

rule_fires = sa.Table(
    "rule_fires",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule_id", sa.String(128), nullable=False),
    sa.Column("scope", sa.String(255), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_rule_fires_scope", "rule_id", "scope", "at"),
    sa.Index("ix_rule_fires_any_rule", "scope"),
)

escalations = sa.Table(
    "escalations",
    metadata,
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
    sa.Column("zd_problem_id", sa.BigInteger),
)

escalation_members = sa.Table(
    "escalation_members",
    metadata,
    sa.Column("escalation_key", sa.String(255), primary_key=True),
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("organization_id", sa.BigInteger),
    sa.Column("organization_name", sa.String(255)),
    sa.Column("added_at", TS, nullable=False),
    sa.Column("problem_id", sa.BigInteger),
)

jira_issues = sa.Table(
    "jira_issues",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("issue_id", sa.String(32), nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated", TS, nullable=False),
    sa.Column("gone", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("saved_at", TS, nullable=False),
)

productboard_notes = sa.Table(
    "productboard_notes",
    metadata,
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

sla_alerts = sa.Table(
    "sla_alerts",
    metadata,
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
