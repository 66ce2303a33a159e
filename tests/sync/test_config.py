"""Config loading: every problem at once, each with file:line; secrets resolved and kept secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rules.source import ProblemsError
from sync.config import load_config

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
connectors:
  zendesk:
    subdomain: acme
    email: ops@example.com
    api_token: ${ZD_TOKEN}
    custom_fields: {error_code: 360001, jira_key: 360007}
  jira:
    url: https://acme.atlassian.net
    email: ops@example.com
    api_token: ${JIRA_TOKEN}
receiver:
  zendesk_signing_secrets: ["${ZD_SECRET}"]
rules:
  - id: bug
    on: [ticket.created]
    if: {field: ticket.fields.error_code, op: exists}
    then:
      - jira.create_or_link_bug: {project: SUP}
      - zendesk.update: {note: "{{ jira.key }}", fields: {jira_key: "{{ jira.key }}"}}
"""

ENV = {"ZD_TOKEN": "zd-token-value", "JIRA_TOKEN": "jira-token-value", "ZD_SECRET": "whsec"}


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_config_loads_frozen_with_secrets_resolved(tmp_path):
    config = load_config(write(tmp_path, GOOD), env=ENV)
    zendesk = config.app.connectors.zendesk
    assert zendesk.api_token.get_secret_value() == "zd-token-value"
    assert "zd-token-value" not in repr(config.app)
    assert [r.id for r in config.rules.rules] == ["bug"]
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        zendesk.subdomain = "other"  # type: ignore[misc]


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path):
    config = load_config(write(tmp_path, GOOD), env=ENV)
    assert config.store_url() == f"sqlite:///{tmp_path.resolve()}/var/switchboard.db"


def test_every_problem_is_listed_with_its_line(tmp_path):
    bad = GOOD.replace("subdomain: acme", "subdomian: acme") \
              .replace("${JIRA_TOKEN}", "${JIRA_TOKEN_MISSING}") \
              .replace("op: exists", "op: exist") \
              .replace("receiver:\n", "receiver:\n  port: eighty\n")
    path = write(tmp_path, bad)
    with pytest.raises(ProblemsError) as caught:
        load_config(path, env=ENV)
    found = {(p.line, p.path): p.message for p in caught.value.problems}
    text = caught.value.render()
    assert f"{path}:3: connectors.zendesk.subdomian: unknown setting" in text
    assert (2, "connectors.zendesk.subdomain") in found  # required, reported at its parent
    assert (10, "connectors.jira.api_token") in found
    assert "env JIRA_TOKEN_MISSING is not set" in found[(10, "connectors.jira.api_token")]
    assert any(line == 12 and "port" in path_ for line, path_ in found)
    assert any(line == 17 and "op" in path_ for line, path_ in found)
    assert "jira-token-value" not in text and "zd-token-value" not in text


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "connectors:\n  zendesk: [unclosed\n")
    with pytest.raises(ProblemsError) as caught:
        load_config(path, env=ENV)
    assert caught.value.problems[0].line is not None
    assert "YAML syntax error" in caught.value.problems[0].message


def test_rules_dir_files_are_validated_and_ids_unique_across_sources(tmp_path):
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    (rules_dir / "extra.yaml").write_text(
        "rules:\n  - id: bug\n    on: [ticket.updated]\n    then:\n"
        "      - zendesk.update: {note: hi}\n", encoding="utf-8")
    path = write(tmp_path, GOOD + "rules_dir: rules.d\n")
    with pytest.raises(ProblemsError) as caught:
        load_config(path, env=ENV)
    assert any("duplicate" in p.message.lower() for p in caught.value.problems)


def test_environment_overrides_a_file_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_RECEIVER__PORT", "9123")
    config = load_config(write(tmp_path, GOOD), env=ENV)
    assert config.app.receiver.port == 9123


def test_tls_verification_cannot_be_switched_off(tmp_path):
    bad = GOOD.replace("    url: https://acme.atlassian.net\n",
                       "    url: https://acme.atlassian.net\n    http: {verify_tls: false}\n")
    with pytest.raises(ProblemsError) as caught:
        load_config(write(tmp_path, bad), env=ENV)
    assert any("verify_tls" in p.path for p in caught.value.problems)


def test_shipped_configs_validate():
    for name in ("config.yaml", "config.production.yaml"):
        env = {"ZENDESK_API_TOKEN": "t", "JIRA_API_TOKEN": "t", "ZENDESK_WEBHOOK_SECRET": "s"}
        config = load_config(ROOT / name, env=env)
        assert config.rules.rules, name


def test_validate_command_lists_problems_and_exits_1(tmp_path):
    bad = GOOD.replace("op: exists", "op: exist").replace("subdomain: acme", "subdomian: acme")
    path = write(tmp_path, bad)
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "validate", "--config",
                             str(path)], capture_output=True, text=True, timeout=60,
                            env={"ZD_TOKEN": "a", "JIRA_TOKEN": "b", "ZD_SECRET": "c",
                                 "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert f"{path}:3:" in result.stderr
    assert f"{path}:16:" in result.stderr or f"{path}:17:" in result.stderr


def test_validate_command_accepts_the_shipped_config():
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "validate", "--config",
                             str(ROOT / "config.yaml")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "confirmed-bug-to-jira" in result.stdout


def _setting_paths(model: type, prefix: str = "") -> list[str]:
    from pydantic import BaseModel

    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(_setting_paths(annotation, f"{path}."))
        else:
            paths.append(path)
    return paths


def test_the_configuration_reference_documents_every_setting():
    from sync.config import AppConfig

    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [p for p in _setting_paths(AppConfig) if f"`{p}`" not in reference]
    assert missing == []
