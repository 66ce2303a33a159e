"""What a rule is evaluated against: one event, the ticket it is about, its changes and links.

:class:`EvalContext` is built by the worker from typed models (``Ticket.to_dict()`` shape for the
ticket); rules never see vendor JSON. :meth:`EvalContext.namespace` is what templates see.
"""

from __future__ import annotations

__all__ = ["LINK_KINDS", "Change", "EvalContext", "parse_instant"]

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.models import Ticket

#: Kinds of links a ticket can have; each is always present in the template namespace.
LINK_KINDS: tuple[str, ...] = ("jira",)


@dataclass(frozen=True, slots=True)
class Change:
    """One field's change in one event: its value before (``from_``) and after (``to``)."""

    from_: Any
    to: Any

    def to_json(self) -> dict[str, Any]:
        """``{"from": ..., "to": ...}`` — the shape templates and the decision log use."""
        return {"from": _plain(self.from_), "to": _plain(self.to)}


def _plain(value: Any) -> Any:
    """A deep, mutable, JSON-shaped copy (tuples become lists, mappings become dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 text (``Z``/offset; no offset = UTC) or datetime as an aware UTC datetime.

    ``None`` for anything else (numbers included: they are not times here).
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class EvalContext:
    """The input of one rule evaluation.

    ``ticket`` has the ``Ticket.to_dict()`` shape (custom fields under ``ticket["fields"][name]``);
    ``changes`` is keyed by the field path relative to the ticket (``"status"``, ``"tags"``,
    ``"fields.error_code"``); ``links`` maps a link kind to the linked keys
    (``{"jira": ("SUP-1",)}``). ``now`` is the event's time (what ``older_than`` / ``within``
    measure from, so that a backtest decides as live processing did); when it is ``None``,
    :attr:`event_time` falls back to the ticket's ``updated_at``. Never the wall clock.
    """

    event_type: str
    event_source: str
    ticket: Mapping[str, Any]
    changes: Mapping[str, Change] = field(default_factory=dict)
    links: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    now: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ticket", _frozen(self.ticket))
        object.__setattr__(self, "changes", _frozen(self.changes))
        object.__setattr__(
            self, "links", MappingProxyType({k: tuple(v) for k, v in self.links.items()})
        )

    @classmethod
    def for_ticket(
        cls,
        ticket: Ticket,
        *,
        event_type: str,
        event_source: str,
        changes: Mapping[str, Change] | None = None,
        links: Mapping[str, tuple[str, ...]] | None = None,
        now: datetime | None = None,
    ) -> EvalContext:
        """Context for an event about ``ticket`` (``now``: the event's time, if known)."""
        return cls(event_type, event_source, ticket.to_dict(), changes or {}, links or {},
                   now=now)

    @property
    def event_time(self) -> datetime | None:
        """When the event happened: ``now`` if given, else the ticket's ``updated_at``.

        An aware UTC datetime, or ``None`` when neither is known (or ``updated_at`` is not a
        timestamp). A naive ``now`` is taken as UTC.
        """
        if self.now is not None:
            return self.now.astimezone(UTC) if self.now.tzinfo else self.now.replace(tzinfo=UTC)
        return parse_instant(self.ticket.get("updated_at"))

    def namespace(self) -> dict[str, Any]:
        """Fresh plain data for templates: ``ticket``, ``changes``, ``links``, ``event``.

        ``changes`` looks like ``{"status": {"from": "new", "to": "open"}}``; every kind in
        :data:`LINK_KINDS` is present in ``links`` (empty when unlinked). The result is a deep
        copy, so nothing a template does can reach back into this context.
        """
        return {
            "ticket": _plain(self.ticket),
            "changes": {path: change.to_json() for path, change in self.changes.items()},
            "links": {kind: list(self.links.get(kind, ())) for kind in
                      dict.fromkeys([*LINK_KINDS, *self.links])},
            "event": {"type": self.event_type, "source": self.event_source},
        }
