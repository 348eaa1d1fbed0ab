"""CloudWatch Logs sink for function output, written into moto's logs backend.

A line longer than a log event's 256 KB is split over several events, as Lambda does.

Lines are written in-process (no HTTP round trip) so they are readable through the
endpoint with ``GetLogEvents`` / ``FilterLogEvents`` as soon as they are emitted, unless a
fault delays them: with the ingestion delay, events (and log streams that do not exist yet)
become visible only after the configured delay, in order; with the stream delay, a stream that
does not exist yet is created (with the events held for it) only after that delay, while its
log group and every other stream stay readable. Each stream keeps its events' order.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.logs.models import logs_backends

from pipeskit_lambda.protocol import LOG_EVENT_MAX_BYTES, LOG_EVENT_OVERHEAD_BYTES

EVENT_MESSAGE_BYTES = LOG_EVENT_MAX_BYTES - LOG_EVENT_OVERHEAD_BYTES
"""The longest message of one log event; Lambda splits a longer line over several events."""


def split_message(message: str, limit: int = EVENT_MESSAGE_BYTES) -> list[str]:
    """``message`` cut into pieces of at most ``limit`` UTF-8 bytes, never inside a character."""
    data = message.encode("utf-8")
    if len(data) <= limit:
        return [message]
    pieces = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte: back off
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


class LogWriter:
    """Appends log events to moto's CloudWatch Logs backend, preserving each stream's order.

    Args:
        account_id: Account whose backend is written.
        region: Region whose backend is written.
        ingestion_delay_s: Returns the current ingestion delay (fault injection).
        stream_delay_s: Returns the current delay before a new log stream appears (fault injection).
    """

    def __init__(
        self,
        account_id: str,
        region: str,
        ingestion_delay_s: Callable[[], float],
        stream_delay_s: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._account_id = account_id
        self._region = region
        self._delay = ingestion_delay_s
        self._stream_delay = stream_delay_s
        # Every write happens under this condition's lock, so a stream's events keep their order.
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, str], collections.deque[tuple[float, list[tuple[int, str]]]]] = {}
        self._stream_visible_at: dict[tuple[str, str], float] = {}  # delayed streams not created yet
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def _backend(self) -> Any:
        return logs_backends[self._account_id][self._region]

    def emit(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Write events (``(timestamp_ms, message)``) to a log stream.

        Args:
            group: Log group, created if absent.
            stream: Log stream, created if absent.
            events: Events in order; timestamps must be non-decreasing.
        """
        if not events:
            return
        events = [(ts, piece) for ts, message in events for piece in split_message(message)]
        key = (group, stream)
        now = time.monotonic()
        with self._cond:
            visible_at = self._stream_visible_at.get(key)
            if visible_at is None and not self._pending.get(key):
                stream_delay = self._stream_delay()
                if stream_delay > 0 and not self._stream_exists(group, stream):
                    visible_at = now + stream_delay
                    self._stream_visible_at[key] = visible_at
                    self._ensure_group(group)
            visible = max(visible_at or 0.0, now + max(0.0, self._delay()))
            queue = self._pending.get(key)
            if visible <= now and not queue:
                self._write(group, stream, events)
                return
            if queue is None:
                queue = self._pending[key] = collections.deque()
            queue.append((visible, events))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="local-aws-log-ingestion", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _stream_exists(self, group: str, stream: str) -> bool:
        log_group = self._backend.groups.get(group)
        return log_group is not None and stream in log_group.streams

    def _ensure_group(self, group: str) -> Any:
        backend = self._backend
        log_group = backend.groups.get(group)
        if log_group is None:
            backend.create_log_group(group, {})
            log_group = backend.groups[group]
        return log_group

    def _write(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        # called with self._cond held
        log_group = self._ensure_group(group)
        if stream not in log_group.streams:
            log_group.create_log_stream(stream)
        self._stream_visible_at.pop((group, stream), None)
        log_group.put_log_events(stream, [{"timestamp": ts, "message": message} for ts, message in events])

    def _run(self) -> None:
        with self._cond:
            while True:
                while not self._stopped and not self._pending:
                    self._cond.wait()
                if self._stopped and not self._pending:
                    return
                key, queue = min(self._pending.items(), key=lambda item: item[1][0][0])
                wait = queue[0][0] - time.monotonic()
                if wait > 0 and not self._stopped:
                    self._cond.wait(wait)
                    continue
                _, events = queue.popleft()
                if not queue:
                    del self._pending[key]
                self._write(*key, events)

    def flush(self) -> None:
        """Write every delayed event now."""
        with self._cond:
            pending, self._pending = self._pending, {}
            for (group, stream), queue in pending.items():
                for _, events in queue:
                    self._write(group, stream, events)

    def close(self) -> None:
        """Stop the ingestion thread, dropping nothing: delayed events are written."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
