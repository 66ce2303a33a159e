"""Productboard connector, on ``requests`` against the Public API v2 (``docs/productboard.md``).

Every call goes through a :func:`connectors.http.build_session` session: a token bucket of
``requests_per_second`` without bursts (Productboard counts 50 requests a second per token and
advises spreading them), connect/read timeouts, one log line per response, the
:mod:`connectors.errors` tree for every status >= 400 (429 -> ``RateLimitedError`` with its
``Retry-After``) and transport failure, a few jittered retries for reads and none for writes.
The token travels as ``Authorization: Bearer`` and never appears in a log line or an error (the
adapter redacts it).

Beyond the shared tree this module raises :class:`InvalidResponseError` (a :class:`FatalError`)
for a 2xx answer it cannot read, naming the value, and :class:`NoteContentLockedError` (an
``InvalidRequestError``) when Productboard refuses to change a note's content.

Creating a note is ONE ``POST /v2/notes`` when the workspace knows the customer and the tags.
When it answers that the customer (``resource.notFound``) or a tag (``selectOption.notFound``)
does not exist, nothing was created: the connector creates the user / company entity or the tag
value, as Productboard's own integrations do, and sends the note again (the missing tag values
are read once per process). A create that fails ambiguously (timeout, reset after sending, 5xx,
or a 2xx answer without the note's id) raises ``RetriableError(ambiguous=True)``: look for the
note with :meth:`ProductboardConnector.find_note` before creating it again.
"""

from __future__ import annotations

__all__ = [
    "InvalidResponseError",
    "NewNote",
    "NoteContentLockedError",
    "PBFeature",
    "PBNote",
    "ProductboardConnector",
]

import json
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from connectors.cache import TtlCache
from connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    InvalidRequestError,
    NotFoundError,
    RetriableError,
)
from connectors.http import RateLimiter, build_session, translate_transport_errors
from connectors.productboard_records import (
    InvalidResponseError,
    NewNote,
    PBFeature,
    PBNote,
    feature_from_api,
    list_page,
    note_from_api,
    object_at,
    optional_str,
    required_str,
)
from connectors.settings import ProductboardSettings

VENDOR = "productboard"
log = logging.getLogger(__name__)

#: Pages followed at most through ``links.next`` (100 items each) before giving up.
MAX_PAGES = 1000
#: Sends of one note at most: the first, then one after each missing customer / tag fixed.
MAX_CREATE_SENDS = 4
#: The entity types :meth:`ProductboardConnector.get_feature` accepts.
FEATURE_TYPES = frozenset({"feature", "subfeature"})
#: Error codes Productboard answers when a referenced customer or tag does not exist.
MISSING_CUSTOMER = "resource.notFound"
MISSING_TAG = "selectOption.notFound"
TAGS_PATH = "/v2/entities/fields/tags/values"
#: Feature names kept at most by the find_feature cache.
FEATURE_CACHE_SIZE = 20_000
_LATEST = datetime.max.replace(tzinfo=UTC)


class NoteContentLockedError(InvalidRequestError):
    """Productboard refused (422) to change a note's content. Reported for notes linked to a
    feature (an insight): their content is locked. Nothing was changed."""


def _normal(text: str) -> str:
    """A tag name as Productboard compares them: case- and diacritic-insensitive."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _segment(value: str, what: str) -> str:
    """An id as one URL path segment; refuses what cannot be an id."""
    if not isinstance(value, str) or not value.strip() or len(value) > 200 \
            or any(ch.isspace() or ch == "/" for ch in value):
        raise InvalidRequestError(f"{VENDOR}: invalid {what} {value!r}", vendor=VENDOR)
    return quote(value, safe="")


def _vendor_detail(exc: ConnectorError) -> None:
    """Rewrite an error's detail from Productboard's ``{"errors": [{code, title, detail}]}``
    body to ``code: detail; ...`` (kept as it is when the excerpt is not such JSON)."""
    try:
        body = json.loads(exc.detail)
    except ValueError:
        return
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return
    parts = []
    for item in errors:
        if isinstance(item, dict):
            code = item.get("code") or item.get("title") or "error"
            text = item.get("detail") or item.get("title") or ""
            parts.append(f"{code}: {text}" if text and text != code else str(code))
    if parts:
        exc.detail = "; ".join(parts)[:500]


def _not_ambiguous(exc: RetriableError, what: str) -> RetriableError:
    """``exc`` for a step that ran after Productboard refused the note (so no note exists)."""
    if not exc.ambiguous:
        return exc
    return RetriableError(f"{VENDOR}: {what} failed; the note was not created",
                          ambiguous=False, retry_after=exc.retry_after, vendor=VENDOR,
                          status=exc.status, detail=exc.detail)


class ProductboardConnector:
    """Creates, finds and extends Productboard notes and reads and links features.

    Every method raises the :mod:`connectors.errors` tree: :class:`RetriableError` (5xx,
    timeouts, connection failures; ``RateLimitedError`` for 429, ``retry_after`` set),
    :class:`AuthError` (401/403), :class:`NotFoundError` (404), :class:`InvalidRequestError`
    (400/422, with Productboard's error codes and details; also for an id we refuse to send)
    and :class:`InvalidResponseError` for an answer it cannot read.
    """

    name = VENDOR

    def __init__(
        self,
        settings: ProductboardSettings,
        *,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Construction makes no network call. ``sleep`` is used between read retries."""
        self.settings = settings
        # Spaced evenly, no bursts: any burst on top of 50/s could exceed 50 in some second,
        # and Productboard advises spreading requests rather than bursting.
        self.limiter = limiter if limiter is not None else RateLimiter(
            max(1, round(settings.requests_per_second * 60)),
            burst_seconds=1.0 / settings.requests_per_second)
        self._base = settings.base_url
        self._session = build_session(VENDOR, settings.http, limiter=self.limiter, sleep=sleep)
        self._session.headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self._session.headers["Accept"] = "application/json"
        self._lock = threading.Lock()
        self._tags: dict[str, str] | None = None  # normalised name -> name, once read
        self._features: TtlCache[str, PBFeature | None] = TtlCache(
            settings.feature_cache_seconds, FEATURE_CACHE_SIZE)

    def close(self) -> None:
        """Close the HTTP session (its pooled connections)."""
        self._session.close()

    # -- notes ---------------------------------------------------------------------------------

    def create_note(self, note: NewNote) -> PBNote:
        """Create a text note: ONE ``POST /v2/notes`` when the customer and the tags exist.

        Raises ``RetriableError(ambiguous=True)`` when the note may have been created without
        Switchboard knowing its id (then :meth:`find_note` by ``note.record_id``), and
        ``InvalidRequestError`` for a note Productboard refuses (nothing created).
        """
        if not note.title.strip():
            raise InvalidRequestError(f"{VENDOR}: a note needs a title", vendor=VENDOR)
        if not note.record_id.strip():
            raise InvalidRequestError(f"{VENDOR}: a note needs a record id", vendor=VENDOR)
        tags: list[str] = []
        for tag in note.tags:  # once each, as Productboard compares them
            if tag.strip() and _normal(tag) not in {_normal(t) for t in tags}:
                tags.append(tag.strip())
        customer = self._customer(note)
        customer_created = tags_fixed = False
        for send in range(MAX_CREATE_SENDS):
            body = self._note_body(note, tags, customer)
            try:
                answer = self._call("POST", "/v2/notes", "create note", body=body)
            except InvalidResponseError as exc:
                raise self._unread_create(exc) from exc
            except (NotFoundError, InvalidRequestError) as exc:
                # Refused: nothing was created. A missing customer or tag can be fixed.
                if send + 1 >= MAX_CREATE_SENDS:
                    raise
                if MISSING_TAG in exc.detail and tags:
                    tags = self._fix_tags(tags, give_up=tags_fixed)
                    tags_fixed = True
                elif MISSING_CUSTOMER in exc.detail and customer is not None:
                    if customer_created:
                        log.warning("productboard: the customer of note %s is still unknown "
                                    "after creating it; creating the note without one",
                                    note.record_id)
                        customer = None
                    else:
                        self._create_customer(note)
                        customer_created = True
                else:
                    raise
                continue
            return self._created(answer, note, tags)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def find_note(self, record_id: str) -> PBNote | None:
        """The note whose ``metadata.source`` is (``source_system``, ``record_id``), or None.

        ``GET /v2/notes`` filtered by ``metadata[source][recordId]`` and ``[system]``, following
        ``links.next``; the filter is checked again on every item. Several matches: the oldest.
        """
        if not isinstance(record_id, str) or not record_id.strip():
            raise InvalidRequestError(f"{VENDOR}: invalid record id {record_id!r}",
                                      vendor=VENDOR)
        system = self.settings.source_system
        params = {"metadata[source][recordId]": record_id, "metadata[source][system]": system}
        what = "find note by record id"
        found: list[PBNote] = []
        for index, item in self._items("/v2/notes", what, params=params):
            if self._source_of(item) == (system, record_id):
                found.append(note_from_api(item, what, f"data[{index}]"))
        if not found:
            return None
        if len(found) > 1:
            log.warning("productboard: %d notes carry record id %s; using the oldest",
                        len(found), record_id)
        return min(found, key=lambda n: (n.created_at or _LATEST, n.id))

    def get_note(self, note_id: str) -> PBNote:
        """Read a note (``GET /v2/notes/{id}``); :class:`NotFoundError` if it does not exist."""
        what = f"get note {note_id}"
        answer = self._call("GET", f"/v2/notes/{_segment(note_id, 'note id')}", what)
        return note_from_api(object_at(answer, "data", "", what), what)

    def append_to_note(self, note_id: str, html: str, *, marker: str | None = None) -> PBNote:
        """Append ``html`` to a text note's content: a read, then ONE
        ``PATCH /v2/notes/{id}`` with ``{"op": "set", "path": "content"}``.

        When ``marker`` is given and the content already holds it, nothing is sent (an append
        whose answer was lost is not repeated). Raises :class:`NoteContentLockedError` when
        Productboard refuses the change (422: reported for notes linked to a feature).
        """
        if not html:
            raise InvalidRequestError(f"{VENDOR}: nothing to append", vendor=VENDOR)
        note = self.get_note(note_id)
        if note.type != "textNote":
            raise InvalidRequestError(f"{VENDOR}: note {note_id} is a {note.type}; only text "
                                      "notes can be appended to", vendor=VENDOR)
        if marker and marker in note.content:
            return note
        content = note.content + html
        body = {"data": {"patch": [{"op": "set", "path": "content", "value": content}]}}
        what = f"append to note {note_id}"
        try:
            answer = self._call("PATCH", f"/v2/notes/{_segment(note_id, 'note id')}", what,
                                body=body)
        except InvalidRequestError as exc:
            if exc.status == 422:
                raise NoteContentLockedError(
                    f"{VENDOR}: {what}: Productboard refused to change the content (notes "
                    "linked to a feature are reported to be locked)", vendor=VENDOR,
                    status=exc.status, detail=exc.detail) from exc
            raise
        data = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(data, dict) and isinstance(data.get("fields"), dict):
            return note_from_api(data, what)
        return PBNote(id=note.id, url=note.url, record_id=note.record_id, title=note.title,
                      content=content, tags=note.tags, source_system=note.source_system,
                      source_url=note.source_url, type=note.type, created_at=note.created_at,
                      updated_at=note.updated_at)

    # -- features ------------------------------------------------------------------------------

    def iter_features(self) -> Iterator[PBFeature]:
        """Every feature of the workspace (``GET /v2/entities?type[]=feature``, paged)."""
        what = "list features"
        for index, item in self._items("/v2/entities", what, params={"type[]": "feature"}):
            yield feature_from_api(item, what, f"data[{index}]")

    def find_feature(self, name: str) -> PBFeature | None:
        """The feature named ``name`` (case-insensitive, surrounding spaces ignored), or None;
        an unarchived one first.

        Pages through the features (:meth:`iter_features`) and keeps every name it saw for
        ``feature_cache_seconds``: a feature found may carry a status that old (read it with
        :meth:`get_feature`), and one created meanwhile is found once the entry expires.
        """
        wanted = _normal(name) if isinstance(name, str) else ""
        if not wanted:
            return None
        hit, cached = self._features.lookup(wanted)
        if hit:
            return cached
        by_name: dict[str, PBFeature] = {}
        for feature in self.iter_features():
            key = _normal(feature.name)
            if key not in by_name or (by_name[key].archived and not feature.archived):
                by_name[key] = feature
        for key, feature in by_name.items():
            self._features.put(key, feature)
        found = by_name.get(wanted)
        self._features.put(wanted, found)
        return found

    def get_feature(self, feature_id: str) -> PBFeature:
        """Read a feature (``GET /v2/entities/{id}``): its name, status and link.

        :class:`NotFoundError` if it does not exist; :class:`InvalidRequestError` if the entity
        is not a feature or subfeature.
        """
        what = f"get feature {feature_id}"
        answer = self._call("GET", f"/v2/entities/{_segment(feature_id, 'feature id')}", what)
        feature = feature_from_api(object_at(answer, "data", "", what), what)
        if feature.type not in FEATURE_TYPES:
            raise InvalidRequestError(f"{VENDOR}: entity {feature_id} is a {feature.type}, "
                                      "not a feature", vendor=VENDOR)
        return feature

    def link_note_to_feature(self, note_id: str, feature_id: str) -> None:
        """Link a note to a feature (an insight): ``POST /v2/notes/{id}/relationships``.

        Idempotent: when Productboard refuses the link (409/400/422) and the note is already
        linked to the feature, that is success.
        """
        path = f"/v2/notes/{_segment(note_id, 'note id')}/relationships"
        body = {"data": {"type": "link",
                         "target": {"id": _segment(feature_id, "feature id"), "type": "link"}}}
        what = f"link note {note_id} to feature {feature_id}"
        try:
            self._call("POST", path, what, body=body)
        except FatalError as exc:
            if isinstance(exc, AuthError | NotFoundError | InvalidResponseError):
                raise
            if feature_id in self.linked_feature_ids(note_id):
                return
            raise

    def linked_feature_ids(self, note_id: str) -> list[str]:
        """Ids of the entities a note is linked to (``GET /v2/notes/{id}/relationships``,
        link relationships only, paged)."""
        path = f"/v2/notes/{_segment(note_id, 'note id')}/relationships"
        what = f"list relationships of note {note_id}"
        ids: list[str] = []
        for index, item in self._items(path, what):
            if not isinstance(item, dict):
                raise InvalidResponseError(what, f"data[{index}] must be an object")
            if item.get("type") == "link":
                target = object_at(item, "target", f"data[{index}]", what)
                assert target is not None
                ids.append(required_str(target, "id", f"data[{index}].target", what))
        return ids

    # -- the note create, step by step -----------------------------------------------------

    @staticmethod
    def _customer(note: NewNote) -> dict[str, str] | None:
        if note.user_email and note.user_email.strip():
            return {"type": "user", "email": note.user_email.strip()}
        if note.company_domain and note.company_domain.strip():
            return {"type": "company", "domain": note.company_domain.strip()}
        return None

    def _note_body(self, note: NewNote, tags: list[str],
                   customer: dict[str, str] | None) -> dict[str, Any]:
        source: dict[str, str] = {"system": self.settings.source_system,
                                  "recordId": note.record_id}
        if note.source_url:
            source["url"] = note.source_url
        fields: dict[str, Any] = {"name": note.title, "content": note.content}
        if tags:
            fields["tags"] = [{"name": tag} for tag in tags]
        data: dict[str, Any] = {"type": "textNote", "fields": fields,
                                "metadata": {"source": source}}
        if customer is not None:
            data["relationships"] = [{"type": "customer", "target": customer}]
        return {"data": data}

    def _created(self, answer: Any, note: NewNote, tags: list[str]) -> PBNote:
        """The created note from the create answer: a reference ``{id, type, links}`` (built
        out with what was sent) or a full note. An answer without the id is ambiguous."""
        what = "create note"
        try:
            data = object_at(answer, "data", "", what)
            assert data is not None
            if isinstance(data.get("fields"), dict):
                return note_from_api(data, what)
            note_id = required_str(data, "id", "data", what)
            links = object_at(data, "links", "data", what, optional=True)
            url = optional_str(links, "html", "data.links", what)
        except InvalidResponseError as exc:
            raise self._unread_create(exc) from exc
        return PBNote(id=note_id, url=url, record_id=note.record_id, title=note.title,
                      content=note.content, tags=tuple(tags),
                      source_system=self.settings.source_system, source_url=note.source_url)

    @staticmethod
    def _unread_create(exc: InvalidResponseError) -> RetriableError:
        """A 2xx create answer that does not say which note was made: ambiguous."""
        return RetriableError(
            f"{VENDOR}: create note: the answer does not say which note was created "
            f"({exc.problem}); find it by record id before creating it again",
            ambiguous=True, vendor=VENDOR)

    def _create_customer(self, note: NewNote) -> None:
        """Create the note's user (by email) or company (by domain) as an entity."""
        if note.user_email and note.user_email.strip():
            email = note.user_email.strip()
            fields = {"email": email, "name": (note.user_name or "").strip() or email}
            data: dict[str, Any] = {"type": "user", "fields": fields}
        else:
            domain = (note.company_domain or "").strip()
            data = {"type": "company",
                    "fields": {"name": (note.company_name or "").strip() or domain,
                               "domain": domain}}
        what = f"create {data['type']}"
        try:
            self._call("POST", "/v2/entities", what, body={"data": data})
        except RetriableError as exc:
            raise _not_ambiguous(exc, what) from exc
        except FatalError as exc:
            if isinstance(exc, AuthError | InvalidResponseError):
                raise
            # E.g. created meanwhile by someone else: the next send tells.
            log.warning("productboard: %s for note %s failed: %s", what, note.record_id, exc)

    def _fix_tags(self, tags: list[str], *, give_up: bool) -> list[str]:
        """The tags to send again after a ``selectOption.notFound``: the workspace's spelling of
        the ones it has; the others created (``create_missing_tags``) or left off."""
        try:
            known = self._known_tags(refresh=True)
        except RetriableError as exc:
            raise _not_ambiguous(exc, "list tags") from exc
        kept: list[str] = []
        for tag in tags:
            existing = known.get(_normal(tag))
            if existing is not None:
                kept.append(existing)
            elif self.settings.create_missing_tags and not give_up:
                created = self._create_tag(tag)
                if created is not None:
                    kept.append(created)
            else:
                log.warning("productboard: tag %r is not in the workspace; left off the note",
                            tag)
        return kept

    def _known_tags(self, *, refresh: bool) -> dict[str, str]:
        with self._lock:
            if self._tags is not None and not refresh:
                return dict(self._tags)
        what = "list tags"
        names: dict[str, str] = {}
        for index, item in self._items(TAGS_PATH, what):
            fields = object_at(item, "fields", f"data[{index}]", what)
            assert fields is not None
            name = required_str(fields, "name", f"data[{index}].fields", what)
            names[_normal(name)] = name
        with self._lock:
            self._tags = dict(names)
        return names

    def _create_tag(self, tag: str) -> str | None:
        what = f"create tag {tag!r}"
        try:
            self._call("POST", TAGS_PATH, what, body={"data": {"fields": {"name": tag}}})
        except RetriableError as exc:
            raise _not_ambiguous(exc, what) from exc
        except FatalError as exc:
            if isinstance(exc, AuthError):
                raise
            if exc.status == 409:
                # Created meanwhile (another worker's note with the same new tag): it exists.
                log.info("productboard: %s: it exists already", what)
            else:
                log.warning("productboard: %s failed (%s); left off the note", what, exc)
                return None
        with self._lock:
            if self._tags is not None:
                self._tags[_normal(tag)] = tag
        return tag

    # -- HTTP ----------------------------------------------------------------------------------

    def _call(self, method: str, target: str, what: str, *, body: Any = None,
              params: Mapping[str, str] | None = None) -> Any:
        """Send one request (``target``: a path under the base URL, or a full ``links.next``)
        and decode its JSON answer (None for an empty one)."""
        url = target if target.startswith(("http://", "https://")) else self._base + target
        try:
            with translate_transport_errors(VENDOR, what):
                response = self._session.request(method, url, json=body, params=params)
                raw = response.content
        except ConnectorError as exc:
            _vendor_detail(exc)
            raise
        if response.status_code == 204 or not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise InvalidResponseError(what, "the answer is not JSON") from None

    def _items(self, path: str, what: str, *,
               params: Mapping[str, str] | None = None) -> Iterator[tuple[int, Any]]:
        """(index, item) of every item of a paged list, following ``links.next``."""
        target: str | None = path
        seen: set[str] = set()
        index = 0
        for page in range(MAX_PAGES):
            assert target is not None
            answer = self._call("GET", target, what, params=params if page == 0 else None)
            items, next_url = list_page(answer, what)
            for item in items:
                yield index, item
                index += 1
            if next_url is None:
                return
            if urlsplit(next_url).scheme and not next_url.startswith(self._base + "/"):
                # The token goes with every request: never to another origin.
                raise InvalidResponseError(what, f"links.next leaves {self._base}: "
                                                 f"{next_url[:80]!r}")
            if next_url in seen:
                raise InvalidResponseError(what, "links.next repeats a page already read")
            seen.add(next_url)
            target = next_url if urlsplit(next_url).scheme else self._base + next_url
        raise InvalidResponseError(what, f"more than {MAX_PAGES} pages")

    @staticmethod
    def _source_of(item: Any) -> tuple[Any, Any]:
        """(system, recordId) of a listed note's ``metadata.source``, leniently."""
        metadata = item.get("metadata") if isinstance(item, dict) else None
        source = metadata.get("source") if isinstance(metadata, dict) else None
        if not isinstance(source, dict):
            return None, None
        return source.get("system"), source.get("recordId")
