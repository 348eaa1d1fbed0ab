"""When each attempt of an asynchronous invocation ended, from Lambda's own lines in the function's log.

An ``Event`` invocation gives no answer; Lambda writes a ``REPORT`` line (``platform.report`` in
JSON) when each attempt ends — success, error, timeout, the runtime exiting or running out of memory
— and retries a failed event under the same request id. `AttemptEndWatcher` follows a log group's
``START`` and ``REPORT`` lines for every asynchronous run of the process that waits on it (one
``FilterLogEvents`` per poll for all of them, through the reader's read budget) and hands each run
its attempts' ends: the run then reads that attempt's lines from its stream, knows within a poll
that the function ended, and never takes a success for silence.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from .cloudwatch_logs import InvocationLogReader, log_group_of, platform_record

_LAG_MS = 60_000
"""Events may be ingested this late: each poll reads again from this long before the newest one seen."""

_TEXT = re.compile(r"^(START|REPORT) RequestId: (\S+)")
_STATUS = re.compile(r"\tStatus: (\w+)")
_ERROR_TYPE = re.compile(r"\tError Type: (\S+)")


@dataclass(frozen=True)
class AttemptEnd:
    """One attempt of an invocation that ended.

    Attributes:
        request_id: the invocation's request id (its retries share it).
        group: the log group.
        stream: the log stream the attempt ran in.
        started_ms: when its ``START`` line was written (None: not seen).
        ended_ms: when its ``REPORT`` line was written.
        status: Lambda's status of the attempt: ``success`` (the REPORT names none), ``error``,
            ``timeout`` or ``failure``.
        error_type: e.g. ``Runtime.ExitError``, when Lambda names one.
    """

    request_id: str
    group: str
    stream: str
    started_ms: int | None
    ended_ms: int
    status: str = "success"
    error_type: str = ""


def platform_line(line: str) -> tuple[str, str, str, str] | None:
    """``(kind, request id, status, error type)`` of a ``START``/``REPORT`` line (text or JSON), else None."""
    match = _TEXT.match(line)
    if match:
        kind, request_id = match.group(1).lower(), match.group(2)
        status = _STATUS.search(line)
        error_type = _ERROR_TYPE.search(line)
        return kind, request_id, status.group(1) if status else "success", error_type.group(1) if error_type else ""
    record = platform_record(line)
    if record is None or record[0] not in ("platform.start", "platform.report"):
        return None
    kind, request_id, inner = record
    status, error_type = str(inner.get("status") or "success"), str(inner.get("errorType") or "")
    return kind.removeprefix("platform."), request_id, status, error_type


class AttemptEndWatcher:
    """Follow one log group's START and REPORT lines for the request ids that are watched.

    Args:
        reader: the log reader (its client and read budget).
        group: the log group.
        json_format: whether the function logs in JSON (``platform.*`` records) or text.
        poll_s: pause between reads.
    """

    def __init__(self, reader: InvocationLogReader, group: str, *, json_format: bool, poll_s: float) -> None:
        self._reader = reader
        self._group = group
        self._pattern = '"platform."' if json_format else '"RequestId:"'
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._since: dict[str, int] = {}  # request id -> earliest time its lines can have
        self._starts: dict[tuple[str, str], list[int]] = {}  # (request id, stream) -> START times
        self._ends: dict[str, list[AttemptEnd]] = {}
        self._seen: dict[str, int] = {}  # event id -> its time (ids older than the read window are dropped)
        self._newest_ms = 0
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        """The last read's error, while reads fail (cleared by a read that succeeds)."""

    def watch(self, request_id: str, since_ms: int) -> None:
        """Start collecting the attempts of ``request_id``, invoked at ``since_ms``."""
        with self._lock:
            self._since[request_id] = since_ms
            self._ends.setdefault(request_id, [])
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="pipeskit-attempt-ends", daemon=True)
                self._thread.start()

    def forget(self, request_id: str) -> None:
        """The run of ``request_id`` ended."""
        with self._lock:
            self._since.pop(request_id, None)
            self._ends.pop(request_id, None)
            for key in [key for key in self._starts if key[0] == request_id]:
                del self._starts[key]

    def ends(self, request_id: str) -> list[AttemptEnd]:
        """The attempts of ``request_id`` that ended so far, in order."""
        with self._lock:
            return list(self._ends.get(request_id, ()))

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._since:
                    self._thread = None
                    return
                start = max(min(self._since.values()) - 1_000, self._newest_ms - _LAG_MS)
            try:
                self._read(start)
                self.error = None
            except Exception as error:  # a failed read is retried on the next poll  # noqa: BLE001
                self.error = error
            time.sleep(self._poll_s)

    def _read(self, start_ms: int) -> None:
        for page in self._reader.filter_pages(self._group, start_ms=start_ms, pattern=self._pattern):
            for event in page:
                event_id = str(event.get("eventId") or (event.get("logStreamName"), event.get("timestamp"),
                                                        event.get("message")))  # fmt: skip
                if event_id in self._seen:
                    continue
                timestamp = int(event.get("timestamp") or 0)
                self._seen[event_id] = timestamp
                self._newest_ms = max(self._newest_ms, timestamp)
                for line in str(event.get("message", "")).splitlines():
                    self._take(line, str(event.get("logStreamName", "")), timestamp)
        horizon = min(start_ms, self._newest_ms - _LAG_MS)  # no later read starts before it
        self._seen = {event_id: t for event_id, t in self._seen.items() if t >= horizon}

    def _take(self, line: str, stream: str, timestamp: int) -> None:
        parsed = platform_line(line)
        if parsed is None:
            return
        kind, request_id, status, error_type = parsed
        with self._lock:
            if request_id not in self._since:
                return
            if kind == "start":
                self._starts.setdefault((request_id, stream), []).append(timestamp)
                return
            starts = [t for t in self._starts.get((request_id, stream), []) if t <= timestamp]
            self._ends[request_id].append(
                AttemptEnd(request_id, self._group, stream, max(starts) if starts else None, timestamp,
                           status, error_type)  # fmt: skip
            )
            self._ends[request_id].sort(key=lambda end: end.ended_ms)


_watchers: dict[tuple[int, str], AttemptEndWatcher] = {}
_watchers_lock = threading.Lock()


def attempt_end_watcher(reader: InvocationLogReader, group: str, *, json_format: bool) -> AttemptEndWatcher:
    """The process-wide watcher of ``group`` through ``reader`` (its read budget), created on first use."""
    with _watchers_lock:
        key = (id(reader), group)
        watcher = _watchers.get(key)
        if watcher is None:
            watcher = _watchers[key] = AttemptEndWatcher(
                reader, group, json_format=json_format, poll_s=reader.settings.attempt_end_poll_s
            )
        return watcher


def function_logs_shape(configuration: dict[str, Any]) -> tuple[bool, bool]:
    """``(json_format, reports_visible)`` of a function's configuration: whether it logs JSON, and
    whether its REPORT lines are written (a JSON function at system log level WARN or above has none)."""
    logging = configuration.get("LoggingConfig") or {}
    json_format = str(logging.get("LogFormat", "Text")).upper() == "JSON"
    level = str(logging.get("SystemLogLevel") or "INFO").upper()
    return json_format, not json_format or level in ("DEBUG", "TRACE", "INFO")


@dataclass
class EventTracking:
    """What tells how a function's asynchronous invocations end: the attempts Lambda makes, the
    watcher of its REPORT lines and of its on-failure destination (each None when not available).

    Built once per run or fan-out by `event_tracking`; shared by every request id it watches.

    Attributes:
        timeout_s: the function's timeout.
        max_attempts: the attempts Lambda makes of a failed event (its retries, plus one).
        ends: the watcher of the function's REPORT lines (None: they are not written, or no log reader).
        failures: the watcher of the on-failure destination queue (None: none configured).
        silence_note: why only silence can tell an end, for a timeout's message ("" when REPORT lines are read).
    """

    timeout_s: float
    max_attempts: int
    ends: AttemptEndWatcher | None = None
    failures: Any = None
    silence_note: str = ""

    def watch(self, request_id: str, since_ms: int) -> None:
        """Start following ``request_id``, invoked at ``since_ms``."""
        if self.ends is not None:
            self.ends.watch(request_id, since_ms)
        if self.failures is not None:
            self.failures.watch(request_id)

    def forget(self, request_id: str) -> None:
        """``request_id``'s run ended."""
        if self.ends is not None:
            self.ends.forget(request_id)
        if self.failures is not None:
            self.failures.forget(request_id)

    def attempt_ends(self, request_id: str) -> list[AttemptEnd]:
        """The attempts of ``request_id`` that ended so far."""
        return self.ends.ends(request_id) if self.ends is not None else []

    def failure_record(self, request_id: str) -> dict[str, Any] | None:
        """The on-failure destination's record of ``request_id``, once it arrived."""
        return self.failures.record(request_id) if self.failures is not None else None


def event_tracking(
    lambda_client: Any,
    function_name: str,
    qualifier: str | None,
    logs: InvocationLogReader | None,
    failures: Any = None,
) -> EventTracking:
    """How to follow asynchronous invocations of ``function_name``: its timeout, Lambda's attempts
    (``GetFunctionEventInvokeConfig``; 3 when not configured) and the watchers that tell each end.

    Args:
        lambda_client: a boto3 Lambda client.
        function_name: the function (name or ARN).
        qualifier: its version or alias.
        logs: the log reader whose client and budget read the REPORT lines (None: the channel reads no log).
        failures: the on-failure destination's watcher (`pipeskit.failures.failure_watcher`), if configured.
    """
    config = lambda_client.get_function_configuration(
        FunctionName=function_name, **({"Qualifier": qualifier} if qualifier else {})
    )
    try:
        invoke_config = lambda_client.get_function_event_invoke_config(FunctionName=function_name)
        retries = int(invoke_config.get("MaximumRetryAttempts", 2))
    except lambda_client.exceptions.ResourceNotFoundException:
        retries = 2  # Lambda's default
    tracking = EventTracking(timeout_s=float(config.get("Timeout", 3)), max_attempts=retries + 1, failures=failures)
    json_format, visible = function_logs_shape(config)
    if logs is None:
        tracking.silence_note = " (the channel reads no log, so only silence tells the function's end)"
    elif not visible:
        level = (config.get("LoggingConfig") or {}).get("SystemLogLevel")
        tracking.silence_note = (
            f" (the function's SystemLogLevel {level} leaves its REPORT lines out, so only silence tells its "
            "end: set it to INFO, or configure an on-failure destination)"
        )
    else:
        tracking.ends = attempt_end_watcher(logs, log_group_of(config, function_name), json_format=json_format)
    return tracking
