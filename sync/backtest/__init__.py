"""``switchboard backtest`` and ``switchboard diff``: rules over history, read-only.

:func:`backtest` replays a history of ticket records (:func:`read_export` for a JSON / JSONL
export file, :func:`read_incremental` for Zendesk's incremental export since a date) through a
rule set and sums up each rule's decisions (:class:`BacktestSummary`); :func:`diff_rules` replays
the same history through two rule sets and lists the decisions that change. Decisions come from
:mod:`rules.engine`, as in live processing; nothing is written to any vendor.
"""

from __future__ import annotations

from .history import TicketHistory
from .records import (
    IncompleteHistory,
    InputError,
    ProblemLog,
    RecordProblem,
    read_export,
    read_incremental,
)
from .replay import Replay, ReplayEvent, SideResult, Skip
from .run import ProgressBar, backtest, replay
from .summary import BacktestSummary, RuleTally, Tally, render_csv, render_markdown, render_table

__all__ = [
    "BacktestSummary",
    "IncompleteHistory",
    "InputError",
    "ProblemLog",
    "ProgressBar",
    "RecordProblem",
    "Replay",
    "ReplayEvent",
    "RuleTally",
    "SideResult",
    "Skip",
    "Tally",
    "TicketHistory",
    "backtest",
    "read_export",
    "read_incremental",
    "render_csv",
    "render_markdown",
    "render_table",
    "replay",
]
