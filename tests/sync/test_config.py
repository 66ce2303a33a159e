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

ENV = {"ZD_TOKEN": "zd-token-value", "JIRA_TOKEN": "jira-token-value",
       "ZD_SECRET": "whsec-7c1e9a4f2b6d"}


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
        env = {"ZENDESK_API_TOKEN": "t", "JIRA_API_TOKEN": "t",
               "ZENDESK_WEBHOOK_SECRET": "whsec-5d0b8e3a9c1f"}
        config = load_config(ROOT / name, env=env)
        assert config.rules.rules, name


def test_validate_command_lists_problems_and_exits_1(tmp_path):
    bad = GOOD.replace("op: exists", "op: exist").replace("subdomain: acme", "subdomian: acme")
    path = write(tmp_path, bad)
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "validate", "--config",
                             str(path)], capture_output=True, text=True, timeout=60,
                            env={"ZD_TOKEN": "a", "JIRA_TOKEN": "b",
                                 "ZD_SECRET": "whsec-7c1e9a4f2b6d",
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


@pytest.mark.parametrize("secret", [
    pytest.param("", id="empty"),
    pytest.param(" " * 20, id="blank"),
    pytest.param("whsec-short", id="too-short"),
    pytest.param("  fifteen-chars  ", id="short-once-trimmed"),
])
def test_empty_blank_or_short_signing_secret_is_a_problem_naming_its_path_not_its_value(
        tmp_path, secret):
    path = write(tmp_path, GOOD)
    with pytest.raises(ProblemsError) as caught:
        load_config(path, env={**ENV, "ZD_SECRET": secret})
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (12, "receiver.zendesk_signing_secrets[0]")
    text = caught.value.render()
    assert f"{path}:12: receiver.zendesk_signing_secrets[0]: signing secret is" in text
    if secret.strip():
        assert secret.strip() not in text


def test_each_signing_secret_is_checked_and_reported_by_index(tmp_path):
    good = GOOD.replace('["${ZD_SECRET}"]', '["${ZD_SECRET}", "tiny"]')
    with pytest.raises(ProblemsError) as caught:
        load_config(write(tmp_path, good), env=ENV)
    assert [p.path for p in caught.value.problems] == ["receiver.zendesk_signing_secrets[1]"]
    assert "tiny" not in caught.value.render()


def test_a_short_signing_secret_from_an_environment_override_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_RECEIVER__ZENDESK_SIGNING_SECRETS", '["env-short"]')
    with pytest.raises(ProblemsError) as caught:
        load_config(write(tmp_path, GOOD), env=ENV)
    assert [p.path for p in caught.value.problems] == ["receiver.zendesk_signing_secrets[0]"]
    assert "env-short" not in caught.value.render()


def test_sixteen_character_secrets_load_and_an_empty_list_refuses_every_webhook(tmp_path):
    config = load_config(write(tmp_path, GOOD), env={**ENV, "ZD_SECRET": "x" * 16})
    assert [s.get_secret_value() for s in config.app.receiver.zendesk_signing_secrets] == \
        ["x" * 16]
    none = load_config(write(tmp_path, GOOD.replace('["${ZD_SECRET}"]', "[]")), env=ENV)
    assert none.app.receiver.zendesk_signing_secrets == ()


def test_validate_refuses_the_shipped_config_when_the_webhook_secret_variable_is_empty():
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "validate", "--config",
                             str(ROOT / "config.yaml")], capture_output=True, text=True,
                            timeout=60, env={"ZENDESK_WEBHOOK_SECRET": "", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "receiver.zendesk_signing_secrets[0]: signing secret is empty" in result.stderr


@pytest.mark.parametrize(("old", "new", "where"), [
    pytest.param("url: https://acme.atlassian.net", "url: http://acme.atlassian.net",
                 "connectors.jira.url", id="jira-http"),
    pytest.param("subdomain: acme", "subdomain: acme\n    base_url: http://acme.zendesk.com",
                 "connectors.zendesk.base_url", id="zendesk-http"),
    pytest.param("url: https://acme.atlassian.net", "url: http://127.0.0.1.nip.io:8080",
                 "connectors.jira.url", id="loopback-lookalike-name"),
    pytest.param("url: https://acme.atlassian.net", "url: http://localhost.example.com",
                 "connectors.jira.url", id="localhost-lookalike-name"),
    pytest.param("url: https://acme.atlassian.net", "url: http://10.0.0.7:8080",
                 "connectors.jira.url", id="private-but-not-loopback"),
])
def test_plain_http_to_a_non_loopback_host_is_refused_because_tokens_would_be_cleartext(
        tmp_path, old, new, where):
    with pytest.raises(ProblemsError) as caught:
        load_config(write(tmp_path, GOOD.replace(old, new)), env=ENV)
    [problem] = caught.value.problems
    assert problem.path == where
    assert "https://" in problem.message and "cleartext" in problem.message


@pytest.mark.parametrize("url", ["ftp://acme.atlassian.net", "acme.atlassian.net", "https://",
                                 "http://[::1"])
def test_a_connector_url_that_is_not_an_http_url_is_refused(tmp_path, url):
    bad = GOOD.replace("url: https://acme.atlassian.net", f"url: '{url}'")
    with pytest.raises(ProblemsError) as caught:
        load_config(write(tmp_path, bad), env=ENV)
    assert [p.path for p in caught.value.problems] == ["connectors.jira.url"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8123", "http://127.9.8.7", "http://[::1]:9000",
                                 "http://localhost:9000", "http://LOCALHOST/",
                                 "https://jira.internal.example:8443"])
def test_https_anywhere_and_plain_http_on_loopback_are_accepted(tmp_path, url):
    good = GOOD.replace("url: https://acme.atlassian.net", f"url: '{url}'") \
               .replace("subdomain: acme", f"subdomain: acme\n    base_url: '{url}'")
    config = load_config(write(tmp_path, good), env=ENV)
    assert config.app.connectors.jira.url == url.rstrip("/")
    assert config.app.connectors.zendesk.base_url == url.rstrip("/")


def test_an_unreadable_file_in_rules_dir_is_a_problem_not_a_crash(tmp_path):
    from rules.source import ProblemsError
    from sync.config import load_config

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ok.yaml").write_text("rules: []\n", encoding="utf-8")
    (rules / "binary.yaml").write_bytes(b"\xff\xfe\x00rules")
    config = tmp_path / "config.yaml"
    config.write_text("rules_dir: rules\n", encoding="utf-8")
    with pytest.raises(ProblemsError) as info:
        load_config(config, env={})
    [problem] = [p for p in info.value.problems if p.file.endswith("binary.yaml")]
    assert "cannot read rule file" in problem.message
