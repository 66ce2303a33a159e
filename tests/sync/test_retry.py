"""The retry policy shared by the inbox and the outbox."""

from __future__ import annotations

from connectors.errors import (
    ConfigurationError,
    InvalidRequestError,
    RateLimitedError,
    RetriableError,
    SkippableError,
)
from sync.retry import RetryPolicy

POLICY = RetryPolicy(max_attempts=3, base=1.0, cap=8.0)


def test_retriable_errors_are_retried_with_a_growing_capped_delay():
    delays = [POLICY.judge(RetriableError("x", ambiguous=True), n).retry_in for n in (1, 2)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0
    assert all(0 < RetryPolicy(9, base=1.0, cap=8.0).delay(n) <= 8.0 for n in range(1, 9))


def test_a_rate_limit_is_never_retried_sooner_than_retry_after():
    verdict = POLICY.judge(RateLimitedError("429", retry_after=42.0), 1)
    assert verdict.kind == "retry" and verdict.retry_in == 42.0


def test_attempts_spent_give_up_with_the_reason():
    verdict = POLICY.judge(RetriableError("zendesk: timeout"), 3)
    assert verdict.kind == "give_up"
    assert verdict.reason == "gave up after 3 attempts: zendesk: timeout"


def test_fatal_and_skippable_errors_are_not_retried():
    assert POLICY.judge(InvalidRequestError("400"), 1).kind == "fatal"
    assert POLICY.judge(ConfigurationError("bad"), 1).kind == "fatal"
    assert POLICY.judge(SkippableError("gone"), 1).kind == "skip"


def test_an_unexpected_exception_is_kept_and_retried_with_its_type_named():
    verdict = POLICY.judge(KeyError("id"), 1)
    assert verdict.kind == "retry" and verdict.reason == "KeyError: 'id'"
    assert POLICY.judge(KeyError("id"), 3).kind == "give_up"


def test_any_retriable_error_that_names_a_retry_after_is_not_retried_sooner():
    waiting = POLICY.judge(RetriableError("job may be queued", retry_after=90.0), 1)
    assert waiting.kind == "retry" and waiting.retry_in >= 90.0
    plain = POLICY.judge(RetriableError("timeout"), 1)
    assert plain.retry_in < 90.0
