"""The CloudWatch Logs read budget: a sliding window shared by every session of a process or of a host.

CloudWatch's read quotas are per account and region (FilterLogEvents: 5 calls per second), and
Dagster's multiprocess executor runs each step in its own process: a budget kept in one process's
memory lets N concurrent steps read N times too fast. `RateBudget` keeps its window in a SQLite file
instead (pyrate-limiter's ``SQLiteBucket``, serialized across processes by a file lock), so every
process of the host that names the same file shares one budget; without a file it is the old
process-wide budget.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sqlite3
import tempfile
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal

from pyrate_limiter import InMemoryBucket, Rate, RateItem, SQLiteBucket

from .settings import LogsReaderSettings, SettingsError

BudgetScope = Literal["host", "process"]
"""Who shares a read budget: every process of the host (through a file), or one process."""

GUARD_S = 0.05
"""How long past its second each read still counts: the time between taking a token and the request
reaching CloudWatch varies from call to call (scheduling, signing), and without this margin a read
that left late and one that left early could land in one second of CloudWatch's clock."""

_LEAK_EVERY_S = 30.0
_KEEP_MS = 300_000  # entries younger than this are never cleaned up: a process with a longer window may share the file
_ITEM = "read"


def budget_rates(rate: float, burst: float | None = None) -> list[Rate]:
    """The windows enforcing ``rate`` acquisitions per second, for pyrate-limiter.

    At most ``floor(rate)`` acquisitions in any window of one second (plus `GUARD_S`) — the whole
    budget may be spent at once — or, below one per second, one every ``1 / rate`` seconds. With
    ``burst`` below that, also at most ``burst`` in any ``burst / rate`` seconds.
    """
    if rate <= 0:
        raise SettingsError(f"a read budget's rate must be positive, got {rate}; set PIPESKIT_LOGS_READ_TPS above 0")
    guard_ms = GUARD_S * 1000
    if rate >= 1:
        limit, interval_ms = math.floor(rate), 1000 + guard_ms
    else:
        limit, interval_ms = 1, 1000 / rate + guard_ms
    rates = [Rate(limit, math.ceil(interval_ms))]
    if burst is not None and int(max(1, burst)) < limit:
        smooth = int(max(1, burst))
        rates.insert(0, Rate(smooth, math.floor(smooth * 1000 / rate)))
    return rates


class RateBudget:
    """At most ``rate`` acquisitions in any one-second window, for all threads and processes sharing it.

    A sliding window log (pyrate-limiter): an acquisition is admitted while fewer than ``floor(rate)``
    were admitted in the last second and `GUARD_S` (see `budget_rates` for rates below 1 and
    ``burst``), else it sleeps until the oldest of them leaves the window and tries again. It never
    fails. Unlike a token bucket refilled at ``rate``, whose full bucket lets ``2 × rate`` through in
    the first second, no one-second window ever holds more than ``rate``.

    With ``path``, the log is a SQLite file that every process naming it shares, each acquisition
    taking the file's lock for well under a millisecond; without, it is kept in this process.

    Args:
        rate: acquisitions per second.
        burst: at most this many at once (default: the whole second's allowance).
        path: the SQLite file shared by processes (created with its directory); None: this process only.
    """

    def __init__(self, rate: float, burst: float | None = None, *, path: str | os.PathLike[str] | None = None) -> None:
        self.rate = rate
        self.rates = budget_rates(rate, burst)
        self.burst = float(self.rates[0].limit)
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._bucket: Any = None
        self._pid = 0
        self._leaked_at = 0.0

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                bucket = self._open()
                with self._file_lock(bucket):
                    item = RateItem(_ITEM, bucket.now())
                    decision = bucket.put_decision(item)
                    if decision.allowed and time.monotonic() - self._leaked_at > _LEAK_EVERY_S:
                        self._leaked_at = time.monotonic()
                        bucket.leak(item.timestamp - _KEEP_MS)
            if decision.allowed:
                return waited
            pause = max(decision.retry_after_ms or 1, 1) / 1000
            time.sleep(pause)
            waited += pause

    def _open(self) -> Any:
        """This process's bucket; opened anew in a forked child (a SQLite connection is not fork-safe)."""
        if self._bucket is not None and self._pid == os.getpid():
            return self._bucket
        if self.path is None:
            self._bucket = InMemoryBucket(self.rates)
        else:
            self._bucket = SQLiteBucket.init_from_file(
                self.rates, table="reads", db_path=str(self.path), use_file_lock=True
            )
        self._pid = os.getpid()
        return self._bucket

    @staticmethod
    def _file_lock(bucket: Any) -> AbstractContextManager[Any]:
        # Held around reading the clock and the put, so an entry's timestamp is when it was admitted.
        return bucket.limiter_lock() or nullcontext()

    def __repr__(self) -> str:
        where = f"shared through {self.path}" if self.path else "this process"
        return f"RateBudget(rate={self.rate}, {where})"


_shared: dict[tuple[float, str], RateBudget] = {}
_shared_lock = threading.Lock()


def default_budget_dir() -> Path:
    """Where host-wide budgets live by default: ``pipeskit-<uid>`` in the system's temporary directory."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"pipeskit-{user}"


def budget_file(directory: Path, key: str) -> Path:
    """The budget's file in ``directory`` for ``key`` (e.g. a region and an endpoint)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", key)[:60].strip("-") or "default"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return directory / f"logs-read-{readable}-{digest}.sqlite"


def shared_logs_budget(
    rate: float, *, scope: BudgetScope = "process", directory: Path | None = None, key: str = ""
) -> RateBudget:
    """The budget for CloudWatch Logs reads at ``rate`` calls per second, shared as ``scope`` says.

    Args:
        rate: read calls per second.
        scope: ``process``: one budget per rate in this process; ``host``: one per ``key`` for every
            process of the host using the same ``directory``.
        directory: where host-wide budgets live (default: `default_budget_dir`).
        key: what shares one quota, e.g. the client's region and endpoint.

    Raises:
        SettingsError: the directory cannot hold the budget (naming ``PIPESKIT_LOGS_BUDGET_DIR``).
    """
    if scope == "process":
        cache_key, path = (rate, ""), None
    else:
        path = budget_file(directory or default_budget_dir(), key)
        cache_key = (rate, str(path))
    with _shared_lock:
        budget = _shared.get(cache_key)
        if budget is None:
            budget = RateBudget(rate, path=_usable(path, own=directory is None) if path else None)
            _shared[cache_key] = budget
        return budget


def _usable(path: Path, *, own: bool) -> Path:
    """``path``, once its directory and database open; else a `SettingsError` naming the setting.

    ``own``: the directory must belong to this user (the default one, in a temporary directory
    every user can write).
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if own and hasattr(os, "getuid") and path.parent.stat().st_uid != os.getuid():
            raise PermissionError(f"{path.parent} belongs to another user")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise PermissionError(f"{path.parent} is not writable by this user")
        SQLiteBucket.init_from_file(budget_rates(1.0), table="reads", db_path=str(path), use_file_lock=True).close()
    except (OSError, sqlite3.Error) as error:
        variable = LogsReaderSettings.env_var("logs_budget_dir")
        scope = LogsReaderSettings.env_var("logs_budget_scope")
        raise SettingsError(
            f"{variable}={str(path.parent)!r} cannot hold the host-wide CloudWatch Logs read budget ({error}). "
            f"Point {variable} to a directory this user can write on a local disk, "
            f"or set {scope}=process for a budget per process."
        ) from error
    return path
