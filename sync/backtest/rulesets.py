"""The two sides of ``switchboard diff``: rule sets from files, directories or git revisions.

A side is written as

- ``PATH`` — a rules YAML file (``rules:`` list), a directory of ``*.yaml`` / ``*.yml`` rule
  files, or a config file (a YAML mapping with settings besides ``rules:``), whose ``rules:``
  list and ``rules_dir`` files are used, as the hub loads them;
- ``git:REV`` — the rules of the config file (``--config``) as committed at ``REV`` (any
  revision git understands: ``HEAD``, ``HEAD~1``, ``main``, a tag or a hash): its ``rules:`` and
  its ``rules_dir`` files at that revision, read with ``git show`` — the working tree is never
  touched;
- ``git:REV:PATH`` — ``PATH`` (file, directory or config, as above) at ``REV``; a relative
  ``PATH`` is relative to the current directory, as for ``git show REV:./PATH``.

Both sides are validated with the current config's custom field names, as ``validate`` does;
:class:`SideError` lists what is wrong (unknown revision, missing file, invalid rules).
"""

from __future__ import annotations

__all__ = ["RuleSide", "SideError", "load_side"]

import os
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from rules import ProblemsError, RuleSet, load_rules
from rules.source import Positions, load_yaml

RULE_SUFFIXES = (".yaml", ".yml")
GIT_PREFIX = "git:"


class SideError(Exception):
    """A side of the diff cannot be loaded; the message says why (every rule problem listed)."""


@dataclass(frozen=True, slots=True)
class RuleSide:
    """A loaded side: its rules and how to name it in the report."""

    label: str
    rules: RuleSet


class _Tree(Protocol):
    def kind(self, path: str) -> str | None:
        """``"file"``, ``"dir"`` or ``None`` (missing)."""

    def read(self, path: str) -> str: ...

    def names(self, path: str) -> list[str]: ...

    def label(self, path: str) -> str: ...


class _WorkTree:
    def kind(self, path: str) -> str | None:
        p = Path(path)
        return "dir" if p.is_dir() else "file" if p.is_file() else None

    def read(self, path: str) -> str:
        try:
            return Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SideError(f"{path}: cannot read: {exc}") from exc

    def names(self, path: str) -> list[str]:
        return [p.name for p in Path(path).iterdir() if p.is_file()]

    def label(self, path: str) -> str:
        return path


class _GitTree:
    def __init__(self, rev: str) -> None:
        self.rev = rev
        if not rev or rev.startswith("-"):
            raise SideError(f"git:{rev}: not a revision")
        out = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if out is None:
            raise SideError(f"git:{rev}: unknown revision (or not in a git repository)")

    def _git(self, *args: str, check: bool = True) -> str | None:
        try:
            done = subprocess.run(["git", *args], capture_output=True, timeout=30,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SideError(f"git: cannot run git: {exc}") from exc
        if done.returncode != 0:
            if not check:
                return None
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SideError(f"git:{self.rev}: {message[-1] if message else 'git failed'}")
        return done.stdout.decode("utf-8", "replace")

    def _spec(self, path: str) -> str:
        posix = PurePosixPath(Path(os.path.relpath(path)).as_posix())
        return f"{self.rev}:./{posix}"

    def kind(self, path: str) -> str | None:
        out = self._git("cat-file", "-t", self._spec(path), check=False)
        if out is None:
            return None
        return {"blob": "file", "tree": "dir"}.get(out.strip())

    def read(self, path: str) -> str:
        out = self._git("show", self._spec(path))
        assert out is not None
        return out

    def names(self, path: str) -> list[str]:
        out = self._git("ls-tree", "--name-only", self._spec(path) + "/")
        assert out is not None
        return [line for line in out.splitlines() if line]

    def label(self, path: str) -> str:
        return f"git:{self.rev}:{os.path.relpath(path)}"


def _rule_files(tree: _Tree, directory: str) -> list[str]:
    return sorted(str(Path(directory) / name) for name in tree.names(directory)
                  if name.endswith(RULE_SUFFIXES))


def _parse(tree: _Tree, path: str) -> tuple[Any, Positions]:
    return load_yaml(tree.read(path), tree.label(path))


def _is_config(data: Any) -> bool:
    return isinstance(data, dict) and any(key != "rules" for key in data)


def _sources(tree: _Tree, path: str) -> list[tuple[Any, Positions]]:
    kind = tree.kind(path)
    if kind is None:
        raise SideError(f"{tree.label(path)}: no such rules file or directory")
    if kind == "dir":
        return [_parse(tree, file) for file in _rule_files(tree, path)]
    data, positions = _parse(tree, path)
    if not _is_config(data):
        return [(data, positions)]
    # A config file: its rules: list and its rules_dir files, as sync.config loads them.
    sources: list[tuple[Any, Positions]] = []
    if data.get("rules"):
        sources.append(({"rules": data["rules"]}, positions))
    rules_dir = data.get("rules_dir")
    if isinstance(rules_dir, str) and rules_dir:
        directory = str(Path(path).parent / rules_dir)
        if tree.kind(directory) != "dir":
            raise SideError(f"{tree.label(path)}: rules_dir: not a directory: "
                            f"{tree.label(directory)}")
        sources += [_parse(tree, file) for file in _rule_files(tree, directory)]
    return sources


def load_side(spec: str, *, config_path: str | Path, custom_fields: Collection[str],
              user_fields: Collection[str] = (),
              organization_fields: Collection[str] = ()) -> RuleSide:
    """Load one side of a diff (syntax in the module docstring). Raises :class:`SideError`."""
    tree: _Tree
    if spec.startswith(GIT_PREFIX):
        rev, _, path = spec[len(GIT_PREFIX):].partition(":")
        tree = _GitTree(rev)
        path = path or str(config_path)
        label = spec if ":" in spec[len(GIT_PREFIX):] else f"{spec} ({tree.label(path)})"
    else:
        tree, path, label = _WorkTree(), spec, spec
    try:
        rules = load_rules(_sources(tree, path), custom_fields=custom_fields,
                           user_fields=user_fields, organization_fields=organization_fields)
    except ProblemsError as exc:
        raise SideError(f"{label}: invalid rules\n{exc.render()}") from exc
    return RuleSide(label, rules)
