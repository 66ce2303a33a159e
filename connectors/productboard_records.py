"""Productboard Public API v2 JSON -> typed models, and the models themselves.

Used by :mod:`connectors.productboard`. Vendor JSON stops here: callers get :class:`PBNote` and
:class:`PBFeature` and hand the connector a :class:`NewNote`. Every reader raises
:class:`InvalidResponseError` naming the value's path (``data.fields.name must be a string, not
5``) for an answer it cannot trust — never a ``KeyError`` or ``TypeError``. Optional values
(``links.html``, ``createdAt``, a feature's ``status``) may be absent or null; present with the
wrong type, they are refused too.

Shapes (docs/productboard.md): a note is ``{id, type, fields{name, content, tags[{id?, name}]},
metadata{source{system, recordId, url}}, links{self, html}, createdAt, updatedAt}``; an entity is
``{id, type, fields{name, status{id, name}}, links{self, html}, createdAt, updatedAt}``; a list is
``{data: [...], links{next}}``.
"""

from __future__ import annotations

__all__ = [
    "InvalidResponseError",
    "NewNote",
    "PBFeature",
    "PBNote",
    "feature_from_api",
    "list_page",
    "note_from_api",
    "object_at",
    "optional_str",
    "required_str",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.errors import FatalError
from connectors.models import parse_time

VENDOR = "productboard"


class InvalidResponseError(FatalError):
    """A 2xx answer that is not what the contract says: not JSON, or a value missing or of the
    wrong type. A :class:`FatalError`: the same answer will not read better on a retry."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{VENDOR}: {what}: malformed answer: {problem}", vendor=VENDOR)
        self.problem = problem


@dataclass(frozen=True)
class NewNote:
    """A note to create (``POST /v2/notes``, type ``textNote``).

    ``record_id`` is the idempotency key: it becomes ``metadata.source.recordId`` and is what
    :meth:`~connectors.productboard.ProductboardConnector.find_note` looks for after an
    ambiguous create. ``source_url`` (the Zendesk ticket) becomes ``metadata.source.url``, the
    note's link back to its origin. The customer is the user (``user_email``), or else the
    company (``company_domain``): a v2 note has one customer. ``content`` is HTML.
    """

    title: str
    content: str
    record_id: str
    source_url: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    company_name: str | None = None
    company_domain: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Accept any iterable of tags (a list from a template) but keep the model frozen.
        object.__setattr__(self, "tags", tuple(self.tags))


@dataclass(frozen=True)
class PBNote:
    """A Productboard note as Switchboard sees it.

    ``url`` is the note in the Productboard UI (``links.html``; None when the answer has none).
    ``record_id`` / ``source_system`` / ``source_url`` come from ``metadata.source`` (None for a
    note another integration made). ``created_at`` / ``updated_at`` are None when the answer
    does not carry them (the create answer is a bare reference).
    """

    id: str
    url: str | None
    record_id: str | None
    title: str
    content: str
    tags: tuple[str, ...] = ()
    source_system: str | None = None
    source_url: str | None = None
    type: str = "textNote"
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class PBFeature:
    """A Productboard feature (or subfeature): its id, name, status name and UI link."""

    id: str
    name: str
    status: str | None
    url: str | None
    type: str = "feature"
    archived: bool | None = None
    updated_at: datetime | None = None


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def object_at(obj: Any, key: str, path: str, what: str, *, optional: bool = False
              ) -> dict[str, Any] | None:
    """``obj[key]`` as a JSON object (None if ``optional`` and absent or null)."""
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        problem = "is missing" if value is None else f"must be an object, not {_kind(value)}"
        raise InvalidResponseError(what, f"{_at(path, key)} {problem}")
    return value


def required_str(obj: Mapping[str, Any], key: str, path: str, what: str) -> str:
    """``obj[key]``: a string that is not blank."""
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        problem = "is missing" if value is None else \
            f"must be a non-empty string, not {_kind(value)}"
        raise InvalidResponseError(what, f"{_at(path, key)} {problem}")
    return value


def optional_str(obj: Mapping[str, Any] | None, key: str, path: str, what: str) -> str | None:
    """``obj[key]``: a string or null/absent (None also when ``obj`` is None)."""
    if obj is None:
        return None
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidResponseError(what, f"{_at(path, key)} must be a string or null, "
                                         f"not {_kind(value)}")
    return value


def _optional_time(obj: Mapping[str, Any], key: str, path: str, what: str) -> datetime | None:
    text = optional_str(obj, key, path, what)
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise InvalidResponseError(what, f"{path}.{key} is not a timestamp: {_kind(text)}") \
            from None


def _tags(fields: Mapping[str, Any], path: str, what: str) -> tuple[str, ...]:
    raw = fields.get("tags")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidResponseError(what, f"{path}.tags must be a list, not {_kind(raw)}")
    names: list[str] = []
    for index, item in enumerate(raw):
        # v2 answers tag objects ({id?, name}); a bare string is read as its name.
        if isinstance(item, str) and item.strip():
            names.append(item)
            continue
        if not isinstance(item, dict):
            raise InvalidResponseError(what, f"{path}.tags[{index}] must be an object, "
                                             f"not {_kind(item)}")
        names.append(required_str(item, "name", f"{path}.tags[{index}]", what))
    return tuple(names)


def note_from_api(data: Any, what: str, path: str = "data") -> PBNote:
    """A :class:`PBNote` from a v2 note object (``data`` of a GET/PATCH answer, or an item of a
    list). ``fields.content`` must be a string (a text note) when present."""
    if not isinstance(data, dict):
        raise InvalidResponseError(what, f"{path} must be an object, not {_kind(data)}")
    note_id = required_str(data, "id", path, what)
    note_type = optional_str(data, "type", path, what) or "textNote"
    fields = object_at(data, "fields", path, what)
    assert fields is not None  # not optional: object_at raised otherwise
    name = required_str(fields, "name", f"{path}.fields", what)
    content = fields.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        raise InvalidResponseError(
            what, f"{path}.fields.content must be a string (a {note_type}'s content is not "
                  f"text), not {_kind(content)}")
    links = object_at(data, "links", path, what, optional=True)
    metadata = object_at(data, "metadata", path, what, optional=True)
    source = object_at(metadata, "source", f"{path}.metadata", what, optional=True) \
        if metadata is not None else None
    return PBNote(
        id=note_id,
        url=optional_str(links, "html", f"{path}.links", what),
        record_id=optional_str(source, "recordId", f"{path}.metadata.source", what),
        title=name,
        content=content,
        tags=_tags(fields, f"{path}.fields", what),
        source_system=optional_str(source, "system", f"{path}.metadata.source", what),
        source_url=optional_str(source, "url", f"{path}.metadata.source", what),
        type=note_type,
        created_at=_optional_time(data, "createdAt", path, what),
        updated_at=_optional_time(data, "updatedAt", path, what),
    )


def feature_from_api(data: Any, what: str, path: str = "data") -> PBFeature:
    """A :class:`PBFeature` from a v2 entity object; ``fields.status`` is ``{id, name}`` or
    absent (the default answer leaves empty fields out)."""
    if not isinstance(data, dict):
        raise InvalidResponseError(what, f"{path} must be an object, not {_kind(data)}")
    entity_id = required_str(data, "id", path, what)
    entity_type = required_str(data, "type", path, what)
    fields = object_at(data, "fields", path, what)
    assert fields is not None
    status = object_at(fields, "status", f"{path}.fields", what, optional=True)
    archived = fields.get("archived")
    if archived is not None and not isinstance(archived, bool):
        raise InvalidResponseError(what, f"{path}.fields.archived must be a boolean, "
                                         f"not {_kind(archived)}")
    links = object_at(data, "links", path, what, optional=True)
    return PBFeature(
        id=entity_id,
        name=required_str(fields, "name", f"{path}.fields", what),
        status=required_str(status, "name", f"{path}.fields.status", what)
        if status is not None else None,
        url=optional_str(links, "html", f"{path}.links", what),
        type=entity_type,
        archived=archived,
        updated_at=_optional_time(data, "updatedAt", path, what),
    )


def list_page(body: Any, what: str) -> tuple[list[Any], str | None]:
    """The items and the ``links.next`` URL (None on the last page) of a v2 list answer."""
    if not isinstance(body, dict):
        raise InvalidResponseError(what, f"the answer must be an object, not {_kind(body)}")
    items = body.get("data")
    if not isinstance(items, list):
        problem = "is missing" if items is None else f"must be a list, not {_kind(items)}"
        raise InvalidResponseError(what, f"data {problem}")
    links = object_at(body, "links", "", what, optional=True)
    next_url = optional_str(links, "next", "links", what)
    return items, next_url or None
