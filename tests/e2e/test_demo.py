"""The README's main job: `switchboard demo` plays the shipped sample and states the result."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_plays_the_sample_to_the_result_the_readme_states(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "demo", "--config",
                             str(tmp_path / "config.yaml")], capture_output=True, text=True,
                            timeout=240, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = " ".join(result.stdout.split())
    headline = re.search(r"(\d+) sample tickets .*?-> (\d+) Jira bugs, (\d+) tickets linked, "
                         r"(\d+) internal notes written back", out)
    assert headline is not None, out[-2000:]
    assert headline.groups() == ("48", "5", "9", "15")
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "-> 5 Jira bugs, 9 tickets linked, 15 internal notes written back" in readme
    # Nothing dead-lettered, nothing pending, nothing in shadow (the SLA rules see no event).
    assert "Intents: {'done': 45}" in out
    # Each bug's impact: one comment, edited in place as tickets joined (SUP-1 has three).
    assert "The impact comment on SUP-1" in out
    assert "*Linked tickets:* 3 — 3 open, 0 solved" in out
    assert re.search(r"jira POST /rest/api/2/issue/\{key\}/comment +│ +5 │", out), out[-4000:]
    assert re.search(r"jira PUT /rest/api/2/issue/\{key\}/comment/\{id\} +│ +4 │", out)
    # The cookbook's rules in the shipped config, each as the README tells it.
    for rule, decided in (("confirmed-bug-to-jira", "live 42 9 9 0"),
                          ("login-outage", "live 40 4 1 3"),
                          ("enterprise-urgent", "live 42 6 5 1"),
                          ("feedback-to-productboard", "live 42 6 6 0")):
        assert re.search(rf"{rule} +{decided.replace(' ', ' +')}", re.sub(r"[│┃]", " ", out)), \
            rule
    # The escalation scene: one page per incident, one thread each, PagerDuty's acknowledge back.
    assert ("Escalations: 2 pages, 2 Slack threads, 1 problem ticket(s), 1 acknowledged in "
            "PagerDuty") in out
    assert re.search(r"Zendesk problem #\d+ Possible outage: checkout: 7 incident\(s\) attached",
                     out), out[-3000:]
    assert "Acknowledged by Priya Shah; 1 ticket(s) from Acme Logistics" in out
    assert "↳ Acknowledged by Priya Shah." in out
    assert "7 ticket(s) from Acme Logistics, Brightside Dental, Cobalt Freight" in out
    # The feedback scene: one Productboard note per ticket, later words appended, and the
    # released feature's customers get a reply drafted.
    assert re.search(r"Feedback: 5 feedback tickets -> 5 Productboard notes \(\d+ create calls",
                     out), out[-3000:]
    assert "1 later comment(s) appended; 'Route export to CSV' released -> a reply drafted on " \
        "3 ticket(s)" in out
    # The sample trend report, written and posted.
    assert re.search(r"Written: \S+report-\d{4}-\d{2}-\d{2}\.md, report-", out), out[-2000:]
    assert "Posted to #support-reports: the summary" in out
    assert "feedback_logged (" not in out  # workflow tags are no topic (report.ignore_tags)
    assert (tmp_path / "var" / "demo.db").exists()
