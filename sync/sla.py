"""The SLA watch: a minute-granular scan of the open tickets the store holds against their SLA
targets, raising ``sla.warning`` and ``sla.breached`` events into the inbox.

Each scan (a hub scheduler job every ``sla.scan_interval_seconds``; its clock is injectable)
reads the snapshots whose status is new, open, pending or hold — never Zendesk, but for the plan
tier of an organization whose targets depend on it (a cached read, see below) — and works out,
per ticket, when each target is due:

- **Zendesk's SLA state first** (``sla.zendesk_slas``): when the snapshot carries Zendesk's
  policy metrics (``Ticket.slas``, read with ``include=slas``), the metric that measures a target
  (``sla.zendesk_metrics``) decides it: ``active`` with a ``breach_at`` is due then; any other
  stage (``achieved``, ``paused``) means nothing is due for that target now. A target no
  metric covers falls back to the config.
- **The config** otherwise: the most specific ``sla.targets`` entry for the ticket's priority and
  plan tier (a named priority beats ``*``, then a named plan beats ``*``), counted in calendar
  time from the ticket's creation. A first reply is known only from what the snapshot shows: the
  ``first_reply`` target is watched while the ticket is ``new`` (an agent who replies or takes the
  ticket moves it on); resolution while it is open in any way.

A target is *due* at one instant; the pair (target, due time) is a target instance. When less than
``warn_before`` is left, the instance gets ``sla.warning``; once the due time has passed,
``sla.breached`` (only that, if the warning's window was missed). Each happens ONCE per ticket,
target instance and kind: a priority change that moves the due time is a new instance (warned
and breached again, on its own time); a scan that sees the same instance again raises nothing.

Once is kept by the store, not by the scanner: the inbox event and its ``sla_alerts`` row are
inserted in ONE transaction, the event deduplicated by its change key
(``sla:<ticket>:<target>:<kind>:<due>``) and the row by its unique (ticket, target, kind,
due_at) — so two scans at once, two hubs, or a crash anywhere leave exactly one event or none
(then the next scan raises it). The events go through the inbox like every other, in order with
the ticket's other events (same entity key), decided and explained by ``sync.sla_events``.
"""

from __future__ import annotations

__all__ = ["Alert", "Due", "ScanResult", "SlaWatch", "alert_kind", "dues_of", "plan_tier"]

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.models import Organization, Ticket, format_time
from sync import inbox
from sync.schema import sla_alerts, snapshots
from sync.sla_config import TARGETS, SlaSettings
from sync.store import Store, utcnow

log = logging.getLogger("switchboard.sla")

#: Ticket statuses the watch scans (Zendesk's unsolved ones).
OPEN_STATUSES = ("new", "open", "pending", "hold")
WARNING, BREACHED = "sla.warning", "sla.breached"
#: ``payload.style`` of the events (``sync.processor`` hands them to ``sync.sla_events``).
STYLE = "sla"
_STAGE_ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Due:
    """When one target of a ticket is due, and what decided it."""

    target: str
    due_at: datetime
    source: str  # "config" or "zendesk"
    priority: str | None
    plan: str | None


@dataclass(frozen=True, slots=True)
class Alert:
    """One ``sla.warning`` or ``sla.breached`` the scan raised (or recorded, when ``silent``:
    found more than ``max_overdue`` after its due time)."""

    ticket_id: int
    kind: str
    due: Due
    fired_at: datetime
    silent: bool = False

    @property
    def change_key(self) -> str:
        return (f"sla:{self.ticket_id}:{self.due.target}:{self.kind.removeprefix('sla.')}:"
                f"{format_time(self.due.due_at)}")

    def payload(self) -> dict[str, Any]:
        """The inbox payload (read back by ``sync.sla_events``)."""
        left = (self.due.due_at - self.fired_at).total_seconds() / 60
        return {"style": STYLE, "kind": self.kind, "ticket_id": self.ticket_id,
                "target": self.due.target, "due_at": format_time(self.due.due_at),
                "fired_at": format_time(self.fired_at), "priority": self.due.priority,
                "plan": self.due.plan, "source": self.due.source,
                "minutes_left": math.floor(left) if self.kind == WARNING else None,
                "minutes_over": math.floor(-left) if self.kind == BREACHED else None}


@dataclass
class ScanResult:
    """What one scan did: the alerts it raised (events) and recorded silently, and the tickets
    it skipped this time (their plan tier could not be read)."""

    raised: list[Alert] = field(default_factory=list)
    silent: list[Alert] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def dues_of(ticket: Ticket, plan: str | None, settings: SlaSettings) -> list[Due]:
    """When each target of ``ticket`` is due (see the module docstring), given its
    organization's plan tier; targets with nothing due now are left out."""
    out: list[Due] = []
    by_metric = {m.metric: m for m in ticket.slas} if settings.zendesk_slas else {}
    for target in TARGETS:
        metric = by_metric.get(settings.metric_of(target))
        if metric is not None:
            if metric.stage == _STAGE_ACTIVE and metric.breach_at is not None:
                out.append(Due(target, metric.breach_at, "zendesk", ticket.priority, plan))
            continue  # achieved or paused: Zendesk says nothing is due now
        entry = settings.target_for(target, ticket.priority, plan)
        duration = entry.of(target) if entry is not None else None
        if duration is None or ticket.created_at is None:
            continue
        if target == "first_reply" and ticket.status != "new":
            continue  # the snapshot shows the ticket moved on: first reply taken as done
        out.append(Due(target, ticket.created_at + duration, "config", ticket.priority, plan))
    return out


def plan_tier(organization: Organization | None, settings: SlaSettings) -> str | None:
    """The plan tier an organization's ``sla.plan_field`` holds (``None``: no organization,
    or the field is empty)."""
    value = organization.fields.get(settings.plan_field) if organization else None
    return str(value).strip() if value not in (None, "") else None


def alert_kind(due: Due, now: datetime, settings: SlaSettings) -> str | None:
    """``sla.breached`` once the due time has come, ``sla.warning`` within ``warn_before`` of
    it, else ``None``."""
    if now >= due.due_at:
        return BREACHED
    if now >= due.due_at - settings.warn_before.of(due.target):
        return WARNING
    return None


_OPEN = sa.select(snapshots.c.ticket_id, snapshots.c.data).where(
    snapshots.c.data["status"].as_string().in_(OPEN_STATUSES))
_FIRED = sa.select(sla_alerts.c.ticket_id, sla_alerts.c.target, sla_alerts.c.kind,
                   sla_alerts.c.due_at).where(
    sla_alerts.c.ticket_id.in_(sa.select(snapshots.c.ticket_id).where(
        snapshots.c.data["status"].as_string().in_(OPEN_STATUSES))))
_ONE = sa.select(sla_alerts.c.id).where(
    sla_alerts.c.ticket_id == sa.bindparam("b_ticket"),
    sla_alerts.c.target == sa.bindparam("b_target"), sla_alerts.c.kind == sa.bindparam("b_kind"),
    sla_alerts.c.due_at == sa.bindparam("b_due"))

Fired = set[tuple[int, str, str, datetime]]


class SlaWatch:
    """Scans the store's open tickets against their SLA targets (see the module docstring).

    ``zendesk`` is the Zendesk connector, used only for the plan tier of organizations whose
    targets depend on it (``get_people``, itself cached); ``clock`` gives the scan's "now";
    ``on_events`` is called when a scan put events in the inbox (the hub wakes its workers).
    """

    def __init__(self, store: Store, settings: SlaSettings, zendesk: Any, *,
                 clock: Callable[[], datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic,
                 on_events: Callable[[], None] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.zendesk = zendesk
        self.clock = clock
        self._monotonic = monotonic
        self._on_events = on_events
        self._plans: dict[int, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    # -- public -------------------------------------------------------------------------------

    def scan(self, now: datetime | None = None) -> ScanResult:
        """One scan at ``now`` (default: the clock). Returns what it raised."""
        now = now or self.clock()
        result = ScanResult()
        with self.store.read() as conn:
            open_tickets = conn.execute(_OPEN).all()
            fired: Fired = {(int(r.ticket_id), r.target, r.kind, r.due_at)
                            for r in conn.execute(_FIRED)}
        alerts: list[Alert] = []
        for row in open_tickets:
            try:
                ticket = Ticket.from_dict(row.data)
            except (KeyError, TypeError, ValueError):
                log.warning("sla: snapshot of ticket %s is unreadable; skipped", row.ticket_id)
                continue
            found = self._alerts_for(ticket, now, fired, result)
            alerts.extend(found)
        if alerts:
            self._record(alerts, result)
        if result.raised and self._on_events is not None:
            self._on_events()
        if result.raised or result.silent:
            log.info("sla scan at %s: %s event(s) raised, %s overdue breach(es) recorded "
                     "silently", format_time(now), len(result.raised), len(result.silent))
        return result

    # -- steps --------------------------------------------------------------------------------

    def _alerts_for(self, ticket: Ticket, now: datetime, fired: Fired,
                    result: ScanResult) -> list[Alert]:
        """The alerts due for one ticket now and not raised yet. The plan tier is read only
        when it matters: the ticket's targets depend on it, and some plan's could fire now."""
        plans = self.settings.plans_for(ticket.priority) if ticket.organization_id else frozenset()
        if not plans:
            return self._new(ticket, None, now, fired)
        if not any(self._new(ticket, plan, now, fired) for plan in (None, *plans)):
            return []
        assert ticket.organization_id is not None
        try:
            plan = self._plan(ticket.id, ticket.organization_id)
        except Exception as exc:  # the next scan tries again; never a wrong tier's target
            log.warning("sla: plan tier of organization %s (ticket %s) unreadable: %s; the "
                        "ticket is checked again at the next scan", ticket.organization_id,
                        ticket.id, exc)
            result.skipped.append(ticket.id)
            return []
        return self._new(ticket, plan, now, fired)

    def _new(self, ticket: Ticket, plan: str | None, now: datetime,
             fired: Fired) -> list[Alert]:
        out = []
        for due in dues_of(ticket, plan, self.settings):
            kind = alert_kind(due, now, self.settings)
            if kind is None or (ticket.id, due.target, kind, due.due_at) in fired:
                continue
            silent = kind == BREACHED and now - due.due_at > self.settings.max_overdue
            out.append(Alert(ticket.id, kind, due, now, silent))
        return out

    def _plan(self, ticket_id: int, organization_id: int) -> str | None:
        """The organization's plan tier (``sla.plan_field``), cached ``plan_cache_seconds``."""
        with self._lock:
            cached = self._plans.get(organization_id)
        if cached is not None and self._monotonic() < cached[0]:
            return cached[1]
        people = self.zendesk.get_people(ticket_id, None, organization_id)
        plan = plan_tier(people.organization, self.settings)
        with self._lock:
            self._plans[organization_id] = (
                self._monotonic() + self.settings.plan_cache_seconds, plan)
        return plan

    def _record(self, alerts: Iterable[Alert], result: ScanResult) -> None:
        """Insert each alert's event and row in one transaction; an alert another scan (or
        hub) recorded meanwhile is skipped — by the checks here, or by the unique keys."""
        with self.store.write() as conn:
            for alert in alerts:
                due = alert.due
                if conn.execute(_ONE, {"b_ticket": alert.ticket_id, "b_target": due.target,
                                       "b_kind": alert.kind, "b_due": due.due_at}).first():
                    continue
                try:
                    with conn.begin_nested():
                        inbox_id = None
                        if not alert.silent:
                            accepted = inbox.accept_in(
                                conn, source=STYLE, kind=alert.kind,
                                entity_key=f"zendesk:ticket:{alert.ticket_id}",
                                change_key=alert.change_key, payload=alert.payload())
                            inbox_id = accepted.inbox_id
                        conn.execute(sa.insert(sla_alerts).values(
                            ticket_id=alert.ticket_id, target=due.target, kind=alert.kind,
                            due_at=due.due_at, fired_at=alert.fired_at, priority=due.priority,
                            plan=due.plan, source=due.source, inbox_id=inbox_id))
                except sa.exc.IntegrityError:
                    log.info("sla: %s for ticket %s was recorded by another scan",
                             alert.change_key, alert.ticket_id)
                    continue
                (result.silent if alert.silent else result.raised).append(alert)
