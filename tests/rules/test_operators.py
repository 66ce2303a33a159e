from __future__ import annotations

import pytest

from rules import OPERATORS, Change, Op, OperatorError


def run(op: Op, actual: object, expected: object = None, case_sensitive: bool = False) -> bool:
    return OPERATORS[op].fn(actual, expected, case_sensitive)


def test_every_operator_has_a_label_a_documented_function_and_a_value_shape() -> None:
    assert set(OPERATORS) == set(Op)
    for spec in OPERATORS.values():
        assert spec.label
        assert spec.doc


def test_equals_ignores_case_by_default_and_respects_case_sensitive() -> None:
    assert run(Op.EQUALS, "Open", "open")
    assert not run(Op.EQUALS, "Open", "open", case_sensitive=True)
    assert run(Op.EQUALS, "open", "open", case_sensitive=True)


def test_equals_with_none_is_false_and_not_equals_with_none_is_true() -> None:
    assert not run(Op.EQUALS, None, "open")
    assert run(Op.NOT_EQUALS, None, "open")


def test_equals_compares_numbers_with_their_text() -> None:
    assert run(Op.EQUALS, 42, "42")
    assert run(Op.EQUALS, 42, 42)
    assert not run(Op.EQUALS, 42, 43)
    assert run(Op.EQUALS, True, "true")


def test_equals_on_a_list_raises_instead_of_silently_not_matching() -> None:
    with pytest.raises(OperatorError, match="contains"):
        run(Op.EQUALS, ["a"], "a")
    with pytest.raises(OperatorError):
        run(Op.NOT_EQUALS, ["a"], "a")


def test_in_and_not_in() -> None:
    assert run(Op.IN, "HIGH", ["high", "urgent"])
    assert not run(Op.IN, "HIGH", ["high", "urgent"], case_sensitive=True)
    assert not run(Op.IN, "low", ["high", "urgent"])
    assert not run(Op.IN, None, ["high"])
    assert run(Op.NOT_IN, "low", ["high", "urgent"])
    assert run(Op.NOT_IN, None, ["high"])
    with pytest.raises(OperatorError):
        run(Op.IN, ["high"], ["high"])


def test_contains_is_membership_for_lists_and_substring_for_text() -> None:
    assert run(Op.CONTAINS, ["bug_confirmed", "billing"], "BUG_CONFIRMED")
    assert not run(Op.CONTAINS, ["bug_confirmed_later"], "bug_confirmed")  # not a substring test
    assert run(Op.CONTAINS, "Checkout FAILS", "fails")
    assert not run(Op.CONTAINS, "Checkout FAILS", "fails", case_sensitive=True)
    assert not run(Op.CONTAINS, None, "x")
    assert not run(Op.CONTAINS, [], "x")


def test_contains_on_a_number_raises() -> None:
    with pytest.raises(OperatorError, match="text or a list"):
        run(Op.CONTAINS, 42, "4")


def test_contains_any_all_none() -> None:
    tags = ["bug", "Billing"]
    assert run(Op.CONTAINS_ANY, tags, ["outage", "billing"])
    assert not run(Op.CONTAINS_ANY, tags, ["outage", "billing"], case_sensitive=True)
    assert not run(Op.CONTAINS_ANY, None, ["bug"])
    assert run(Op.CONTAINS_ALL, tags, ["bug", "billing"])
    assert not run(Op.CONTAINS_ALL, tags, ["bug", "outage"])
    assert not run(Op.CONTAINS_ALL, None, ["bug"])
    assert run(Op.CONTAINS_NONE, tags, ["outage", "vip"])
    assert not run(Op.CONTAINS_NONE, tags, ["outage", "bug"])
    assert run(Op.CONTAINS_NONE, None, ["bug"])
    assert run(Op.CONTAINS_ANY, "error E42 at checkout", ["E41", "e42"])


def test_exists_is_false_for_none_empty_text_and_empty_lists() -> None:
    assert not run(Op.EXISTS, None)
    assert not run(Op.EXISTS, "")
    assert not run(Op.EXISTS, [])
    assert not run(Op.EXISTS, ())
    assert run(Op.EXISTS, "E42")
    assert run(Op.EXISTS, 0)
    assert run(Op.EXISTS, False)
    assert run(Op.EXISTS, ("SUP-1",))


def test_changed_needs_the_field_in_the_change_set_with_a_different_value() -> None:
    assert run(Op.CHANGED, Change("new", "open"))
    assert not run(Op.CHANGED, None)
    assert not run(Op.CHANGED, Change("open", "OPEN"))
    assert run(Op.CHANGED, Change("open", "OPEN"), case_sensitive=True)
    assert run(Op.CHANGED, Change(None, "open"))
    assert not run(Op.CHANGED, Change(["a", "b"], ["b", "a"]))  # tag lists compare as sets


def test_changed_to_and_changed_from_for_scalars() -> None:
    assert run(Op.CHANGED_TO, Change("new", "open"), "Open")
    assert not run(Op.CHANGED_TO, Change("new", "open"), "Open", case_sensitive=True)
    assert not run(Op.CHANGED_TO, Change("new", "pending"), "open")
    assert not run(Op.CHANGED_TO, Change("open", "open"), "open")
    assert not run(Op.CHANGED_TO, None, "open")
    assert run(Op.CHANGED_TO, Change(None, "high"), "high")
    assert run(Op.CHANGED_FROM, Change("new", "open"), "new")
    assert not run(Op.CHANGED_FROM, Change("new", "open"), "open")
    assert not run(Op.CHANGED_FROM, None, "new")


def test_changed_to_on_tags_means_added_and_changed_from_means_removed() -> None:
    change = Change(["billing", "vip"], ["billing", "bug_confirmed"])
    assert run(Op.CHANGED_TO, change, "bug_confirmed")
    assert not run(Op.CHANGED_TO, change, "billing")  # was already there
    assert run(Op.CHANGED_FROM, change, "vip")
    assert not run(Op.CHANGED_FROM, change, "billing")
    assert run(Op.CHANGED_TO, Change(None, ["bug"]), "bug")
