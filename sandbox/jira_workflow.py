"""The Jira stand-in's workflow: which transitions an issue offers from which status, and their
REST JSON (``GET /rest/api/2/issue/{key}/transitions``).

Jira offers, from an issue's current status, only the transitions its workflow defines from that
status (a global transition — ``from_statuses`` empty — from any status but its target); asking to
perform any other is a 400 ``Transition id '<id>' is not valid for this issue.``. Transition ids
are per workflow, not standard: clients list them first. The default below is a small classic
workflow with a ``Reopen`` transition from the done statuses to ``Reopened`` (category To Do);
tests replace it with :meth:`sandbox.jira.JiraState.set_workflow`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_WORKFLOW", "WorkflowTransition", "offered", "render_transition"]


@dataclass(frozen=True, slots=True)
class WorkflowTransition:
    """One transition: ``id``, ``name``, the status it leads to (``to``, in ``category``:
    ``new`` / ``indeterminate`` / ``done``), and the statuses it is offered from (empty: all)."""

    id: str
    name: str
    to: str
    category: str
    from_statuses: tuple[str, ...] = ()

    def offered_from(self, status: str) -> bool:
        if not self.from_statuses:
            return status != self.to
        return status.lower() in (s.lower() for s in self.from_statuses)


_DONE = ("Done", "Closed", "Resolved")
DEFAULT_WORKFLOW: tuple[WorkflowTransition, ...] = (
    WorkflowTransition("11", "Back to To Do", "To Do", "new", ("In Progress",)),
    WorkflowTransition("21", "Start Progress", "In Progress", "indeterminate",
                       ("To Do", "Reopened")),
    WorkflowTransition("31", "Done", "Done", "done", ("To Do", "In Progress", "Reopened")),
    WorkflowTransition("41", "Reopen", "Reopened", "new", _DONE),
)


def offered(workflow: tuple[WorkflowTransition, ...], status: str) -> list[WorkflowTransition]:
    """The transitions ``workflow`` offers from ``status``, in workflow order."""
    return [t for t in workflow if t.offered_from(status)]


def render_transition(transition: WorkflowTransition, base: str, status_id: str,
                      category: tuple[int, str, str]) -> dict[str, Any]:
    """A transition as Jira's REST API shows it; ``category`` is (id, name, colorName)."""
    category_id, category_name, color = category
    return {
        "id": transition.id, "name": transition.name,
        "to": {
            "self": f"{base}/rest/api/2/status/{status_id}", "description": "",
            "iconUrl": f"{base}/images/icons/statuses/generic.png",
            "name": transition.to, "id": status_id,
            "statusCategory": {
                "self": f"{base}/rest/api/2/statuscategory/{category_id}", "id": category_id,
                "key": transition.category, "colorName": color, "name": category_name,
            },
        },
        "hasScreen": False, "isGlobal": not transition.from_statuses, "isInitial": False,
        "isAvailable": True, "isConditional": False, "isLooped": False,
    }
