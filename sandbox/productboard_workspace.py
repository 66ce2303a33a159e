"""The data behind the Productboard stand-in (``sandbox.productboard``): notes, entities (features
with a status, users, companies, other hierarchy entities) and tag values, with the checks
Productboard applies to what refers to them and the JSON views its API answers with.

Not thread-safe by itself: :class:`~sandbox.productboard.ProductboardState` holds its lock.
Every refusal is a :class:`~sandbox.productboard_api.PBError`.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.base import utc_now
from sandbox.productboard_api import PBError, normal, only, text

__all__ = ["HIERARCHY", "STATUSES", "Entity", "Note", "Workspace"]

_PATCHABLE = {"name": {"set"}, "content": {"set"}, "archived": {"set"}, "processed": {"set"},
              "owner": {"set", "clear"}, "tags": {"set", "clear", "addItems", "removeItems"}}
STATUSES = ("New idea", "Candidate", "Planned", "In progress", "Released", "Won't do")
HIERARCHY = frozenset({"product", "component", "feature", "subfeature"})


@dataclass
class Note:
    """One note. ``tags`` are tag value ids; ``customer`` and ``links`` entity ids."""

    id: str
    type: str
    name: str
    content: Any
    tags: list[str]
    source: dict[str, str] | None
    created: datetime
    updated: datetime
    owner: dict[str, Any] | None = None
    archived: bool = False
    processed: bool = False
    customer: str | None = None
    links: list[str] = field(default_factory=list)


@dataclass
class Entity:
    """One entity: ``fields`` as the API shows them (``status`` is ``{id, name}``)."""

    id: str
    type: str
    fields: dict[str, Any]
    created: datetime
    updated: datetime


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Workspace:
    """Notes, entities and tag values of one workspace, and their API views."""

    def __init__(self) -> None:
        self.base_url = "https://api.productboard.com"
        self.workspace_url = "https://sandbox.productboard.com"
        self.notes: dict[str, Note] = {}
        self.entities: dict[str, Entity] = {}
        self.tags: dict[str, str] = {}  # tag value id -> name
        self._statuses = {name: str(uuid.uuid4()) for name in STATUSES}

    # -- building ------------------------------------------------------------------------------

    def add_entity(self, entity_type: str, fields: dict[str, Any]) -> str:
        """Store an entity and return its new id."""
        now = utc_now()
        entity = Entity(str(uuid.uuid4()), entity_type, fields, now, now)
        self.entities[entity.id] = entity
        return entity.id

    def add_tag(self, name: str) -> str:
        """Store a tag value (once per name, compared case-insensitively); return its id."""
        existing = self.tag_named(name)
        if existing is not None:
            return existing
        tag_id = str(uuid.uuid4())
        self.tags[tag_id] = name
        return tag_id

    def status(self, name: str) -> dict[str, str]:
        """The ``{id, name}`` of a feature status (a new name becomes a status)."""
        if name not in self._statuses:
            self._statuses[name] = str(uuid.uuid4())
        return {"id": self._statuses[name], "name": name}

    # -- lookups -------------------------------------------------------------------------------

    def note(self, note_id: str) -> Note:
        """A note, or 404."""
        note = self.notes.get(note_id)
        if note is None:
            raise PBError(404, f"Note {note_id} not found")
        return note

    def user_by_email(self, email: str) -> str | None:
        """The id of the user with this email (case-insensitive), or None."""
        wanted = email.strip().casefold()
        return next((e.id for e in self.entities.values() if e.type == "user"
                     and str(e.fields.get("email", "")).casefold() == wanted), None)

    def company_by_domain(self, domain: str) -> str | None:
        """The id of the company with this domain (case-insensitive), or None."""
        wanted = domain.strip().casefold()
        return next((e.id for e in self.entities.values() if e.type == "company"
                     and str(e.fields.get("domain", "")).casefold() == wanted), None)

    def tag_named(self, name: str) -> str | None:
        """The id of the tag value named ``name`` (case- and diacritic-insensitive), or None."""
        wanted = normal(name)
        return next((i for i, n in self.tags.items() if normal(n) == wanted), None)

    # -- checking what a request refers to -------------------------------------------------

    @staticmethod
    def content(value: Any, note_type: str) -> Any:
        """A note's content: HTML text for a text note, a list of parts for a conversation."""
        if value is None:
            return "" if note_type == "textNote" else []
        if note_type == "textNote" and not isinstance(value, str):
            raise PBError(400, "data.fields.content of a textNote must be a string")
        if note_type == "conversationNote" and not isinstance(value, list):
            raise PBError(400, "data.fields.content of a conversationNote must be a list")
        return value

    def tag_ids(self, value: Any, where: str) -> list[str]:
        """Tag value ids of ``[{name}|{id}]``; an unknown one is ``422 selectOption.notFound``
        (Productboard does not create tag values from a note write)."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise PBError(400, f"{where} must be a list")
        ids: list[str] = []
        missing: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict) or not (isinstance(item.get("name"), str)
                                                  or isinstance(item.get("id"), str)):
                raise PBError(400, f"{where}[{index}] must be an object with a name or an id")
            tag_id = item["id"] if item.get("id") in self.tags else \
                self.tag_named(str(item.get("name") or ""))
            if tag_id is None:
                missing.append(str(item.get("name") or item.get("id")))
            elif tag_id not in ids:
                ids.append(tag_id)
        if missing:
            raise PBError(422, f"Value with label '{missing[0]}' not found for field 'tags'",
                          "selectOption.notFound")
        return ids

    @staticmethod
    def source(metadata: Any) -> dict[str, str] | None:
        """``metadata.source`` of a create: ``{system, recordId, url}`` (system with an id)."""
        if metadata is None:
            return None
        if not isinstance(metadata, dict):
            raise PBError(400, "data.metadata must be an object")
        only(metadata, {"source"}, "data.metadata")
        source = metadata.get("source")
        if source is None:
            return None
        if not isinstance(source, dict):
            raise PBError(400, "data.metadata.source must be an object")
        only(source, {"system", "recordId", "url"}, "data.metadata.source")
        values = {k: text(source, k, "data.metadata.source")
                  for k in ("system", "recordId", "url")}
        if values["recordId"] and not values["system"]:
            raise PBError(400, "data.metadata.source.system is required with a recordId")
        return {k: v for k, v in values.items() if v}

    def relationships(self, value: Any) -> tuple[str | None, list[str]]:
        """(customer entity id, linked entity ids) of ``[{type: customer|link, target}]``."""
        if value is None:
            return None, []
        if not isinstance(value, list):
            raise PBError(400, "data.relationships must be a list")
        customer: str | None = None
        links: list[str] = []
        for index, rel in enumerate(value):
            where = f"data.relationships[{index}]"
            target = rel.get("target") if isinstance(rel, dict) else None
            if not isinstance(target, dict):
                raise PBError(400, f"{where}.target must be an object")
            kind = rel.get("type")
            if kind == "customer":
                if customer is not None:
                    raise PBError(400, "A note has one customer at most")
                customer = self._customer(target, where)
            elif kind == "link":
                entity = self.entities.get(str(target.get("id")))
                if entity is None or entity.type not in HIERARCHY:
                    raise PBError(404, f"Entity {target.get('id')} not found",
                                  "resource.notFound")
                if entity.id not in links:
                    links.append(entity.id)
            else:
                raise PBError(400, f"{where}.type must be customer or link")
        return customer, links

    def _customer(self, target: dict[str, Any], where: str) -> str:
        kind = target.get("type")
        if kind not in ("user", "company"):
            raise PBError(400, f"{where}.target.type must be user or company")
        if isinstance(target.get("id"), str):
            entity = self.entities.get(target["id"])
            found = entity.id if entity is not None and entity.type == kind else None
            key = f"id {target['id']!r}"
        elif kind == "user" and isinstance(target.get("email"), str):
            found = self.user_by_email(target["email"])
            key = f"email {target['email']!r}"
        elif kind == "company" and isinstance(target.get("domain"), str):
            found = self.company_by_domain(target["domain"])
            key = f"domain {target['domain']!r}"
        else:
            raise PBError(400, f"{where}.target needs an id, an email (user) or a domain "
                               "(company)")
        if found is None:
            raise PBError(404, f"Customer ({kind}) with {key} not found", "resource.notFound")
        return found

    def patch_change(self, note: Note, op: Any, index: int) -> tuple[str, Any]:
        """(attribute, new value) of one ``data.patch`` operation, per the documented support
        of each field (``set`` everywhere; ``clear`` owner and tags; ``addItems`` /
        ``removeItems`` tags and a conversation's content)."""
        where = f"data.patch[{index}]"
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) \
                or not isinstance(op.get("path"), str):
            raise PBError(400, f"{where} must be an object with op and path")
        kind, path, value = op["op"], op["path"], op.get("value")
        if path not in _PATCHABLE:
            raise PBError(400, f"{where}: field {path!r} cannot be updated")
        supported = _PATCHABLE[path]
        if path == "content" and note.type == "conversationNote":
            supported = {"set", "addItems", "removeItems"}
        if kind not in supported:
            raise PBError(400, f"{where}: operation {kind!r} is not supported for {path!r}")
        if kind == "clear":
            return path, [] if path == "tags" else None
        if path == "name":
            if not isinstance(value, str) or not value.strip():
                raise PBError(400, f"{where}.value must be a non-empty string")
            return path, value
        if path == "content":
            return path, self.content(value, note.type)
        if path in ("archived", "processed"):
            if not isinstance(value, bool):
                raise PBError(400, f"{where}.value must be a boolean")
            return path, value
        if path == "owner":
            if not isinstance(value, dict):
                raise PBError(400, f"{where}.value must be an object")
            return path, value
        ids = self.tag_ids(value, f"{where}.value")
        if kind == "addItems":
            ids = note.tags + [i for i in ids if i not in note.tags]
        elif kind == "removeItems":
            ids = [i for i in note.tags if i not in ids]
        return "tags", ids

    def entity_fields(self, entity_type: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields of an entity to create: a user needs a new email, a company a name (and
        a new domain), a hierarchy entity a name (a feature gets a status)."""
        if entity_type == "user":
            email = text(fields, "email", "data.fields", required=True)
            if self.user_by_email(str(email)) is not None:
                raise PBError(409, f"A user with email {email!r} already exists")
            return {"email": email, "name": text(fields, "name", "data.fields") or email}
        if entity_type == "company":
            name = text(fields, "name", "data.fields", required=True)
            domain = text(fields, "domain", "data.fields")
            if domain and self.company_by_domain(domain) is not None:
                raise PBError(409, f"A company with domain {domain!r} already exists")
            return {"name": name, **({"domain": domain} if domain else {})}
        if entity_type not in HIERARCHY:
            raise PBError(400, f"data.type {entity_type!r} cannot be created")
        values: dict[str, Any] = {"name": text(fields, "name", "data.fields", required=True),
                                  "archived": False}
        if entity_type in ("feature", "subfeature"):
            status = fields.get("status")
            values["status"] = self.status(status.get("name", STATUSES[0])
                                           if isinstance(status, dict) else STATUSES[0])
        return values

    # -- listings and views --------------------------------------------------------------------

    def listing(self, kind: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a listing (``notes``, newest first; ``entities``; ``tags``;
        ``relationships`` of ``filters["note"]``) that passes ``filters``."""
        if kind == "notes":
            notes = sorted(self.notes.values(), key=lambda n: n.created, reverse=True)
            return [self.note_view(n) for n in notes if _note_matches(n, filters)]
        if kind == "entities":
            types = set(filters.get("types") or ())
            name = normal(filters["name"]) if filters.get("name") else None
            status = filters.get("status")
            return [self.entity_view(e) for e in self.entities.values()
                    if (not types or e.type in types)
                    and (name is None or name in normal(str(e.fields.get("name", ""))))
                    and (status is None or (e.fields.get("status") or {}).get("name") == status)]
        if kind == "tags":
            return [{"id": i, "type": "tag", "fields": {"name": n, "color": "grey"}}
                    for i, n in self.tags.items()]
        note = self.note(str(filters.get("note")))
        rels = []
        if note.customer and note.customer in self.entities:
            rels.append({"type": "customer",
                         "target": self.entity_ref(self.entities[note.customer])})
        rels.extend({"type": "link", "target": self.entity_ref(self.entities[t])}
                    for t in note.links if t in self.entities)
        return rels

    def note_ref(self, note: Note) -> dict[str, Any]:
        """``{id, type, links{self, html}}``: what a create answers."""
        return {"id": note.id, "type": note.type,
                "links": {"self": f"{self.base_url}/v2/notes/{note.id}",
                          "html": f"{self.workspace_url}/all-notes/notes/{note.id}"}}

    def note_view(self, note: Note) -> dict[str, Any]:
        """A note as ``GET /v2/notes/{id}`` shows it (empty fields left out)."""
        fields: dict[str, Any] = {"name": note.name, "archived": note.archived,
                                  "processed": note.processed}
        if note.content:
            fields["content"] = copy.deepcopy(note.content)
        if note.tags:
            fields["tags"] = [{"id": t, "name": self.tags[t]} for t in note.tags
                              if t in self.tags]
        if note.owner:
            fields["owner"] = dict(note.owner)
        view = {**self.note_ref(note), "fields": fields, "createdAt": _stamp(note.created),
                "updatedAt": _stamp(note.updated)}
        if note.source:
            view["metadata"] = {"source": dict(note.source)}
        return view

    def entity_ref(self, entity: Entity) -> dict[str, Any]:
        """``{id, type, links{self}}`` of an entity."""
        return {"id": entity.id, "type": entity.type,
                "links": {"self": f"{self.base_url}/v2/entities/{entity.id}"}}

    def entity_view(self, entity: Entity) -> dict[str, Any]:
        """An entity as ``GET /v2/entities/{id}`` shows it."""
        ref = self.entity_ref(entity)
        ref["links"]["html"] = f"{self.workspace_url}/entities/{entity.id}/detail"
        return {**ref, "fields": copy.deepcopy(entity.fields),
                "createdAt": _stamp(entity.created), "updatedAt": _stamp(entity.updated)}


def _note_matches(note: Note, filters: dict[str, Any]) -> bool:
    source = note.source or {}
    return all((
        filters.get("recordId") is None or source.get("recordId") == filters["recordId"],
        filters.get("system") is None or source.get("system") == filters["system"],
        filters.get("archived") is None or str(note.archived).lower() == filters["archived"],
    ))
