"""Zendesk's bulk calls: ``update_many`` (one job for up to 100 tickets), its job status, and
``show_many`` (up to 100 tickets, or users, in one read).

A fan-out to many tickets costs ceil(N / 100) updates plus the polls of their jobs. The calls go
through the connector's session (:func:`connectors.http.build_session`): rate-limited, logged,
timed out, and failures raised from the :mod:`connectors.errors` tree. Nothing here retries or
waits; the caller polls a job with :meth:`BulkClient.job_status` at its own pace.
"""

from __future__ import annotations

__all__ = ["MAX_BULK", "BulkClient", "job_from_api"]

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from connectors.errors import FatalError
from connectors.http import translate_transport_errors
from connectors.models import BulkUpdate, JobResult, JobStatus, Ticket, User
from connectors.zendesk_records import positive_id, user_from_api

VENDOR = "zendesk"
#: Tickets per ``update_many`` / ``show_many`` call (Zendesk's limit).
MAX_BULK = 100


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def job_from_api(data: object) -> JobStatus:
    """A ``job_status`` object as Zendesk returns it; ``ValueError`` when it is not one."""
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) \
            or not isinstance(data.get("status"), str):
        raise ValueError("not a job status (needs string 'id' and 'status')")
    results = []
    for item in data.get("results") or []:
        if not isinstance(item, Mapping):
            raise ValueError("a job result is not an object")
        raw_id = item.get("id")
        ticket_id = positive_id(raw_id, "ticket id") if raw_id is not None else None
        success = item.get("success")
        if success is None:  # older results say only status: "Updated"
            success = str(item.get("status") or "").lower() in ("updated", "completed")
        results.append(JobResult(ticket_id, bool(success), _text(item.get("status")),
                                 _text(item.get("error")), _text(item.get("details"))))
    total, progress = data.get("total"), data.get("progress")
    return JobStatus(
        id=data["id"], status=data["status"],
        total=total if isinstance(total, int) else None,
        progress=progress if isinstance(progress, int) else None,
        message=_text(data.get("message")), results=tuple(results))


class BulkClient:
    """The bulk calls of one Zendesk connector (it builds this; see ``ZendeskConnector.bulk``)."""

    def __init__(self, session: requests.Session, origin: str, timeout: tuple[float, float],
                 field_ids: Mapping[str, int],
                 parse_ticket: Callable[[object, str], Ticket],
                 user_keys: Sequence[str] = ()) -> None:
        self._session = session
        self._user_keys = tuple(user_keys)
        self._origin = origin
        self._timeout = timeout
        self._field_ids = dict(field_ids)
        self._parse_ticket = parse_ticket

    def update_many(self, updates: Sequence[BulkUpdate]) -> JobStatus:
        """Queue one job updating 1..100 distinct tickets (one ``PUT
        /api/v2/tickets/update_many.json``); returns its first status (usually ``queued``).

        Raises ``ValueError`` before any request for an empty or oversized batch, a ticket
        twice or a custom field name the settings do not map. Like any write, a timeout or a
        5xx is ambiguous: the job may have been queued.
        """
        if not 1 <= len(updates) <= MAX_BULK:
            raise ValueError(f"update_many takes 1 to {MAX_BULK} tickets, got {len(updates)}")
        ids = [positive_id(u.ticket_id, "ticket id") for u in updates]
        if len(set(ids)) != len(ids):
            raise ValueError("update_many: a ticket appears twice in one batch")
        tickets = [self._ticket_body(ticket_id, u) for ticket_id, u in zip(ids, updates,
                                                                           strict=True)]
        what = f"update_many ({len(tickets)} tickets)"
        data = self._json("PUT", "/api/v2/tickets/update_many.json", what,
                          json={"tickets": tickets})
        return self._job(data, what)

    def job_status(self, job_id: str) -> JobStatus:
        """The job's current status (one ``GET /api/v2/job_statuses/{id}.json``)."""
        if not job_id or "/" in job_id or "?" in job_id:
            raise ValueError(f"not a job id: {job_id!r}")
        what = f"job status {job_id}"
        return self._job(self._json("GET", f"/api/v2/job_statuses/{job_id}.json", what), what)

    def users_show_many(self, user_ids: Sequence[int]) -> list[User]:
        """Up to 100 users in one ``GET /api/v2/users/show_many.json?ids=``; deleted or unknown
        ones are absent."""
        found, what = self._show_many("users", "user", user_ids)
        try:
            return [user_from_api(u, field_keys=self._user_keys) for u in found]
        except (TypeError, ValueError) as exc:
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail=str(exc)) from exc

    def show_many(self, ticket_ids: Sequence[int]) -> list[Ticket]:
        """Up to 100 tickets in one ``GET /api/v2/tickets/show_many.json?ids=``; deleted or
        unknown ones are simply absent."""
        found, what = self._show_many("tickets", "ticket", ticket_ids)
        return [self._parse_ticket(t, what) for t in found]

    # -- internals ---------------------------------------------------------------------------

    def _show_many(self, kind: str, noun: str, ids: Sequence[int]) -> tuple[list[Any], str]:
        """The raw ``kind`` objects of one ``GET /api/v2/<kind>/show_many.json?ids=``."""
        if not 1 <= len(ids) <= MAX_BULK:
            raise ValueError(f"{kind} show_many takes 1 to {MAX_BULK} ids, got {len(ids)}")
        joined = ",".join(str(positive_id(i, f"{noun} id")) for i in ids)
        what = f"{kind} show_many ({len(ids)} {kind})"
        data = self._json("GET", f"/api/v2/{kind}/show_many.json", what,
                          params={"ids": joined})
        found = data.get(kind)
        if not isinstance(found, list):
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail=f"no '{kind}' list")
        return found, what

    def _ticket_body(self, ticket_id: int, update: BulkUpdate) -> dict[str, Any]:
        unknown = sorted(set(update.custom_fields) - set(self._field_ids))
        if unknown:
            raise ValueError(f"connectors.zendesk.custom_fields: no field id configured for "
                             f"{', '.join(unknown)}")
        body: dict[str, Any] = {"id": ticket_id}
        if update.note:
            body["comment"] = {"body": update.note, "public": bool(update.public)}
        if update.add_tags:
            body["additional_tags"] = list(update.add_tags)
        if update.remove_tags:
            body["remove_tags"] = list(update.remove_tags)
        if update.custom_fields:
            body["custom_fields"] = [{"id": self._field_ids[name], "value": value}
                                     for name, value in update.custom_fields.items()]
        if update.status is not None:
            body["status"] = update.status
        return body

    def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Mapping[str, Any]:
        # An answer that is not JSON is a RetriableError, ambiguous (the job may be queued), as
        # for every transport-level failure: requests' JSONDecodeError is a RequestException.
        with translate_transport_errors(VENDOR, what):
            response = self._session.request(method, self._origin + path,
                                             timeout=self._timeout, **kwargs)
            data = response.json()
        if not isinstance(data, Mapping):
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail=f"expected a JSON object, got {type(data).__name__}")
        return data

    def _job(self, data: Mapping[str, Any], what: str) -> JobStatus:
        try:
            return job_from_api(data.get("job_status"))
        except ValueError as exc:
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail=str(exc)) from exc
