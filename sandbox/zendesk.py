"""The Zendesk Support stand-in's state: tickets, comments, audits, users, organizations, the
incremental export and webhook delivery (see ``api-notes/zendesk.md``).

Tests and the demo seed and inspect it with plain Python (``create_ticket``, ``update_ticket`` as
an agent's edit, ``ticket``, ``comments``, ``create_user``, ``create_organization``); the hub
reaches the same state over HTTP through ``sandbox.zendesk_api``. The default requester, the API
user (the hub) and the default agent exist as users from the start. Every change gets a strictly
increasing ``updated_at`` (second resolution, as Zendesk) and moves the ticket to the end of the
incremental export.
"""

from __future__ import annotations

import copy
import html
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests

from sandbox import zendesk_api, zendesk_webhooks
from sandbox.base import (
    RateLimiter,
    Request,
    Response,
    parse_timestamp,
    utc_now,
    zendesk_timestamp,
)
from sandbox.zendesk_api import ZendeskError
from sandbox.zendesk_people import new_organization, new_user
from sandbox.zendesk_tickets import (
    apply_changes,
    creation_events,
    decode_cursor,
    encode_cursor,
    int_id,
    invalid,
    new_ticket,
    normalize_tags,
)

__all__ = ["ZendeskError", "ZendeskState", "normalize_tags"]

class ZendeskState:
    """Tickets and everything hanging off them, behind one lock.

    Attributes tests may set: ``api_author_id`` (author of comments written over the API, i.e.
    by the hub), ``agent_author_id`` (author of ``update_ticket`` edits), ``requester_id``
    (default requester of ``create_ticket``), ``clock`` (returns the current aware UTC datetime),
    ``export_exclude_recent_seconds``.
    """

    vendor = "zendesk"

    def __init__(
        self, subdomain: str = "sandbox", export_exclude_recent_seconds: float = 0
    ) -> None:
        self.lock = threading.RLock()
        self.subdomain = subdomain
        self.base_url = f"https://{subdomain}.zendesk.com"
        self.export_exclude_recent_seconds = export_exclude_recent_seconds
        self.api_author_id = 900001
        self.agent_author_id = 900002
        self.requester_id = 800001
        self.account_id = 10001
        self.clock: Callable[[], datetime] = utc_now
        self.webhook: zendesk_webhooks.WebhookConfig | None = None
        self._tickets: dict[int, dict[str, Any]] = {}
        self._comments: dict[int, list[dict[str, Any]]] = {}
        self._audits: dict[int, list[dict[str, Any]]] = {}
        self._previous: dict[int, dict[str, Any]] = {}
        self._position: dict[int, tuple[int, int]] = {}
        self._jobs: dict[str, list[dict[str, Any]]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._orgs: dict[int, dict[str, Any]] = {}
        self._slas: dict[int, list[dict[str, Any]]] = {}
        self._ids = {"ticket": 1001, "comment": 7000001, "audit": 8000001, "event": 9000001,
                     "user": 810001, "organization": 500001}
        self._seq = 0
        self._last_generated = 0
        self._credentials: tuple[str, str] | None = None
        self._limiter = RateLimiter(None)
        for user_id, name, email, role in (
            (self.requester_id, "Sandbox Customer", "customer@example.com", "end-user"),
            (self.api_author_id, "Switchboard", "switchboard@example.com", "admin"),
            (self.agent_author_id, "Sandbox Agent", "agent@example.com", "agent"),
        ):
            self.create_user({"id": user_id, "name": name, "email": email, "role": role})

    # -- configuration -----------------------------------------------------------------------

    def set_base_url(self, url: str) -> None:
        """Set the URL the state is served at (ticket ``url`` fields and ``after_url`` use it)."""
        with self.lock:
            self.base_url = url.rstrip("/")

    def require_credentials(self, email: str, token: str) -> None:
        """Accept only this email/API-token pair (by default any well-formed pair is accepted)."""
        with self.lock:
            self._credentials = (f"{email}/token", token)

    def set_rate_limit(self, per_minute: int | None) -> None:
        """Answer 429 (with ``Retry-After``) beyond ``per_minute`` requests per rolling minute;
        None turns limiting off. While on, every answer carries ``X-Rate-Limit`` headers."""
        with self.lock:
            self._limiter = RateLimiter(per_minute)

    def credentials_ok(self, user: str, password: str) -> bool:
        """Whether Basic credentials are acceptable (token auth: ``{email}/token``)."""
        with self.lock:
            if self._credentials is not None:
                return (user, password) == self._credentials
        return user.endswith("/token") and len(user) > len("/token") and bool(password)

    def rate_limit_check(self) -> tuple[dict[str, str], int | None]:
        """Count one request: (headers to add, Retry-After seconds if over the limit)."""
        with self.lock:
            return self._limiter.check()

    # -- HTTP --------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one API request (see ``sandbox.zendesk_api``)."""
        return zendesk_api.handle(self, request)

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        """A Zendesk-shaped error body for ``status``."""
        return zendesk_api.error_body(status, message)

    # -- tickets -----------------------------------------------------------------------------

    def _next(self, kind: str) -> int:
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    def _now(self) -> datetime:
        return self.clock().replace(microsecond=0)

    def _touch(self, ticket: dict[str, Any], moment: datetime | None = None) -> None:
        """Give a changed ticket a strictly later ``updated_at`` and move it to the export's end."""
        if moment is None:
            moment = self._now()
            previous = parse_timestamp(ticket["updated_at"]) if ticket.get("updated_at") else None
            if previous is not None and moment <= previous:
                moment = previous + timedelta(seconds=1)
            # Monotonic across tickets, so a change can never sort before an exported position.
            generated = max(int(moment.timestamp()), self._last_generated)
        else:
            generated = int(moment.timestamp())  # seeded history keeps its own timestamps
        ticket["updated_at"] = zendesk_timestamp(moment)
        ticket["generated_timestamp"] = generated
        self._last_generated = max(self._last_generated, generated)
        self._seq += 1
        self._position[ticket["id"]] = (generated, self._seq)

    def _comment(
        self, ticket: dict[str, Any], body: str, public: bool, author_id: int, channel: str,
        audit_id: int,
    ) -> dict[str, Any]:  # fmt: skip
        comment = {
            "id": self._next("comment"),
            "type": "Comment",
            "author_id": author_id,
            "body": body,
            "html_body": f'<div class="zd-comment" dir="auto"><p>{html.escape(body)}</p></div>',
            "plain_body": body,
            "public": public,
            "attachments": [],
            "audit_id": audit_id,
            "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
            "metadata": {"system": {}, "custom": {}},
            "created_at": ticket["updated_at"],
        }
        self._comments.setdefault(ticket["id"], []).append(comment)
        return copy.deepcopy(comment)

    def _audit(
        self, ticket: dict[str, Any], audit_id: int, author_id: int, channel: str,
        events: list[dict[str, Any]],
    ) -> dict[str, Any]:  # fmt: skip
        audit = {
            "id": audit_id,
            "ticket_id": ticket["id"],
            "created_at": ticket["updated_at"],
            "author_id": author_id,
            "metadata": {"system": {"ip_address": "127.0.0.1"}, "custom": {}},
            "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
            "events": events,
        }
        self._audits.setdefault(ticket["id"], []).append(audit)
        return copy.deepcopy(audit)

    def create_ticket(
        self, data: dict[str, Any], *, channel: str = "web", author_id: int | None = None
    ) -> dict[str, Any]:
        """Create a ticket (as a customer would, by default) and return it as Zendesk JSON.

        ``data`` holds ticket keys; ``id``, ``created_at`` and ``updated_at`` (ISO) may be given
        to seed history. The description (or ``comment.body``) becomes the first public comment.
        Raises ZendeskError for invalid status/priority/type or a duplicate id.
        """
        return self.create_ticket_with_audit(data, channel=channel, author_id=author_id)[0]

    def create_ticket_with_audit(
        self, data: dict[str, Any], *, channel: str = "web", author_id: int | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """:meth:`create_ticket`, also returning the creation audit (as ``POST /tickets`` does)."""
        with self.lock:
            ticket_id = int(data["id"]) if data.get("id") is not None else self._next("ticket")
            if ticket_id in self._tickets:
                raise ZendeskError(422, {"error": "RecordInvalid", "description": "id taken"})
            self._ids["ticket"] = max(self._ids["ticket"], ticket_id + 1)
            default_author = author_id if author_id is not None else self.requester_id
            requester = int_id(data.get("requester_id")) or default_author
            submitter = int_id(data.get("submitter_id")) or (
                author_id if author_id is not None else requester
            )
            created = parse_timestamp(data["created_at"]) if data.get("created_at") else self._now()
            ticket = new_ticket(
                ticket_id, data, url=f"{self.base_url}/api/v2/tickets/{ticket_id}.json",
                channel=channel, requester_id=requester, submitter_id=submitter,
                created_at=zendesk_timestamp(created),
            )  # fmt: skip
            seeded = parse_timestamp(data["updated_at"]) if data.get("updated_at") else None
            if seeded is None and data.get("created_at"):
                seeded = created
            self._check_problem(ticket)
            self._touch(ticket, seeded)
            self._tickets[ticket_id] = ticket
            self._mark_problem(ticket)
            audit_id = self._next("audit")
            comment = self._comment(ticket, ticket["description"], ticket["is_public"],
                                    submitter, channel, audit_id)  # fmt: skip
            events = [comment, *creation_events(ticket, self._event)]
            audit = self._audit(ticket, audit_id, submitter, channel, events)
            return copy.deepcopy(ticket), audit

    def _event(self, kind: str, field: str, value: Any, previous: Any) -> dict[str, Any]:
        event = {"id": self._next("event"), "type": kind, "field_name": field, "value": value}
        if kind == "Change":
            event["previous_value"] = previous
        return event

    def _live(self, ticket_id: int) -> dict[str, Any]:
        ticket = self._tickets.get(int(ticket_id))
        if ticket is None or ticket["status"] == "deleted":
            raise ZendeskError(404, {"error": "RecordNotFound", "description": "Not found"})
        return ticket

    def apply_update(
        self, ticket_id: int, changes: dict[str, Any], *, author_id: int, channel: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply a ticket update body (the inside of ``{"ticket": ...}``) and return
        (ticket, audit). Honours ``safe_update`` + ``updated_stamp`` (409 ``UpdateConflict``).
        A no-op update changes nothing (no new ``updated_at``) and returns an empty audit.
        Raises ZendeskError (404, 409, 400, 422)."""
        with self.lock:
            ticket = self._live(ticket_id)
            safe = changes.get("safe_update")
            if safe is True or (isinstance(safe, str) and safe.lower() == "true"):
                stamp = changes.get("updated_stamp")
                try:
                    stamp_at = parse_timestamp(str(stamp)) if stamp else None
                except ValueError:
                    stamp_at = None
                if stamp_at is None:
                    raise ZendeskError(400, {
                        "error": "InvalidValue",
                        "description": "safe_update requires a valid updated_stamp",
                    })  # fmt: skip
                if stamp_at != parse_timestamp(ticket["updated_at"]):
                    raise ZendeskError(409, zendesk_api.error_body(409))
            if ticket["status"] == "closed":
                raise invalid(
                    "status", "Status: closed prevents ticket update", "ClosedPreventsUpdate"
                )
            before = copy.deepcopy(ticket)
            working = copy.deepcopy(ticket)  # all or nothing: a 422 must leave no partial edit
            events = apply_changes(working, changes, self._event)
            self._check_problem(working)
            comment = changes.get("comment") or {}
            body = comment.get("body") or comment.get("html_body")
            audit_id = self._next("audit")
            if not events and not body:
                return copy.deepcopy(ticket), {
                    "id": audit_id, "ticket_id": ticket["id"], "created_at": ticket["updated_at"],
                    "author_id": author_id, "events": [],
                }  # fmt: skip
            ticket.clear()
            ticket.update(working)
            self._previous[ticket["id"]] = before
            self._touch(ticket)
            self._mark_problem(ticket)
            if body:
                public = comment.get("public", True)
                public = public is True or (isinstance(public, str) and public.lower() == "true")
                author = int_id(comment.get("author_id")) or author_id
                note = self._comment(ticket, str(body), public, author, channel, audit_id)
                events.insert(0, note)
            return copy.deepcopy(ticket), self._audit(ticket, audit_id, author_id, channel, events)

    def update_ticket(
        self, ticket_id: int, changes: dict[str, Any], *, author_id: int | None = None
    ) -> dict[str, Any]:
        """Simulate an agent editing a ticket in the Zendesk UI: apply ``changes`` (ticket keys,
        ``tags`` / ``additional_tags`` / ``remove_tags``, ``custom_fields``, ``comment``) and
        return the ticket. Raises ZendeskError (404 for a missing ticket, 422 invalid values)."""
        author = author_id if author_id is not None else self.agent_author_id
        return self.apply_update(ticket_id, changes, author_id=author, channel="web")[0]

    def _check_problem(self, ticket: dict[str, Any]) -> None:
        """Zendesk's rule for ``problem_id``: only an incident names a problem, and it must be a
        live ticket of type ``problem``. Raises ZendeskError(422)."""
        problem_id = ticket.get("problem_id")
        if problem_id is None:
            return
        if ticket.get("type") != "incident":
            raise invalid("problem_id", "Problem: only incidents can be linked to a problem")
        problem = self._tickets.get(problem_id) if isinstance(problem_id, int) else None
        if problem is None or problem["status"] == "deleted" or problem.get("type") != "problem":
            raise invalid("problem_id", f"Problem: {problem_id!r} is not a problem ticket")

    def _mark_problem(self, ticket: dict[str, Any]) -> None:
        problem = self._tickets.get(ticket.get("problem_id") or -1)
        if problem is not None:
            problem["has_incidents"] = True

    def incidents(self, problem_id: int) -> list[int]:
        """Ids of the live incidents linked to a problem ticket."""
        with self.lock:
            return sorted(t["id"] for t in self._tickets.values()
                          if t.get("problem_id") == problem_id and t["status"] != "deleted")

    def tickets_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Copies of the live tickets with this ``external_id``, by id."""
        with self.lock:
            return [copy.deepcopy(t) for _, t in sorted(self._tickets.items())
                    if t.get("external_id") == external_id and t["status"] != "deleted"]

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """A copy of one ticket's JSON. Raises ZendeskError(404) if missing or deleted."""
        with self.lock:
            return copy.deepcopy(self._live(ticket_id))

    def tickets(self) -> list[dict[str, Any]]:
        """Copies of every ticket not deleted, by id."""
        with self.lock:
            return [
                copy.deepcopy(t) for _, t in sorted(self._tickets.items())
                if t["status"] != "deleted"
            ]  # fmt: skip

    def comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """Copies of a ticket's comments, oldest first."""
        with self.lock:
            self._live(ticket_id)
            return copy.deepcopy(self._comments.get(int(ticket_id), []))

    # -- users and organizations -------------------------------------------------------------

    def create_user(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a user (``id`` optional; ``name``, ``email``, ``role``, ``tags``,
        ``organization_id``, ``user_fields`` by field key) and return its JSON.
        Raises ZendeskError(422) for a duplicate id or a bad role."""
        with self.lock:
            user_id = int(data["id"]) if data.get("id") is not None else self._next("user")
            if user_id in self._users:
                raise ZendeskError(422, {"error": "RecordInvalid", "description": "id taken"})
            user = new_user(user_id, data, url=f"{self.base_url}/api/v2/users/{user_id}.json",
                            now=zendesk_timestamp(self._now()))
            self._users[user_id] = user
            return copy.deepcopy(user)

    def create_organization(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an organization (``id`` optional; ``name`` required; ``tags``,
        ``organization_fields`` by field key, e.g. ``{"plan_tier": "enterprise"}``) and return
        its JSON. Raises ZendeskError(422) for a duplicate id or a blank name."""
        with self.lock:
            org_id = int(data["id"]) if data.get("id") is not None else self._next("organization")
            if org_id in self._orgs:
                raise ZendeskError(422, {"error": "RecordInvalid", "description": "id taken"})
            org = new_organization(
                org_id, data, url=f"{self.base_url}/api/v2/organizations/{org_id}.json",
                now=zendesk_timestamp(self._now()))
            self._orgs[org_id] = org
            return copy.deepcopy(org)

    def update_organization(self, org_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Change an organization as an admin would (``name``, ``tags``, and
        ``organization_fields`` merged key by key). Raises ZendeskError(404)."""
        with self.lock:
            org = self._orgs.get(int(org_id))
            if org is None:
                raise ZendeskError(404, {"error": "RecordNotFound", "description": "Not found"})
            if "name" in changes:
                org["name"] = changes["name"]
            if "tags" in changes:
                org["tags"] = normalize_tags(changes["tags"])
            org["organization_fields"].update(changes.get("organization_fields") or {})
            org["updated_at"] = zendesk_timestamp(self._now())
            return copy.deepcopy(org)

    def delete_user(self, user_id: int) -> None:
        """Remove a user: reading it answers 404 (as for a deleted user)."""
        with self.lock:
            self._users.pop(int(user_id), None)

    def user(self, user_id: int) -> dict[str, Any]:
        """A copy of one user's JSON. Raises ZendeskError(404) if unknown."""
        with self.lock:
            user = self._users.get(int(user_id))
            if user is None:
                raise ZendeskError(404, {"error": "RecordNotFound", "description": "Not found"})
            return copy.deepcopy(user)

    def organization(self, org_id: int) -> dict[str, Any]:
        """A copy of one organization's JSON. Raises ZendeskError(404) if unknown."""
        with self.lock:
            org = self._orgs.get(int(org_id))
            if org is None:
                raise ZendeskError(404, {"error": "RecordNotFound", "description": "Not found"})
            return copy.deepcopy(org)

    def set_slas(self, ticket_id: int, policy_metrics: list[dict[str, Any]]) -> None:
        """Give a ticket the SLA state Zendesk's SLA policies would (``policy_metrics`` items:
        ``metric``, ``stage``, ``breach_at``...). It is in the ticket's JSON (``slas``) only for
        reads and export pages that ask for it with ``include=slas``; setting it does not
        change the ticket (Zendesk's SLA clock does not bump ``updated_at``)."""
        with self.lock:
            self._live(ticket_id)
            self._slas[int(ticket_id)] = copy.deepcopy(policy_metrics)

    def with_slas(self, ticket: dict[str, Any], include: list[str]) -> dict[str, Any]:
        """``ticket`` with its ``slas`` when ``include`` names them (and it has some)."""
        with self.lock:
            metrics = self._slas.get(int(ticket["id"]))
        if "slas" not in include or metrics is None:
            return ticket
        return {**ticket, "slas": {"policy_metrics": copy.deepcopy(metrics)}}

    def sideloads(self, ticket: dict[str, Any],
                  include: list[str]) -> dict[str, list[dict[str, Any]]]:
        """What ``?include=users,organizations`` adds to a ticket: the users it names
        (requester, submitter, assignee) and its organization, those that exist."""
        with self.lock:
            out: dict[str, list[dict[str, Any]]] = {}
            if "users" in include:
                ids = dict.fromkeys(ticket.get(k) for k in ("requester_id", "submitter_id",
                                                            "assignee_id"))
                out["users"] = [copy.deepcopy(self._users[i]) for i in ids if i in self._users]
            if "organizations" in include:
                org_id = ticket.get("organization_id")
                out["organizations"] = [copy.deepcopy(self._orgs[org_id])] \
                    if org_id in self._orgs else []
            return out

    def audits(self, ticket_id: int) -> list[dict[str, Any]]:
        """Copies of a ticket's audits, oldest first."""
        with self.lock:
            self._live(ticket_id)
            return copy.deepcopy(self._audits.get(int(ticket_id), []))

    def previous(self, ticket_id: int) -> dict[str, Any] | None:
        """The ticket as it was before its latest change (None if never changed)."""
        with self.lock:
            previous = self._previous.get(int(ticket_id))
            return copy.deepcopy(previous) if previous is not None else None

    def delete_ticket(self, ticket_id: int) -> None:
        """Soft-delete a ticket: GET/PUT answer 404, the export shows it with status ``deleted``."""
        with self.lock:
            ticket = self._live(ticket_id)
            self._previous[ticket["id"]] = copy.deepcopy(ticket)
            ticket["status"] = "deleted"
            self._touch(ticket)

    # -- jobs (update_many) ------------------------------------------------------------------

    def add_job(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Record a bulk job (already applied) and return its status as first reported:
        ``queued``. Every later read (:meth:`job`) reports it ``completed`` with ``results``."""
        with self.lock:
            job_id = f"V3-{self._next('event'):032x}"
            self._jobs[job_id] = copy.deepcopy(results)
            return self._job_status(job_id, None)

    def _job_status(self, job_id: str, results: list[dict[str, Any]] | None) -> dict[str, Any]:
        done = results is not None
        return {
            "id": job_id, "url": f"{self.base_url}/api/v2/job_statuses/{job_id}.json",
            "total": len(self._jobs[job_id]), "progress": len(self._jobs[job_id]) if done else None,
            "status": "completed" if done else "queued", "results": results,
            "message": f"Completed at {zendesk_timestamp(self._now())}" if done else None,
        }  # fmt: skip

    def job(self, job_id: str) -> dict[str, Any] | None:
        """The status of bulk job ``job_id`` (completed, with results), or None if unknown."""
        with self.lock:
            if job_id not in self._jobs:
                return None
            return self._job_status(job_id, copy.deepcopy(self._jobs[job_id]))

    # -- incremental export ------------------------------------------------------------------

    @staticmethod
    def encode_cursor(position: tuple[int, int]) -> str:
        """An opaque export cursor for "after this (generated_timestamp, sequence)"."""
        return encode_cursor(position)

    @staticmethod
    def decode_cursor(cursor: str) -> tuple[int, int]:
        """Inverse of :meth:`encode_cursor`; raises ValueError for a cursor it did not issue."""
        return decode_cursor(cursor)

    def export(
        self, after: tuple[int, int], per_page: int
    ) -> tuple[list[dict[str, Any]], tuple[int, int], bool]:
        """One page of the cursor export after position ``after``: (tickets, new position,
        end_of_stream). Order is (generated_timestamp, change sequence); a changed ticket
        appears once, at its latest state and position. Tickets changed in the last
        ``export_exclude_recent_seconds`` are held back, as Zendesk holds back the last minute."""
        with self.lock:
            horizon = int(self.clock().timestamp() - self.export_exclude_recent_seconds)
            order = sorted(
                (position, ticket_id)
                for ticket_id, position in self._position.items()
                if position > after
                and (self.export_exclude_recent_seconds <= 0 or position[0] <= horizon)
            )
            page = order[:per_page]
            tickets = [copy.deepcopy(self._tickets[ticket_id]) for _, ticket_id in page]
            position = page[-1][0] if page else after
            return tickets, position, len(order) <= per_page

    # -- webhooks ----------------------------------------------------------------------------

    def configure_webhook(
        self, url: str, secret: str, webhook_id: str = "01HSANDBOXWEBHOOK"
    ) -> None:
        """Set where :meth:`deliver` posts and the signing secret it uses."""
        with self.lock:
            self.webhook = zendesk_webhooks.WebhookConfig(url, secret, webhook_id)

    def deliver(
        self,
        ticket_id: int,
        *,
        style: str = "trigger",
        event_type: str = "ticket.created",
        timestamp: str | None = None,
        secret: str | None = None,
        body_override: bytes | None = None,
        invocation_id: str | None = None,
        event: dict[str, Any] | None = None,
        timeout: float = 10.0,
    ) -> requests.Response:
        """POST a signed webhook for a ticket to the configured URL, as Zendesk would, and
        return the receiver's answer (see ``sandbox.zendesk_webhooks``)."""
        return zendesk_webhooks.deliver(
            self, ticket_id, style=style, event_type=event_type, timestamp=timestamp,
            secret=secret, body_override=body_override, invocation_id=invocation_id,
            event=event, timeout=timeout,
        )  # fmt: skip
