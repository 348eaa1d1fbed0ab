"""Fault injection: throttling of CloudWatch Logs reads, of Lambda invocations and of S3 requests.

All faults are off by default and read their setting on every call, so they can be
switched on and off while the server runs (see ``LocalAWS.override``).
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable

from pipeskit.local.errors import AccessDenied, SlowDown, Throttling, TooManyRequests
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
        self._s3_lock = threading.Lock()
        self._s3_refusals: dict[str, int] = {}
        self.s3_slow_downs: collections.Counter[str] = collections.Counter()
        """``503 SlowDown`` answers given so far, per HTTP method."""

    def seed(self, value: int) -> None:
        """Make the random faults (invoke throttling, S3 slow-down) repeat the same sequence, for tests."""
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

    def check_s3_request(self, method: str, target: str) -> None:
        """Raise ``SlowDown`` per ``s3_slow_down_per_key`` and ``s3_slow_down_rate``.

        Args:
            method: The HTTP method.
            target: What the request addresses: the bucket and key, or the listing's query.

        Raises:
            SlowDown: The request is refused.
        """
        settings = self._settings()
        per_key, rate = settings.s3_slow_down_per_key, settings.s3_slow_down_rate
        if not per_key and not rate:
            if self._s3_refusals:  # the fault was switched off: the next switch-on starts afresh
                with self._s3_lock:
                    self._s3_refusals.clear()
            return
        refuse = False
        with self._s3_lock:
            if per_key:
                key = f"{method} {target}"
                refused = self._s3_refusals.get(key, 0)
                if refused < per_key:
                    self._s3_refusals[key] = refused + 1
                    refuse = True
            if not refuse and rate > 0 and self._rng.random() < rate:
                refuse = True
            if refuse:
                self.s3_slow_downs[method] += 1
        if refuse:
            raise SlowDown()
