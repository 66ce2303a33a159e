"""YAML documents that remember where each value came from, and problems that say ``file:line``.

Both the config loader and the rules loader read YAML through :func:`load_yaml`, which returns plain
Python data (safe loader only) plus a :class:`Positions` map from a value's path
(``("rules", 0, "if", "all", 1, "op")``) to its line, so that every validation problem can be
reported as ``config.yaml:42: rules[0].if.all[1].op: unknown operator 'contians'``.
"""

from __future__ import annotations

__all__ = ["Path", "Positions", "Problem", "ProblemsError", "format_path", "load_yaml"]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

Path = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """``("rules", 0, "if")`` -> ``rules[0].if``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file."""

    file: str
    line: int | None
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ProblemsError(Exception):
    """Raised with *every* problem found, never just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class Positions:
    """Line numbers (1-based) of the values of one YAML file, by path."""

    def __init__(self, file: str, lines: dict[Path, int]) -> None:
        self.file = file
        self._lines = lines

    def line(self, path: Sequence[str | int]) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while True:
            if key in self._lines:
                return self._lines[key]
            if not key:
                return None
            key = key[:-1]

    def problem(
        self, path: Sequence[str | int], message: str, hint: str = "", *, prefix: Path = ()
    ) -> Problem:
        """A :class:`Problem` located at ``prefix + path`` in this file."""
        full = tuple(prefix) + tuple(path)
        return Problem(self.file, self.line(full), format_path(full), message, hint)

    def sub(self, prefix: Sequence[str | int]) -> Positions:
        """Positions of the subtree at ``prefix``, re-rooted so that paths start there."""
        n = len(prefix)
        pre = tuple(prefix)
        lines = {k[n:]: v for k, v in self._lines.items() if k[:n] == pre}
        return Positions(self.file, lines)


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """Safe loader; mapping keys must be unique (YAML says so, PyYAML does not check)."""


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int], problems: list[Problem],
          file: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(
                    Problem(file, key_node.start_mark.line + 1, format_path((*path, key)),
                            f"duplicate key '{key}'")
                )
            seen.add(key)
            _walk(value_node, (*path, key), lines, problems, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, problems, file)


def load_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one YAML document safely.

    Raises :class:`ProblemsError` on syntax errors or duplicate keys.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ProblemsError(
            [Problem(file, line, "", f"YAML syntax error: {exc.problem or exc}")]
        ) from exc
    except yaml.YAMLError as exc:
        raise ProblemsError([Problem(file, None, "", f"YAML error: {exc}")]) from exc
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    if node is None:
        return None, Positions(file, lines)
    _walk(node, (), lines, problems, file)
    if problems:
        raise ProblemsError(problems)
    data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    return data, Positions(file, lines)
