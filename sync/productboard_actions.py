"""``productboard.note``: feedback for product, one Productboard note per ticket.

The note's source record (``metadata.source.recordId``) is ``zendesk-<ticket>-<rule>``: the
ticket and the rule that created it. The store keeps each ticket's note
(``productboard_notes``), so:

1. a later ``productboard.note`` intent for the same ticket (a comment a rule selects, by the
   same rule or another) appends to the note instead of creating another; each append carries
   the intent's reference
   (``switchboard ref <key>``), looked for in the note before appending again after an
   ambiguous failure;
2. a create that may have been sent (``create_sent`` in the intent's progress) is looked up by
   its record id before creating again, so a retried or ambiguous create is found, not
   duplicated;
3. a note deleted in Productboard meanwhile is created again (with this event's words),
   linked to the feature the deleted one was linked to;
4. the rule that created the note, matching again with no comment (an update decided before
   its first note landed), appends nothing: the note quotes the ticket already.

Text from tickets is data: everything put into the note's HTML is escaped.
"""

from __future__ import annotations

__all__ = ["NOTE", "note_html", "productboard_note", "record_id"]

import html
import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from connectors.errors import ConfigurationError, FatalError, NotFoundError
from connectors.productboard import NewNote, NoteContentLockedError, PBFeature, PBNote
from sync.actions import ActionContext, ActionOutcome
from sync.links import add_link
from sync.productboard_events import record_feature
from sync.schema import productboard_notes
from sync.store import utcnow

log = logging.getLogger("switchboard.actions")

NOTE = "productboard.note"
MARKER_TAG_PREFIX = "switchboard_"


def record_id(ticket_id: int, rule_id: str) -> str:
    """The note's source record: the ticket and the rule that sent it."""
    return f"zendesk-{ticket_id}-{rule_id}"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _escape(text: str) -> str:
    """Text as HTML text: ``<``, ``>`` and ``&`` escaped (quotes need not be, outside
    attributes)."""
    return html.escape(text, quote=False)


def _quote(text: str) -> str:
    paragraphs = [_escape(p.strip()) for p in text.split("\n\n") if p.strip()]
    body = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f"<blockquote>{body or '<p>(no text)</p>'}</blockquote>"


def _words(context: Mapping[str, Any]) -> tuple[str, str]:
    """What the customer said for this event, and what it is: the event's comment when it has
    one, else the ticket's description."""
    comment = context.get("comment")
    if isinstance(comment, Mapping) and _text(comment.get("body")):
        return _text(comment.get("body")), "comment"
    ticket = context.get("ticket") or {}
    return _text(ticket.get("description")), "description"


def note_html(context: Mapping[str, Any], params: Mapping[str, Any], *, rule_id: str,
              ref: str) -> str:
    """The note's content: the customer's words, the agent's summary, where it came from."""
    ticket = context.get("ticket") or {}
    words, _ = _words(context)
    who = ", ".join(x for x in (_text(params.get("user_name")), _text(params.get("company")))
                    if x)
    return (f"<p><b>Customer{f' ({_escape(who)})' if who else ''}:</b></p>" + _quote(words)
            + _tail(ticket, params, rule_id, ref))


def _append_html(context: Mapping[str, Any], params: Mapping[str, Any], *, rule_id: str,
                 ref: str) -> str:
    ticket = context.get("ticket") or {}
    words, kind = _words(context)
    comment = context.get("comment") or {}
    when = _text(comment.get("created_at")) if kind == "comment" else ""
    head = f"Later {kind}{f' ({_escape(when)})' if when else ''}"
    return f"<hr><p><b>{head}:</b></p>" + _quote(words) + _tail(ticket, params, rule_id, ref)


def _tail(ticket: Mapping[str, Any], params: Mapping[str, Any], rule_id: str, ref: str) -> str:
    """The agent's summary (when given), then where the words came from."""
    summary = _text(params.get("summary"))
    return (f"<p><b>Agent's summary:</b> {_escape(summary)}</p>" if summary else "") + \
        _footer(ticket, rule_id, ref)


def _footer(ticket: Mapping[str, Any], rule_id: str, ref: str) -> str:
    ticket_id = html.escape(str(ticket.get("id", "?")))
    url = _text(ticket.get("url"))
    link = (f'<a href="{html.escape(url, quote=True)}">Zendesk ticket #{ticket_id}</a>'
            if url else f"Zendesk ticket #{ticket_id}")
    return (f"<p><i>{link} · rule {html.escape(rule_id)} · "
            f"switchboard ref {html.escape(ref)}</i></p>")


def note_tags(ticket_tags: Any, params: Mapping[str, Any]) -> list[str]:
    """The note's tags: the ticket's (mapped through ``tag_map`` when it is given; Switchboard's
    marker tags never), then the rule's own ``tags``; each once, in order."""
    tag_map: Mapping[str, str] = params.get("tag_map") or {}
    out: list[str] = []
    for tag in ticket_tags or ():
        tag = str(tag)
        if tag_map:
            mapped = tag_map.get(tag)
            if mapped:
                out.append(mapped)
        elif not tag.startswith(MARKER_TAG_PREFIX):
            out.append(tag)
    out.extend(str(t) for t in params.get("tags") or ())
    return list(dict.fromkeys(out))


def _stored(ctx: ActionContext, ticket_id: int) -> Mapping[str, Any] | None:
    """The ticket's note: the first one any rule created for it."""
    with ctx.store.read() as conn:
        row = conn.execute(sa.select(productboard_notes)
                           .where(productboard_notes.c.ticket_id == ticket_id)
                           .order_by(productboard_notes.c.id)).mappings().first()
    return dict(row) if row is not None else None


def productboard_note(ctx: ActionContext) -> ActionOutcome:
    """Create the ticket's note (once), or append this event's words to it (once)."""
    if ctx.productboard is None:
        raise ConfigurationError("productboard.note needs connectors.productboard")
    item, params, context = ctx.item, ctx.params, ctx.item.context
    ticket = context.get("ticket") or {}
    ticket_id = int(item.ticket_id if item.ticket_id is not None else ticket.get("id") or 0)
    record = record_id(ticket_id, item.rule_id)
    ref = item.idem_key[:12]
    row = _stored(ctx, ticket_id)
    if row is not None and ref in (row["appended"] or []):
        return ActionOutcome(_result(row, created=False, appended=False))
    if row is not None and row["record_id"] == record and _words(context)[1] == "description":
        # The rule that sent the ticket sends it again with no new words (an update decided
        # before its first note landed): the note holds them already.
        log.info("intent %s: ticket %s is in Productboard note %s already; nothing new to "
                 "append", item.id, ticket_id, row["note_id"])
        return ActionOutcome(_result(row, created=False, appended=False))
    if row is not None:
        appended = _append(ctx, row, context, params, ref)
        if appended is not None:
            return appended
    # A note deleted in Productboard is created again under its first record id.
    return _create(ctx, row["record_id"] if row is not None else record, ticket_id, context,
                   params, ref, replaces=row)


def _append(ctx: ActionContext, row: Mapping[str, Any], context: Mapping[str, Any],
            params: Mapping[str, Any], ref: str) -> ActionOutcome | None:
    """Append to the stored note; None when Productboard no longer has it.

    The connector reads the note first and sends nothing when this intent's reference is
    already in it (an append whose answer was lost). A note Productboard will not let change
    (linked to a feature) gets the words as a follow-up note of its own instead.
    """
    note_id = str(row["note_id"])
    try:
        ctx.productboard.append_to_note(
            note_id, _append_html(context, params, rule_id=ctx.item.rule_id, ref=ref),
            marker=f"switchboard ref {ref}")
    except NotFoundError:
        log.warning("Productboard note %s (%s) is gone; creating it again", note_id,
                    row["record_id"])
        return None
    except NoteContentLockedError:
        follow_up = _follow_up(ctx, row, context, params, ref)
        return _appended(row, ref, follow_up=follow_up)
    return _appended(row, ref)


def _draft(context: Mapping[str, Any], params: Mapping[str, Any], ticket_id: int, record: str,
           content: str, *, tags: Any, suffix: str = "") -> NewNote:
    """A note for the ticket: its title, the user and company, the link back, ``content``."""
    ticket = context.get("ticket") or {}
    title = _text(params.get("title")) or f"Zendesk ticket #{ticket_id}"
    return NewNote(title=f"{title}{suffix}", content=content, record_id=record,
                   source_url=_text(ticket.get("url")) or None,
                   user_email=_text(params.get("user_email")) or None,
                   user_name=_text(params.get("user_name")) or None,
                   company_name=_text(params.get("company")) or None, tags=tuple(tags))


def _follow_up(ctx: ActionContext, row: Mapping[str, Any], context: Mapping[str, Any],
               params: Mapping[str, Any], ref: str) -> str:
    """A note of its own for words the ticket's note cannot take (its content is locked)."""
    record = f"{row['record_id']}-{ref}"
    note = ctx.productboard.find_note(record) if ctx.progress.get("follow_up_sent") else None
    if note is None:
        ctx.save_progress(follow_up_sent=True)
        note = ctx.productboard.create_note(_draft(
            context, params, int(row["ticket_id"]), record,
            _append_html(context, params, rule_id=ctx.item.rule_id, ref=ref),
            tags=row["tags"] or (), suffix=" (follow-up)"))  # the ticket's note's tags
    if row["feature_id"]:
        # Where product reads it: the feature the ticket's note is an insight of. Also when
        # the note was found again (linking it may be what failed; linking twice is a no-op).
        _link(ctx, note.id, str(row["feature_id"]))
    log.info("Productboard note %s is locked; the ticket's later words went to note %s",
             row["note_id"], note.id)
    return str(note.id)


def _appended(row: Mapping[str, Any], ref: str, *, follow_up: str | None = None
              ) -> ActionOutcome:
    appended = [*(row["appended"] or []), ref]

    def commit(conn: sa.Connection) -> None:
        conn.execute(productboard_notes.update()
                     .where(productboard_notes.c.id == row["id"])
                     .values(appended=appended, updated_at=utcnow()))

    result = _result(row, created=False, appended=True)
    if follow_up is not None:
        result["follow_up"] = follow_up
    return ActionOutcome(result, commit)


def _create(ctx: ActionContext, record: str, ticket_id: int, context: Mapping[str, Any],
            params: Mapping[str, Any], ref: str,
            replaces: Mapping[str, Any] | None) -> ActionOutcome:
    pb = ctx.productboard
    ticket = context.get("ticket") or {}
    created = ctx.progress.get("created")
    note: PBNote | None = None
    if isinstance(created, dict):
        # Created by an earlier attempt that failed later (linking the feature): not again.
        note = PBNote(id=str(created["id"]), url=created.get("url"), record_id=record,
                      title="", content="", tags=tuple(created.get("tags") or ()))
    elif ctx.progress.get("create_sent"):
        # A create may have landed (ambiguous failure, or a crash before its record): find it.
        note = pb.find_note(record)
    if note is not None and replaces is not None and note.id == str(replaces["note_id"]):
        note = None  # the deleted one, still listed
    if note is None:
        draft = _draft(context, params, ticket_id, record,
                       note_html(context, params, rule_id=ctx.item.rule_id, ref=ref),
                       tags=note_tags(ticket.get("tags"), params))
        ctx.save_progress(create_sent=True)
        note = pb.create_note(draft)
    if not isinstance(created, dict):
        ctx.save_progress(created={"id": note.id, "url": note.url, "tags": list(note.tags)})
    feature = _link_feature(ctx, note.id, _text(params.get("feature")))
    feature_id = feature.id if feature is not None else None
    if replaces is not None and replaces["feature_id"] and not _text(params.get("feature")) \
            and _link(ctx, note.id, str(replaces["feature_id"])):
        # The note created again is an insight of the feature the ticket follows (its link
        # and the feature's status are recorded already).
        feature_id = str(replaces["feature_id"])
    now = utcnow()
    values = {"ticket_id": ticket_id, "rule_id": ctx.item.rule_id, "record_id": record,
              "note_id": note.id, "url": note.url, "feature_id": feature_id,
              "requester_email": _text(params.get("user_email")) or None,
              "organization": _text(params.get("company")) or None,
              "tags": list(note.tags) if note.tags else note_tags(ticket.get("tags"), params),
              "appended": [], "created_at": now, "updated_at": now}

    def commit(conn: sa.Connection) -> None:
        if replaces is not None:
            conn.execute(productboard_notes.delete()
                         .where(productboard_notes.c.id == replaces["id"]))
        conn.execute(productboard_notes.insert().values(**values))
        if feature is not None:
            # The ticket follows the feature: its status changes reach the ticket's rules
            # (``sync.productboard_events``).
            add_link(conn, ticket_id, "productboard", feature.id, feature.url)
            record_feature(conn, feature)

    return ActionOutcome({"note": note.id, "url": note.url, "created": True, "appended": False,
                          "feature": feature_id, "record": record}, commit)


def _link_feature(ctx: ActionContext, note_id: str, name: str) -> PBFeature | None:
    """Link the note to the feature ``name`` names; None when none is named or known (or it
    is gone)."""
    if not name:
        return None
    feature: PBFeature | None = ctx.productboard.find_feature(name)
    if feature is None:
        log.warning("intent %s: Productboard has no feature named %r; note %s not linked",
                    ctx.item.id, name, note_id)
        return None
    return feature if _link(ctx, note_id, feature.id) else None


def _link(ctx: ActionContext, note_id: str, feature_id: str) -> bool:
    """Link a note to a feature; False (logged) when Productboard no longer has the feature
    (deleted since the feature list was read): the note stays, unlinked, like one naming an
    unknown feature."""
    try:
        ctx.productboard.link_note_to_feature(note_id, feature_id)
    except FatalError as exc:
        # Gone (404), or refused for good (403, 4xx): the note is kept and recorded, unlinked;
        # a failure worth retrying (5xx, 429, timeout) is retried — the note is not created
        # again (its id is in the intent's progress).
        log.warning("intent %s: Productboard note %s not linked to feature %s: %s",
                    ctx.item.id, note_id, feature_id, exc)
        return False
    return True


def _result(row: Mapping[str, Any], *, created: bool, appended: bool) -> dict[str, Any]:
    return {"note": row["note_id"], "url": row["url"], "created": created,
            "appended": appended, "feature": row["feature_id"], "record": row["record_id"]}
