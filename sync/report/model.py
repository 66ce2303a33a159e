"""What a trend report holds: plain frozen values, computed once (``sync.report.data``) and then
rendered (Markdown, HTML, Slack, charts) without touching the store again.

Every count here is defined in :data:`DEFINITIONS`, which the report prints in its footer and
``docs/report.md`` repeats.
"""

from __future__ import annotations

__all__ = [
    "DEFINITIONS",
    "BugRow",
    "CountRow",
    "DocGapRow",
    "FeatureRow",
    "RiserRow",
    "SlaRow",
    "SlaSection",
    "SolvedRow",
    "TrendReport",
]

from dataclasses import dataclass
from datetime import datetime

from sync.report.period import Period


@dataclass(frozen=True, slots=True)
class CountRow:
    """Tickets with a tag (or a category value) in the period and in the previous one."""

    name: str
    current: int
    previous: int

    @property
    def change(self) -> int:
        return self.current - self.previous


@dataclass(frozen=True, slots=True)
class RiserRow:
    """A tag whose ticket count grew; ``growth`` = (current − previous) / max(previous, 1)."""

    tag: str
    current: int
    previous: int
    growth: float


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """A requested feature (or, for notes linked to none, a note tag): its notes in the period
    and the distinct customers behind them."""

    label: str
    feature_id: str | None
    notes: int
    customers: int


@dataclass(frozen=True, slots=True)
class BugRow:
    """A Jira issue tickets were linked to in the period, with its last known status."""

    key: str
    linked_in_period: int
    linked_total: int
    status: str
    url: str | None


@dataclass(frozen=True, slots=True)
class DocGapRow:
    """A tag whose solved tickets of the period had no help-center article linked."""

    tag: str
    without_article: int
    solved: int


@dataclass(frozen=True, slots=True)
class SlaRow:
    """Distinct tickets warned / breached for one SLA target and plan tier in the period."""

    target: str
    tier: str
    warned: int
    breached: int


@dataclass(frozen=True, slots=True)
class SolvedRow:
    """Solved tickets of one priority against the resolution target the config sets for it
    (the estimate used when the SLA watch has no alerts to show)."""

    priority: str
    target_minutes: int
    solved: int
    within: int


@dataclass(frozen=True, slots=True)
class SlaSection:
    """SLA performance: the SLA watch's alerts (``rows``), else solved-within-target estimates
    from the configured targets (``solved``), else neither and ``note`` says why."""

    rows: tuple[SlaRow, ...]
    tickets_warned: int
    tickets_breached: int
    note: str
    solved: tuple[SolvedRow, ...] = ()


@dataclass(frozen=True, slots=True)
class TrendReport:
    """One report: the period, the previous period, and every section's rows."""

    period: Period
    previous: Period
    generated_at: datetime
    tickets: int
    tickets_previous: int
    undated: int
    tags: tuple[CountRow, ...]
    top_tags: tuple[CountRow, ...]
    risers: tuple[RiserRow, ...]
    category_field: str | None
    categories: tuple[CountRow, ...]
    features: tuple[FeatureRow, ...]
    features_note: str
    bugs: tuple[BugRow, ...]
    doc_gaps: tuple[DocGapRow, ...]
    sla: SlaSection
    #: Tickets per bucket (day, or hour for periods under 3 days), this period and the previous.
    buckets: tuple[tuple[str, int, int], ...]
    bucket_unit: str
    riser_min_count: int
    doc_gap_min_tickets: int
    article_rule: str


#: (section, definition) — printed in every report's footer and in docs/report.md.
DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("Period", "[since, until) in the report's time zone; the previous period has the same "
     "length and ends where this one starts. Days and weeks are wall-clock days of the zone."),
    ("Tickets", "tickets whose stored snapshot (the ticket as Switchboard last saw it) has a "
     "created_at inside the period; tickets are counted by their latest stored tags, status and "
     "fields. Snapshots without created_at are left out and counted as 'undated'."),
    ("Volume by tag / top tags", "tickets of the period carrying the tag (a ticket counts once "
     "per tag). Switchboard's marker tags (switchboard_*) and report.ignore_tags are never "
     "counted. Ranked by this period's count, then by name."),
    ("Volume by category", "tickets of the period by the value of the custom field "
     "report.category_field (each value of a multi-select counts); '(none)' = the field empty."),
    ("Fastest risers", "tags with at least report.riser_min_count tickets this period and more "
     "than in the previous one, ranked by growth = (this − previous) / max(previous, 1), then "
     "by this period's count, then by name."),
    ("Most requested features", "Productboard notes Switchboard created in the period "
     "(productboard_notes.created_at), grouped by the feature they are linked to; notes linked "
     "to none are grouped by each of their tags instead (but report.ignore_tags and "
     "report.note_ignore_tags), or counted as '(no feature, no topic tag)'. Customers = "
     "distinct organizations, or the requester's email for a note without one. Ranked by "
     "customers, then notes, then name."),
    ("Most linked Jira bugs", "Jira issues tickets were linked to during the period "
     "(links.created_at), ranked by those links, then by all links ever, then by key. Status = "
     "the state Switchboard last processed (jira_issues), else the one recorded when the bug was "
     "created (bugs), else 'unknown'."),
    ("Documentation gaps", "tags of the period's solved or closed tickets that had no "
     "help-center article linked (see the article rule), when at least "
     "report.doc_gap_min_tickets such tickets carry the tag; ranked by those tickets, then "
     "by name."),
    ("SLA performance", "distinct tickets the SLA watch warned about (sla.warning) or reported "
     "breached (sla.breached) in the period (sla_alerts.fired_at), per target and plan tier. "
     "Without alerts (the watch off, or a store from before it) and with sla.targets "
     "configured: the period's solved or closed tickets per priority, and how many were "
     "solved within the resolution target for that priority and any plan, solve time being "
     "estimated as the snapshot's last update (updated_at) minus created_at."),
)
