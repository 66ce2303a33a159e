"""Turn a matched rule into action intents; render their templates when they are dispatched.

The rules engine only *plans*: :func:`plan` returns :class:`ActionIntent` objects with
deterministic idempotency keys, which ``sync/`` writes to the outbox in the same transaction as the
decision. Parameters stay unrendered until dispatch, because a step may use an earlier step's result
(``{{ jira.key }}``): ``depends_on`` names that step's key, and :func:`render_params` renders with
the context namespace plus the results of dependencies.
"""

from __future__ import annotations

__all__ = ["ActionIntent", "idempotency_key", "plan", "render_params"]

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .actions import ACTIONS
from .model import Rule, freeze, thaw
from .templating import TemplateRenderError, render

KEY_VERSION = "switchboard-intent-v1"


@dataclass(frozen=True, slots=True)
class ActionIntent:
    """One planned side effect.

    ``params`` are raw (templates unrendered), deep-frozen, and JSON-serialisable as is (a
    :class:`~rules.model.FrozenDict` with tuples for lists).
    """

    rule_id: str
    index: int
    action: str
    params: Mapping[str, Any]
    idempotency_key: str
    depends_on: str | None = None
    produces: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", freeze(self.params))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form (for the outbox)."""
        return {
            "rule_id": self.rule_id, "index": self.index, "action": self.action,
            "params": thaw(self.params), "idempotency_key": self.idempotency_key,
            "depends_on": self.depends_on, "produces": self.produces,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActionIntent:
        """Inverse of :meth:`to_json`; raises ``KeyError`` on a malformed dict."""
        return cls(data["rule_id"], int(data["index"]), data["action"], data["params"],
                   data["idempotency_key"], data.get("depends_on"), data.get("produces"))


def idempotency_key(rule_id: str, index: int, action: str, event_key: str) -> str:
    """Hex SHA-256 of (rule id, step index, action, event key): same inputs, same key."""
    payload = json.dumps([KEY_VERSION, rule_id, index, action, event_key], separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def plan(rule: Rule, event_key: str) -> tuple[ActionIntent, ...]:
    """The intents for ``rule``'s actions in order, for the event identified by ``event_key``.

    ``depends_on`` is the key of the most recent earlier intent whose result namespace this
    action's templates use. Mode is not looked at: whether to dispatch is the caller's decision.
    """
    intents: list[ActionIntent] = []
    producers: dict[str, tuple[int, str]] = {}  # namespace -> (index, key) of latest producer
    for call in rule.actions:
        spec = ACTIONS[call.name]
        key = idempotency_key(rule.id, call.index, call.name, event_key)
        needed = [producers[ns] for ns in call.uses if ns in producers]
        depends_on = max(needed)[1] if needed else None
        intents.append(ActionIntent(rule.id, call.index, call.name, call.params, key,
                                    depends_on, spec.produces))
        if spec.produces:
            producers[spec.produces] = (call.index, key)
    return tuple(intents)


def _render(value: Any, namespace: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        try:
            return render(value, namespace)
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{where}: {exc}") from exc
    if isinstance(value, Mapping):
        return {k: _render(v, namespace, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render(v, namespace, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def render_params(intent_or_action_name: ActionIntent | str, params: Mapping[str, Any],
                  namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Plain params with every template param rendered against ``namespace``.

    ``namespace`` is :meth:`EvalContext.namespace` plus the results of dependencies
    (``{"jira": {"key": "SUP-1", ...}}``). Raises :class:`TemplateRenderError` naming the action
    and param (``zendesk.update.note: undefined in template: 'jira' is undefined``), and
    ``ValueError`` for an unknown action.
    """
    name = (intent_or_action_name.action if isinstance(intent_or_action_name, ActionIntent)
            else intent_or_action_name)
    spec = ACTIONS.get(name)
    if spec is None:
        raise ValueError(f"unknown action {name!r}")
    out: dict[str, Any] = thaw(params)
    for param in sorted(spec.template_params):
        if out.get(param) is not None:
            out[param] = _render(out[param], namespace, f"{name}.{param}")
    return out
