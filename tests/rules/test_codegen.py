"""The generated deciders (:mod:`rules.codegen`): rules in many chunks keep their order and their
errors to themselves, and nothing a rule holds is ever run as code. (That they decide as
``evaluate`` does, on odd values in every position, is ``test_compiled.py``'s job.)"""

from __future__ import annotations

import regex

from rules import All, Change, FieldCondition, Op, RuleSet, evaluate
from rules.codegen import CHUNK
from rules.compiled import RuleIndex

from .test_compiled import context, leaf, rule


def test_rules_over_many_chunks_match_in_file_order() -> None:
    count = 3 * CHUNK + 5
    rules = tuple(rule(leaf("ticket.fields.n", Op.EQUALS, i % 7), rule_id=f"r{i}")
                  for i in range(count))
    index = RuleIndex(rules)
    for n in range(7):
        ctx = context({"fields": {"n": n}})
        want = tuple(r for r in rules if evaluate(r, ctx).matched)
        assert index.matching(ctx) == want
        assert [r.id for r in want] == [f"r{i}" for i in range(count) if i % 7 == n]


def test_an_error_in_one_rule_does_not_stop_the_others() -> None:
    broken = leaf("ticket.tags", Op.GT, 3)  # gt on a list raises: that rule is an error
    rules = tuple(rule(All((leaf("ticket.status", Op.EQUALS, "open"), broken), "if", None)
                       if i == CHUNK - 1 else leaf("ticket.status", Op.EQUALS, "open"),
                       rule_id=f"r{i}") for i in range(CHUNK + 2))
    ctx = context({"status": "Open", "tags": ["a"]})
    assert evaluate(rules[CHUNK - 1], ctx).error is not None
    assert [r.id for r in RuleIndex(rules).matching(ctx)] == [
        f"r{i}" for i in range(CHUNK + 2) if i != CHUNK - 1]


def test_field_names_and_values_from_rules_are_data_not_code() -> None:
    evil = "x'); raise SystemExit('ran') #"
    conditions = [
        FieldCondition(f"ticket.fields.{evil}", Op.EQUALS, evil, False, "if", None),
        FieldCondition(f"ticket.{evil}", Op.IN, (evil, "b"), False, "if", None),
        FieldCondition("ticket.tags", Op.CONTAINS_ANY, (evil, '"""'), False, "if", None),
        FieldCondition("ticket.subject", Op.MATCHES, regex.escape(evil) + "|'''", False, "if",
                       None),
        FieldCondition(f"ticket.{evil}", Op.CHANGED_TO, evil, False, "if", None),
    ]
    ruleset = RuleSet(tuple(rule(c, rule_id=f"r{i}") for i, c in enumerate(conditions)))
    ticket = {"fields": {evil: evil.upper()}, evil: evil, "tags": [evil], "subject": evil}
    ctx = context(ticket, changes={evil: Change(None, evil)})
    assert ruleset.matching(ctx) == tuple(r for r in ruleset if evaluate(r, ctx).matched)
    assert len(ruleset.matching(ctx)) == len(conditions)


def test_rules_sharing_gates_are_written_together_but_found_in_file_order() -> None:
    # Interleaved rules gated on two tags: each gate's rules are one block of the generated
    # code, and what matches still comes back in file order.
    rules = tuple(rule(All((leaf("ticket.tags", Op.CONTAINS, "even" if i % 2 == 0 else "odd"),
                            leaf("ticket.fields.n", Op.GTE, i)), "if", None), rule_id=f"r{i}")
                  for i in range(CHUNK + 9))
    index = RuleIndex(rules)
    source = index._decide.chunks[0].__source__
    assert source.count(" in gates:") == 2  # one test per gate set, not one per rule
    for tags in (["even"], ["odd"], ["odd", "even"], []):
        ctx = context({"tags": tags, "fields": {"n": 50}})
        want = tuple(r for r in rules if evaluate(r, ctx).matched)
        assert index.matching(ctx) == want
        assert [int(r.id[1:]) for r in want] == sorted(int(r.id[1:]) for r in want)
    assert len(index.matching(context({"tags": ["odd", "even"], "fields": {"n": 50}}))) == 51
