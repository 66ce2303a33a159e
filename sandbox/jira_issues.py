"""Jira issue JSON without state: the fixed vocabularies (priorities, issue types, status
categories), field validation as Jira reports it, rendering an issue record as REST JSON, and the
flat view JQL evaluates. ``sandbox.jira`` adds ids, versions, locking and storage.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from sandbox.base import jira_timestamp

__all__ = [
    "CATEGORIES",
    "EXTRA_FIELDS",
    "ISSUE_TYPES",
    "PRIORITIES",
    "check_fields",
    "named",
    "render",
    "view",
]

PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
ISSUE_TYPES = {"Epic": "10000", "Story": "10001", "Task": "10002", "Sub-task": "10003",
               "Bug": "10004", "Incident": "10005", "Improvement": "10006"}  # fmt: skip
CATEGORIES = {  # key -> (id, name, colorName)
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
# Fields an issue create/edit may set besides the core ones; stored and returned verbatim.
EXTRA_FIELDS = ("assignee", "reporter", "components", "fixVersions", "duedate", "environment")


def named(value: Any, table: dict[str, str]) -> str | None:
    """Resolve ``{"name": ...}`` / ``{"id": ...}`` / a bare name against ``{name: id}``."""
    if isinstance(value, dict):
        if "name" in value:
            value = value["name"]
        elif "id" in value:
            return next((name for name, ident in table.items() if ident == str(value["id"])), None)
    if isinstance(value, str):
        return next((name for name in table if name.lower() == value.lower()), None)
    return None


def check_fields(
    fields: dict[str, Any], *, creating: bool, project_known: Callable[[Any], bool]
) -> dict[str, str]:
    """Jira's field validation for create (``creating``) and edit: ``{field: message}`` for
    every problem at once (empty when valid)."""
    problems: dict[str, str] = {}
    core = ("project", "issuetype", "summary", "description", "labels", "priority")
    for name in fields:
        if name not in core + EXTRA_FIELDS and not name.startswith("customfield_"):
            problems[name] = (f"Field '{name}' cannot be set. It is not on the appropriate "
                              "screen, or unknown.")  # fmt: skip
    if creating:
        project = fields.get("project")
        ref = project.get("key") or project.get("id") if isinstance(project, dict) else project
        if not project_known(ref):
            problems["project"] = "valid project is required"
        if "issuetype" not in fields:
            problems["issuetype"] = "Specify an issue type"
        elif named(fields["issuetype"], ISSUE_TYPES) is None:
            problems["issuetype"] = "The issue type selected is invalid."
    if creating or "summary" in fields:
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            problems["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            problems["summary"] = "Summary must be less than 255 characters."
    if fields.get("description") is not None and not isinstance(fields["description"], str):
        problems["description"] = "Operation value must be a string"
    labels = fields.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            problems["labels"] = "Operation value must be an array of strings"
        else:
            for label in labels:
                if not label or any(ch.isspace() for ch in label):
                    problems["labels"] = (f"The label '{label}' contains spaces which is "
                                          "invalid.")  # fmt: skip
                elif len(label) > 255:
                    problems["labels"] = "The label must not exceed 255 characters."
    if fields.get("priority") is not None and named(fields["priority"], PRIORITIES) is None:
        problems["priority"] = "The priority selected is invalid."
    return problems


def render(
    record: dict[str, Any], base: str, status_id: str, fields: list[str] | None = None
) -> dict[str, Any]:
    """Issue JSON for a record (or a past version) served at ``base``; ``fields`` limits
    ``fields`` as the REST ``fields`` parameter does (``*all`` / ``*navigable`` / names /
    ``-name``)."""
    category_id, category_name, color = CATEGORIES[record["category"]]
    priority_id = PRIORITIES[record["priority"]]
    type_id = ISSUE_TYPES[record["issuetype"]]
    project = record["project"]
    everything: dict[str, Any] = {
        "summary": record["summary"],
        "description": record["description"],
        "labels": list(record["labels"]),
        "status": {
            "self": f"{base}/rest/api/2/status/{status_id}", "description": "",
            "iconUrl": f"{base}/images/icons/statuses/generic.png",
            "name": record["status"], "id": status_id,
            "statusCategory": {
                "self": f"{base}/rest/api/2/statuscategory/{category_id}", "id": category_id,
                "key": record["category"], "colorName": color, "name": category_name,
            },
        },
        "priority": {"self": f"{base}/rest/api/2/priority/{priority_id}",
                     "iconUrl": f"{base}/images/icons/priorities/{record['priority'].lower()}.svg",
                     "name": record["priority"], "id": priority_id},
        "issuetype": {"self": f"{base}/rest/api/2/issuetype/{type_id}", "id": type_id,
                      "description": "", "iconUrl": f"{base}/images/icons/issuetypes/{type_id}.svg",
                      "name": record["issuetype"], "subtask": False, "hierarchyLevel": 0},
        "project": {"self": f"{base}/rest/api/2/project/{project['id']}", "id": project["id"],
                    "key": project["key"], "name": project["name"],
                    "projectTypeKey": "software", "simplified": False},
        "created": jira_timestamp(record["created"]),
        "updated": jira_timestamp(record["updated"]),
        "resolution": None if record["resolution"] is None else {
            "self": f"{base}/rest/api/2/resolution/10000", "id": "10000",
            "description": "Work has been completed on this issue.", "name": record["resolution"]},
        "resolutiondate": None if record["resolutiondate"] is None
        else jira_timestamp(record["resolutiondate"]),
        "fixVersions": [],
        **copy.deepcopy(record["extra"]),
    }  # fmt: skip
    wanted = [f for f in (fields or ["*all"]) if f]
    chosen = dict(everything)
    if not any(f in ("*all", "*navigable") for f in wanted):
        chosen = {k: v for k, v in everything.items() if k in wanted}
    for name in wanted:
        if name.startswith("-"):
            chosen.pop(name[1:], None)
    return {
        "expand": EXPAND,
        "id": record["id"], "self": f"{base}/rest/api/2/issue/{record['id']}",
        "key": record["key"], "fields": chosen,
    }  # fmt: skip

def view(record: dict[str, Any], status_id: str) -> dict[str, Any]:
    """The flat values JQL clauses test (see ``sandbox.jql``)."""
    category_id, category_name, _ = CATEGORIES[record["category"]]
    return {
        "id": record["id"], "key": record["key"], "labels": record["labels"],
        "project_key": record["project"]["key"], "project_id": record["project"]["id"],
        "project_name": record["project"]["name"], "status_name": record["status"],
        "status_id": status_id, "category_key": record["category"],
        "category_name": category_name,
        "category_id": category_id, "created": record["created"], "updated": record["updated"],
    }  # fmt: skip
