"""The ``backtest`` and ``diff`` commands: open the history, run, print, write the reports.

``main.py`` parses the command line and calls :func:`run_backtest` / :func:`run_diff`, which
return the exit status:

- backtest: 0 done; 1 invalid rules (``--rules``); 2 bad input (unreadable, empty or non-JSON
  export, no valid record, bad ``--since``); 4 the history could not be read to the end (a
  vendor error during ``--since``, a JSON document broken halfway) — the figures printed and
  written are marked INCOMPLETE.
- diff: 0 done (1 with ``--exit-code`` when a decision changed); 2 bad input (a side that cannot
  be loaded, or as above); 4 incomplete, as above.
"""

from __future__ import annotations

__all__ = ["EXIT_BAD_INPUT", "EXIT_INCOMPLETE", "HistoryOptions", "run_backtest", "run_diff"]

import csv
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from connectors.models import Ticket, parse_time
from rules import RuleSet
from rules.model import Mode, condition_fields
from sync.config import LoadedConfig

from .records import InputError, ProblemLog, read_export, read_incremental
from .rulediff import (
    CHANGE_COLUMNS,
    DecisionChange,
    change_row,
    diff_rules,
    render_diff,
    render_diff_markdown,
)
from .rulesets import SideError, load_side
from .run import ProgressBar, backtest
from .summary import render_csv, render_markdown, render_table

EXIT_CHANGED = 1
EXIT_INVALID_RULES = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 4


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """Where the history comes from (exactly one of ``export`` and ``since``) and how to show it.

    ``since`` is an ISO-8601 date or time (UTC unless it says otherwise) or unix seconds.
    """

    export: str | None = None
    since: str | None = None
    progress: bool = True
    temp_dir: str | None = None


class _History:
    """The opened history: its tickets, its description, and its start (``--since``)."""

    def __init__(self, tickets: Iterator[Ticket], source: str, start: datetime | None,
                 problems: ProblemLog) -> None:
        self.tickets = tickets
        self.source = source
        self.start = start
        self.problems = problems


def _people_fields(config: LoadedConfig) -> dict[str, tuple[str, ...]]:
    """The user and organization field keys rules may name (as the config configures them)."""
    zendesk = config.app.connectors.zendesk
    return {"user_fields": tuple(zendesk.user_fields),
            "organization_fields": tuple(zendesk.organization_fields)}


def _warn_unreplayable(rules: RuleSet, err: TextIO) -> None:
    """Say which rules a history of ticket records cannot judge as live would: it carries no
    requester, organization or comments (they read as null here)."""
    for rule in rules:
        if rule.mode is Mode.OFF:
            continue
        blind = sorted(f for f in condition_fields(rule.condition)
                       if f.startswith(("requester.", "organization.", "comment.")))
        comments = "ticket.comment_added" in rule.on
        if blind or comments:
            what = ", ".join(blind) if blind else "ticket.comment_added"
            print(f"warning: rule {rule.id} reads {what}, which a history of ticket records "
                  "does not carry (null here): its backtest figures can differ from live",
                  file=err)


def _agent_base(config: LoadedConfig) -> str:
    zendesk = config.app.connectors.zendesk
    return zendesk.base_url or f"https://{zendesk.subdomain}.zendesk.com"


def _parse_since(text: str) -> datetime:
    value: Any = int(text) if text.strip().isdigit() else text
    try:
        parsed = parse_time(value)
    except (ValueError, OverflowError, OSError) as exc:
        raise InputError(f"--since {text!r}: not a date (e.g. 2026-01-31 or "
                         f"2026-01-31T08:00:00Z): {exc}") from exc
    if parsed is None:
        raise InputError(f"--since {text!r}: not a date")
    return parsed


def _open(config: LoadedConfig, options: HistoryOptions, bar: ProgressBar) -> _History:
    """Raises :class:`InputError` for what cannot be read at all."""
    problems = ProblemLog()
    zendesk = config.app.connectors.zendesk
    if options.export is not None:
        tickets = read_export(options.export, field_ids=dict(zendesk.custom_fields),
                              agent_url_base=_agent_base(config), problems=problems,
                              progress=bar.bytes_read)
        return _History(tickets, options.export, None, problems)
    assert options.since is not None
    since = _parse_since(options.since)
    if config.app.sandbox.enabled:
        raise InputError(f"{config.path.name}: sandbox.enabled is true, so there is no Zendesk "
                         "account to export from; use a config whose connectors.zendesk "
                         "points at your account, or --export FILE")
    from connectors.zendesk import ZendeskConnector

    connector = ZendeskConnector(zendesk)
    tickets = read_incremental(connector, since, progress=bar.records_read)
    return _History(tickets, f"Zendesk incremental export since {options.since} "
                    f"({_agent_base(config)})", since, problems)


def _total(options: HistoryOptions) -> int | None:
    if options.export is None:
        return None
    try:
        return Path(options.export).stat().st_size
    except OSError:
        return None


def _write(path: str | None, text: str, err: TextIO) -> bool:
    if path is None:
        return True
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"{path}: cannot write: {exc}", file=err)
        return False
    return True


def _empty(records: int, problems: ProblemLog, source: str) -> str | None:
    if records:
        return None
    if problems.count:
        return (f"{source}: no valid ticket record ({problems.count} malformed; first: "
                f"{problems.kept[0]})")
    return f"{source}: the export holds no ticket records"


def run_backtest(config: LoadedConfig, options: HistoryOptions, *, rules_spec: str | None,
                 report: str | None, csv_path: str | None,
                 out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``switchboard backtest``; returns the exit status (see the module docstring)."""
    out = out or sys.stdout
    err = err or sys.stderr
    custom_fields = tuple(config.app.connectors.zendesk.custom_fields)
    rules, rules_source = config.rules, f"{config.path.name} (rules: and rules_dir)"
    if rules_spec is not None:
        try:
            side = load_side(rules_spec, config_path=config.path, custom_fields=custom_fields,
                             **_people_fields(config))
        except SideError as exc:
            print(str(exc), file=err)
            return EXIT_INVALID_RULES
        rules, rules_source = side.rules, side.label
    _warn_unreplayable(rules, err)
    bar = ProgressBar(options.progress, total=_total(options))
    try:
        history = _open(config, options, bar)
        with bar:
            summary = backtest(rules, history.tickets, custom_fields=custom_fields,
                               rules_source=rules_source, history_source=history.source,
                               start=history.start, temp_dir=options.temp_dir,
                               problems=history.problems)
    except InputError as exc:
        print(str(exc), file=err)
        return EXIT_BAD_INPUT
    empty = _empty(summary.records, summary.problems, history.source) \
        if summary.complete else None
    if empty:
        print(empty, file=err)
        return EXIT_BAD_INPUT
    console = Console(file=out, width=160)
    for line in summary.headline():
        console.print(line, markup=False, highlight=False)
    console.print(render_table(summary))
    written = _write(report, render_markdown(summary), err) and \
        _write(csv_path, render_csv(summary), err)
    if not summary.complete:
        print(f"INCOMPLETE: {summary.stopped}", file=err)
        return EXIT_INCOMPLETE
    return 0 if written else EXIT_BAD_INPUT


def run_diff(config: LoadedConfig, options: HistoryOptions, *, old: str, new: str,
             report: str | None, csv_path: str | None, limit: int, exit_code: bool,
             out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``switchboard diff``; returns the exit status (see the module docstring)."""
    out = out or sys.stdout
    err = err or sys.stderr
    custom_fields = tuple(config.app.connectors.zendesk.custom_fields)
    try:
        sides = [load_side(spec, config_path=config.path, custom_fields=custom_fields,
                           **_people_fields(config))
                 for spec in (old, new)]
    except SideError as exc:
        print(str(exc), file=err)
        return EXIT_BAD_INPUT
    bar = ProgressBar(options.progress, total=_total(options), description="diff")
    with ExitStack() as stack:
        on_change: Callable[[DecisionChange], None] | None = None
        if csv_path is not None:
            try:
                handle = stack.enter_context(open(csv_path, "w", encoding="utf-8",
                                                  newline=""))
            except OSError as exc:
                print(f"{csv_path}: cannot write: {exc}", file=err)
                return EXIT_BAD_INPUT
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(CHANGE_COLUMNS)

            def on_change(change: DecisionChange) -> None:
                writer.writerow(change_row(change))
        try:
            history = _open(config, options, bar)
            with bar:
                summary = diff_rules(sides[0], sides[1], history.tickets,
                                     custom_fields=custom_fields,
                                     history_source=history.source, start=history.start,
                                     temp_dir=options.temp_dir, problems=history.problems,
                                     on_change=on_change)
        except InputError as exc:
            print(str(exc), file=err)
            return EXIT_BAD_INPUT
    empty = _empty(summary.records, summary.problems, history.source) \
        if summary.complete else None
    if empty:
        print(empty, file=err)
        return EXIT_BAD_INPUT
    print(render_diff(summary, limit=limit), file=out)
    if not _write(report, render_diff_markdown(summary), err):
        return EXIT_BAD_INPUT
    if not summary.complete:
        print(f"INCOMPLETE: {summary.stopped}", file=err)
        return EXIT_INCOMPLETE
    return EXIT_CHANGED if exit_code and summary.changed else 0
