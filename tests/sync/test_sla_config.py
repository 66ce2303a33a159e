"""The ``sla:`` section: targets per priority and plan tier, validated with every problem at once,
each naming its ``file:line`` and path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rules.source import ProblemsError
from sync.config import load_config

BASE = """\
connectors:
  zendesk:
    subdomain: acme
    email: ops@example.com
    api_token: zd-token
    organization_fields: [plan_tier]
  jira:
    url: https://acme.atlassian.net
    email: ops@example.com
    api_token: jira-token
"""


def load(tmp_path: Path, sla: str, base: str = BASE):
    path = tmp_path / "config.yaml"
    path.write_text(base + sla, encoding="utf-8")
    return load_config(path, env={})


def problems(tmp_path: Path, sla: str, base: str = BASE) -> list[str]:
    with pytest.raises(ProblemsError) as caught:
        load(tmp_path, sla, base)
    return [str(p).removeprefix(f"{tmp_path}/") for p in caught.value.problems]


def test_a_valid_section_loads_with_durations_and_per_target_warnings(tmp_path):
    config = load(tmp_path, """\
sla:
  enabled: true
  scan_interval_seconds: 30
  warn_before: {first_reply: 10m, resolution: 1h}
  targets:
    - {priority: urgent, plan: enterprise, first_reply: 30m, resolution: 4h}
    - {priority: "*", resolution: 3d}
""")
    sla = config.app.sla
    assert sla.enabled and sla.scan_interval_seconds == 30
    assert sla.warn_before.of("first_reply") == timedelta(minutes=10)
    assert sla.warn_before.of("resolution") == timedelta(hours=1)
    assert sla.targets[0].of("resolution") == timedelta(hours=4)
    assert sla.targets[1].of("first_reply") is None


def test_one_warn_before_serves_both_targets_and_the_section_is_off_by_default(tmp_path):
    assert load(tmp_path, "").app.sla.enabled is False
    sla = load(tmp_path, "sla: {warn_before: 45m}\n").app.sla
    assert sla.warn_before.of("first_reply") == sla.warn_before.of("resolution") == \
        timedelta(minutes=45)


def test_bad_durations_unknown_priorities_and_wrong_types_are_all_reported_with_lines(tmp_path):
    found = problems(tmp_path, """\
sla:
  enabled: yes please
  scan_interval_seconds: often
  warn_before: 30 minutes
  targets:
    - {priority: urgent, first_reply: 1x}
    - {priority: critical, resolution: 4h}
    - {priority: high, resolution: 30}
    - {priority: low}
    - {priority: normal, resolution: 1d, sla_tier: gold}
""")
    assert found == [
        "config.yaml:12: sla.enabled: Input should be a valid boolean, unable to interpret "
        "input",
        "config.yaml:13: sla.scan_interval_seconds: Input should be a valid number, unable to "
        "parse string as a number",
        "config.yaml:14: sla.warn_before: bad duration '30 minutes': needs a duration such as "
        "90s, 15m, 2h, 3d or 1w (a whole number and one unit: 90s, 15m, 2h, 3d, 1w)",
        "config.yaml:16: sla.targets[0].first_reply: bad duration '1x': needs a duration such "
        "as 90s, 15m, 2h, 3d or 1w (a whole number and one unit: 90s, 15m, 2h, 3d, 1w)",
        "config.yaml:17: sla.targets[1].priority: Input should be 'low', 'normal', 'high', "
        "'urgent' or '*'",
        "config.yaml:18: sla.targets[2].resolution: bad duration 30: needs a duration such as "
        "90s, 15m, 2h, 3d or 1w (add a unit: '30m' or '30h')",
        "config.yaml:19: sla.targets[3]: names no target: give first_reply and/or resolution",
        "config.yaml:20: sla.targets[4].sla_tier: unknown setting",
    ]


def test_two_entries_for_the_same_priority_and_plan_overlap(tmp_path):
    found = problems(tmp_path, """\
sla:
  enabled: true
  targets:
    - {priority: urgent, plan: Enterprise, first_reply: 1h}
    - {priority: urgent, resolution: 8h}
    - {priority: urgent, plan: enterprise, resolution: 4h}
""")
    assert found == [
        "config.yaml:16: sla.targets[2]: overlaps sla.targets[0]: both are for priority urgent, "
        "plan enterprise (hint: merge them into one entry (each may set first_reply and "
        "resolution))"]


def test_a_target_not_longer_than_its_warning_is_refused(tmp_path):
    found = problems(tmp_path, """\
sla:
  enabled: true
  warn_before: {first_reply: 15m, resolution: 2h}
  targets:
    - {priority: urgent, first_reply: 10m, resolution: 2h}
    - {priority: high, first_reply: 1h, resolution: 8h}
""")
    assert len(found) == 2, found
    assert found[0].startswith("config.yaml:15: sla.targets[0].first_reply: first_reply 10m is "
                               "not longer than sla.warn_before for it (15m)")
    assert "sla.targets[0].resolution: resolution 2h is not longer than sla.warn_before for " \
        "it (2h)" in found[1]


def test_a_plan_tier_needs_its_organization_field_configured(tmp_path):
    base = BASE.replace("    organization_fields: [plan_tier]\n", "")
    found = problems(tmp_path, """\
sla:
  enabled: true
  targets:
    - {priority: urgent, resolution: 8h}
    - {priority: urgent, plan: enterprise, resolution: 4h}
""", base)
    assert found == [
        "config.yaml:14: sla.targets[1].plan: a plan tier needs the organization field "
        "'plan_tier' (sla.plan_field) in connectors.zendesk.organization_fields (hint: add "
        "plan_tier to connectors.zendesk.organization_fields)"]


def test_an_enabled_watch_needs_something_to_watch(tmp_path):
    assert problems(tmp_path, "sla: {enabled: true}\n") == [
        "config.yaml:11: sla: sla.enabled needs targets (or zendesk_slas: true)"]
    assert load(tmp_path, "sla: {enabled: true, zendesk_slas: true}\n").app.sla.zendesk_slas
