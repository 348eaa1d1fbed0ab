"""Fault injection: throttling of CloudWatch Logs reads and of Lambda invocations.

All faults are off by default and read their setting on every call, so they can be
switched on and off while the server runs (see ``LocalAWS.override``).
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable

from pipeskit.local.errors import AccessDenied, Throttling, TooManyRequests
from pipeskit.local.settings import LocalAWSSettings

LOGS_READ_OPERATIONS = frozenset({"GetLogEvents", "FilterLogEvents", "DescribeLogStreams"})
"""CloudWatch Logs operations subject to the read throttle."""


class RateLimiter:
    """Sliding one-second window allowing ``limit()`` calls per second.

    Args:
        limit: Returns the current limit; ``<= 0`` means unlimited.
    """

    def __init__(self, limit: Callable[[], float]) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._calls: collections.deque[float] = collections.deque()

    def try_acquire(self) -> bool:
        """Record one call; return ``False`` if it is over the limit."""
        limit = self._limit()
        if limit <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            while self._calls and now - self._calls[0] >= 1.0:
                self._calls.popleft()
            if len(self._calls) >= limit:
                return False
            self._calls.append(now)
            return True


class FaultInjector:
    """Decides which requests fail because of an injected fault.

    Args:
        settings: Returns the current settings.
        rng: Random source for probabilistic faults.
    """

    def __init__(
        self, settings: Callable[[], LocalAWSSettings], rng: random.Random | None = None
    ) -> None:
        self._settings = settings
        self._rng = rng or random.Random()
        self._logs_reads = RateLimiter(lambda: self._settings().logs_read_tps)

    def seed(self, value: int) -> None:
        """Make the random faults (invoke throttling) repeat the same sequence, for tests."""
        self._rng.seed(value)

    def check_logs_request(self, operation: str) -> None:
        """Raise ``AccessDeniedException`` when reads are denied, ``ThrottlingException`` above ``logs_read_tps``.

        Args:
            operation: The CloudWatch Logs operation name (from ``X-Amz-Target``).

        Raises:
            AccessDenied: Reads are denied (``logs_read_denied``).
            Throttling: The call is throttled.
        """
        if operation not in LOGS_READ_OPERATIONS:
            return
        if self._settings().logs_read_denied:
            raise AccessDenied(operation)
        if not self._logs_reads.try_acquire():
            raise Throttling()

    def check_invoke(self) -> None:
        """Raise ``TooManyRequestsException`` for ``invoke_throttle_rate`` of invocations.

        Raises:
            TooManyRequests: The invocation is throttled.
        """
        rate = self._settings().invoke_throttle_rate
        if rate > 0 and self._rng.random() < rate:
            raise TooManyRequests(reason="CallerRateLimitExceeded")
