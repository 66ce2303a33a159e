"""The cookbook in docs/rules.md stays true: every rule in it loads and lints clean, and the
shipped config.yaml runs the same rules, word for word."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rules import load_rules, load_yaml
from rules.lints import lint
from sync.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "rules.md"


def cookbook_rules() -> list[dict]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Cookbook\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 6
    return [rule for block in blocks for rule in yaml.safe_load(block)["rules"]]


def test_every_cookbook_rule_loads_and_lints_clean_with_the_shipped_fields() -> None:
    config = load_config(ROOT / "config.yaml", env={})
    zendesk = config.app.connectors.zendesk
    fields = {"custom_fields": tuple(zendesk.custom_fields),
              "user_fields": tuple(zendesk.user_fields),
              "organization_fields": tuple(zendesk.organization_fields)}
    text = yaml.safe_dump({"rules": cookbook_rules()}, sort_keys=False, allow_unicode=True)
    rules = load_rules([load_yaml(text, "cookbook.yaml")], **fields)
    assert len(rules) == len(cookbook_rules())
    assert lint(rules, **fields) == []


def test_the_shipped_config_runs_the_cookbook_rules_as_written() -> None:
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["rules"]
    cookbook = {rule["id"]: rule for rule in cookbook_rules()}
    in_both = [rule for rule in shipped if rule["id"] in cookbook]
    assert len(in_both) == len(shipped) - 1  # all but the bug rule shown at the top of the page
    for rule in in_both:
        assert rule == cookbook[rule["id"]], rule["id"]
