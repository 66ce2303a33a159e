"""Zendesk users and organizations without state: building their JSON (after the shapes of
Zendesk's documented examples: ``user_fields`` / ``organization_fields`` keyed by field key, tags
as a list), and the comment listing of ``GET /tickets/{id}/comments`` (sorting, offset and cursor
pagination). ``sandbox.zendesk`` stores them; ``sandbox.zendesk_api`` serves them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sandbox.zendesk_api import ZendeskError, error_body
from sandbox.zendesk_tickets import int_id, invalid, normalize_tags

__all__ = ["comment_page", "new_organization", "new_user"]

ROLES = ("end-user", "agent", "admin")
MAX_PAGE_SIZE = 100


def new_user(user_id: int, data: dict[str, Any], *, url: str, now: str) -> dict[str, Any]:
    """A user's JSON with the keys a real user has. Raises ZendeskError(422) for a bad role."""
    role = data.get("role") or "end-user"
    if role not in ROLES:
        raise invalid("role", f"Role: {role!r} is not valid")
    return {
        "id": user_id, "url": url, "name": data.get("name") or f"User {user_id}",
        "email": data.get("email"), "created_at": data.get("created_at") or now,
        "updated_at": now, "time_zone": "UTC", "iana_time_zone": "Etc/UTC", "phone": None,
        "shared_phone_number": None, "photo": None, "locale_id": 1, "locale": "en-US",
        "organization_id": int_id(data.get("organization_id")), "role": role,
        "verified": True, "external_id": data.get("external_id"),
        "tags": normalize_tags(data.get("tags")), "alias": "", "active": True,
        "shared": False, "shared_agent": False, "last_login_at": None,
        "two_factor_auth_enabled": False, "signature": None, "details": "", "notes": "",
        "role_type": None, "custom_role_id": None, "moderator": role != "end-user",
        "ticket_restriction": "requested" if role == "end-user" else None,
        "only_private_comments": False, "restricted_agent": role == "end-user",
        "suspended": False, "default_group_id": None, "report_csv": False,
        "user_fields": dict(data.get("user_fields") or {}),
    }


def new_organization(org_id: int, data: dict[str, Any], *, url: str,
                     now: str) -> dict[str, Any]:
    """An organization's JSON with the keys a real organization has."""
    if not data.get("name"):
        raise invalid("name", "Name: cannot be blank", "BlankValue")
    return {
        "id": org_id, "url": url, "name": data["name"],
        "shared_tickets": False, "shared_comments": False,
        "external_id": data.get("external_id"), "created_at": data.get("created_at") or now,
        "updated_at": now, "domain_names": list(data.get("domain_names") or []),
        "details": data.get("details") or "", "notes": data.get("notes") or "",
        "group_id": None, "tags": normalize_tags(data.get("tags")),
        "organization_fields": dict(data.get("organization_fields") or {}),
    }


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"comment:{index}".encode()).decode()


def _index(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, number = text.split(":")
        if prefix != "comment":
            raise ValueError(text)
        return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ZendeskError(400, {"error": "InvalidPaginationParameter",
                                 "description": "Invalid cursor"}) from exc


def comment_page(comments: list[dict[str, Any]], params: dict[str, str | None],
                 base_url: str) -> dict[str, Any]:
    """The body of ``GET /tickets/{id}/comments`` for a ticket's comments (oldest first).

    Sorting: ``sort=created_at|-created_at`` (cursor pagination) or ``sort_order=asc|desc``
    (offset pagination); ascending by default. ``page[size]`` (at most 100) selects cursor
    pagination (``meta.has_more``, ``meta.after_cursor``, ``links.next``; ``page[after]`` goes
    on); without it, every comment comes at once in the offset shape (``next_page: null``).
    Raises ZendeskError(400) for an unknown sort or a bad page size or cursor.
    """
    sort, order = params.get("sort"), params.get("sort_order")
    if sort not in (None, "created_at", "-created_at"):
        raise ZendeskError(400, error_body(400, f"Invalid sort: {sort!r}"))
    if order not in (None, "asc", "desc"):
        raise ZendeskError(400, error_body(400, f"Invalid sort_order: {order!r}"))
    newest_first = sort == "-created_at" or order == "desc"
    ordered = list(reversed(comments)) if newest_first else list(comments)
    size_raw = params.get("page[size]")
    if size_raw is None:
        return {"comments": ordered, "next_page": None, "previous_page": None,
                "count": len(ordered)}
    try:
        size = int(size_raw)
        if not 0 < size <= MAX_PAGE_SIZE:
            raise ValueError(size_raw)
    except ValueError as exc:
        raise ZendeskError(400, {"error": "InvalidPaginationParameter",
                                 "description": f"page[size] must be 1..{MAX_PAGE_SIZE}"}) from exc
    after = params.get("page[after]")
    start = _index(after) if after else 0
    page = ordered[start:start + size]
    end = start + len(page)
    has_more = end < len(ordered)
    query = f"page%5Bsize%5D={size}" + (f"&sort={sort}" if sort else "")
    return {
        "comments": page,
        "meta": {"has_more": has_more, "after_cursor": _cursor(end) if page else None,
                 "before_cursor": _cursor(start) if page else None},
        "links": {"next": f"{base_url}?page%5Bafter%5D={_cursor(end)}&{query}"
                  if has_more else None,
                  "prev": None},
    }
