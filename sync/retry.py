"""One retry policy for the inbox and the outbox: what a failure means, and when to try again.

:meth:`RetryPolicy.judge` turns an exception from the ``connectors.errors`` tree into a
:class:`Verdict`:

- ``retry``: retriable (5xx, timeouts, 429) with attempts left — after a jittered exponential
  backoff that never undercuts a rate limit's ``Retry-After``;
- ``give_up``: retriable, but ``max_attempts`` are spent;
- ``skip``: the target is gone for good (a deleted ticket);
- ``fatal``: a 4xx, a configuration error — retrying cannot help.

An unexpected exception (a bug, not bad input) is retried like a retriable error, so that the work
is kept, with its reason, rather than lost.
"""

from __future__ import annotations

__all__ = ["RetryPolicy", "Verdict"]

import random
from dataclasses import dataclass

from connectors.errors import RetriableError, SkippableError, SwitchboardError


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str
    reason: str
    retry_in: float | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base: float = 2.0
    cap: float = 300.0

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Jittered exponential backoff; a rate limit's Retry-After (any ``retry_after``) is a
        floor."""
        delay = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        delay = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not cryptography
        if isinstance(error, RetriableError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay

    def judge(self, error: BaseException, attempts: int) -> Verdict:
        """What to do after ``error`` on the ``attempts``-th attempt."""
        if isinstance(error, SkippableError):
            return Verdict("skip", f"skipped: {error}")
        if isinstance(error, SwitchboardError) and not isinstance(error, RetriableError):
            return Verdict("fatal", str(error))
        reason = str(error) if isinstance(error, RetriableError) \
            else f"{type(error).__name__}: {error}"
        if attempts >= self.max_attempts:
            return Verdict("give_up", f"gave up after {attempts} attempts: {reason}")
        return Verdict("retry", reason, self.delay(attempts, error))
