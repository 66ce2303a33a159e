"""Typed reads out of decoded vendor JSON, for the webhook parsers.

Each vendor's parser raises its own payload error (the receiver maps it to a 400), so a
:class:`FieldReader` is made once per error class; its messages name the value's path
(``event.data.id must be a non-empty string, not 5``).
"""

from __future__ import annotations

__all__ = ["FieldReader"]

from collections.abc import Mapping
from typing import Any


class FieldReader:
    """Reads strings and objects from a JSON object, raising ``error`` for a wrong one."""

    def __init__(self, error: type[ValueError]) -> None:
        self.error = error

    def required_str(self, obj: Mapping[str, Any], key: str, where: str) -> str:
        """``obj[key]``: a string that is not blank."""
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            problem = "is missing" if value is None else \
                f"must be a non-empty string, not {value!r}"
            raise self.error(f"{where}.{key} {problem}")
        return value

    def optional_str(self, obj: Mapping[str, Any] | None, key: str, where: str) -> str | None:
        """``obj[key]``: a string or null; ``None`` also when ``obj`` is ``None``."""
        if obj is None:
            return None
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(f"{where}.{key} must be a string or null, not {value!r}")
        return value

    def optional_object(self, obj: Mapping[str, Any], key: str,
                        where: str) -> dict[str, Any] | None:
        """``obj[key]``: an object or null."""
        value = obj.get(key)
        if value is not None and not isinstance(value, dict):
            raise self.error(f"{where}.{key} must be an object or null, not {value!r}")
        return value
