"""Turning one inbox event into decisions and action intents.

For a ticket event the processor

1. drops it if the stored snapshot is as new or newer (a redelivery, a stale event, or the echo of
   Switchboard's own write — invariant 5, no loops);
2. works out which event types the change is (``rules.occurrence``): ``ticket.created`` or
   ``ticket.updated``, plus ``ticket.solved`` when the status became solved, plus
   ``ticket.comment_added`` when a comment came — carried by the webhook, or (only if a rule
   listens to ``ticket.comment_added``) read from Zendesk, newest first;
3. builds the ticket's state: the payload itself when it is complete, the payload over the
   snapshot when the rules need nothing the payload lacks, otherwise ONE read of the ticket —
   with its requester and organization side-loaded when a rule reads those too (alone, they
   are one read, or none when cached);
4. diffs it against the snapshot (``changes``), evaluates every rule listening to one of the
   event types — each rule once — and plans intents for the ones that matched;
5. commits decisions (with traces), intents, the new snapshot and the inbox outcome in ONE
   transaction — so a crash leaves either none of it or all of it (invariant 2).
"""

from __future__ import annotations

__all__ = ["EventProcessor", "diff_tickets", "subtract_own", "ticket_context"]

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.errors import SwitchboardError
from connectors.models import Comment, Ticket, TicketPeople, format_time, parse_time
from rules import Change, EvalContext, RuleSet, evaluate
from rules.context import ORGANIZATION_KEYS, REQUESTER_KEYS, blank_person
from rules.engine import Outcome, settle_event, sweep
from rules.model import Mode, Rule, condition_fields
from rules.occurrence import COMMENT_ADDED, contexts, evaluate_once, event_types
from rules.partial import judge
from sync import inbox as inbox_mod
from sync.actions import MARKER_PREFIX
from sync.incident_events import process_incident
from sync.jira_events import process_jira
from sync.leases import LeaseLost
from sync.links import links_for_ticket
from sync.planning import CREATE_BUG, follow_up_rows
from sync.productboard_events import process_productboard
from sync.retry import RetryPolicy
from sync.rulestate import StoreRuleState
from sync.schema import outbox
from sync.sla_config import SlaSettings
from sync.sla_events import process_sla
from sync.state import get_snapshot, is_own_write, put_snapshot, refresh_slas
from sync.store import Store, utcnow

log = logging.getLogger("switchboard.processor")

#: ``payload.style`` of the scheduler's tick events (window quiet periods).
TICK = "tick"
#: ``payload.style`` of PagerDuty incident events (``sync.incident_events``).
PAGERDUTY = "pagerduty"
#: ``payload.style`` of Jira webhook events (``sync.jira_events``).
JIRA = "jira"
#: ``payload.style`` of Productboard feature events (``sync.productboard_events``).
PRODUCTBOARD = "productboard"
#: Comments read to find the one a change added (newest first), and how deep to read when all
#: of them are newer than the state last processed.
RECENT_COMMENTS = 5
DEEP_COMMENTS = 100
#: ``payload.style`` of the SLA watch's events (``sync.sla_events``).
SLA = "sla"
#: The actions that write several tickets under one marker: the members a problem ticket
#: attaches, the tickets linked to a Jira issue.
MANY_TICKETS = ("zendesk.problem", "zendesk.update_linked")
# Built once: these run for every event.
_PENDING_BUGS = sa.select(outbox.c.idem_key).where(
    outbox.c.ticket_id == sa.bindparam("b_id"), outbox.c.action == CREATE_BUG,
    outbox.c.status == "pending")
_SEQUENCES = (list, tuple)


def _norm(value: Any) -> Any:
    if isinstance(value, _SEQUENCES):
        return sorted(str(v) for v in value)
    return value


def _plain_tags(tags: Any) -> list[str]:
    """Tags without Switchboard's marker tags, which mean nothing to rules."""
    return [t for t in (tags or ()) if not str(t).startswith(MARKER_PREFIX)]


#: Ticket attributes a change can be in, in ``Ticket.to_dict()`` order (``updated_at`` and ``url``
#: are not changes; ``tags`` and ``created_at`` have their own cases, custom fields come last).
_DIFFED = ("id", "created_at", "subject", "description", "status", "priority", "type", "tags",
           "requester_id", "organization_id", "assignee_id", "group_id")


def _as_dict_value(key: str, value: Any) -> Any:
    """An attribute as ``Ticket.to_dict()`` gives it, marker tags left out."""
    if key == "created_at":
        return format_time(value) if value else None
    if key == "tags":
        return _plain_tags(value)
    return value


def diff_tickets(before: Ticket | None, after: Ticket) -> dict[str, Change]:
    """Changed fields, keyed like ``status``, ``tags`` or ``fields.error_code``.

    Values are those of ``Ticket.to_dict()`` (``created_at`` as text, ``tags`` as a list without
    marker tags); list values compare as sets of their text.
    """
    # Read from the attributes rather than from two to_dict() copies, and compare only what
    # differs: this runs for every event (every record of a backtest).
    changes: dict[str, Change] = {}
    if before is None:  # every value that is set is a change (None -> value)
        created = after.created_at
        for key, value in (("id", after.id),
                           ("created_at", format_time(created) if created else None),
                           ("subject", after.subject), ("description", after.description),
                           ("status", after.status), ("priority", after.priority),
                           ("type", after.type), ("tags", _plain_tags(after.tags)),
                           ("requester_id", after.requester_id),
                           ("organization_id", after.organization_id),
                           ("assignee_id", after.assignee_id), ("group_id", after.group_id)):
            if value is not None:
                changes[key] = Change(None, value)
        for name in sorted(after.custom_fields):
            value = after.custom_fields[name]
            if value is not None:
                changes[f"fields.{name}"] = Change(None, value)
        return changes
    for key in _DIFFED:
        was, value = getattr(before, key), getattr(after, key)
        if was == value:
            if key == "tags":
                if all(type(t) is str for t in value):
                    continue  # equal texts: equal without marker tags, equal as sets
            elif key == "created_at" or not (isinstance(was, _SEQUENCES)
                                             or isinstance(value, _SEQUENCES)):
                continue  # equal values (the same instant formats the same)
        was, value = _as_dict_value(key, was), _as_dict_value(key, value)
        if _norm(was) != _norm(value):
            changes[key] = Change(was, value)
    old_fields, new_fields = before.custom_fields, after.custom_fields
    for name in sorted(set(old_fields) | set(new_fields)):
        was, value = old_fields.get(name), new_fields.get(name)
        if was == value and not (isinstance(was, _SEQUENCES) or isinstance(value, _SEQUENCES)):
            continue
        if _norm(was) != _norm(value):
            changes[f"fields.{name}"] = Change(was, value)
    return changes


def ticket_context(ticket: Ticket, event_type: str, changes: Mapping[str, Change],
                   links: Mapping[str, tuple[str, ...]], *, source: str,
                   now: datetime | None, custom_fields: Iterable[str],
                   people: TicketPeople | None = None, user_fields: Iterable[str] = (),
                   organization_fields: Iterable[str] = ()) -> EvalContext:
    """The context rules see for one ticket event, built here only, for live processing and
    for backtests (``sync.backtest``) alike, so that both decide on the same input.

    ``people`` are the requester and organization when they were read (``None``: nobody read
    them, as no rule needs them); a requester or organization Zendesk does not have reads as
    a blank one, with every configured field key.
    """
    ticket_dict = ticket.to_dict()
    # Every configured custom field is present (None when unset), so rules and templates
    # can test it without tripping over a missing key.
    fields = dict.fromkeys(custom_fields)
    fields.update(ticket.custom_fields)
    ticket_dict["fields"] = fields
    requester = organization = None
    if people is not None:
        requester = people.requester.to_dict() if people.requester is not None \
            else blank_person(REQUESTER_KEYS, user_fields)
        organization = people.organization.to_dict() if people.organization is not None \
            else blank_person(ORGANIZATION_KEYS, organization_fields)
    return EvalContext(event_type=event_type, event_source=source, ticket=ticket_dict,
                       changes=changes, links=links,
                       # Durations (older_than / within) count back from when the event
                       # reached Switchboard, so a replay or backtest decides the same.
                       now=now, requester=requester, organization=organization)


def _ticket_path(path: str) -> str:
    """``changes.<key>.from`` / ``.to`` -> the ticket field it is computed from."""
    if path.startswith("changes.") and path.endswith((".from", ".to")):
        return "ticket." + path[len("changes."):].rsplit(".", 1)[0]
    return path


def _reads_people(path: str) -> bool:
    return path.startswith(("requester.", "organization."))


def _has_field(fields: Mapping[str, Any], path: str) -> bool:
    parts = _ticket_path(path).split(".")
    if parts[0] != "ticket" or len(parts) < 2:
        return True  # not a ticket field: links.*, event.*, changes.* come from elsewhere
    if parts[1] == "fields":
        custom = fields.get("fields")
        return custom is not None and (len(parts) < 3 or parts[2] in custom)
    if parts[1] == "url":
        return True
    return parts[1] in fields


def _own_deltas(conn: sa.Connection, snapshot: Ticket | None,
                ticket: Ticket) -> list[Mapping[str, Any]]:
    """What Switchboard's writes changed, for each of its marker tags new on this ticket.

    The delta is recorded in the intent's progress before the write is sent, so a write's echo
    is recognised even while the intent that made it is still waiting to be marked done.
    """
    seen = set(snapshot.tags) if snapshot else set()
    deltas: list[Mapping[str, Any]] = []
    for tag in ticket.tags:
        if not tag.startswith(MARKER_PREFIX) or tag in seen:
            continue
        row = conn.execute(
            sa.select(outbox.c.progress).where(
                sa.or_(sa.and_(outbox.c.ticket_id == ticket.id,
                               outbox.c.action == "zendesk.update"),
                       outbox.c.action.in_(MANY_TICKETS)),  # they write several tickets
                outbox.c.idem_key.like(f"{tag[len(MARKER_PREFIX):]}%"))
        ).first()
        progress = (row.progress or {}) if row else {}
        # A problem intent keeps one delta per member it attached, and "delta" for the problem.
        delta = progress.get(f"delta:{ticket.id}") or progress.get("delta")
        deltas.append(delta or {"add_tags": [tag]})
    return deltas


def subtract_own(changes: dict[str, Change], deltas: list[Mapping[str, Any]]) -> dict[str, Change]:
    """The changes left once Switchboard's own writes (``deltas``) are taken out."""
    if not deltas:
        return changes
    added = {t for d in deltas for t in d.get("add_tags", ())}
    removed = {t for d in deltas for t in d.get("remove_tags", ())}
    fields = {k: v for d in deltas for k, v in (d.get("fields") or {}).items()}
    statuses = {d.get("status") for d in deltas if d.get("status")}
    out = dict(changes)
    if "tags" in out:
        before = list(out["tags"].from_ or ())
        after = list(out["tags"].to or ())
        others = [t for t in after if t in before or t not in added]
        others += [t for t in before if t in removed and t not in after]
        if set(others) == set(before):
            del out["tags"]
        else:
            out["tags"] = Change(before, others)
    for name, value in fields.items():
        key = f"fields.{name}"
        if key in out and str(out[key].to) == str(value):
            del out[key]
    plain = {k: v for d in deltas for k, v in (d.get("ticket") or {}).items()}
    for key, value in plain.items():
        if key in out and out[key].to == value:
            del out[key]
    if "status" in out and out["status"].to in statuses:
        del out["status"]
    return out


class EventProcessor:
    """Processes claimed inbox events; one instance is shared by the inbox worker threads."""

    def __init__(self, store: Store, rules: RuleSet, zendesk: Any, *, retry: RetryPolicy,
                 custom_fields: tuple[str, ...] = (), user_fields: tuple[str, ...] = (),
                 organization_fields: tuple[str, ...] = (), jira: Any = None,
                 sla: SlaSettings | None = None) -> None:
        self.store = store
        #: The SLA watch's settings: whether a target instance still applies at processing.
        self.sla = sla
        #: The Jira connector: Jira events' issue links, and who Switchboard is in Jira.
        self.jira = jira
        self.jira_url: str | None = jira.settings.url if jira is not None else None
        self.custom_fields = custom_fields
        self.user_fields = user_fields
        self.organization_fields = organization_fields
        self.rules = rules
        self.zendesk = zendesk
        self.retry = retry

    # -- public -------------------------------------------------------------------------------

    def process(self, item: inbox_mod.InboxItem) -> str:
        """Handle one claimed event end to end; returns the outcome recorded for it."""
        try:
            return self._process(item)
        except LeaseLost:
            log.warning("event %s: lease lost to another worker; leaving it to that one", item.id)
            return "lease lost"
        except Exception as exc:
            if not isinstance(exc, SwitchboardError):
                log.exception("event %s raised unexpectedly", item.id)
            verdict = self.retry.judge(exc, item.attempts)
        if verdict.kind == "retry":
            with self.store.write() as conn:
                inbox_mod.release(conn, item.id, "pending", f"retrying: {verdict.reason}",
                                  retry_in=verdict.retry_in, owner=item.owner)
            return f"retry in {verdict.retry_in:.1f}s: {verdict.reason}"
        return self._finish(item, "done" if verdict.kind == "skip" else "failed", verdict.reason)

    def _finish(self, item: inbox_mod.InboxItem, status: str, outcome: str) -> str:
        with self.store.write() as conn:
            inbox_mod.release(conn, item.id, status, outcome, owner=item.owner)
        return outcome

    # -- steps --------------------------------------------------------------------------------

    def _process(self, item: inbox_mod.InboxItem) -> str:
        payload = item.payload
        if payload.get("style") == TICK:
            return self._tick(item)
        if payload.get("style") == PAGERDUTY:
            return process_incident(self, item)
        if payload.get("style") == JIRA:
            return process_jira(self, item)
        if payload.get("style") == PRODUCTBOARD:
            return process_productboard(self, item)
        if payload.get("style") == SLA:
            return process_sla(self, item)
        fields: dict[str, Any] = dict(payload["fields"])
        ticket_id = int(fields["id"])
        updated_at = parse_time(fields["updated_at"])
        assert updated_at is not None
        with self.store.read() as conn:
            snapshot = get_snapshot(conn, ticket_id)
            own = is_own_write(conn, "zendesk", ticket_id, format_time(updated_at))
        if snapshot is not None and snapshot.updated_at >= updated_at:
            why = ("echo of Switchboard's own write" if own
                   else "no newer state than already processed (redelivery or stale event)")
            if fields.get("slas") is not None and snapshot.updated_at == updated_at:
                # The export page of a change a webhook brought first: only it carries
                # Zendesk's SLA state (sync.sla).
                with self.store.write() as conn:
                    if refresh_slas(conn, ticket_id, updated_at, list(fields["slas"])):
                        why += "; Zendesk's SLA state refreshed"
                    inbox_mod.release(conn, item.id, "done", why, owner=item.owner)
                return why
            return self._finish(item, "done", why)

        base = (payload.get("hint") or "ticket.updated") if snapshot is None \
            else "ticket.updated"
        rules = self.rules  # one rule set for the whole event, even if a reload swaps it
        complete = bool(payload.get("complete"))
        state = self._merged(fields, snapshot, complete)
        # A state stamped by Switchboard's own write holds no one else's comment.
        comment = None if own else self._new_comment(rules, item, state, snapshot, fields,
                                                     complete, payload.get("comment"))
        types = event_types(base, diff_tickets(snapshot, state), comment=comment is not None)
        ticket, people, read_reason = self._current_state(item, rules, types, fields, state,
                                                          snapshot, complete, comment)
        if snapshot is not None and snapshot.updated_at >= ticket.updated_at:
            return self._finish(item, "done", "no newer state than already processed")
        deltas: list[Mapping[str, Any]] = []
        if any(t.startswith(MARKER_PREFIX) for t in ticket.tags):
            with self.store.read() as conn:
                deltas = _own_deltas(conn, snapshot, ticket)
        if snapshot is None and any(d.get("created") for d in deltas):
            why = "a ticket Switchboard opened itself (a problem ticket): no rule runs on it"
            with self.store.write() as conn:
                put_snapshot(conn, ticket)
                inbox_mod.release(conn, item.id, "done", why, owner=item.owner)
            return why
        changes = subtract_own(diff_tickets(snapshot, ticket), deltas)
        types = event_types(base, changes, comment=comment is not None)
        if snapshot is not None and not changes:
            # Nothing changed but what Switchboard wrote (its echo), or the same state under a
            # newer stamp (one change reported with stamps of different precision): rules react
            # to changes, so none runs — unless the change added a comment.
            types = tuple(t for t in types if t == COMMENT_ADDED)
            if not types:
                why = "echo of Switchboard's own write" if deltas or own \
                    else "no field changed; no rule run"
                with self.store.write() as conn:
                    put_snapshot(conn, ticket)
                    inbox_mod.release(conn, item.id, "done", why, owner=item.owner)
                return why
        return self._decide(item, rules, ticket, types, changes, read_reason, people, comment)

    def _merged(self, fields: dict[str, Any], snapshot: Ticket | None,
                complete: bool) -> Ticket:
        """The ticket as the event shows it: the payload, over the snapshot unless complete."""
        if not fields.get("url"):
            fields["url"] = self.zendesk.ticket_url(int(fields["id"]))
        if complete:
            return Ticket.from_dict(fields)
        base = snapshot.to_dict() if snapshot else {}
        return Ticket.from_dict({**base, **fields, "fields": {**base.get("fields", {}),
                                                              **fields.get("fields", {})}})

    def _new_comment(self, rules: RuleSet, item: inbox_mod.InboxItem, state: Ticket,
                     snapshot: Ticket | None, fields: Mapping[str, Any], complete: bool,
                     carried: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The comment this change added (``Comment.to_dict()``), or ``None``.

        Looked for only when Switchboard has seen the ticket before (a new ticket's first
        comment is its description) and a rule listening to ``ticket.comment_added`` may match
        it, judged on what the event carries with the comment (and what the event lacks)
        unknown (:func:`rules.partial.judge`). The webhook's comment is used as is; otherwise
        ONE read of the newest comments (a second, deeper one when every comment of the first
        is newer than the stored state): the newest one made after the stored state and up to
        this change, by someone other than the user Switchboard writes as (its own notes
        never count).
        """
        listening = [rule for rule in rules
                     if rule.mode is not Mode.OFF and COMMENT_ADDED in rule.on]
        if snapshot is None or not listening:
            return None
        if carried is None:
            def unknown(path: str) -> bool:
                return path.startswith("comment.") or _reads_people(path) \
                    or (not complete and not _has_field(fields, path))

            with self.store.read() as conn:
                ctx = self._context(conn, state, COMMENT_ADDED,
                                    diff_tickets(snapshot, state), item)
            if not any(judge(r, evaluate(r, ctx), unknown) is not False for r in listening):
                return None  # no rule could match whatever the comment says: nothing to read
        ticket_id, updated_at = state.id, state.updated_at
        if carried is not None:
            comment = Comment.from_dict(carried)
            if comment.author_id is None or comment.author_id != self.zendesk.own_user_id():
                return comment.to_dict()
            return None
        found, complete_page = self._pick_comment(
            self.zendesk.recent_comments(ticket_id, limit=RECENT_COMMENTS), RECENT_COMMENTS,
            snapshot.updated_at, updated_at)
        if found is None and not complete_page:
            # Every comment read is newer than the state last processed: later changes
            # (Switchboard's notes fanned out while this event waited, say) may have buried this
            # change's comment beyond the first page. Read deeper, once.
            found, complete_page = self._pick_comment(
                self.zendesk.recent_comments(ticket_id, limit=DEEP_COMMENTS), DEEP_COMMENTS,
                snapshot.updated_at, updated_at)
            if found is None and not complete_page:
                log.warning("ticket %s: its newest %s comments are all newer than the state "
                            "last processed; a comment this change added may be missed",
                            ticket_id, DEEP_COMMENTS)
        return found

    def _pick_comment(self, recent: tuple[Comment, ...], limit: int, since: datetime,
                      until: datetime) -> tuple[dict[str, Any] | None, bool]:
        """The newest comment of ``recent`` (newest first) made after ``since`` and up to
        ``until`` by someone other than Switchboard's user, and whether ``recent`` reached back
        to ``since`` (or holds every comment) — when not, an older one may be unread."""
        own_user = None
        for comment in recent:
            if comment.created_at is None or comment.created_at <= since:
                return None, True  # newest first: the rest is older than the stored state
            if comment.created_at > until:
                continue  # a later change's comment: its own event reports it
            if own_user is None:
                own_user = self.zendesk.own_user_id()
            if comment.author_id != own_user:
                return comment.to_dict(), True
        return None, len(recent) < limit

    def _current_state(self, item: inbox_mod.InboxItem, rules: RuleSet, types: tuple[str, ...],
                       fields: dict[str, Any], state: Ticket, snapshot: Ticket | None,
                       complete: bool, comment: Mapping[str, Any] | None,
                       ) -> tuple[Ticket, TicketPeople | None, str | None]:
        """The ticket's state for this event, and its people when a rule reads them; reading
        only what a rule that can fire for the event needs.

        Every rule listening to the event is first judged on what the event carries (the
        payload over the snapshot), with the fields it lacks — and the requester and
        organization — unknown (:func:`rules.partial.judge`): a rule that cannot match whatever
        they are needs nothing read. A rule that may match, depending on them, has them read; a
        rule that matches anyway has read only what its actions' templates use. The ticket and
        its people together are ONE read (side-loaded); the people alone are one read, or none
        while cached. A ticket no rule cares about costs no read.
        """
        listening = [r for r in rules if r.mode is not Mode.OFF and any(t in r.on for t in types)]

        def unknown(path: str) -> bool:
            return _reads_people(path) or (not complete and not _has_field(fields, path))

        with self.store.read() as conn:
            ctx = self._context(conn, state, types[0], diff_tickets(snapshot, state), item)
        by_type = contexts(ctx, types, comment)
        undecided: list[Rule] = []
        matched: list[Rule] = []
        for rule in listening:
            verdicts = {judge(rule, evaluate(rule, by_type[t]), unknown)
                        for t in types if t in rule.on}
            if True in verdicts:
                matched.append(rule)
            elif None in verdicts:
                undecided.append(rule)
        # What the rules that match, or may match, read (conditions and templates) and the
        # event lacks; nothing at all when none may match.
        used = {f for r in [*undecided, *matched]
                for f in condition_fields(r.condition) | r.fields_used if unknown(f)}
        if undecided:
            why = f"rule {', '.join(r.id for r in undecided)} may match, depending on"
        else:
            why = f"matched rule {', '.join(r.id for r in matched)} uses"
        missing = sorted(f for f in used if not _reads_people(f))
        people_used = sorted(f for f in used if _reads_people(f))
        ticket_id = state.id
        if missing and people_used:
            ticket, people = self.zendesk.get_ticket_and_people(ticket_id)
            return ticket, people, (f"read the ticket with its requester and organization: {why} "
                                    f"{', '.join([*missing, *people_used])}, which the event "
                                    f"lacks")
        if missing:
            return (self.zendesk.get_ticket(ticket_id), None,
                    f"read the ticket: {why} {', '.join(missing)}, which the event lacks")
        if people_used:
            requester = any(f.startswith("requester.") for f in people_used)
            organization = any(f.startswith("organization.") for f in people_used)
            people = self.zendesk.get_people(
                ticket_id, state.requester_id if requester else None,
                state.organization_id if organization else None)
            return state, people, (f"read the {'requester' if requester else ''}"
                                   f"{' and ' if requester and organization else ''}"
                                   f"{'organization' if organization else ''}: {why} "
                                   f"{', '.join(people_used)}")
        return state, None, None

    def _context(self, conn: sa.Connection, ticket: Ticket, event_type: str,
                 changes: dict[str, Change], item: inbox_mod.InboxItem,
                 people: TicketPeople | None = None) -> EvalContext:
        return ticket_context(ticket, event_type, changes, self._links(conn, ticket.id),
                              source=str(item.payload.get("style", item.source)),
                              now=item.received_at, custom_fields=self.custom_fields,
                              people=people, user_fields=self.user_fields,
                              organization_fields=self.organization_fields)

    def _links(self, conn: sa.Connection, ticket_id: int) -> dict[str, tuple[str, ...]]:
        links = dict(links_for_ticket(conn, ticket_id))
        pending = conn.execute(_PENDING_BUGS, {"b_id": ticket_id}).all()
        if pending:
            # A bug is being created or linked for this ticket: rules must see it as linked,
            # or a second update could plan a second bug before the first one lands.
            links["jira"] = (*links.get("jira", ()),
                             *(f"pending:{r.idem_key[:12]}" for r in pending))
        return links

    def _tick(self, item: inbox_mod.InboxItem) -> str:
        """A scheduler tick: end the window episodes quiet by then, run their follow-ups."""
        rules = self.rules
        now = utcnow()
        with self.store.write() as conn:
            follow_ups = sweep(rules, StoreRuleState(conn), item.received_at)
            planned = follow_up_rows(item.id, follow_ups, now).commit(conn)
            outcome = (f"window.quiet: {len(follow_ups)} episode(s) ended "
                       f"({', '.join(f.rule.id for f in follow_ups) or 'none due'}); "
                       f"{planned} intent(s) planned")
            inbox_mod.release(conn, item.id, "done", outcome, owner=item.owner)
        return outcome

    def _decide(self, item: inbox_mod.InboxItem, rules: RuleSet, ticket: Ticket,
                types: tuple[str, ...], changes: dict[str, Change], read_reason: str | None,
                people: TicketPeople | None, comment: Mapping[str, Any] | None) -> str:
        # Evaluate outside the write transaction, so that the store's write lock (which the
        # receiver needs for every webhook) is held only for the gates and the inserts. Reading
        # the links first is safe: no other worker processes this ticket meanwhile (order per
        # entity). Window and throttle state is read and written inside the transaction, as it
        # is shared across tickets.
        with self.store.read() as conn:
            ctx = self._context(conn, ticket, types[0], changes, item, people)
        by_type = {t: (c, c.namespace()) for t, c in contexts(ctx, types, comment).items()}
        ctx, namespace = by_type[types[0]]
        evaluations = evaluate_once(rules, {t: c for t, (c, _) in by_type.items()})
        event_key = item.change_key or f"inbox:{item.id}"
        now = utcnow()
        with self.store.write() as conn:
            follow_ups, outcomes = settle_event(rules, evaluations, ctx, StoreRuleState(conn),
                                                event_key, namespace, contexts=by_type)
            rows = follow_up_rows(item.id, follow_ups, now)
            for outcome in outcomes:
                event_type = outcome.evaluation.event_type
                rows.decision(ticket.id, event_type, outcome.rule, outcome.matched,
                              outcome.trace())
                rows.plan(outcome.rule, outcome.intents,
                          outcome.namespace or by_type[event_type][1], ticket.id)
            planned = rows.commit(conn)
            put_snapshot(conn, ticket)
            parts = [" + ".join(types)]
            if read_reason:
                parts.append(read_reason)
            parts.append(_summary(outcomes))
            if follow_ups:
                parts.append(f"window episode(s) ended: "
                             f"{', '.join(f.rule.id for f in follow_ups)}")
            parts.append(f"{planned} intent(s) planned")
            summary = "; ".join(parts)
            inbox_mod.release(conn, item.id, "done", summary, owner=item.owner)
        log.info("event %s ticket %s: %s", item.id, ticket.id, summary)
        return summary


def _summary(outcomes: list[Outcome]) -> str:
    """``matched: a, b (shadow), c (held: window ...)`` or ``no rule matched``."""
    names = []
    for outcome in outcomes:
        if not outcome.matched:
            continue
        name = outcome.rule.id + (" (shadow)" if outcome.rule.mode is Mode.SHADOW else "")
        if not outcome.fired:
            name += f" (held: {outcome.gate})"
        names.append(name)
    return f"matched: {', '.join(names)}" if names else "no rule matched"
