"""A thread-safe token bucket: the CloudWatch Logs read budget shared by every session."""

from __future__ import annotations

import threading
import time


class RateBudget:
    """Allow at most ``rate`` acquisitions per second on average, with bursts of ``burst``.

    One instance is shared by all sessions of a process (see `shared_logs_budget`), so many
    concurrent assets together stay inside the account-wide CloudWatch Logs quota.

    Args:
        rate: tokens added per second.
        burst: bucket size (defaults to ``rate`` rounded up, at least 1).
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, float(rate))
        self._tokens = self.burst
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait:
            time.sleep(wait)
        return wait


_shared: dict[float, RateBudget] = {}
_shared_lock = threading.Lock()


def shared_logs_budget(rate: float) -> RateBudget:
    """The process-wide budget for CloudWatch Logs reads at ``rate`` calls per second."""
    with _shared_lock:
        budget = _shared.get(rate)
        if budget is None:
            budget = _shared[rate] = RateBudget(rate)
        return budget
