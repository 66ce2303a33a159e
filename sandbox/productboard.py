"""The Productboard Public API v2 stand-in: notes, their relationships, entities (features with a
status, users, companies) and tag values, after the contract in ``docs/productboard.md``.

Routes (all JSON, ``Authorization: Bearer``): ``/v2/notes`` (POST, GET with the
``metadata[source][recordId|system]`` filters), ``/v2/notes/search`` (POST), ``/v2/notes/{id}``
(GET, PATCH with ``data.fields`` or ``data.patch``, DELETE), ``/v2/notes/{id}/relationships``
(GET, POST; ``PUT .../customer``; ``DELETE .../link/{target}``), ``/v2/entities`` (GET with
``type[]``, POST), ``/v2/entities/search`` (POST), ``/v2/entities/{id}`` (GET) and
``/v2/entities/fields/tags/values`` (GET, POST). Lists page by ``links.next``, a full URL whose
opaque ``pageCursor`` carries the listing. Errors are ``{"errors": [{code, title, detail}]}``;
more than ``rate_limit`` requests in a second from one token get 429 with ``Retry-After``.

Behaviours reported by integrators and kept here (docs/productboard.md, [S]): an unknown tag is
``422 selectOption.notFound``, an unknown customer ``404 resource.notFound``, and the content of
a note linked to a feature cannot change (``422 validation.forbidden``).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sandbox.base import Request, Response, utc_now
from sandbox.productboard_api import (
    PBError,
    PerSecondLimit,
    data_of,
    decode_cursor,
    encode_cursor,
    error_body,
    only,
    text,
)
from sandbox.productboard_workspace import Note, Workspace

__all__ = ["ProductboardState"]

#: Requests a second per token, as Productboard documents.
DEFAULT_RATE_LIMIT = 50
DEFAULT_PAGE_SIZE = 100
NOTE_QUERY = frozenset({"pageCursor", "metadata[source][recordId]", "metadata[source][system]",
                        "archived", "processed", "fields[]"})
ENTITY_QUERY = frozenset({"pageCursor", "type[]", "fields[]", "archived", "status[name]"})


class ProductboardState:
    """A workspace behind one lock. Tests may set ``clock`` (monotonic seconds, rate limit)."""

    vendor = "productboard"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.ws = Workspace()
        self.clock: Callable[[], float] = time.monotonic
        self._token: str | None = None
        self._limit = PerSecondLimit(DEFAULT_RATE_LIMIT, lambda: self.clock())
        self.page_size = DEFAULT_PAGE_SIZE
        #: Refuse (422) content changes of notes linked to a feature, as integrators report.
        self.lock_linked_content = True

    # -- configuration and test helpers ------------------------------------------------------

    def set_base_url(self, url: str) -> None:
        """Set the URL the state is served at (``links.self`` / ``links.next`` use it)."""
        with self.lock:
            self.ws.base_url = url.rstrip("/")

    def require_token(self, token: str) -> None:
        """Accept only this Bearer token (by default any non-empty token is accepted)."""
        with self.lock:
            self._token = token

    def set_rate_limit(self, per_second: int | None) -> None:
        """Requests a second per token (None: unlimited). Raises ValueError if not positive."""
        if per_second is not None and per_second < 1:
            raise ValueError("per_second must be positive or None")
        with self.lock:
            self._limit = PerSecondLimit(per_second, lambda: self.clock())

    def set_page_size(self, size: int) -> None:
        """Items per page of every list. Raises ValueError if not positive."""
        if size < 1:
            raise ValueError("size must be positive")
        with self.lock:
            self.page_size = size

    def add_feature(self, name: str, status: str = "New idea", *, archived: bool = False,
                    entity_type: str = "feature") -> str:
        """Seed a feature (or another hierarchy entity) and return its id."""
        with self.lock:
            fields: dict[str, Any] = {"name": name, "archived": archived}
            if entity_type in ("feature", "subfeature"):
                fields["status"] = self.ws.status(status)
            return self.ws.add_entity(entity_type, fields)

    def set_feature_status(self, feature_id: str, status: str) -> None:
        """Move a feature to ``status`` (e.g. ``"Released"``; a new name becomes a status).
        Raises KeyError for an unknown feature."""
        with self.lock:
            entity = self.ws.entities[feature_id]
            if entity.type not in ("feature", "subfeature"):
                raise KeyError(feature_id)
            entity.fields["status"] = self.ws.status(status)
            entity.updated = utc_now()

    def add_user(self, email: str, name: str | None = None) -> str:
        """Seed a user (a customer) and return its id."""
        with self.lock:
            return self.ws.add_entity("user", {"email": email, "name": name or email})

    def add_company(self, name: str, domain: str | None = None) -> str:
        """Seed a company and return its id."""
        with self.lock:
            fields = {"name": name, **({"domain": domain} if domain else {})}
            return self.ws.add_entity("company", fields)

    def add_tags(self, *names: str) -> None:
        """Seed tag values (names already there, in any case, are kept once)."""
        with self.lock:
            for name in names:
                self.ws.add_tag(name)

    def tags(self) -> list[str]:
        """The workspace's tag values, in creation order."""
        with self.lock:
            return list(self.ws.tags.values())

    def notes(self) -> list[dict[str, Any]]:
        """Every note as ``GET /v2/notes/{id}`` shows it, oldest first."""
        with self.lock:
            return [self.ws.note_view(n) for n in self.ws.notes.values()]

    def note(self, note_id: str) -> dict[str, Any] | None:
        """One note's view, or None."""
        with self.lock:
            note = self.ws.notes.get(note_id)
            return self.ws.note_view(note) if note is not None else None

    def notes_for_record(self, record_id: str) -> list[dict[str, Any]]:
        """The notes whose ``metadata.source.recordId`` is ``record_id``."""
        with self.lock:
            return [self.ws.note_view(n) for n in self.ws.notes.values()
                    if n.source and n.source.get("recordId") == record_id]

    def linked_features(self, note_id: str) -> list[str]:
        """Ids of the entities a note is linked to. Raises KeyError for an unknown note."""
        with self.lock:
            return list(self.ws.notes[note_id].links)

    def customer_of(self, note_id: str) -> dict[str, Any] | None:
        """The view of a note's customer (user or company), or None."""
        with self.lock:
            customer = self.ws.notes[note_id].customer
            return self.ws.entity_view(self.ws.entities[customer]) if customer else None

    def entity(self, entity_id: str) -> dict[str, Any] | None:
        """One entity's view (feature, user, company, ...), or None."""
        with self.lock:
            entity = self.ws.entities.get(entity_id)
            return self.ws.entity_view(entity) if entity is not None else None

    def entities(self, entity_type: str) -> list[dict[str, Any]]:
        """The views of every entity of a type, oldest first."""
        with self.lock:
            return [self.ws.entity_view(e) for e in self.ws.entities.values()
                    if e.type == entity_type]

    # -- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one request: auth, rate limit, route."""
        headers: dict[str, str] = {}
        try:
            with self.lock:
                token = self._authorize(request)
                headers, limited = self._limit.check(token)
                if limited is not None:
                    raise limited
                status, body = self._dispatch(request)
        except PBError as exc:
            return Response(exc.status, exc.body(), {**headers, **exc.headers})
        return Response(status, body, headers)

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        """A Productboard-shaped error body for ``status`` (used by injected faults)."""
        return error_body(status, message)

    def _authorize(self, request: Request) -> str:
        scheme, _, token = str(request.headers.get("Authorization", "")).partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise PBError(401, "Missing or malformed Authorization header (Bearer token)")
        if self._token is not None and token != self._token:
            raise PBError(401, "The access token is invalid or expired")
        return token

    def _dispatch(self, request: Request) -> tuple[int, Any]:
        allowed: list[str] = []
        for method, pattern, name in _ROUTES:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method == request.method:
                handler: Callable[..., tuple[int, Any]] = getattr(self, name)
                return handler(request, *match.groups())
            allowed.append(method)
        if allowed:
            raise PBError(405, f"{request.method} is not allowed on {request.path}",
                          "request.methodNotAllowed")
        raise PBError(404, f"No route {request.path}")

    # -- notes ---------------------------------------------------------------------------------

    def _create_note(self, request: Request) -> tuple[int, Any]:
        data = data_of(request)
        only(data, {"type", "fields", "metadata", "relationships"}, "data")
        note_type = text(data, "type", "data", required=True)
        if note_type == "opportunityNote":
            raise PBError(422, "Opportunity notes cannot be created via the API")
        if note_type not in ("textNote", "conversationNote"):
            raise PBError(400, f"data.type {note_type!r} is not a note type")
        fields = data.get("fields")
        if not isinstance(fields, dict):
            raise PBError(400, "data.fields is required")
        name = text(fields, "name", "data.fields", required=True)
        content = self.ws.content(fields.get("content"), note_type)
        tags = self.ws.tag_ids(fields.get("tags"), "data.fields.tags")
        source = self.ws.source(data.get("metadata"))
        customer, links = self.ws.relationships(data.get("relationships"))
        now = utc_now()
        note = Note(id=str(uuid.uuid4()), type=note_type, name=str(name), content=content,
                     tags=tags, source=source, created=now, updated=now, customer=customer,
                     links=links, owner=fields.get("owner") if isinstance(
                         fields.get("owner"), dict) else None)
        self.ws.notes[note.id] = note
        return 201, {"data": self.ws.note_ref(note)}

    def _list_notes(self, request: Request) -> tuple[int, Any]:
        self._check_query(request, NOTE_QUERY)
        cursor = request.param("pageCursor")
        if cursor:
            return self._page("notes", "/v2/notes", cursor=cursor)
        filters = {"recordId": request.param("metadata[source][recordId]"),
                   "system": request.param("metadata[source][system]"),
                   "archived": request.param("archived")}
        return self._page("notes", "/v2/notes", filters={k: v for k, v in filters.items()
                                                         if v is not None})

    def _search_notes(self, request: Request) -> tuple[int, Any]:
        cursor = request.param("pageCursor")
        if cursor:
            return self._page("notes", "/v2/notes/search", cursor=cursor)
        data = data_of(request)
        query = data.get("filter", data)  # the structured format, or the legacy flat one
        if not isinstance(query, dict):
            raise PBError(400, "data.filter must be an object")
        metadata = query.get("metadata") or {}
        source = metadata.get("source") if isinstance(metadata, dict) else None
        source = source if isinstance(source, dict) else {}
        filters: dict[str, Any] = {}
        for key in ("system", "recordId"):
            if source.get(key) is not None:
                filters[key] = str(source[key])
        if isinstance(query.get("archived"), bool):
            filters["archived"] = str(query["archived"]).lower()
        return self._page("notes", "/v2/notes/search", filters=filters)

    def _get_note(self, request: Request, note_id: str) -> tuple[int, Any]:
        return 200, {"data": self.ws.note_view(self.ws.note(note_id))}

    def _delete_note(self, request: Request, note_id: str) -> tuple[int, Any]:
        del self.ws.notes[self.ws.note(note_id).id]
        return 204, None

    def _patch_note(self, request: Request, note_id: str) -> tuple[int, Any]:
        note = self.ws.note(note_id)
        data = data_of(request)
        only(data, {"fields", "patch"}, "data")
        if ("fields" in data) == ("patch" in data):
            raise PBError(400, "Give either data.fields or data.patch")
        if "fields" in data:
            if not isinstance(data["fields"], dict):
                raise PBError(400, "data.fields must be an object")
            ops = [{"op": "set", "path": k, "value": v} for k, v in data["fields"].items()]
        else:
            ops = data["patch"]
            if not isinstance(ops, list) or not ops:
                raise PBError(400, "data.patch must be a non-empty list of operations")
        changes = [self.ws.patch_change(note, op, index) for index, op in enumerate(ops)]
        if any(path == "content" for path, _ in changes) and note.links \
                and self.lock_linked_content:
            raise PBError(422, "The content of a note linked to features cannot be updated",
                          "validation.forbidden")
        for path, value in changes:
            setattr(note, path, value)
            if path == "archived" and value is False:
                note.processed = True  # Productboard's documented behaviour on unarchive
        note.updated = utc_now()
        return 200, {"data": self.ws.note_view(note)}

    def _relationships(self, request: Request, note_id: str) -> tuple[int, Any]:
        note = self.ws.note(note_id)
        cursor = request.param("pageCursor")
        return self._page("relationships", f"/v2/notes/{note.id}/relationships",
                          cursor=cursor, filters=None if cursor else {"note": note.id})

    def _create_relationship(self, request: Request, note_id: str) -> tuple[int, Any]:
        note = self.ws.note(note_id)
        data = data_of(request)
        customer, links = self.ws.relationships([data])
        if customer is not None:
            note.customer = customer
        for target in links:
            if target in note.links:
                raise PBError(409, f"The note is already linked to entity {target}",
                              "relationship.alreadyExists")
            note.links.append(target)
        note.updated = utc_now()
        return 201, {"data": self.ws.note_ref(note)}

    def _set_customer(self, request: Request, note_id: str) -> tuple[int, Any]:
        note = self.ws.note(note_id)
        data = data_of(request)
        customer, _ = self.ws.relationships([{"type": "customer",
                                                   "target": data.get("target")}])
        note.customer = customer
        note.updated = utc_now()
        return 200, {"data": self.ws.note_ref(note)}

    def _delete_relationship(self, request: Request, note_id: str, kind: str,
                             target: str | None = None) -> tuple[int, Any]:
        note = self.ws.note(note_id)
        if kind == "customer":
            note.customer = None
        elif target in note.links:
            note.links.remove(target)
        else:
            raise PBError(404, f"The note is not linked to entity {target}")
        return 204, None

    # -- entities and tag values ---------------------------------------------------------------

    def _list_entities(self, request: Request) -> tuple[int, Any]:
        self._check_query(request, ENTITY_QUERY)
        cursor = request.param("pageCursor")
        if cursor:
            return self._page("entities", "/v2/entities", cursor=cursor)
        filters: dict[str, Any] = {"types": request.query.get("type[]", [])}
        if request.param("status[name]") is not None:
            filters["status"] = request.param("status[name]")
        return self._page("entities", "/v2/entities", filters=filters)

    def _search_entities(self, request: Request) -> tuple[int, Any]:
        cursor = request.param("pageCursor")
        if cursor:
            return self._page("entities", "/v2/entities/search", cursor=cursor)
        data = data_of(request)
        query = data.get("filter", data)
        if not isinstance(query, dict):
            raise PBError(400, "data.filter must be an object")
        types = query.get("type", query.get("types", []))
        types = [types] if isinstance(types, str) else types
        if not isinstance(types, list) or len(types) != 1:
            raise PBError(400, "Search within exactly one entity type (filter.type)")
        filters: dict[str, Any] = {"types": types}
        if isinstance(query.get("name"), str):
            filters["name"] = query["name"]
        statuses = query.get("statuses")
        if isinstance(statuses, list) and len(statuses) == 1 and isinstance(statuses[0], dict):
            filters["status"] = statuses[0].get("name")
        return self._page("entities", "/v2/entities/search", filters=filters)

    def _get_entity(self, request: Request, entity_id: str) -> tuple[int, Any]:
        entity = self.ws.entities.get(entity_id)
        if entity is None:
            raise PBError(404, f"Entity {entity_id} not found")
        return 200, {"data": self.ws.entity_view(entity)}

    def _create_entity(self, request: Request) -> tuple[int, Any]:
        data = data_of(request)
        only(data, {"type", "fields", "metadata", "relationships"}, "data")
        entity_type = str(text(data, "type", "data", required=True))
        fields = data.get("fields")
        if not isinstance(fields, dict):
            raise PBError(400, "data.fields is required")
        values = self.ws.entity_fields(entity_type, fields)
        entity_id = self.ws.add_entity(entity_type, values)
        return 201, {"data": self.ws.entity_ref(self.ws.entities[entity_id])}

    def _list_tags(self, request: Request) -> tuple[int, Any]:
        cursor = request.param("pageCursor")
        return self._page("tags", "/v2/entities/fields/tags/values", cursor=cursor,
                          filters=None if cursor else {})

    def _create_tag(self, request: Request) -> tuple[int, Any]:
        data = data_of(request)
        fields = data.get("fields")
        if not isinstance(fields, dict):
            raise PBError(400, "data.fields is required")
        name = str(text(fields, "name", "data.fields", required=True))
        if self.ws.tag_named(name) is not None:
            raise PBError(409, f"Tag {name!r} already exists")
        tag_id = str(uuid.uuid4())
        self.ws.tags[tag_id] = name
        return 201, {"data": {"id": tag_id}}

    # -- helpers -------------------------------------------------------------------------------

    def _page(self, kind: str, path: str, *, cursor: str | None = None,
              filters: dict[str, Any] | None = None) -> tuple[int, Any]:
        if cursor:
            state = decode_cursor(cursor)
            if state.get("k") != kind:
                raise PBError(400, "The pagination cursor format is invalid",
                              "pagination.invalidCursor")
            offset, filters = state["o"], state.get("f") or {}
        else:
            offset = 0
        items = self.ws.listing(kind, filters or {})
        page = items[offset:offset + self.page_size]
        after = offset + len(page)
        next_url = None
        if after < len(items):
            token = encode_cursor({"k": kind, "o": after, "f": filters or {}})
            next_url = f"{self.ws.base_url}{path}?pageCursor={token}"
        return 200, {"data": page, "links": {"next": next_url}}

    def _check_query(self, request: Request, allowed: frozenset[str]) -> None:
        unexpected = sorted(set(request.query) - allowed)
        if unexpected:
            raise PBError(400, f"Unexpected query parameters: {', '.join(unexpected)}")


_ROUTES = [(method, re.compile(pattern), name) for method, pattern, name in (
    ("POST", r"^/v2/notes$", "_create_note"),
    ("GET", r"^/v2/notes$", "_list_notes"),
    ("POST", r"^/v2/notes/search$", "_search_notes"),
    ("GET", r"^/v2/notes/([^/]+)$", "_get_note"),
    ("PATCH", r"^/v2/notes/([^/]+)$", "_patch_note"),
    ("DELETE", r"^/v2/notes/([^/]+)$", "_delete_note"),
    ("GET", r"^/v2/notes/([^/]+)/relationships$", "_relationships"),
    ("POST", r"^/v2/notes/([^/]+)/relationships$", "_create_relationship"),
    ("PUT", r"^/v2/notes/([^/]+)/relationships/customer$", "_set_customer"),
    ("DELETE", r"^/v2/notes/([^/]+)/relationships/(customer)$", "_delete_relationship"),
    ("DELETE", r"^/v2/notes/([^/]+)/relationships/(link)/([^/]+)$", "_delete_relationship"),
    ("GET", r"^/v2/entities$", "_list_entities"),
    ("POST", r"^/v2/entities$", "_create_entity"),
    ("POST", r"^/v2/entities/search$", "_search_entities"),
    ("GET", r"^/v2/entities/fields/tags/values$", "_list_tags"),
    ("POST", r"^/v2/entities/fields/tags/values$", "_create_tag"),
    ("GET", r"^/v2/entities/([^/]+)$", "_get_entity"),
)]
