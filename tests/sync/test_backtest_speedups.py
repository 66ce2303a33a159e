"""The backtest's fast paths give exactly what the general code gives.

Each fast path is checked against the code it replaced (kept here as the reference) or against the
general path it bypasses, on many random inputs of every shape (seeded, so a failure repeats):
``format_time`` / ``parse_time``, ``diff_tickets``, ``ticket_context`` and the export reader's
quick ticket builder (``read_export`` against ``ticket_from_api``, malformed records included).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from connectors.models import Ticket, format_time, parse_time
from connectors.zendesk_records import ticket_from_api
from rules import Change
from sync.actions import MARKER_PREFIX
from sync.backtest import ProblemLog, TicketHistory, read_export
from sync.backtest import records as records_module
from sync.backtest.history import TicketEntry
from sync.processor import diff_tickets, ticket_context

FIELD_IDS = {"error_code": 360001, "product_area": 360002, "environment": 360006}
AGENT = "https://x.zendesk.com/"


def reference_format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reference_parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _norm(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return sorted(str(v) for v in value)
    return value


def _plain_tags(tags: Any) -> list[str]:
    return [t for t in (tags or ()) if not str(t).startswith(MARKER_PREFIX)]


def reference_diff_tickets(before: Ticket | None, after: Ticket) -> dict[str, Change]:
    old = before.to_dict() if before else {}
    new = after.to_dict()
    changes: dict[str, Change] = {}
    for key, value in new.items():
        if key in ("updated_at", "url") or key == "fields":
            continue
        was = old.get(key)
        if key == "tags":
            was, value = (_plain_tags(was) if was is not None else None, _plain_tags(value))
        if _norm(was) != _norm(value):
            changes[key] = Change(was, value)
    old_fields = old.get("fields") or {}
    for name in sorted(set(old_fields) | set(new["fields"])):
        if _norm(old_fields.get(name)) != _norm(new["fields"].get(name)):
            changes[f"fields.{name}"] = Change(old_fields.get(name), new["fields"].get(name))
    return changes


def _time_text(rng: random.Random) -> str:
    digits = "0123456789"
    shapes = [
        lambda: f"{rng.randint(1, 9999):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T"
                f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}Z",
        lambda: "".join(rng.choice(digits + "-T:Zz ") for _ in range(20)),
        lambda: f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00+02:00",
        lambda: f"2026-01-0{rng.randint(1, 9)}T10:00:00.{rng.randint(0, 999999):06d}Z",
        lambda: "2026-01-01T10:00:00z",
        lambda: " 2026-01-01T10:00:00Z",
        lambda: "2026-01-01 10:00:00Z",
        lambda: "0999-01-01T10:00:00Z",
        lambda: "2026-01-01",
    ]
    return rng.choice(shapes)()


def _outcome(fn: Any, value: Any) -> Any:
    try:
        return ("ok", fn(value))
    except (ValueError, TypeError, OverflowError) as exc:
        return ("error", type(exc), str(exc))


def test_parse_time_and_format_time_agree_with_the_general_code():
    rng = random.Random(3)
    for _ in range(10_000):
        text = _time_text(rng)
        got, want = _outcome(parse_time, text), _outcome(reference_parse_time, text)
        assert got == want, text
        if got[0] == "ok":
            assert got[1].tzinfo is UTC
            assert format_time(got[1]) == reference_format_time(got[1]), text
    for _ in range(10_000):
        at = datetime(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28),
                      rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                      rng.choice((0, rng.randint(0, 999_999))))
        zone = rng.choice((UTC, timezone(timedelta(hours=rng.randint(-12, 12)))))
        try:
            want = reference_format_time(at.replace(tzinfo=zone))
        except OverflowError:
            continue
        assert format_time(at.replace(tzinfo=zone)) == want
        assert format_time(at.replace(tzinfo=zone)) == want  # remembered: the same again
    for value in (None, "", 1_700_000_000, 1.5, datetime(2026, 1, 1), True, [1]):
        assert _outcome(parse_time, value) == _outcome(reference_parse_time, value)


def _value(rng: random.Random) -> Any:
    return rng.choice((None, "", "a", "A", "b", 1, 1.0, True, 0, ["x", "y"], ["y", "x"],
                       [1], [1.0], ("x",), {"k": 1}))


def _random_ticket(rng: random.Random, base: Ticket | None = None) -> Ticket:
    def pick(name: str, fresh: Any) -> Any:
        if base is not None and rng.random() < 0.7:
            return getattr(base, name)
        return fresh

    created = rng.choice((None, datetime(2026, 1, 1, tzinfo=UTC),
                          datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
                          datetime(2026, 1, 2, tzinfo=UTC),
                          datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC)))
    tags = tuple(rng.sample(("a", "b", "B", f"{MARKER_PREFIX}x", "c"), rng.randint(0, 4)))
    if rng.random() < 0.05:
        tags = (*tags, 1)  # type: ignore[assignment]
    fields = {name: _value(rng) for name in rng.sample(("error_code", "product_area", "env"),
                                                       rng.randint(0, 3))}
    return Ticket(
        id=pick("id", rng.choice((1, 2))),
        updated_at=datetime(2026, 2, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 9)),
        created_at=pick("created_at", created),
        subject=pick("subject", rng.choice(("", "s", "S", "t"))),
        description=pick("description", rng.choice(("", "d"))),
        status=pick("status", rng.choice((None, "open", "solved"))),
        priority=pick("priority", _value(rng)),
        type=pick("type", rng.choice((None, "task"))),
        tags=pick("tags", tags),
        requester_id=pick("requester_id", rng.choice((None, 1, 2))),
        organization_id=pick("organization_id", rng.choice((None, 1, 1.0))),
        assignee_id=pick("assignee_id", rng.choice((None, 3))),
        group_id=pick("group_id", rng.choice((None, 4, [4]))),
        custom_fields=fields if base is None or rng.random() < 0.5 else base.custom_fields,
        url=rng.choice((None, "u")),
    )


def test_diff_tickets_and_ticket_context_agree_with_the_to_dict_code():
    rng = random.Random(5)
    for _ in range(10_000):
        before = _random_ticket(rng) if rng.random() < 0.8 else None
        after = _random_ticket(rng, before)
        got = diff_tickets(before, after)
        want = reference_diff_tickets(before, after)
        assert list(got.items()) == list(want.items()), (before, after)
        ctx = ticket_context(after, "ticket.updated", got, {}, source="poll", now=None,
                             custom_fields=("error_code", "environment"))
        ticket = after.to_dict()
        ticket["fields"] = {**dict.fromkeys(("error_code", "environment")), **ticket["fields"]}
        assert dict(ctx.ticket) == ticket
        assert list(ctx.ticket) == list(ticket) and list(ctx.ticket["fields"]) == list(
            ticket["fields"])


def _record(rng: random.Random, ticket_id: int) -> Any:
    def odd(usual: Any, *others: Any) -> Any:
        return rng.choice(others) if rng.random() < 0.08 else usual

    record: dict[str, Any] = {
        "id": odd(ticket_id, str(ticket_id), -1, 0, True, None, 1.5, "x"),
        "updated_at": odd("2026-01-01T10:00:00Z", "2026-01-01T10:00:00+02:00", 1_700_000_000,
                          "2026-13-01T10:00:00Z", "yesterday", ["x"]),
        "created_at": odd("2025-12-31T10:00:00Z", None, "", "2025-12-31", 5, "bad", {}),
        "subject": odd("Hello", None, "", 5, ["a"]),
        "raw_subject": odd("Raw", None, 7),
        "description": odd("text", None, 0, False),
        "status": odd("Open", None, "", 3, False, "SOLVED"),
        "priority": odd("high", None, 0, ["x"]),
        "type": odd(None, "Task", 1),
        "tags": odd(["a", "B"], [], None, "a b", ["a", 1], 5, ("a",), {"a": 1}),
        "requester_id": odd(10, None, -3, "12", True, 0, 1.5),
        "organization_id": odd(None, 20, "x"),
        "assignee_id": odd(3, None, False),
        "group_id": odd(4, None, "4"),
        "custom_fields": odd([{"id": 360001, "value": rng.choice(("E1", None, "", 0))},
                              {"id": 360006, "value": ["a"]}, {"id": 999, "value": 1},
                              {"id": 360002}],
                             [], None, {}, "x", [1], [{"id": "360001", "value": "E2"}],
                             [{"value": 2}], [{"id": 360002.0, "value": 3}],
                             [{"id": True, "value": 4}]),
    }
    if rng.random() < 0.1:
        del record["custom_fields"]
        record["fields"] = [{"id": 360002, "value": "billing"}]
    for key in rng.sample(list(record), rng.randint(0, 2)):
        if key != "id" or rng.random() < 0.1:
            del record[key]
    return record


def _general(record: dict[str, Any]) -> Any:
    """What reading one record must give: ``ticket_from_api``'s ticket, or the problem."""
    if "id" not in record:
        return "no 'id'"
    if record.get("updated_at") in (None, ""):
        return f"ticket {record.get('id')!r}: no 'updated_at'"
    try:
        return ticket_from_api(record, field_ids=FIELD_IDS, agent_url_base=AGENT)
    except (ValueError, TypeError, OverflowError, OSError, KeyError) as exc:
        return f"ticket {record.get('id')!r}: {exc}"


@pytest.mark.parametrize("shape", ["jsonl", "json", "jsonl, parse stage"])
def test_the_export_reader_builds_exactly_what_ticket_from_api_builds(
        tmp_path: Path, shape: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(records_module, "KEEP_PROBLEMS", 10_000)  # keep every message
    rng = random.Random(12 if shape == "json" else 11)
    records = [_record(rng, n) for n in range(1, 3001)]
    if shape.startswith("jsonl"):
        path = tmp_path / "export.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        path = tmp_path / "export.json"
        path.write_text(json.dumps(records), encoding="utf-8")
    problems = ProblemLog()
    got = list(read_export(path, field_ids=FIELD_IDS, agent_url_base=AGENT, problems=problems,
                           parse_stage="stage" in shape))
    want = [_general(r) for r in records]
    assert got == [w for w in want if isinstance(w, Ticket)]
    assert sum(isinstance(w, Ticket) for w in want) > 1000
    where = "record" if shape == "json" else "line"
    expected = [(f"{where} {n}", w) for n, w in enumerate(want, 1) if isinstance(w, str)]
    assert problems.count == len(expected) > 100
    assert [(p.where, p.message) for p in problems.kept] == expected
    assert problems.kinds["malformed record"] > 100


def test_the_ticket_history_remembers_like_a_dict_whatever_the_order_of_ids(tmp_path: Path):
    rng = random.Random(17)
    model: dict[int, TicketEntry] = {}
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with TicketHistory(cache=50, directory=tmp_path) as history:
        for step in range(20_000):
            # Mostly new, growing ids (as Zendesk's), some old ones, some odd ones.
            ticket_id = rng.choice((step + 1_000, step + 1_000, rng.randint(1, step + 1_000),
                                    rng.randint(-5, 5)))
            if rng.random() < 0.5:
                got = history.get(ticket_id)
                want = model.get(ticket_id)
                assert (got is None) == (want is None), ticket_id
                if got is not None and want is not None:
                    assert got.ticket.to_dict() == want.ticket.to_dict()
                    assert got.links == want.links
            else:
                entry = TicketEntry(Ticket(ticket_id, at + timedelta(seconds=step),
                                           tags=(f"t{step}",)), ((f"pending:{step}",),))
                history.put(ticket_id, entry)
                model[ticket_id] = entry
        assert history.spilled > 5_000
        for ticket_id, want in model.items():
            got = history.get(ticket_id)
            assert got is not None and got.links == want.links, ticket_id
