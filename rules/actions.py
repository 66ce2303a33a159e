"""The registry of actions a rule's ``then:`` may call, with their parameter schemas.

Each :class:`ActionSpec` declares a pydantic params model (``extra="forbid"``, strict types), which
params are templates (rendered at dispatch time by :func:`rules.planner.render_params`), which
params are keyed by configured custom field names, and the namespace its result is published under
for later actions (``jira`` -> ``{key, id, url, created}``). The dispatcher in ``sync/`` maps the
same names to connector calls; adding an action is one entry here plus one there.
"""

from __future__ import annotations

__all__ = [
    "ACTIONS",
    "DEFAULT_BUG_DESCRIPTION",
    "DEFAULT_PRIORITY_ORDER",
    "ESCALATION_ACTIONS",
    "ActionSpec",
    "JiraCommentParams",
    "JiraCreateOrLinkBugParams",
    "JiraImpactParams",
    "PagerDutyIncidentParams",
    "PagerDutyTriggerParams",
    "PriorityThreshold",
    "ProductboardNoteParams",
    "SlackPostParams",
    "SlackThreadParams",
    "ZendeskProblemParams",
    "ZendeskUpdateLinkedParams",
    "ZendeskUpdateParams",
]

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

DEFAULT_BUG_DESCRIPTION = """\
h3. Steps to reproduce
{{ ticket.fields.get('steps_to_reproduce') or 'not provided' }}

h3. Expected result
{{ ticket.fields.get('expected_result') or 'not provided' }}

h3. Actual result
{{ ticket.fields.get('actual_result') or 'not provided' }}

h3. Environment
{{ ticket.fields.get('environment') or 'not provided' }}

h3. User impact
* Zendesk ticket: #{{ ticket.id }}{% if ticket.url %} {{ ticket.url }}{% endif %}
* Priority: {{ ticket.priority or 'not set' }}
* Organization: {{ ticket.organization_id or 'none' }}
* Requester: {{ ticket.requester_id or 'unknown' }}

h3. Customer report
{{ ticket.description or 'not provided' }}
"""

NoSpaces = Annotated[str, StringConstraints(pattern=r"^[^\s,]+$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
ProjectKey = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]+$")]
FieldValue = str | int | float | bool | None


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class JiraCreateOrLinkBugParams(_Params):
    """Create a Jira bug, or link the ticket to the open bug with the same rendered ``dedupe_by``.

    An empty rendered ``dedupe_by`` never links (every such ticket gets its own bug).
    """

    project: ProjectKey
    summary: NonEmpty = "{{ ticket.subject }}"
    description: NonEmpty = DEFAULT_BUG_DESCRIPTION
    issue_type: NonEmpty = "Bug"
    priority: NonEmpty | None = None
    labels: list[NoSpaces] = Field(default_factory=list)
    dedupe_by: NonEmpty | None = None
    when_done: Literal["new", "regression", "reopen"] = Field(
        "new", description="when the dedupe key's bug is Done: a new bug, a new bug labelled "
        "regression and linked to the Done one, or the Done bug reopened (reopen_status)")
    reopen_status: NonEmpty | None = Field(
        None, description="when_done: reopen — the status to reopen the Done bug to, or the name "
        "of the workflow transition that does it (e.g. Reopened)")
    reopen_fallback: Literal["fail", "regression", "new"] | None = Field(
        None, description="when_done: reopen — when Jira offers no such transition: fail (the "
        "default: the intent is dead-lettered naming the transitions Jira offers), or open a "
        "regression bug, or a new bug")

    @model_validator(mode="after")
    def _reopen_settings(self) -> JiraCreateOrLinkBugParams:
        reopening = self.when_done == "reopen"
        if reopening and self.reopen_status is None:
            raise ValueError("when_done: reopen needs reopen_status (the status to reopen the "
                             "Done bug to, or the name of the transition that does it)")
        if not reopening:
            extra = [name for name in ("reopen_status", "reopen_fallback")
                     if getattr(self, name) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply with when_done: reopen")
        return self


ZendeskStatus = Literal["new", "open", "pending", "hold", "solved"]


def _check_change(changes: dict[str, object], public: bool, add: list[str],
                  remove: list[str]) -> None:
    """A ticket change must change something (``changes``, by parameter name), a public one
    needs its note, and no tag may be both added and removed."""
    if not any(changes.values()):
        raise ValueError(f"needs at least one of {', '.join(changes)}")
    if public and not changes.get("note"):
        raise ValueError("public: true needs a note")
    both = sorted(set(add) & set(remove))
    if both:
        raise ValueError(f"tags both added and removed: {', '.join(both)}")


class ZendeskUpdateParams(_Params):
    """One safe update of the ticket: note, tags, custom fields and status travel together."""

    note: NonEmpty | None = None
    public: bool = False
    add_tags: list[NoSpaces] = Field(default_factory=list)
    remove_tags: list[NoSpaces] = Field(default_factory=list)
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    status: ZendeskStatus | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> ZendeskUpdateParams:
        _check_change({"note": self.note, "add_tags": self.add_tags,
                       "remove_tags": self.remove_tags, "fields": self.fields,
                       "status": self.status}, self.public, self.add_tags, self.remove_tags)
        return self


ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Severity = Literal["critical", "error", "warning", "info"]
Channel = Annotated[str, StringConstraints(
    pattern=r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{2,})$")]

#: What names the escalation an action belongs to, when ``incident`` is not given: the window
#: episode for a rule with a window, the incident of a ``pagerduty.incident.*`` event, else the
#: ticket (see ``sync.escalations``).
INCIDENT_DOC = (
    "which escalation (one PagerDuty incident, one Slack thread) this belongs to; default: the "
    "window episode (a windowed rule), the incident of a pagerduty.incident.* event, else the "
    "ticket"
)


class PagerDutyTriggerParams(_Params):
    """Page through PagerDuty Events API v2: one incident per escalation (its dedup key).

    A second trigger for an escalation whose incident is still open sends nothing (it joins).
    """

    service: ServiceName | None = None
    summary: NonEmpty = "Ticket #{{ ticket.id }}: {{ ticket.subject }}"
    severity: Severity = "critical"
    component: NonEmpty | None = None
    group: NonEmpty | None = None
    details: dict[str, FieldValue] = Field(default_factory=dict)
    incident: NonEmpty | None = Field(None, description=INCIDENT_DOC)


class PagerDutyIncidentParams(_Params):
    """Acknowledge or resolve the escalation's PagerDuty incident (nothing to do: skipped)."""

    incident: NonEmpty | None = Field(None, description=INCIDENT_DOC)


class SlackThreadParams(_Params):
    """Open the escalation's Slack thread, or keep it current.

    The first call posts the root message in ``channel``; later calls update the root in place
    (status, ticket count, organizations, the page) and post ``reply`` in the thread, if given.
    """

    channel: Channel | None = None
    title: NonEmpty = "Ticket #{{ ticket.id }}: {{ ticket.subject }}"
    reply: NonEmpty | None = None
    incident: NonEmpty | None = Field(None, description=INCIDENT_DOC)


class SlackPostParams(_Params):
    """One message to a channel (an SLA warning to the team channel, say): posted once, found
    by its key after an ambiguous failure rather than posted again. Not a thread: nothing is
    kept up to date."""

    channel: Channel
    text: NonEmpty


class ZendeskUpdateLinkedParams(_Params):
    """One change to every ticket linked to a Jira issue, in bulk (``update_many``).

    ``reply`` closes the loop with each customer: rendered per ticket (it may use ``ticket.*``
    and ``requester.*``), as a draft for an agent to approve (an internal note proposing it) or
    sent as a public comment (``reply_mode: send``). A ticket gets a ``note`` or a ``reply``.
    """

    issue: NonEmpty | None = Field(
        None, description="the Jira issue key whose linked tickets are updated")
    feature: NonEmpty | None = Field(
        None, description="or: the Productboard feature id whose tickets (their feedback notes "
        "are linked to it) are updated, e.g. {{ feature.id }}")
    note: NonEmpty | None = None
    public: bool = False
    reply: NonEmpty | None = None
    reply_mode: Literal["draft", "send"] = "draft"
    add_tags: list[NoSpaces] = Field(default_factory=list)
    remove_tags: list[NoSpaces] = Field(default_factory=list)
    status: ZendeskStatus | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> ZendeskUpdateLinkedParams:
        _check_change({"note": self.note, "reply": self.reply, "add_tags": self.add_tags,
                       "remove_tags": self.remove_tags, "status": self.status},
                      self.public, self.add_tags, self.remove_tags)
        if self.note and self.reply:
            raise ValueError("a ticket gets a note or a reply, not both (one comment per update)")
        if (self.issue is None) == (self.feature is None):
            raise ValueError("name the tickets to update: issue (a Jira issue's linked tickets) "
                             "or feature (a Productboard feature's), one of them")
        return self


PriorityName = Annotated[str, StringConstraints(pattern=r"^\S(?:.{0,58}\S)?$")]
#: Jira Cloud's default priority scheme, highest first.
DEFAULT_PRIORITY_ORDER = ("Highest", "High", "Medium", "Low", "Lowest")


class PriorityThreshold(_Params):
    """One threshold of ``raise_priority``: ``tickets`` (at least that many linked tickets) or
    ``tier`` (any linked ticket's organization has that plan tier), and the priority ``to``
    raise the bug to once it is crossed."""

    tickets: int | None = Field(None, ge=1, le=1_000_000,
                                description="crossed at this many linked tickets")
    tier: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="crossed when an organization of a linked ticket has this plan tier")
    to: PriorityName = Field(description="the Jira priority to raise the bug to")

    @model_validator(mode="after")
    def _one_kind(self) -> PriorityThreshold:
        if (self.tickets is None) == (self.tier is None):
            raise ValueError("a threshold names tickets (a count) or tier (a plan tier), "
                             f"and not both: {self.model_dump(exclude_none=True)}")
        return self

    @property
    def key(self) -> str:
        """How the crossing is recorded: ``tickets>=10``, ``tier=enterprise``."""
        return f"tickets>={self.tickets}" if self.tickets is not None \
            else f"tier={str(self.tier).casefold()}"


class JiraImpactParams(_Params):
    """The customer impact of a bug, on the bug: one comment, kept current in place; and,
    with ``raise_priority``, the bug's priority raised (never lowered) when that impact crosses
    a threshold — once per threshold."""

    issue: NonEmpty = Field(description="the Jira issue key, e.g. {{ jira.key }}")
    tier_field: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")] = Field(
        "plan_tier", description="the organization field that holds the plan tier")
    raise_priority: list[PriorityThreshold] = Field(
        default_factory=list, max_length=10,
        description="thresholds that raise the bug's priority: [{tickets: 10, to: High}, "
        "{tier: enterprise, to: Highest}]")
    priority_order: list[PriorityName] = Field(
        default_factory=lambda: list(DEFAULT_PRIORITY_ORDER), min_length=2, max_length=20,
        description="the site's Jira priorities, highest first (raise only, never lower)")

    @model_validator(mode="after")
    def _thresholds(self) -> JiraImpactParams:
        names = [p.casefold() for p in self.priority_order]
        twice = sorted({p for p in self.priority_order if names.count(p.casefold()) > 1})
        if twice:
            raise ValueError(f"priority_order names {', '.join(twice)} more than once")
        unknown = [t.to for t in self.raise_priority if t.to.casefold() not in names]
        if unknown:
            raise ValueError(f"raise_priority: {', '.join(repr(u) for u in unknown)} is not in "
                             f"priority_order ({', '.join(self.priority_order)})")
        keys = [t.key for t in self.raise_priority]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"raise_priority: the threshold {', '.join(repeated)} is given "
                             "more than once")
        if "priority_order" in self.model_fields_set and not self.raise_priority:
            raise ValueError("priority_order only applies with raise_priority")
        return self


class JiraCommentParams(_Params):
    """A comment on a Jira issue (support -> engineering), written once."""

    issue: NonEmpty = Field(description="the Jira issue key, e.g. {{ links.jira[0] }}")
    body: NonEmpty


ZendeskPriority = Literal["urgent", "high", "normal", "low"]


class ZendeskProblemParams(_Params):
    """Open the escalation's Zendesk problem ticket (once) and attach its tickets as incidents.

    Every later call attaches the tickets that joined since; solving the problem in Zendesk
    solves its incidents.
    """

    subject: NonEmpty | None = Field(
        None, description="the problem ticket's subject; default: the escalation's title")
    note: NonEmpty | None = Field(
        None, description="its first comment (internal); default: what opened it and why")
    priority: ZendeskPriority | None = None
    tags: list[NoSpaces] = Field(default_factory=list)
    incident: NonEmpty | None = Field(None, description=INCIDENT_DOC)


TagName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ProductboardNoteParams(_Params):
    """Feedback for product: one Productboard note per ticket (and rule), found again rather
    than duplicated after an ambiguous create; later events of the same ticket that the rule
    selects (a comment) are appended to that note.

    The note quotes the customer (the event's comment, else the ticket's description), carries
    ``summary`` (the agent's), the requester as its user, the organization as its company, the
    ticket's tags (through ``tag_map`` when given) and a link back to the ticket.
    """

    title: NonEmpty = "{{ ticket.subject }}"
    summary: NonEmpty | None = Field(
        None, description="the agent's summary, e.g. {{ ticket.fields.get('feedback_summary') }}")
    user_email: str = Field("{{ requester.email }}", description="the note's user (requester)")
    user_name: str = "{{ requester.name }}"
    company: str = Field("{{ organization.name }}",
                         description="the note's company (organization); empty: none")
    tag_map: dict[NoSpaces, TagName] = Field(
        default_factory=dict,
        description="Zendesk tag -> Productboard tag; when given, only mapped tags are sent")
    tags: list[TagName] = Field(default_factory=list, description="tags every note gets")
    feature: str | None = Field(
        None, description="a Productboard feature's name (e.g. from a ticket field): the note is "
        "linked to it; empty or unknown: not linked")


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: what it does and how its parameters are checked and rendered."""

    name: str
    description: str
    params: type[_Params]
    template_params: frozenset[str] = frozenset()
    custom_field_params: frozenset[str] = frozenset()
    produces: str | None = None
    result_fields: frozenset[str] = frozenset()
    #: True for an action that needs no single ticket (usable on ``jira.issue.*`` events).
    without_ticket: bool = False
    #: Templates the action renders once per ticket it writes, with that ticket's ``ticket``
    #: and ``requester`` (not rendered at dispatch).
    per_ticket_params: frozenset[str] = frozenset()


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            name="jira.create_or_link_bug",
            description=(
                "Create a Jira bug from the ticket (summary, steps, expected/actual, environment,"
                " impact) or link the ticket to the open bug with the same dedupe key."
            ),
            params=JiraCreateOrLinkBugParams,
            template_params=frozenset({"summary", "description", "priority", "dedupe_by"}),
            produces="jira",
            result_fields=frozenset({"key", "id", "url", "created", "reopened"}),
        ),
        ActionSpec(
            name="zendesk.update",
            description=(
                "Update the ticket in one safe update: internal or public note, tags,"
                " custom fields, status."
            ),
            params=ZendeskUpdateParams,
            template_params=frozenset({"note", "fields"}),
            custom_field_params=frozenset({"fields"}),
        ),
        ActionSpec(
            name="pagerduty.trigger",
            description=(
                "Page the on-call engineer through PagerDuty (Events API v2), once per"
                " escalation: the dedup key names the incident."
            ),
            params=PagerDutyTriggerParams,
            template_params=frozenset({"summary", "component", "group", "details", "incident"}),
            produces="pagerduty",
            result_fields=frozenset({"dedup_key", "service", "escalation", "sent"}),
        ),
        ActionSpec(
            name="pagerduty.acknowledge",
            description="Acknowledge the escalation's PagerDuty incident.",
            params=PagerDutyIncidentParams,
            template_params=frozenset({"incident"}),
        ),
        ActionSpec(
            name="pagerduty.resolve",
            description="Resolve the escalation's PagerDuty incident.",
            params=PagerDutyIncidentParams,
            template_params=frozenset({"incident"}),
        ),
        ActionSpec(
            name="slack.thread",
            description=(
                "Open the escalation's Slack thread, or update its root message in place and"
                " reply in it."
            ),
            params=SlackThreadParams,
            template_params=frozenset({"title", "reply", "incident"}),
            produces="slack",
            result_fields=frozenset({"channel", "ts", "escalation"}),
        ),
        ActionSpec(
            name="slack.post",
            description=(
                "Post one message to a Slack channel, once (its key travels in the message's"
                " metadata; an ambiguous post is looked for before posting again)."
            ),
            params=SlackPostParams,
            template_params=frozenset({"text"}),
            without_ticket=True,
        ),
        ActionSpec(
            name="zendesk.update_linked",
            description=(
                "Update every ticket linked to a Jira issue (note, tags, status) in bulk:"
                " ceil(N / 100) update_many calls, resumable without writing a ticket twice."
            ),
            params=ZendeskUpdateLinkedParams,
            template_params=frozenset({"issue", "feature", "note"}),
            per_ticket_params=frozenset({"reply"}),
            without_ticket=True,
        ),
        ActionSpec(
            name="jira.comment",
            description=(
                "Comment on a Jira issue (an agent's note for engineering): once, even after"
                " an ambiguous failure; its webhook does not come back as an event."
            ),
            params=JiraCommentParams,
            template_params=frozenset({"issue", "body"}),
            without_ticket=True,
        ),
        ActionSpec(
            name="jira.impact",
            description=(
                "Keep the customer impact of a bug current on the bug: one comment, edited in"
                " place (tickets, priorities, organizations and tiers, oldest waiting, newest"
                " report)."
            ),
            params=JiraImpactParams,
            template_params=frozenset({"issue"}),
            without_ticket=True,
        ),
        ActionSpec(
            name="productboard.note",
            description=(
                "Send the ticket to Productboard as feedback: one note per ticket (customer's"
                " words, agent's summary, user, company, tags, link back), found again instead of"
                " duplicated; later selected comments are appended to the same note."
            ),
            params=ProductboardNoteParams,
            template_params=frozenset({"title", "summary", "user_email", "user_name", "company",
                                       "feature"}),
            produces="productboard",
            result_fields=frozenset({"note", "url", "created", "appended", "feature"}),
        ),
        ActionSpec(
            name="zendesk.problem",
            description=(
                "Open the escalation's Zendesk problem ticket (once) and attach its tickets to"
                " it as incidents."
            ),
            params=ZendeskProblemParams,
            template_params=frozenset({"subject", "note", "incident"}),
            produces="problem",
            result_fields=frozenset({"id", "url", "escalation", "created"}),
        ),
    )
}

#: Actions that belong to an escalation (run in order per escalation, see ``sync.escalations``).
ESCALATION_ACTIONS = frozenset({"pagerduty.trigger", "pagerduty.acknowledge", "pagerduty.resolve",
                                "slack.thread", "zendesk.problem"})
