"""The ``sla:`` section of ``config.yaml``: SLA targets per priority and plan tier, and how the
SLA watch (``sync.sla``) scans for them.

```yaml
sla:
  enabled: true
  scan_interval_seconds: 60
  warn_before: 30m                     # or {first_reply: 15m, resolution: 1h}
  plan_field: plan_tier                # the organization field that holds the plan tier
  targets:                             # for each target, the most specific entry that sets it
    - {priority: urgent, plan: enterprise, first_reply: 30m, resolution: 4h}
    - {priority: urgent, first_reply: 1h, resolution: 8h}
    - {priority: "*", first_reply: 8h, resolution: 5d}
```

Durations are those of the rule language (``90s``, ``15m``, ``2h``, ``3d``, ``1w``). Shape and
value errors come from the pydantic models (each with its path); what needs the whole config —
two entries for the same priority and plan, a plan tier without its organization field — from
:func:`sla_problems`, with the entry's ``file:line``.
"""

from __future__ import annotations

__all__ = [
    "PRIORITIES",
    "TARGETS",
    "SlaSettings",
    "SlaTarget",
    "WarnBefore",
    "sla_problems",
]

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from rules.operators import ValueProblem, parse_duration
from rules.source import Problem

if TYPE_CHECKING:
    from rules.source import Positions

#: The SLA targets the watch knows, in the order it checks them.
TARGETS: tuple[str, ...] = ("first_reply", "resolution")
#: Zendesk priorities a target entry may name (``*``: any, including none).
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
#: Zendesk SLA policy metrics that measure each target, by default.
ZENDESK_METRICS: dict[Literal["first_reply", "resolution"], str] = {
    "first_reply": "first_reply_time", "resolution": "total_resolution_time"}
ANY = "*"


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except ValueProblem as exc:
        raise ValueError(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from exc


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Target = Literal["first_reply", "resolution"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarnBefore(_Model):
    """How long before a target is due ``sla.warning`` fires: one duration for both targets
    (``warn_before: 30m``) or one per target."""

    first_reply: Duration = timedelta(minutes=30)
    resolution: Duration = timedelta(minutes=30)

    @model_validator(mode="before")
    @classmethod
    def _one_for_both(cls, value: Any) -> Any:
        if isinstance(value, str | int | timedelta) and not isinstance(value, bool):
            duration = _duration(value)
            return {target: duration for target in TARGETS}
        return value

    def of(self, target: str) -> timedelta:
        value: timedelta = getattr(self, target)
        return value


class SlaTarget(_Model):
    """One ``sla.targets`` entry: the targets of tickets with this priority (``*``: any) whose
    organization has this plan tier (``*``: any, also none)."""

    priority: Literal["low", "normal", "high", "urgent", "*"]
    plan: Annotated[str, Field(min_length=1, max_length=64)] = ANY
    first_reply: Duration | None = None
    resolution: Duration | None = None

    @model_validator(mode="after")
    def _names_a_target(self) -> SlaTarget:
        if self.first_reply is None and self.resolution is None:
            raise ValueError("names no target: give first_reply and/or resolution")
        return self

    def of(self, target: str) -> timedelta | None:
        value: timedelta | None = getattr(self, target)
        return value

    def covers(self, priority: str | None, plan: str | None) -> bool:
        """Whether this entry applies to a ticket of ``priority`` and ``plan`` (tier)."""
        return (self.priority == ANY or self.priority == priority) and (
            self.plan == ANY or (plan is not None and self.plan.casefold() == plan.casefold()))

    @property
    def specificity(self) -> int:
        """A named priority counts more than a named plan: 3, 2, 1, 0."""
        return 2 * (self.priority != ANY) + (self.plan != ANY)


class SlaSettings(_Model):
    """What the SLA watch checks, and how often (see ``docs/configuration.md``)."""

    enabled: bool = Field(False, description="run the SLA watch")
    scan_interval_seconds: float = Field(
        60.0, ge=1, description="how often the open tickets are checked (minute granularity)")
    warn_before: WarnBefore = WarnBefore()
    plan_field: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")] = Field(
        "plan_tier", description="the organization field (connectors.zendesk."
        "organization_fields) that holds the plan tier targets name")
    plan_cache_seconds: float = Field(
        900.0, ge=0, description="how long an organization's plan tier is reused by the watch")
    max_overdue: Duration = Field(
        timedelta(hours=6), description="a breach found later than this after its due time "
        "(a ticket already long overdue when first seen) is recorded, not announced")
    zendesk_slas: bool = Field(
        False, description="read Zendesk's SLA state with tickets (include=slas) and prefer "
        "its breach times over targets for the metrics it covers")
    zendesk_metrics: dict[Target, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: dict(ZENDESK_METRICS),
        description="the Zendesk SLA metric that measures each target")
    targets: tuple[SlaTarget, ...] = ()

    @model_validator(mode="after")
    def _something_to_watch(self) -> SlaSettings:
        if self.enabled and not self.targets and not self.zendesk_slas:
            raise ValueError("sla.enabled needs targets (or zendesk_slas: true)")
        return self

    def metric_of(self, target: str) -> str:
        """The Zendesk metric that measures ``target``."""
        for name, metric in self.zendesk_metrics.items():
            if name == target:
                return metric
        return next(m for name, m in ZENDESK_METRICS.items() if name == target)

    def target_for(self, target: str, priority: str | None,
                   plan: str | None) -> SlaTarget | None:
        """The most specific entry that sets ``target`` for a ticket of ``priority`` and
        ``plan``, or ``None``."""
        best: SlaTarget | None = None
        for entry in self.targets:
            if entry.of(target) is None or not entry.covers(priority, plan):
                continue
            if best is None or entry.specificity > best.specificity:
                best = entry
        return best

    def plans_for(self, priority: str | None) -> frozenset[str]:
        """The plan tiers (casefolded) entries that can apply to ``priority`` name; empty when
        the plan does not matter for it."""
        return frozenset(e.plan.casefold() for e in self.targets
                         if e.plan != ANY and e.priority in (ANY, priority))


def sla_problems(sla: SlaSettings, organization_fields: tuple[str, ...],
                 positions: Positions) -> list[Problem]:
    """What needs the whole config: two ``sla.targets`` entries for the same priority and plan
    (which one wins would be arbitrary), and plan tiers named without
    ``connectors.zendesk.organization_fields`` listing ``sla.plan_field``."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(sla.targets):
        key = (entry.priority, entry.plan.casefold())
        if key in seen:
            problems.append(positions.problem(
                ("sla", "targets", index),
                f"overlaps sla.targets[{seen[key]}]: both are for priority {entry.priority}, "
                f"plan {entry.plan}", "merge them into one entry (each may set first_reply "
                "and resolution)"))
        else:
            seen[key] = index
    for index, entry in enumerate(sla.targets):
        for target in TARGETS:
            span = entry.of(target)
            if span is not None and span <= sla.warn_before.of(target):
                problems.append(positions.problem(
                    ("sla", "targets", index, target),
                    f"{target} {_span(span)} is not longer than sla.warn_before for it "
                    f"({_span(sla.warn_before.of(target))}): the warning would come as the "
                    "ticket arrives, or never before the breach",
                    "make warn_before shorter than every target (warn_before can be set per "
                    "target: {first_reply: 15m, resolution: 1h})"))
    named = [i for i, e in enumerate(sla.targets) if e.plan != ANY]
    if named and sla.plan_field not in organization_fields:
        problems.append(positions.problem(
            ("sla", "targets", named[0], "plan"),
            f"a plan tier needs the organization field {sla.plan_field!r} "
            "(sla.plan_field) in connectors.zendesk.organization_fields",
            f"add {sla.plan_field} to connectors.zendesk.organization_fields"))
    return problems


def _span(value: timedelta) -> str:
    """A duration as config spells it (90m, 2h, 1d)."""
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes and minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m" if minutes else f"{int(value.total_seconds())}s"
