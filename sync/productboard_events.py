"""Productboard features that tickets' feedback notes are linked to: their status changes,
found by a poll and processed against the rules (``productboard.feature.updated``).

When ``productboard.note`` links a ticket's note to a feature it records the link
(``links``: system ``productboard``, ref the feature id) and the feature's status as it was then
(cursor ``productboard-feature:<id>``). Productboard's webhooks are not used: a scheduler job
(:class:`ProductboardPoller`, ``productboard_poller`` in the config) reads each linked feature
(one call each) and, when its status differs from the one recorded, stores ONE inbox event and the
new status in the same transaction — so a crash can neither lose the change nor report it twice
(the event's change key names the feature and the number of changes seen of it).

The processor turns the event into ``productboard.feature.updated`` with ``feature.*`` and
``links.productboard`` naming it, and no single ticket: its rules reach the tickets whose notes are
linked to the feature with ``zendesk.update_linked`` (``feature: "{{ feature.id }}"``) — the
close-the-loop of the Jira sync, when a requested feature ships. Events of one feature are
processed in order (the inbox entity is the feature).
"""

from __future__ import annotations

__all__ = ["FEATURE_UPDATED", "ProductboardPoller", "feature_cursor", "process_productboard",
           "record_feature"]

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from connectors.errors import ConnectorError, NotFoundError
from rules import EvalContext
from sync import inbox as inbox_mod
from sync.links import linked_tickets
from sync.planning import decide_in, matched_summary
from sync.schema import links
from sync.state import get_cursor, set_cursor
from sync.store import Store

if TYPE_CHECKING:
    from connectors.productboard import PBFeature
    from sync.config import ProductboardPollerSettings
    from sync.processor import EventProcessor

log = logging.getLogger("switchboard.productboard")

FEATURE_UPDATED = "productboard.feature.updated"
SYSTEM = "productboard"
#: ``payload.style`` of the events this module stores.
STYLE = "productboard"


def feature_cursor(feature_id: str) -> str:
    """The cursor holding the status last seen of one feature."""
    return f"productboard-feature:{feature_id}"


def _state(feature: PBFeature) -> dict[str, Any]:
    return {"id": feature.id, "name": feature.name, "status": feature.status,
            "url": feature.url}


def record_feature(conn: sa.Connection, feature: PBFeature) -> None:
    """Remember a feature's status when a note is first linked to it (not overwriting a status
    already seen: a change in between is the poll's to report)."""
    if get_cursor(conn, feature_cursor(feature.id)) is None:
        set_cursor(conn, feature_cursor(feature.id), _state(feature))


class ProductboardPoller:
    """Reads the features tickets' notes are linked to; stores an event per status change."""

    def __init__(self, store: Store, connector: Any, settings: ProductboardPollerSettings,
                 *, on_events: Callable[[], None] | None = None) -> None:
        self.store = store
        self.connector = connector
        self.settings = settings
        self.on_events = on_events

    def linked_features(self) -> list[str]:
        with self.store.read() as conn:
            return [str(r[0]) for r in conn.execute(
                sa.select(links.c.ref).where(links.c.system == SYSTEM).distinct()
                .order_by(links.c.ref))]

    def poll(self) -> int:
        """One pass; returns how many events were stored. A feature that cannot be read is
        logged and tried again next time; the others are still checked."""
        if self.connector is None:
            return 0
        stored = 0
        for feature_id in self.linked_features():
            try:
                feature = self.connector.get_feature(feature_id)
            except NotFoundError:
                log.warning("Productboard feature %s is gone (deleted?); its tickets keep their "
                            "link", feature_id)
                continue
            except ConnectorError as exc:
                log.warning("Productboard feature %s not read this time: %s", feature_id, exc)
                continue
            stored += self._compare(feature)
        if stored and self.on_events is not None:
            self.on_events()
        return stored

    def _compare(self, feature: PBFeature) -> int:
        name = feature_cursor(feature.id)
        with self.store.write() as conn:
            known = get_cursor(conn, name)
            if known is None:  # a link recorded without its status (should not happen)
                set_cursor(conn, name, _state(feature))
                return 0
            if known.get("status") == feature.status:
                if (known.get("name"), known.get("url")) != (feature.name, feature.url):
                    set_cursor(conn, name, {**_state(feature), "seq": known.get("seq", 0)})
                return 0
            # The n-th change seen of this feature: a key that never repeats, even for a
            # status that comes back (Released, In progress, Released) without an updatedAt.
            seq = int(known.get("seq") or 0) + 1
            result = inbox_mod.accept_in(
                conn, source=SYSTEM, kind="poll:feature.updated",
                entity_key=f"productboard:feature:{feature.id}",
                change_key=f"productboard:feature:{feature.id}:{seq}"[:192],
                payload={"style": STYLE, "feature": _state(feature),
                         "previous_status": known.get("status")})
            set_cursor(conn, name, {**_state(feature), "seq": seq})
        log.info("Productboard feature %s (%s): %s -> %s", feature.id, feature.name,
                 known.get("status"), feature.status)
        return int(result.accepted)


def process_productboard(processor: EventProcessor, item: inbox_mod.InboxItem) -> str:
    """Decide one stored feature event against the rules; returns its outcome."""
    payload = item.payload
    feature = dict(payload["feature"])
    feature_id = str(feature["id"])
    what = f"productboard feature {feature_id} ({feature.get('name')})"
    with processor.store.read() as conn:
        tickets = linked_tickets(conn, SYSTEM, feature_id)
    if not tickets:
        return processor._finish(item, "done", f"{what}: no ticket's note is linked to it")
    fields = {**feature, "previous_status": payload.get("previous_status"),
              "tickets": len(tickets)}
    ctx = EvalContext(FEATURE_UPDATED, SYSTEM, {}, {}, {SYSTEM: (feature_id,)},
                      now=item.received_at, feature=fields)
    with processor.store.write() as conn:
        planned, matched = decide_in(conn, processor.rules, ctx, ctx.namespace(), item.id,
                                     item.change_key or f"inbox:{item.id}", None)
        summary = (f"{FEATURE_UPDATED} {feature.get('name')}: {payload.get('previous_status')} "
                   f"-> {feature.get('status')} ({len(tickets)} linked ticket(s)); "
                   f"{matched_summary(matched, planned)}")
        inbox_mod.release(conn, item.id, "done", summary, owner=item.owner)
    log.info("event %s: %s", item.id, summary)
    return summary
