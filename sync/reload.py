"""Hot reload of rules: a running hub picks up changed rule files, and refuses bad ones.

A :class:`RulesReloader` watches the config file and the ``*.yaml`` / ``*.yml`` files of its
``rules_dir`` through a cheap stat fingerprint (each file's mtime, size and inode, and the set of
files, so an added or deleted rules file counts). When the fingerprint has changed and then stayed
the same for one more look (:meth:`check`, run by the hub's scheduler: a file caught half-written,
which may well parse — an emptied file is zero valid rules — is never loaded), or when asked
(:meth:`reload`, on SIGHUP), it loads the config again with :func:`sync.config.load_config` and:

- on success, hands the new rules to ``apply`` — the hub swaps ``EventProcessor.rules`` in one
  assignment — and logs the rule ids in force and which were added, removed or changed;
- on failure, logs every problem (``file:line: path: message``) at ERROR and keeps the last good
  rules (invariant 8). A broken state is reported once: the watch loads it again only after the
  files change again.

Only rules are applied live. Other settings that differ from the running ones are named in a
WARNING (restart to apply); their values are never logged, as some are secrets. A rule that names a
custom field the running hub does not know (``connectors.zendesk.custom_fields`` changed) is
refused, since the running connector would never fill it in.

Raises nothing: every failure to load is logged and reported as :attr:`ReloadOutcome.REFUSED`.
"""

from __future__ import annotations

__all__ = ["ReloadOutcome", "RulesReloader", "rules_revision"]

import contextlib
import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from rules import Problem, ProblemsError, Rule, RuleSet
from sync.config import LoadedConfig, load_config

log = logging.getLogger("switchboard.reload")

#: Settings that are applied by a reload (the rules themselves), so never "need a restart".
_LIVE_SETTINGS = frozenset({"rules", "rules_dir"})
#: Positions, not meaning: moving a rule within or between files does not change it.
_POSITION_FIELDS = frozenset({"file", "line"})

Fingerprint = tuple[tuple[str, tuple[int, int, int] | None], ...]


class ReloadOutcome(StrEnum):
    """What one :meth:`RulesReloader.check` or :meth:`RulesReloader.reload` did."""

    NOT_MODIFIED = "not modified"  # the watched files did not change; nothing was loaded
    SETTLING = "settling"  # they changed since the last look: loaded once they stay as they are
    SAME_RULES = "same rules"  # loaded fine, but no rule changed (a comment, another setting)
    RELOADED = "reloaded"  # new rules are in force
    REFUSED = "refused"  # invalid: the last good rules stay in force
    BUSY = "busy"  # files changed while they were read; the next check loads them again


def _canonical(value: Any) -> Any:
    """A JSON-able, process-independent form of a loaded rule (sets sorted, positions left out)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in _POSITION_FIELDS}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, timedelta):
        return value.total_seconds()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _digest(value: Any) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def rules_revision(rules: RuleSet) -> str:
    """A short hash of the rule definitions, in order; where they sit in which file is left out."""
    return _digest(list(rules.rules))


def _rule_changes(old: RuleSet, new: RuleSet) -> tuple[list[str], list[str], list[str]]:
    """Ids added, removed, and changed (same id, different definition) from ``old`` to ``new``."""
    before = {r.id: _digest(r) for r in old.rules}
    after = {r.id: _digest(r) for r in new.rules}
    added = [i for i in after if i not in before]
    removed = [i for i in before if i not in after]
    changed = [i for i in after if i in before and after[i] != before[i]]
    return added, removed, changed


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _differing(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the settings whose values differ (values themselves are not returned)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            if not prefix and key in _LIVE_SETTINGS:
                continue
            out += _differing(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None  # missing (or a dangling editor lock link): counts as a state of its own
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _raw_rules_dir(config_path: Path) -> str | None:
    """``rules_dir`` as the file states it — what ``load_config`` reads its rule files from."""
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    value = data.get("rules_dir") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


class RulesReloader:
    """Reloads the rules of ``running`` (a config loaded from its file) when its files change.

    ``apply`` receives each newly loaded config whose rules differ from those in force; it must
    swap them in (one assignment) and return. ``running`` is also the baseline that other settings
    are compared with. ``env`` resolves ``${VAR}`` as in :func:`load_config` (default: the process
    environment at reload time). :meth:`check` and :meth:`reload` may be called from any thread;
    they run one at a time.
    """

    def __init__(self, running: LoadedConfig, apply: Callable[[LoadedConfig], None], *,
                 env: Mapping[str, str] | None = None) -> None:
        self.path = running.path
        self._running = running
        self._apply = apply
        self._env = dict(env) if env is not None else None
        self._rules = running.rules
        self._rules_dir = running.app.rules_dir
        self._lock = threading.Lock()
        self._seen = self._fingerprint()
        self._settling: Fingerprint | None = None
        self.revision = rules_revision(running.rules)
        #: The problems of the last refused reload, as rendered text; None once rules load again.
        self.last_error: str | None = None

    @property
    def rules(self) -> RuleSet:
        """The rules in force: the last ones that loaded."""
        return self._rules

    def watched_files(self) -> list[Path]:
        """The config file and its ``rules_dir``'s rule files, globbed as ``load_config`` does."""
        files = [self.path]
        if self._rules_dir:
            directory = self.path.parent / self._rules_dir
            files += sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        return files

    def _fingerprint(self) -> Fingerprint:
        return tuple((str(f), _stat(f)) for f in self.watched_files())

    # -- public -------------------------------------------------------------------------------

    def check(self) -> ReloadOutcome:
        """Reload if the watched files changed, once they look the same as at the previous
        check (the scheduler's job: a change is applied one to two check periods after it)."""
        with self._lock:
            now = self._fingerprint()
            if now == self._seen:
                self._settling = None
                return ReloadOutcome.NOT_MODIFIED
            if now != self._settling:
                self._settling = now
                return ReloadOutcome.SETTLING
            return self._load()

    def reload(self) -> ReloadOutcome:
        """Reload now, changed or not (SIGHUP): a broken state is reported again."""
        with self._lock:
            return self._load()

    # -- steps --------------------------------------------------------------------------------

    def _load(self) -> ReloadOutcome:
        self._settling = None
        self._follow_rules_dir()
        before = self._fingerprint()
        new, error, problems = self._try_load()
        if self._fingerprint() != before:
            log.info("rule files changed while being read; loading them again at the next check")
            return ReloadOutcome.BUSY
        self._seen = before  # a broken state is reported once, not at every check
        if new is None:
            self.last_error = error
            log.error("rules reload refused; the last good rules stay in force (%s rules, "
                      "revision %s): %s", len(self._rules), self.revision, error.splitlines()[0])
            for problem in problems:
                log.error("  %s", problem)
            return ReloadOutcome.REFUSED
        self.last_error = None
        self._warn_about_settings(new)
        revision = rules_revision(new.rules)
        if revision == self.revision:
            log.info("rules loaded again; no rule changed (%s rules, revision %s)",
                     len(new.rules), revision)
            return ReloadOutcome.SAME_RULES
        added, removed, changed = _rule_changes(self._rules, new.rules)
        self._apply(new)
        old_revision, self._rules, self.revision = self.revision, new.rules, revision
        what = [f"{label}: {', '.join(ids)}" for label, ids in
                (("added", added), ("removed", removed), ("changed", changed)) if ids] \
            or ["order changed"]
        log.info("rules reloaded: %s rules (%s); %s; revision %s (was %s)",
                 len(new.rules), ", ".join(r.id for r in new.rules), "; ".join(what),
                 revision, old_revision)
        return ReloadOutcome.RELOADED

    def _try_load(self) -> tuple[LoadedConfig | None, str, list[str]]:
        """The loaded config, or None with the rendered error and one line per problem."""
        try:
            new = load_config(self.path, env=self._env)
            unknown = self._unknown_custom_fields(new.rules)
            if unknown:
                raise ProblemsError(unknown)
        except ProblemsError as exc:
            return None, exc.render(), [str(p) for p in exc.problems]
        except Exception as exc:  # e.g. a rule file that vanished between glob and read
            return None, f"cannot load {self.path}: {exc}", []
        return new, "", []

    def _follow_rules_dir(self) -> None:
        """Watch the ``rules_dir`` the file now names (a fix there must be seen, even if the
        config failed to load); keep the old one if the file cannot be parsed."""
        with contextlib.suppress(OSError, yaml.YAMLError, UnicodeDecodeError):
            self._rules_dir = _raw_rules_dir(self.path)

    def _unknown_custom_fields(self, rules: RuleSet) -> list[Problem]:
        known = set(self._running.app.connectors.zendesk.custom_fields)
        problems = []
        for rule in rules.rules:
            names = sorted({f.split(".")[2] for f in rule.fields_used
                            if f.startswith("ticket.fields.") and f.count(".") >= 2}
                           - known)
            if names:
                problems.append(_custom_field_problem(rule, names))
        return problems

    def _warn_about_settings(self, new: LoadedConfig) -> None:
        paths = _differing(_plain(self._running.app), _plain(new.app))
        if paths:
            log.warning("settings changed in %s that apply only after a restart "
                        "(the running hub keeps its current values): %s",
                        self.path, ", ".join(paths))


def _custom_field_problem(rule: Rule, names: list[str]) -> Problem:
    return Problem(rule.file, rule.line, f"rules.{rule.id}",
                   f"uses custom field(s) {', '.join(names)} that the running hub does not know",
                   "connectors.zendesk.custom_fields changed: restart the hub to apply it")

