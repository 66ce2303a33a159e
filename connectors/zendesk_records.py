"""Zendesk record JSON -> typed models: tickets, users, organizations, comments.

Used by :mod:`connectors.zendesk` for API answers (and the export, and webhook details). Every
function raises ``ValueError`` (or ``TypeError``) for a record it cannot trust — a missing or
malformed id, a field of the wrong type — and the connector turns that into a
:class:`~connectors.errors.FatalError`: retrying the same answer cannot help. Related ids are
lenient (an odd ``organization_id`` becomes ``None``) so that one bad reference does not make the
whole record unreadable.
"""

from __future__ import annotations

__all__ = [
    "comment_from_api",
    "organization_from_api",
    "positive_id",
    "ticket_from_api",
    "user_from_api",
]

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from connectors.models import Comment, Organization, SlaMetric, Ticket, User, parse_time

_SCALARS = (str, int, float, bool)


def ticket_from_api(
    data: Mapping[str, Any], *, field_ids: Mapping[str, int], agent_url_base: str
) -> Ticket:
    """Build a :class:`Ticket` from Zendesk ticket JSON (API, export page or webhook detail).

    Custom fields are keyed by the configured *name* (reverse of ``field_ids``); fields with an
    unconfigured id are dropped. ``url`` is the agent UI URL under ``agent_url_base``. Ids given
    as strings (webhooks) are accepted; status, priority and type are lower-cased; Zendesk's
    SLA state (``slas.policy_metrics``, with ``include=slas``) is kept. Raises ``ValueError``
    when ``id`` or ``updated_at`` is missing or malformed.
    """
    ticket_id = positive_id(data.get("id"), "ticket id")
    updated_at = parse_time(data.get("updated_at"))
    if updated_at is None:
        raise ValueError(f"ticket {ticket_id} has no updated_at")
    names = {int(field_id): name for name, field_id in field_ids.items()}
    custom: dict[str, Any] = {}
    raw_fields = data.get("custom_fields")
    if raw_fields is None:
        raw_fields = data.get("fields")
    for item in raw_fields or ():
        if not isinstance(item, Mapping):
            continue
        try:
            name = names.get(int(item["id"]))
        except (KeyError, TypeError, ValueError):
            continue
        if name is not None:
            custom[name] = item.get("value")
    return Ticket(
        id=ticket_id,
        updated_at=updated_at,
        created_at=parse_time(data.get("created_at")),
        subject=str(data.get("subject") or data.get("raw_subject") or ""),
        description=str(data.get("description") or ""),
        status=_lower(data.get("status")),
        priority=_lower(data.get("priority")),
        type=_lower(data.get("type")),
        tags=_tags(data.get("tags")),
        requester_id=_optional_id(data.get("requester_id")),
        organization_id=_optional_id(data.get("organization_id")),
        assignee_id=_optional_id(data.get("assignee_id")),
        group_id=_optional_id(data.get("group_id")),
        custom_fields=custom,
        url=f"{agent_url_base.rstrip('/')}/agent/tickets/{ticket_id}",
        slas=_slas(data.get("slas")),
        slas_read=isinstance(data.get("slas"), Mapping),
    )


def _slas(value: object) -> tuple[SlaMetric, ...]:
    """Zendesk's SLA state of a ticket (``slas.policy_metrics``, present when it was read with
    ``include=slas``). Lenient: an item that cannot be read is left out, never the ticket."""
    if not isinstance(value, Mapping):
        return ()
    items = value.get("policy_metrics")
    metrics: list[SlaMetric] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        try:
            metrics.append(SlaMetric.from_dict(item))
        except ValueError:
            continue
    return tuple(metrics)


def positive_id(value: object, what: str = "id") -> int:
    """A Zendesk id (a positive integer, or a string of digits); ``ValueError`` otherwise."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a {what}: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValueError(f"not a {what}: {value!r}")
    if number <= 0:
        raise ValueError(f"not a {what}: {value!r}")
    return number


def _optional_id(value: object) -> int | None:
    """Lenient: a related id Zendesk leaves empty or odd must not make the ticket unreadable."""
    try:
        return positive_id(value)
    except ValueError:
        return None


def _lower(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value).lower()


def _tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, Iterable):
        return tuple(str(tag) for tag in value)
    raise ValueError(f"tags must be a list, not {type(value).__name__}")


def user_from_api(data: object, *, field_keys: Collection[str]) -> User:
    """Build a :class:`User` from Zendesk user JSON (``GET /users/{id}`` or a sideload).

    ``field_keys`` are the configured user field keys: each is present in ``fields`` (``None``
    when the user has no value), other keys of ``user_fields`` are dropped.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"a user must be an object, not {type(data).__name__}")
    return User(
        id=positive_id(data.get("id"), "user id"),
        name=_optional_text(data.get("name"), "name"),
        email=_optional_text(data.get("email"), "email"),
        tags=_tag_list(data.get("tags")),
        organization_id=_optional_id(data.get("organization_id")),
        fields=_field_values(data.get("user_fields"), field_keys, "user_fields"),
    )


def organization_from_api(data: object, *, field_keys: Collection[str]) -> Organization:
    """Build an :class:`Organization` from Zendesk organization JSON (show or sideload).

    ``field_keys`` are the configured organization field keys (``plan_tier``), as for users.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"an organization must be an object, not {type(data).__name__}")
    return Organization(
        id=positive_id(data.get("id"), "organization id"),
        name=_optional_text(data.get("name"), "name"),
        tags=_tag_list(data.get("tags")),
        fields=_field_values(data.get("organization_fields"), field_keys, "organization_fields"),
    )


def comment_from_api(data: object) -> Comment:
    """Build a :class:`Comment` from Zendesk comment JSON (``GET /tickets/{id}/comments``).

    ``body`` is the comment string; ``public`` must be a JSON boolean; ``created_at`` is required.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"a comment must be an object, not {type(data).__name__}")
    public = data.get("public")
    if not isinstance(public, bool):
        raise TypeError(f"comment public must be true or false, not {public!r}")
    created = data.get("created_at")
    if not isinstance(created, str):
        raise TypeError(f"comment created_at must be a timestamp string, not {created!r}")
    return Comment(
        id=positive_id(data.get("id"), "comment id"),
        body=_optional_text(data.get("body"), "body") or "",
        public=public,
        author_id=_optional_id(data.get("author_id")),
        created_at=parse_time(created),
    )


def _optional_text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{name} must be text, not {type(value).__name__}")


def _tag_list(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(tag, str) for tag in value):
        return tuple(value)
    raise TypeError(f"tags must be a list of strings, not {value!r}")


def _field_values(value: object, keys: Collection[str], name: str) -> dict[str, Any]:
    """The configured ``keys`` of a ``user_fields`` / ``organization_fields`` object."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be an object, not {type(value).__name__}")
    out: dict[str, Any] = {}
    for key in sorted(keys):
        item = value.get(key)
        if item is not None and not isinstance(item, _SCALARS) and not (
                isinstance(item, list) and all(isinstance(v, _SCALARS) for v in item)):
            raise TypeError(f"{name}.{key} must be a value or a list of values, "
                            f"not {type(item).__name__}")
        out[key] = item
    return out
