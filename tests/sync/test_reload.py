"""Hot reload of rules (invariant 8: a running hub handed bad rules keeps the last good ones).

Unit tests drive a :class:`RulesReloader` over files in ``tmp_path``; the end-to-end test runs
``main.py run`` as a subprocess against the sandbox, edits its rules file, sends SIGHUP, and
watches what the hub decides and does.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rules import RuleSet
from sandbox import Sandbox
from sync.config import LoadedConfig, load_config
from sync.reload import ReloadOutcome, RulesReloader, rules_revision
from tests.support.hubproc import (
    HubProcess,
    StoreReader,
    hub_config,
    shipped_config,
    wait_until,
    write_config,
)

ENV = {"ZD_TOKEN": "zd-token-value-1", "JIRA_TOKEN": "jira-token-value-1"}

CONFIG = """\
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
poller:
  interval_seconds: 60
rules_dir: rules.d
rules:
  - id: bug
    on: [ticket.created]
    if: {field: ticket.fields.error_code, op: exists}
    then:
      - zendesk.update: {note: "bug seen", add_tags: [bug_seen]}
"""

NOTIFY = """\
rules:
  - id: notify
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: vip}
    then:
      - zendesk.update: {note: "VIP ticket"}
"""

TRIAGE = """\
rules:
  - id: triage
    on: [ticket.updated]
    if: {field: ticket.priority, op: equals, value: urgent}
    then:
      - zendesk.update: {add_tags: [triage]}
"""

# Two problems, each on its own line: an unknown operator (line 4), an unknown action (line 6).
BROKEN = """\
rules:
  - id: notify
    on: [ticket.created]
    if: {field: ticket.tags, op: contians, value: vip}
    then:
      - zendesk.shout: {note: "VIP ticket"}
"""


class Files:
    """The config and its rules directory; every write gets a later mtime than the last one, as
    an edit made a moment later would (file stamps are only as fine as the kernel's clock tick)."""

    def __init__(self, root: Path) -> None:
        self.config = root / "config.yaml"
        self.rules_dir = root / "rules.d"
        self.rules_dir.mkdir()
        self._stamp = time.time_ns()

    def write(self, path: Path, text: str) -> Path:
        path.write_text(text, encoding="utf-8")
        self._stamp += 1_000_000_000
        os.utime(path, ns=(self._stamp, self._stamp))
        return path

    def rule_file(self, name: str, text: str) -> Path:
        return self.write(self.rules_dir / name, text)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    f = Files(tmp_path)
    f.write(f.config, CONFIG)
    f.rule_file("notify.yaml", NOTIFY)
    return f


class Applied(list[LoadedConfig]):
    """What the reloader handed over, in order (the hub swaps its processor's rules here)."""


@pytest.fixture
def applied() -> Applied:
    return Applied()


@pytest.fixture
def reloader(files: Files, applied: Applied) -> RulesReloader:
    return RulesReloader(load_config(files.config, env=ENV), applied.append, env=ENV)


def watch(reloader: RulesReloader) -> ReloadOutcome:
    """What the watch does with an edit: sees it, sees it unchanged at the next check, loads."""
    assert reloader.check() is ReloadOutcome.SETTLING
    return reloader.check()


def ids(rules: RuleSet) -> list[str]:
    return [r.id for r in rules.rules]


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "switchboard.reload" and r.levelno == level]


# -- valid changes -----------------------------------------------------------------------------


def test_a_valid_change_swaps_the_rules_and_logs_ids_added_and_changed(
        files, reloader, applied, caplog):
    caplog.set_level(logging.INFO)
    before = reloader.revision
    files.rule_file("notify.yaml", NOTIFY.replace("VIP ticket", "VIP ticket, be quick")
                    + TRIAGE.removeprefix("rules:\n"))

    assert watch(reloader) is ReloadOutcome.RELOADED

    [new] = applied
    assert ids(new.rules) == ["bug", "notify", "triage"]
    assert reloader.rules is new.rules
    notify = new.rules.get("notify")
    assert notify is not None and notify.actions[0].params["note"] == "VIP ticket, be quick"
    assert reloader.revision == rules_revision(new.rules) != before
    [info] = messages(caplog, logging.INFO)
    assert info.startswith("rules reloaded: 3 rules (bug, notify, triage); added: triage; "
                           "changed: notify; revision ")
    assert messages(caplog, logging.ERROR) == []


def test_a_file_added_to_the_rules_dir_is_loaded(files, reloader, applied, caplog):
    caplog.set_level(logging.INFO)
    files.rule_file("triage.yml", TRIAGE)  # .yml counts as well as .yaml

    assert watch(reloader) is ReloadOutcome.RELOADED
    assert ids(applied[-1].rules) == ["bug", "notify", "triage"]
    assert "added: triage" in messages(caplog, logging.INFO)[0]


def test_a_deleted_rules_file_takes_its_rules_out(files, reloader, applied, caplog):
    caplog.set_level(logging.INFO)
    (files.rules_dir / "notify.yaml").unlink()

    assert watch(reloader) is ReloadOutcome.RELOADED
    assert ids(applied[-1].rules) == ["bug"]
    assert "removed: notify" in messages(caplog, logging.INFO)[0]


def test_a_file_caught_half_written_is_loaded_only_once_it_stops_changing(files, reloader,
                                                                         applied):
    # An editor truncates, then writes: an emptied rules file is valid YAML with zero rules.
    files.rule_file("notify.yaml", "")
    assert reloader.check() is ReloadOutcome.SETTLING
    files.rule_file("notify.yaml", NOTIFY + TRIAGE.removeprefix("rules:\n"))
    assert reloader.check() is ReloadOutcome.SETTLING
    assert applied == []

    assert reloader.check() is ReloadOutcome.RELOADED
    assert [ids(a.rules) for a in applied] == [["bug", "notify", "triage"]]


def test_untouched_files_are_not_loaded_again(reloader, applied, caplog):
    caplog.set_level(logging.DEBUG)
    assert reloader.check() is ReloadOutcome.NOT_MODIFIED
    assert reloader.check() is ReloadOutcome.NOT_MODIFIED
    assert applied == []
    assert [r for r in caplog.records if r.name == "switchboard.reload"] == []


def test_an_edit_that_changes_no_rule_swaps_nothing(files, reloader, applied):
    revision = reloader.revision
    # A comment, and a rule moved from the config file into the rules directory: the rules'
    # definitions (not where they are written) make the revision.
    files.write(files.config, CONFIG.split("rules:\n  - id: bug")[0] + "# moved to rules.d\n")
    files.rule_file("bug.yaml", "rules:\n  - id: bug" + CONFIG.split("rules:\n  - id: bug")[1])
    files.rule_file("notify.yaml", "# VIP tickets get a note\n" + NOTIFY)

    assert watch(reloader) is ReloadOutcome.SAME_RULES
    assert applied == []
    assert reloader.revision == revision


# -- invalid changes ---------------------------------------------------------------------------


def test_invalid_rules_are_refused_each_problem_logged_with_file_and_line_and_the_last_good_stay(
        files, reloader, applied, caplog):
    caplog.set_level(logging.INFO)
    good, revision = reloader.rules, reloader.revision
    broken = files.rule_file("notify.yaml", BROKEN)

    assert watch(reloader) is ReloadOutcome.REFUSED

    assert applied == []
    assert reloader.rules is good and reloader.revision == revision
    errors = messages(caplog, logging.ERROR)
    assert errors[0].startswith("rules reload refused; the last good rules stay in force "
                                f"(2 rules, revision {revision}): 2 problems found:")
    assert any(e.startswith(f"  {broken}:4: ") and "contians" in e for e in errors[1:])
    assert any(e.startswith(f"  {broken}:6: ") and "zendesk.shout" in e for e in errors[1:])
    assert reloader.last_error is not None
    assert f"{broken}:4:" in reloader.last_error and f"{broken}:6:" in reloader.last_error


def test_a_broken_state_is_reported_once_by_the_watch_and_again_when_asked(
        files, reloader, caplog):
    caplog.set_level(logging.INFO)
    files.rule_file("notify.yaml", BROKEN)
    assert watch(reloader) is ReloadOutcome.REFUSED
    refusals = len(messages(caplog, logging.ERROR))

    for _ in range(3):
        assert reloader.check() is ReloadOutcome.NOT_MODIFIED
    assert len(messages(caplog, logging.ERROR)) == refusals

    assert reloader.reload() is ReloadOutcome.REFUSED  # SIGHUP: the operator asked
    assert len(messages(caplog, logging.ERROR)) == 2 * refusals


def test_a_fixed_file_after_a_broken_one_is_picked_up(files, reloader, applied):
    files.rule_file("notify.yaml", BROKEN)
    assert watch(reloader) is ReloadOutcome.REFUSED
    files.rule_file("notify.yaml", NOTIFY.replace("VIP ticket", "VIP, fixed"))

    assert watch(reloader) is ReloadOutcome.RELOADED
    notify = applied[-1].rules.get("notify")
    assert notify is not None and notify.actions[0].params["note"] == "VIP, fixed"
    assert reloader.last_error is None


def test_an_invalid_config_file_keeps_the_rules_and_names_the_line(files, reloader, applied,
                                                                   caplog):
    files.write(files.config, CONFIG.replace("interval_seconds: 60", "interval_seconds: often"))
    assert watch(reloader) is ReloadOutcome.REFUSED
    assert applied == []
    assert any(e.startswith(f"  {files.config}:12: poller.interval_seconds")
               for e in messages(caplog, logging.ERROR))


def test_a_rule_naming_a_custom_field_the_running_hub_lacks_is_refused(files, reloader, applied,
                                                                       caplog):
    # The new field validates against the edited config, but the running connector does not
    # know its id, so the rule could never see a value until a restart.
    files.write(files.config, CONFIG.replace("jira_key: 360007}", "jira_key: 360007, "
                                             "region: 360009}"))
    by_region = NOTIFY.replace("id: notify", "id: by-region") \
        .replace("ticket.tags, op: contains", "ticket.fields.region, op: equals")
    rule = files.rule_file("region.yaml", by_region)
    assert watch(reloader) is ReloadOutcome.REFUSED
    assert applied == []
    errors = messages(caplog, logging.ERROR)
    assert any(e.startswith(f"  {rule}:2: rules.by-region: uses custom field(s) region") and
               "restart" in e for e in errors)


def test_a_rules_dir_named_by_an_edited_config_is_watched_even_while_it_is_broken(
        files, reloader, applied):
    other = files.config.parent / "other.d"
    other.mkdir()
    broken = files.write(other / "notify.yaml", BROKEN)
    files.write(files.config, CONFIG.replace("rules_dir: rules.d", "rules_dir: other.d"))
    assert watch(reloader) is ReloadOutcome.REFUSED

    files.write(broken, NOTIFY.replace("VIP ticket", "from other.d"))
    assert watch(reloader) is ReloadOutcome.RELOADED
    notify = applied[-1].rules.get("notify")
    assert notify is not None and notify.actions[0].params["note"] == "from other.d"


# -- other settings ----------------------------------------------------------------------------


def test_a_change_to_other_settings_warns_that_it_needs_a_restart_without_their_values(
        files, reloader, applied, caplog):
    files.write(files.config, CONFIG.replace("interval_seconds: 60", "interval_seconds: 30"))
    env = {**ENV, "ZD_TOKEN": "zd-token-value-2"}
    reloader = RulesReloader(load_config(files.config, env=ENV), applied.append, env=env)
    files.write(files.config, CONFIG.replace("interval_seconds: 60", "interval_seconds: 4321"))

    assert watch(reloader) is ReloadOutcome.SAME_RULES

    assert applied == []
    [warning] = messages(caplog, logging.WARNING)
    assert "apply only after a restart" in warning
    assert warning.endswith(": connectors.zendesk.api_token, poller.interval_seconds")
    assert "zd-token-value" not in caplog.text and "4321" not in warning


def test_rules_and_rules_dir_are_applied_live_so_they_never_warn(files, reloader, applied,
                                                                 caplog):
    files.rule_file("triage.yaml", TRIAGE)
    files.write(files.config, CONFIG.replace("rules_dir: rules.d\n", "")
                + NOTIFY.removeprefix("rules:\n").replace("VIP ticket", "VIP, inline"))
    assert watch(reloader) is ReloadOutcome.RELOADED
    assert ids(applied[-1].rules) == ["bug", "notify"]  # triage.yaml is no longer read
    assert messages(caplog, logging.WARNING) == []


# -- end to end: a hub subprocess, its rules file edited, SIGHUP -------------------------------

SECRET = "reload-test-secret-0123"
FIELD_IDS: dict[str, int] = dict(shipped_config()["connectors"]["zendesk"]["custom_fields"])


def _watch_rule(tag: str, note: str) -> str:
    return (f"rules:\n  - id: watch-{tag}\n    on: [ticket.created]\n"
            f"    if: {{field: ticket.tags, op: contains, value: {tag}}}\n"
            f"    then:\n      - zendesk.update: {{note: \"{note}\", add_tags: [seen_{tag}]}}\n")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(jira_search_lag=0.2).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.mark.slow
def test_a_running_hub_takes_edited_rules_and_keeps_them_when_handed_broken_ones(
        sandbox, tmp_path):
    sb = sandbox
    rules_file = tmp_path / "rules.d" / "live.yaml"
    rules_file.parent.mkdir()
    rules_file.write_text(_watch_rule("alpha", "alpha seen"), encoding="utf-8")
    config = hub_config(sb, tmp_path, secret=SECRET, rules=[],
                        overrides={"rules_dir": "rules.d", "rules_reload_seconds": 0.2})
    hub = HubProcess(write_config(tmp_path / "hub.yaml", config), log_path=tmp_path / "hub.log")
    store = StoreReader(tmp_path / "hub.db")
    try:
        hub.start()
        wait_until(store.backfilled, 15, message="the backfill poll")
        sb.zendesk.configure_webhook(hub.webhook_url, SECRET)

        def feed(subject: str) -> int:
            ticket = int(sb.zendesk.create_ticket({
                "subject": subject, "description": subject, "priority": "normal",
                "status": "open", "tags": ["beta"]})["id"])
            resp = sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.created")
            with resp:
                assert resp.json()["status"] == "accepted", resp.text
            return ticket

        def decided(ticket: int) -> dict[str, bool]:
            rows = store.rows("SELECT rule_id, matched FROM decisions WHERE ticket_id = :t",
                              t=ticket)
            return {r.rule_id: bool(r.matched) for r in rows}

        def notes(ticket: int) -> list[str]:
            return [c["body"] for c in sb.zendesk.comments(ticket) if c.get("public") is False]

        # 1. The rule in force does not match a "beta" ticket.
        first = feed("Before the edit")
        assert wait_until(lambda: decided(first), 10, message="a decision") == \
            {"watch-alpha": False}

        # 2. The file watch picks up an edited rule, and the next ticket meets it.
        rules_file.write_text(_watch_rule("beta", "beta seen"), encoding="utf-8")
        wait_until(lambda: "rules reloaded: 1 rules (watch-beta)" in hub.log_text(), 10,
                   message=lambda: "the reload\n" + hub.log_text()[-2000:])
        second = feed("After the edit")
        assert wait_until(lambda: decided(second), 10) == {"watch-beta": True}
        assert wait_until(lambda: notes(second), 10, message="the note") == ["beta seen"]
        assert "seen_beta" in sb.zendesk.ticket(second)["tags"]

        # 3. Broken rules are refused, with file:line, and the hub keeps deciding with the last
        #    good ones; SIGHUP loads them again (and refuses again) without stopping the hub.
        rules_file.write_text(BROKEN, encoding="utf-8")
        wait_until(lambda: hub.log_text().count("rules reload refused") == 1, 10,
                   message=lambda: "the refusal\n" + hub.log_text()[-2000:])
        assert f"{rules_file}:4: " in hub.log_text()
        assert hub.proc is not None
        hub.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: hub.log_text().count("rules reload refused") == 2, 10,
                   message=lambda: "the SIGHUP reload\n" + hub.log_text()[-2000:])
        third = feed("With broken rules on disk")
        assert wait_until(lambda: decided(third), 10) == {"watch-beta": True}
        assert wait_until(lambda: notes(third), 10, message="the note") == ["beta seen"]
        assert hub.running
    finally:
        hub.close()
        store.close()
        print(hub.log_text())  # shown by pytest only when the test fails
