"""One fixture file per kind of rule mistake (tests/fixtures/rules/invalid): each is refused with
its problem at the exact ``file:line`` its first line names (``# expect: LINE: TEXT``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import ProblemsError, load_rule_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rules" / "invalid"
CASES = sorted(FIXTURES.glob("*.yaml"))


def test_there_is_a_fixture_for_each_kind_of_mistake() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_each_mistake_is_reported_at_its_file_and_line(path: Path) -> None:
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("# expect: ")
    line, _, text = header.removeprefix("# expect: ").partition(": ")
    with pytest.raises(ProblemsError) as info:
        load_rule_files([path], custom_fields=("error_code",))
    rendered = [str(p) for p in info.value.problems]
    assert any(p.startswith(f"{path}:{line}: {text}".rstrip()) for p in rendered), rendered
