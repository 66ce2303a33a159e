"""Switchboard rule-evaluation benchmark: 200 realistic rules over 100,000 synthetic ticket events
on one core — events/s, rule evaluations/s, match rate and peak memory as the event count grows.

    .venv/bin/python bench/rules.py [--quick] [--engine matching|matches|evaluate] [--cpu N]

The rules are generated as YAML text (deterministic seed) and loaded through the real loader
(:func:`rules.load_rules`); the events are :class:`rules.EvalContext` objects made one at a time
by a generator, so that the memory figures measure the engine, not an input list. For each event
the engine decides every rule :meth:`rules.RuleSet.for_event` gives: all at once with
:meth:`rules.RuleSet.matching` (the default), one by one with :func:`rules.matches` (the fast
path), or one by one with :func:`rules.evaluate` (the full trace, as ``switchboard test`` and the
decision log use it). Figures are printed and written to bench/out/rules.json. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this file's folder comes first on sys.path, and this file is named like the
# package it measures: make `rules` the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from rules import (  # noqa: E402
    Change,
    EvalContext,
    Rule,
    RuleSet,
    evaluate,
    load_rules,
    load_yaml,
)

OUT = HERE / "out" / "rules.json"

#: The configured Zendesk custom fields the generated rules and tickets use.
CUSTOM_FIELDS = ("error_code", "product_area", "plan_tier", "region", "app_version", "browser",
                 "jira_key", "steps_to_reproduce", "seats", "environment")

BASE_TIME = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

TAGS = ("billing", "refund", "vip", "enterprise", "outage", "login", "sso", "api", "mobile",
        "ios", "android", "checkout", "invoice", "cancel", "churn_risk", "feature_request",
        "spam", "escalated", "needs_eng", "l2", "l3", "gdpr", "security", "data_loss",
        "performance", "onboarding", "trial", "partner", "reseller", "sla_breach", "duplicate",
        "waiting_customer", "bug_confirmed", "bug_suspected", "survey", "chat", "email", "phone",
        "webform", "bulk_import")
#: Tag popularity: a few tags are on many tickets, most on few (Zipf-like).
TAG_WEIGHTS = tuple(1.0 / (rank + 1) ** 0.9 for rank in range(len(TAGS)))
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TYPES = ("question", "incident", "problem", "task")
AREAS = ("billing", "auth", "api", "mobile", "web", "reports", "integrations", "search")
TIERS = ("free", "starter", "pro", "enterprise")
REGIONS = ("eu", "us", "apac")
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")
ENVIRONMENTS = ("PROD", "staging", "sandbox")
ORGS = tuple(range(7000, 7400))
GROUPS = tuple(range(360001, 360013))
AGENTS = tuple(range(900, 960))

SUBJECTS = (
    "Cannot log in since this morning", "Refund for invoice #{n}", "Checkout fails with error {e}",
    "Feature request: export to CSV", "App crashes on Android 14", "Charged twice this month",
    "SSO login loops back to the start page", "API returns 500 on /v2/orders",
    "How do I add a user?", "Dashboard is very slow", "Please cancel my subscription",
    "Data missing after import", "Password reset email never arrives",
    "Invoice shows the wrong VAT", "Webhook deliveries delayed", "Question about pricing",
    "Urgent: production down", "Bulk import stuck at 90%", "Reports show yesterday's numbers",
    "Chargeback on order {n}",
)
SENTENCES = (
    "Steps: open checkout, click pay, wait.", "Actual: an error page with code {e}.",
    "Expected: the order goes through.", "This started after the last update.",
    "We have about {n} users affected.", "Our admin already tried clearing the cache.",
    "Please call me back, this is blocking our launch.", "Browser: {b}, latest version.",
    "Could you send me a copy of the invoice?", "Thanks for the quick help last time!",
    "The mobile app shows a blank screen after login.", "We were charged twice for March.",
    "I would like a refund for the unused seats.", "Our SSO provider is Okta.",
)


STACK_TRACES = (
    "Exception in thread \"main\" java.lang.NullPointerException at Checkout.pay",
    "Traceback (most recent call last): File \"app.py\", line 42",
)


# -- rules ------------------------------------------------------------------------------------


def _leaf(field: str, op: str, value: Any = None, case_sensitive: bool = False) -> dict[str, Any]:
    leaf: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        leaf["value"] = value
    if case_sensitive:
        leaf["case_sensitive"] = True
    return leaf


def _tags(rng: random.Random, k: int) -> list[str]:
    return rng.sample(TAGS, k)


def _popular_tag(rng: random.Random) -> str:
    return rng.choices(TAGS, TAG_WEIGHTS)[0]


ONLY_CREATED, ONLY_UPDATED, BOTH = ["ticket.created"], ["ticket.updated"], [
    "ticket.created", "ticket.updated"]

Family = Callable[[random.Random], tuple[list[str], dict[str, Any], str]]


def _confirmed_bug(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    cond = [_leaf("ticket.tags", "contains", rng.choice(("bug_confirmed", "needs_eng", "l3"))),
            _leaf("ticket.priority", "in", rng.choice((["high", "urgent"], ["urgent"]))),
            {"not": _leaf("links.jira", "exists")}]
    if rng.random() < 0.5:
        cond.insert(1, _leaf("ticket.fields.product_area", "equals", rng.choice(AREAS)))
    return BOTH, {"all": cond}, "Confirmed bugs go to Jira"


def _priority_escalation(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.priority", "changed_to", rng.choice(("urgent", "high"))),
        _leaf("ticket.fields.plan_tier", "in", rng.choice((["enterprise"], ["pro", "enterprise"]))),
    ]}, "Escalate paying customers whose priority went up"


def _tag_added(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.tags", "changed_to", _popular_tag(rng)),
        _leaf("ticket.status", "not_in", ["solved", "closed"]),
    ]}, "An agent added a routing tag"


def _reopened(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.status", "changed_from", rng.choice(("solved", "pending", "hold"))),
        _leaf("links.jira", "exists"),
    ]}, "A linked ticket came back"


def _solved_linked(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    cond: list[dict[str, Any]] = [_leaf("ticket.status", "changed_to", "solved"),
                                  _leaf("links.jira", "exists")]
    if rng.random() < 0.5:
        cond.append({"not": _leaf("ticket.tags", "contains", "duplicate")})
    return ONLY_UPDATED, {"all": cond}, "Tell engineering a linked ticket was solved"


def _area_routing(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_CREATED, {"all": [
        _leaf("ticket.fields.product_area", "equals", rng.choice(AREAS)),
        _leaf("ticket.type", "in", rng.choice((["incident", "problem"], ["question"]))),
        _leaf("ticket.fields.region", "equals", rng.choice(REGIONS)),
    ]}, "Route new tickets by product area and region"


def _error_code(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    pattern = rng.choice((r"^E4\d\d$", r"^E5\d{2}$", r"^E(1|2)\d\d$", r"^E9"))
    return BOTH, {"all": [
        _leaf("ticket.fields.error_code", "matches", pattern, case_sensitive=rng.random() < 0.3),
        _leaf("ticket.priority", "in", ["high", "urgent"]),
    ]}, "Known error-code families"


def _subject_keywords(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    words = rng.choice((r"\b(refund|chargeback)\b", r"\bcancel", r"(sso|saml|okta)",
                        r"\b(down|outage)\b", r"charged twice"))
    return ONLY_CREATED, {"all": [
        {"any": [_leaf("ticket.subject", "matches", words),
                 _leaf("ticket.description", "contains_any",
                       rng.choice((["refund", "chargeback"], ["cancel"], ["okta", "saml"],
                                   ["production down"], ["charged twice"])))]},
        {"not": _leaf("ticket.tags", "contains_any", ["spam", "duplicate"])},
    ]}, "Keyword triage of new tickets"


def _sla(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.status", "in", ["new", "open"]),
        _leaf("ticket.priority", "in", rng.choice((["high", "urgent"], ["urgent"]))),
        _leaf("ticket.created_at", "older_than", rng.choice(("4h", "1d", "2d", "3d"))),
        {"not": _leaf("ticket.tags", "contains", "sla_breach")},
    ]}, "SLA breach warning"


def _fresh_vip(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_CREATED, {"all": [
        _leaf("ticket.tags", "contains_any", rng.choice((["vip", "enterprise"], ["partner"]))),
        _leaf("ticket.created_at", "within", rng.choice(("15m", "1h"))),
    ]}, "New VIP ticket"


def _spam(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_CREATED, {"any": [
        _leaf("ticket.subject", "matches", r"(viagra|casino|crypto giveaway)"),
        _leaf("ticket.tags", "contains", "spam"),
    ]}, "Spam"


def _nested(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"any": [
        {"all": [_leaf("ticket.fields.product_area", "equals", rng.choice(AREAS)),
                 _leaf("ticket.tags", "contains", rng.choice(("refund", "invoice", "cancel")))]},
        {"all": [_leaf("ticket.fields.plan_tier", "equals", "enterprise"),
                 _leaf("ticket.priority", "changed_to", "high")]},
    ]}, "Billing escalation"


def _assignee(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.assignee_id", "changed"),
        _leaf("ticket.group_id", "in", rng.sample(GROUPS, 3)),
        _leaf("ticket.priority", "equals", "urgent"),
    ]}, "Urgent ticket changed hands"


def _not_closed_tag(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return BOTH, {"all": [
        _leaf("ticket.tags", "contains", _popular_tag(rng)),
        {"not": {"any": [_leaf("ticket.status", "in", ["solved", "closed"]),
                         _leaf("ticket.tags", "contains_any", ["duplicate", "spam"])]}},
        _leaf("ticket.type", "not_equals", "question"),
    ]}, "Open tagged tickets"


def _organization(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.organization_id", "in", rng.sample(ORGS, 5)),
        _leaf("ticket.priority", "changed"),
    ]}, "Key accounts: priority changed"


def _seats(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return BOTH, {"all": [
        _leaf("ticket.tags", "contains", rng.choice(("churn_risk", "cancel"))),
        _leaf("ticket.fields.seats", "gt", rng.choice((100, 500, 1000))),
    ]}, "Large accounts at risk"


def _environment(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.status", "changed_to", "open"),
        _leaf("ticket.fields.environment", "equals", "PROD", case_sensitive=True),
    ]}, "Production incident reopened"


def _tag_pair(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return BOTH, {"all": [
        _leaf("ticket.tags", "contains_all", _tags(rng, 2)),
        _leaf("ticket.status", "not_equals", "closed"),
    ]}, "Tag combination"


def _stack_trace(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_CREATED, {"all": [
        _leaf("ticket.type", "in", ["problem", "incident"]),
        _leaf("ticket.description", "matches",
              r"(Traceback \(most recent call last\)|Exception in thread|NullPointerException)"),
    ]}, "Stack traces to L2"


def _jira_key_field(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.fields.jira_key", "changed"),
        _leaf("ticket.fields.jira_key", "matches", r"^[A-Z]+-\d+$", case_sensitive=True),
        {"not": _leaf("links.jira", "exists")},
    ]}, "An agent typed a Jira key"


def _tag_removed(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_UPDATED, {"all": [
        _leaf("ticket.tags", "changed_from", rng.choice(("waiting_customer", "escalated", "l2"))),
        _leaf("ticket.status", "in", ["open", "pending"]),
    ]}, "A tag was removed"


def _browser(rng: random.Random) -> tuple[list[str], dict[str, Any], str]:
    return ONLY_CREATED, {"all": [
        _leaf("ticket.fields.browser", "equals", rng.choice(BROWSERS)),
        _leaf("ticket.fields.app_version", "matches", rf"^4\.{rng.randint(0, 20)}\."),
        _leaf("ticket.tags", "contains_none", ["spam", "duplicate"]),
    ]}, "Browser-specific regression"


#: (family, weight): what a support-ops team's rule files are made of.
FAMILIES: tuple[tuple[Family, int], ...] = (
    (_confirmed_bug, 10), (_priority_escalation, 8), (_tag_added, 20), (_reopened, 6),
    (_solved_linked, 6), (_area_routing, 16), (_error_code, 10), (_subject_keywords, 10),
    (_sla, 8), (_fresh_vip, 6), (_spam, 2), (_nested, 8), (_assignee, 8),
    (_not_closed_tag, 16), (_organization, 8), (_seats, 6), (_environment, 4),
    (_tag_pair, 10), (_stack_trace, 4), (_jira_key_field, 4), (_tag_removed, 10),
    (_browser, 6),
)


def rule_documents(count: int = 200, *, seed: int = 3, per_file: int = 50) -> list[str]:
    """``count`` rules as YAML texts of ``per_file`` rules each (deterministic for a seed)."""
    rng = random.Random(seed)
    families, weights = zip(*FAMILIES, strict=True)
    rules: list[dict[str, Any]] = []
    for n in range(count):
        family = rng.choices(families, weights)[0]
        on, cond, description = family(rng)
        mode = rng.choices(("live", "shadow", "off"), (85, 12, 3))[0]
        name = family.__name__.strip("_").replace("_", "-")
        if family is _confirmed_bug:
            then: list[Any] = [{"jira.create_or_link_bug": {
                "project": "SUP", "dedupe_by": "{{ ticket.fields.error_code or '' }}"}},
                {"zendesk.update": {"note": "Linked to {{ jira.key }}",
                                    "add_tags": ["jira_linked"]}}]
        else:
            then = [{"zendesk.update": {"add_tags": [f"auto_{name.replace('-', '_')}"]}}]
        rule: dict[str, Any] = {"id": f"{name}-{n:03d}", "description": description}
        if mode != "live":
            rule["mode"] = mode
        rule.update({"on": on, "if": cond, "then": then})
        rules.append(rule)
    return [yaml.safe_dump({"rules": rules[i:i + per_file]}, sort_keys=False, width=100,
                           default_flow_style=None)
            for i in range(0, len(rules), per_file)]


def load_bench_rules(count: int = 200, *, seed: int = 3) -> RuleSet:
    """The generated rules, through the real loader (as files ``bench-rules/NN.yaml``)."""
    sources = [load_yaml(text, f"bench-rules/{i:02d}.yaml")
               for i, text in enumerate(rule_documents(count, seed=seed))]
    return load_rules(sources, custom_fields=CUSTOM_FIELDS)


# -- events -----------------------------------------------------------------------------------


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _maybe(rng: random.Random, p: float, value: Any) -> Any:
    return value if rng.random() < p else None


def _description(rng: random.Random, fill: dict[str, Any]) -> str:
    sentences = [s.format(**fill) for s in rng.sample(SENTENCES, rng.randint(2, 6))]
    if rng.random() < 0.05:  # a pasted stack trace
        sentences.append(rng.choice(STACK_TRACES))
    return " ".join(sentences)


def _ticket(rng: random.Random, ticket_id: int, created: bool,
            now: datetime) -> dict[str, Any]:
    age = timedelta(seconds=rng.randint(0, 600)) if created else timedelta(
        hours=rng.expovariate(1 / 48))
    created_at = now - age
    updated_at = now - timedelta(seconds=rng.randint(0, 5))
    code = f"E{rng.randint(100, 999)}"
    n = rng.randint(2, 4000)
    fill = {"e": code, "n": n, "b": rng.choice(BROWSERS)}
    tags = sorted(set(rng.choices(TAGS, TAG_WEIGHTS, k=rng.randint(0, 4))))
    return {
        "id": ticket_id,
        "updated_at": _stamp(updated_at),
        "created_at": _stamp(created_at),
        "subject": rng.choice(SUBJECTS).format(**fill),
        "description": _description(rng, fill),
        "status": (rng.choices(("new", "open"), (8, 2))[0] if created else
                   rng.choices(STATUSES, (10, 40, 20, 5, 15, 10))[0]),
        "priority": rng.choices((None, *PRIORITIES), (15, 20, 40, 18, 7))[0],
        "type": rng.choices((None, *TYPES), (20, 35, 25, 10, 10))[0],
        "tags": tags,
        "requester_id": rng.randint(10_000, 99_999),
        "organization_id": _maybe(rng, 0.8, rng.choice(ORGS)),
        "assignee_id": None if created else _maybe(rng, 0.7, rng.choice(AGENTS)),
        "group_id": _maybe(rng, 0.9, rng.choice(GROUPS)),
        "fields": {
            "error_code": _maybe(rng, 0.3, code),
            "product_area": _maybe(rng, 0.7, rng.choice(AREAS)),
            "plan_tier": _maybe(rng, 0.9, rng.choices(TIERS, (40, 30, 20, 10))[0]),
            "region": _maybe(rng, 0.8, rng.choice(REGIONS)),
            "app_version": _maybe(rng, 0.5, f"4.{rng.randint(0, 20)}.{rng.randint(0, 9)}"),
            "browser": _maybe(rng, 0.5, rng.choice(BROWSERS)),
            "jira_key": _maybe(rng, 0.05, f"SUP-{rng.randint(1, 9999)}"),
            "steps_to_reproduce": _maybe(rng, 0.2, "1. open checkout 2. pay"),
            "seats": _maybe(rng, 0.4, str(rng.choice((5, 20, 150, 800, 2500)))),
            "environment": _maybe(rng, 0.3, rng.choice(ENVIRONMENTS)),
        },
        "url": f"https://acme.zendesk.com/agent/tickets/{ticket_id}",
    }


#: What an update changes, with weights (keys as in EvalContext.changes).
UPDATE_KEYS = ("status", "priority", "tags", "assignee_id", "group_id", "type", "subject",
               "fields.product_area", "fields.error_code", "fields.plan_tier", "fields.jira_key")
UPDATE_WEIGHTS = (30, 12, 25, 20, 8, 3, 2, 5, 5, 2, 2)


def _before(rng: random.Random, key: str, now: Any) -> Any:
    """A plausible earlier value of field ``key`` whose current value is ``now``."""
    options: tuple[Any, ...] = {
        "status": STATUSES, "priority": (None, *PRIORITIES), "type": (None, *TYPES),
        "assignee_id": (None, *AGENTS), "group_id": (None, *GROUPS),
        "fields.product_area": (None, *AREAS), "fields.plan_tier": (None, *TIERS),
        "fields.error_code": (None, "E100", "E404", "E500"),
        "fields.jira_key": (None, "SUP-1"), "subject": ("(no subject)",),
    }[key]
    choices = [o for o in options if o != now] or [None]
    return rng.choice(choices)


def _changes(rng: random.Random, ticket: dict[str, Any], created: bool) -> dict[str, Change]:
    if created:  # as the processor diffs a new ticket against nothing: every set field changed
        out = {k: Change(None, v) for k, v in ticket.items()
               if k not in ("fields", "updated_at") and v not in (None, [], "")}
        out.update({f"fields.{k}": Change(None, v) for k, v in ticket["fields"].items()
                    if v is not None})
        return out
    out = {}
    # dict.fromkeys, not set: a set's order depends on the process's hash seed.
    for key in dict.fromkeys(rng.choices(UPDATE_KEYS, UPDATE_WEIGHTS, k=rng.randint(1, 3))):
        if key == "tags":
            now_tags = list(ticket["tags"])
            if now_tags and rng.random() < 0.4:  # a tag was removed
                before = sorted({*now_tags, _popular_tag(rng)})
            else:  # a tag was added
                if not now_tags or rng.random() < 0.5:
                    now_tags = sorted({*now_tags, _popular_tag(rng)})
                    ticket["tags"] = now_tags
                before = now_tags[:-1]
            if before != now_tags:
                out["tags"] = Change(before, now_tags)
            continue
        if key.startswith("fields."):
            current = ticket["fields"][key.removeprefix("fields.")]
        else:
            current = ticket[key]
        out[key] = Change(_before(rng, key, current), current)
    return out


def events(count: int, *, seed: int = 7, created_share: float = 0.3) -> Iterator[EvalContext]:
    """``count`` synthetic ticket events, made one at a time (deterministic for a seed).

    About ``created_share`` are ``ticket.created`` (every set field in ``changes``), the rest
    ``ticket.updated`` with 1-3 changed fields; about 15% of tickets have Jira links.
    """
    rng = random.Random(seed)
    for i in range(count):
        created = rng.random() < created_share
        now = BASE_TIME + timedelta(seconds=i * 3)
        ticket = _ticket(rng, 100_000 + i, created, now)
        changes = _changes(rng, ticket, created)
        links = ({"jira": tuple(f"SUP-{rng.randint(1, 9999)}"
                                for _ in range(rng.choice((1, 1, 2))))}
                 if not created and rng.random() < 0.15 else {})
        yield EvalContext("ticket.created" if created else "ticket.updated",
                          rng.choice(("webhook", "webhook", "poller")), ticket, changes, links,
                          now=now + timedelta(seconds=rng.random() * 2))


# -- the run ----------------------------------------------------------------------------------


Decide = Callable[[EvalContext], tuple[int, int]]


def _decider(ruleset: RuleSet, engine: str) -> Decide:
    """``decide(ctx) -> (rules decided, rules matched)`` for one engine.

    ``evaluate``: the full trace per rule; ``matches``: the fast path per rule; ``matching``:
    :meth:`RuleSet.matching` (all rules at once, gated). The fast ones are looked up late so that
    ``--engine evaluate`` also runs on code that predates them.
    """
    for_event = ruleset.for_event
    if engine == "evaluate":

        def full(ctx: EvalContext) -> tuple[int, int]:
            chosen = for_event(ctx.event_type)
            return len(chosen), sum(evaluate(rule, ctx).matched for rule in chosen)

        return full
    if engine == "matches":
        from rules import matches

        fast: Callable[[Rule, EvalContext], bool] = matches

        def each(ctx: EvalContext) -> tuple[int, int]:
            chosen = for_event(ctx.event_type)
            return len(chosen), sum(fast(rule, ctx) for rule in chosen)

        return each

    def at_once(ctx: EvalContext) -> tuple[int, int]:
        return len(for_event(ctx.event_type)), len(ruleset.matching(ctx))

    return at_once


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(ruleset: RuleSet, count: int, *, engine: str, seed: int, checkpoints: list[int],
        trace_memory: bool) -> dict[str, Any]:
    """Decide every rule for every event; figures at each checkpoint (events so far).

    Only the engine's work is timed (``for_event`` and deciding the rules); making the events is
    timed apart. ``cpu_share`` is the process's CPU time over the wall time of the whole loop:
    well below 1, other processes took the core and the rates are pessimistic. With
    ``trace_memory``, tracemalloc runs too (slower; its times are not the speed figures).
    """
    decide = _decider(ruleset, engine)
    marks: list[dict[str, Any]] = []
    evaluations = matched = events_matched = 0
    busy = 0.0
    clock = time.perf_counter
    gc.collect()
    if trace_memory:
        tracemalloc.start()
    base_traced = tracemalloc.get_traced_memory()[0] if trace_memory else 0
    start, cpu_start = clock(), time.process_time()
    for n, ctx in enumerate(events(count, seed=seed), 1):
        t0 = clock()
        decided, hits = decide(ctx)
        busy += clock() - t0
        evaluations += decided
        matched += hits
        events_matched += hits > 0
        if n in checkpoints:
            mark: dict[str, Any] = {
                "events": n, "engine_s": busy, "events_per_s": n / busy,
                "evaluations_per_s": evaluations / busy, "ru_maxrss_mib": _rss_mib(),
            }
            if trace_memory:
                gc.collect()  # also empties the interpreter's free lists, which tracemalloc counts
                current, peak = tracemalloc.get_traced_memory()
                mark["traced_current_kib"] = (current - base_traced) / 1024
                mark["traced_peak_kib"] = (peak - base_traced) / 1024
            marks.append(mark)
    wall, cpu = clock() - start, time.process_time() - cpu_start
    if trace_memory:
        tracemalloc.stop()
    return {
        "engine": engine, "events": count, "rule_evaluations": evaluations,
        "rules_per_event": evaluations / count, "matched_evaluations": matched,
        "match_rate": matched / evaluations if evaluations else 0.0,
        "events_with_a_match": events_matched / count,
        "engine_s": busy, "events_per_s": count / busy, "evaluations_per_s": evaluations / busy,
        "event_generation_s": wall - busy, "cpu_share": cpu / wall,
        "checkpoints": marks, "traced": trace_memory,
    }


def gated_share(ruleset: RuleSet, count: int = 2_000, *, seed: int = 7) -> float | None:
    """Rules checked per rule listening, after :meth:`RuleSet.matching`'s gates (a sample)."""
    try:
        from rules.compiled import RuleIndex
    except ImportError:  # code that predates it
        return None
    indexes = {e: RuleIndex(ruleset.for_event(e)) for e in ("ticket.created", "ticket.updated")}
    checked = listening = 0
    for ctx in events(count, seed=seed):
        index = indexes[ctx.event_type]
        checked += len(index.candidates(ctx))
        listening += len(index.rules)
    return checked / listening if listening else None


# -- report -----------------------------------------------------------------------------------


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def report(results: dict[str, Any]) -> str:
    speed, memory = results["speed"], results.get("memory")
    lines = [
        f"Switchboard rule-evaluation benchmark — engine {speed['engine']}; "
        f"{results['rules']} rules ({results['rules_live_or_shadow']} not off), "
        f"{speed['events']:,} events; commit {results['commit']}; Python "
        f"{results['machine']['python']}, {results['machine']['nproc']} CPU(s); "
        + (f"pinned to CPU {results['cpu']}" if results["cpu"] is not None else "not pinned"),
        f"rules loaded in {results['load_s']:.2f} s; {speed['rules_per_event']:.1f} rules per "
        f"event after for_event"
        + (f" ({results['gated_share']:.0%} of them checked after matching's gates)"
           if results.get("gated_share") is not None and speed["engine"] == "matching" else "")
        + f"; match rate {speed['match_rate']:.2%} of evaluations, "
        f"{speed['events_with_a_match']:.1%} of events match at least one rule",
        "",
        f"{'events':>8}  {'events/s':>10}  {'evals/s':>12}  {'ru_maxrss MiB':>13}"
        + (f"  {'traced now KiB':>14}  {'traced peak KiB':>15}" if memory else ""),
    ]
    traced = {m["events"]: m for m in memory["checkpoints"]} if memory else {}
    for mark in speed["checkpoints"]:
        row = (f"{mark['events']:>8,}  {mark['events_per_s']:>10,.0f}  "
               f"{mark['evaluations_per_s']:>12,.0f}  {mark['ru_maxrss_mib']:>13.1f}")
        if memory:
            t = traced.get(mark["events"], {})
            row += (f"  {t.get('traced_current_kib', float('nan')):>14,.1f}"
                    f"  {t.get('traced_peak_kib', float('nan')):>15,.1f}")
        lines.append(row)
    lines.append("")
    lines.append(f"engine time {speed['engine_s']:.2f} s; making the events (not counted) "
                 f"{speed['event_generation_s']:.2f} s; CPU share {speed['cpu_share']:.2f}; "
                 f"aim >= 20,000 events/s: "
                 f"{'met' if speed['events_per_s'] >= 20_000 else 'not met'}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 2,000 events")
    p.add_argument("--events", type=int, help="number of events (default 100,000)")
    p.add_argument("--rules", type=int, default=200, help="number of rules (default 200)")
    p.add_argument("--engine", choices=("matching", "matches", "evaluate"), default="matching",
                   help="RuleSet.matching (default), matches() per rule, or evaluate() per rule")
    p.add_argument("--seed", type=int, default=7, help="seed of the event stream")
    p.add_argument("--rule-seed", type=int, default=3, help="seed of the rule generator")
    p.add_argument("--cpu", type=int, help="pin the process to this CPU (sched_setaffinity)")
    p.add_argument("--no-tracemalloc", action="store_true",
                   help="skip the second, tracemalloc-instrumented pass")
    p.add_argument("--out", type=Path, default=OUT, help="JSON output file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count = args.events or (2_000 if args.quick else 100_000)
    checkpoints = sorted({max(1, count // 4), max(1, count // 2), count})
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    t0 = time.perf_counter()
    ruleset = load_bench_rules(args.rules, seed=args.rule_seed)
    load_s = time.perf_counter() - t0
    results: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "commit": _commit(),
        "machine": {"python": platform.python_version(), "nproc": os.cpu_count()},
        "cpu": args.cpu, "rules": len(ruleset), "load_s": load_s,
        "rules_live_or_shadow": sum(1 for r in ruleset if r.mode.value != "off"),
        "rules_by_event": {e: len(ruleset.for_event(e))
                           for e in ("ticket.created", "ticket.updated")},
        "gated_share": gated_share(ruleset, min(count, 2_000), seed=args.seed),
    }
    print(f"{len(ruleset)} rules loaded in {load_s:.2f} s; {count:,} events, engine "
          f"{args.engine} ...", flush=True)
    results["speed"] = run(ruleset, count, engine=args.engine, seed=args.seed,
                           checkpoints=checkpoints, trace_memory=False)
    if not args.no_tracemalloc:
        print("second pass under tracemalloc ...", flush=True)
        results["memory"] = run(ruleset, count, engine=args.engine, seed=args.seed,
                                checkpoints=checkpoints, trace_memory=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print()
    print(report(results))
    print(f"(JSON: {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
