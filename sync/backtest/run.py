"""Running a backtest: a history of records through :class:`~.replay.Replay`, into a summary.

The history is any iterable of :class:`~connectors.models.Ticket` (see :mod:`.records`); an
:class:`~.records.IncompleteHistory` it raises ends the run with the summary marked incomplete
(never presented as complete). A progress bar on stderr can follow the run.
"""

from __future__ import annotations

__all__ = ["ProgressBar", "backtest", "replay"]

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from connectors.models import Ticket
from rules import RuleSet

from .history import TicketHistory
from .records import IncompleteHistory, ProblemLog
from .replay import Matcher, Replay, ReplayEvent, Skip
from .summary import BacktestSummary, Tally


class ProgressBar:
    """A rich progress bar on stderr: by bytes for a file (``total``), by records otherwise.

    Disabled (every method a no-op) when ``enabled`` is false; callers pass
    ``stderr.isatty() and not --no-progress``.
    """

    def __init__(self, enabled: bool, *, total: int | None = None,
                 description: str = "backtest") -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if not enabled:
            return
        console = Console(stderr=True)
        columns = [TextColumn("[bold]{task.description}"), BarColumn()]
        if total is not None:
            columns += [DownloadColumn(), TimeRemainingColumn()]
        else:
            columns += [TextColumn("{task.fields[status]}")]
        self._progress = Progress(*columns, TimeElapsedColumn(), console=console,
                                  transient=False)
        self._task = self._progress.add_task(description, total=total, status="")

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def bytes_read(self, position: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=position)

    def records_read(self, count: int, latest: datetime | None) -> None:
        if self._progress is not None and self._task is not None:
            status = f"{count:,} ticket(s)" + (f", up to {latest:%Y-%m-%d %H:%M}"
                                               if latest else "")
            self._progress.update(self._task, status=status)


def replay(rule_sets: Sequence[RuleSet], tickets: Iterable[Ticket], *,
           custom_fields: Sequence[str], start: datetime | None = None,
           evaluator: Matcher | None = None, temp_dir: str | Path | None = None,
           ) -> Iterator[tuple[Ticket, ReplayEvent | Skip]]:
    """Each record of ``tickets`` with what it made, decided against every rule set.

    The per-ticket state lives in a temporary file that is removed when the iteration ends.
    """
    with TicketHistory(directory=temp_dir) as history:
        run = Replay(rule_sets, custom_fields=custom_fields, history=history, start=start,
                     evaluator=evaluator)
        for ticket in tickets:
            yield ticket, run.feed(ticket)


def backtest(rules: RuleSet, tickets: Iterable[Ticket], *, custom_fields: Sequence[str],
             rules_source: str, history_source: str, start: datetime | None = None,
             evaluator: Matcher | None = None, temp_dir: str | Path | None = None,
             problems: ProblemLog | None = None,
             on_event: Callable[[ReplayEvent], None] | None = None) -> BacktestSummary:
    """Decide every record of ``tickets`` with ``rules``; the per-rule summary.

    ``problems`` is the log the reader of ``tickets`` records malformed records in (it ends up
    in the summary). ``on_event`` sees every event (tests compare it with live processing).
    Never writes to a vendor; an :class:`IncompleteHistory` from ``tickets`` marks the summary
    incomplete.
    """
    summary = BacktestSummary(rules_source, history_source, Tally(rules),
                              problems=problems if problems is not None else ProblemLog())
    began = time.perf_counter()
    with TicketHistory(directory=temp_dir) as history:
        run = Replay([rules], custom_fields=custom_fields, history=history, start=start,
                     evaluator=evaluator)
        try:
            for ticket in tickets:
                result = run.feed(ticket)
                summary.record(result, ticket.updated_at)
                if on_event is not None and isinstance(result, ReplayEvent):
                    on_event(result)
        except IncompleteHistory as exc:
            summary.complete = False
            summary.stopped = str(exc)
        summary.open_episodes = run.open_episodes()
    summary.seconds = time.perf_counter() - began
    return summary
