"""Find and read one invocation's lines in CloudWatch Logs; forward the ordinary ones to Dagster.

Lines are bounded by the invocation's ``START``/``END`` lines (text log format) or its
``platform.start``/``platform.runtimeDone``/``platform.report`` records (JSON log format), read with
``GetLogEvents(startFromHead=True)`` and the forward token until the token repeats, tolerant of
late ingestion and of streams that do not exist yet. Every read request first takes a token from a
`RateBudget` shared by every process of the host that reads through the same endpoint (or by this
process only, ``PIPESKIT_LOGS_BUDGET_SCOPE=process``); botocore's standard retry mode backs off on
``ThrottlingException``, and its retries take tokens too (CloudWatch counts them against the quota).

The one way the kit reads CloudWatch Logs: the readers of ``pipeskit.channels`` (each owns one
`InvocationLogReader`) and ``pipeskit logs`` (`pipeskit.lambda_commands`) page a group with
`InvocationLogReader.filter_pages`, find a request's events with
`InvocationLogReader.request_events` and read a stream forward with a `StreamCursor`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from dagster import DagsterLogManager, PipesMessageHandler

from pipeskit_lambda.protocol import Envelope

from ._boto import DEFAULT_TARGET, AwsTarget
from ._lazy import LazyClient
from .errors import LogsNotReadableError, MessagesLostError
from .invocation import LambdaInvocation, function_base_name
from .message_lines import Found, Message, MessageScanner, Text, Unreadable
from .rate_limit import RateBudget, shared_logs_budget
from .settings import LogsReaderSettings


def default_logs_client(settings: LogsReaderSettings, aws: AwsTarget = DEFAULT_TARGET) -> Any:
    """A boto3 CloudWatch Logs client that backs off on ``ThrottlingException`` (in ``aws``'s session)."""
    retries = {"mode": "standard", "total_max_attempts": settings.logs_max_attempts}  # attempts, the first included
    return aws.client("logs", config=Config(retries=retries))


READ_OPERATIONS = ("GetLogEvents", "FilterLogEvents")
"""The CloudWatch Logs read operations the reader calls, each request of which takes a budget token."""

THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
"""The error codes with which AWS says a caller is over its rate."""

OnThrottled = Callable[[ClientError, int], None]
"""Called with the error and the number of times in a row the request was throttled, when a read is
still throttled after botocore's retries: return to send the request again, raise to give up."""


def is_throttling(error: BaseException) -> bool:
    """Whether ``error`` is AWS answering that the caller is over its rate (see `THROTTLING_CODES`).

    Args:
        error: what a boto3 call raised.

    Returns:
        True for a `ClientError` whose code is one of `THROTTLING_CODES`.
    """
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in THROTTLING_CODES


def quota_key(logs_client: Any) -> str:
    """What one CloudWatch Logs quota is shared by, as far as a client tells: its region and endpoint."""
    meta = getattr(logs_client, "meta", None)
    return f"{getattr(meta, 'region_name', None) or 'default'} {getattr(meta, 'endpoint_url', None) or ''}".strip()


_END_RECORD_TYPES = frozenset({"platform.runtimeDone", "platform.report"})
_FORWARDED_LEVELS = {"WARNING": "warning", "WARN": "warning", "ERROR": "error", "CRITICAL": "critical"}


def platform_record(line: str) -> tuple[str, str, dict[str, Any]] | None:
    """``(type, request id, record)`` of a JSON-format platform line (``platform.start``, ...), else None."""
    # Runs on every line of the invocation: only lines naming a platform event are parsed.
    if not line.startswith("{") or '"platform.' not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not str(record.get("type", "")).startswith("platform."):
        return None
    inner = record.get("record") or {}
    inner = inner if isinstance(inner, dict) else {}
    return str(record["type"]), str(inner.get("requestId", "")), inner


def _platform_record(line: str) -> tuple[str, str] | None:
    record = platform_record(line)
    return record[:2] if record is not None else None


def is_start_line(line: str, request_id: str) -> bool:
    """Whether ``line`` opens the invocation ``request_id`` in its stream."""
    if line.startswith("START RequestId: "):
        return line.startswith(f"START RequestId: {request_id}")
    record = _platform_record(line)
    return record == ("platform.start", request_id)


def is_end_line(line: str, request_id: str) -> bool:
    """Whether ``line`` closes the invocation ``request_id`` in its stream."""
    if line.startswith("END RequestId: "):
        return line.startswith(f"END RequestId: {request_id}")
    record = _platform_record(line)
    return record is not None and record[0] in _END_RECORD_TYPES and record[1] == request_id


def is_report_line(line: str, request_id: str) -> bool:
    """Whether ``line`` is the invocation's last one: ``REPORT RequestId: ID`` or its ``platform.report``."""
    if line.startswith("REPORT RequestId: "):
        return line.startswith(f"REPORT RequestId: {request_id}")
    return _platform_record(line) == ("platform.report", request_id)


def log_group_of(configuration: dict[str, Any] | None, function_name: str) -> str:
    """A function's log group: its ``LoggingConfig.LogGroup``, else Lambda's ``/aws/lambda/<name>``.

    Args:
        configuration: its ``GetFunctionConfiguration`` answer, or None when it could not be read.
        function_name: the name, ARN or ``name:alias`` it was invoked by.
    """
    if configuration is None:
        return f"/aws/lambda/{function_base_name(function_name)}"
    return (configuration.get("LoggingConfig") or {}).get("LogGroup") or (
        f"/aws/lambda/{configuration.get('FunctionName') or function_base_name(function_name)}"
    )


EVENTLESS_METHODS = frozenset({"report_custom_message", "report_asset_materialization", "report_asset_check"})
"""Pipes methods that create no Dagster event when handled (their results are yielded after the session):
ordinary lines before them need not be flushed first, so a chatty function costs a few log events."""


class LogForwarder:
    """Forward an invocation's ordinary log lines to the Dagster step's log.

    Structured records at WARNING and above are forwarded one by one at their level; everything else
    goes in batches (one Dagster log event per ``batch_bytes``, or once a batch is ``batch_s`` old), so
    megabytes of output stay cheap. Whoever creates a Dagster event of its own flushes first, so the
    step's log keeps the order the function wrote.
    """

    def __init__(self, log: DagsterLogManager, prefix: str, batch_bytes: int, batch_s: float = 1.0) -> None:
        self._log = log
        self._prefix = prefix
        self._batch_bytes = batch_bytes
        self._batch_s = batch_s
        self._batch: list[str] = []
        self._size = 0
        self._started = 0.0
        self.forwarded = 0
        self.events = 0
        """Dagster log events created (batches and single records)."""

    def add(self, line: str) -> None:
        """An ordinary line: a structured record (`readable_record`) at WARNING and above alone at its
        level, the rest batched."""
        level, text = readable_record(line)
        self.add_at(level, text)

    def add_at(self, level: str | None, line: str) -> None:
        """A line whose level is known (e.g. a Pipes log message's): WARNING and above alone at its level,
        the rest batched."""
        self.forwarded += 1
        forwarded = _FORWARDED_LEVELS.get(level.upper()) if level else None
        if forwarded:
            self.flush()
            getattr(self._log, forwarded)(f"{self._prefix} {line}")
            self.events += 1
            return
        if not self._batch:
            self._started = time.monotonic()
        self._batch.append(line)
        self._size += len(line) + 1
        if self._size >= self._batch_bytes or time.monotonic() - self._started >= self._batch_s:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._log.info(f"{self._prefix} log lines:\n" + "\n".join(self._batch))
            self._batch, self._size = [], 0
            self.events += 1


_RECORD_FIELDS = frozenset({
    "timestamp", "time", "level", "message", "requestId", "logger", "location", "type", "xray_trace_id",
    "function_request_id", "function_name", "function_arn", "function_memory_size", "cold_start", "service",
    "sampling_rate", "exception", "exception_name", "stack_trace", "errorType", "errorMessage", "stackTrace",
})
"""Fields of Lambda's JSON log format and Powertools' records rendered in the line itself, or left out."""


def readable_record(line: str) -> tuple[str | None, str]:
    """``(level, text)`` of a structured log record — Lambda's JSON log format, Powertools' — as a reader
    wants it: ``LEVEL message``, the record's own fields as JSON, then its stack trace once; any other
    line is ``(None, line)``."""
    if not line.startswith("{") or '"level"' not in line:
        return None, line
    try:
        record = json.loads(line)
    except ValueError:
        return None, line
    if not isinstance(record, dict) or "level" not in record:
        return None, line
    level = str(record["level"]).upper()
    message = record.get("message")
    error = message if isinstance(message, dict) and "errorMessage" in message else record
    if error.get("errorType") or error.get("errorMessage"):  # the runtime's record of an error
        message = f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    elif not isinstance(message, str):
        message = json.dumps(message, default=str)
    fields = {k: v for k, v in record.items() if k not in _RECORD_FIELDS}
    text = f"{level} {message}" + (f" {json.dumps(fields, default=str)}" if fields else "")
    trace = record.get("exception") or record.get("stack_trace") or error.get("stackTrace")
    if isinstance(trace, list):
        trace = "".join(str(frame) for frame in trace)
    if trace:
        text += "\n" + str(trace).rstrip()
    return level, text


class InvocationLogReader:
    """Find and read one invocation's lines in CloudWatch Logs.

    Owns its dependencies: each is created on first use when not given, so building one needs no
    AWS configuration.

    Args:
        logs_client: a boto3 ``logs`` client; defaults to `default_logs_client`.
        lambda_client: a boto3 ``lambda`` client, to resolve a function's log group when the
            invocation does not name it; defaults to ``boto3.client("lambda")``.
        settings: timeouts and forwarding; defaults from ``PIPESKIT_*`` environment variables.
        budget: the read budget; defaults to the one shared at ``settings.logs_read_tps`` by every
            process of the host reading through the same region and endpoint (``settings.logs_budget_scope``),
            found on the first read.
        aws: where the clients it creates point (default: boto3's chain).
    """

    def __init__(
        self,
        logs_client: Any | None = None,
        lambda_client: Any | None = None,
        settings: LogsReaderSettings | None = None,
        budget: RateBudget | None = None,
        *,
        aws: AwsTarget = DEFAULT_TARGET,
    ) -> None:
        self._settings = settings or LogsReaderSettings.from_env()
        self._logs_client = LazyClient(logs_client, lambda: default_logs_client(self._settings, aws))
        self._lambda_client = LazyClient(lambda_client, lambda: aws.client("lambda"))
        self._budget = budget
        self._metering = threading.Lock()
        self._metered: Any = None  # the logs client whose read requests take tokens
        self._per_request = False
        self.log_group_for = lru_cache(maxsize=256)(self._log_group_for)

    @property
    def settings(self) -> LogsReaderSettings:
        """The read settings in force."""
        return self._settings

    @property
    def logs_client(self) -> Any:
        """The CloudWatch Logs client, its read requests metered by the budget (created on first use)."""
        return self._logs

    @property
    def lambda_client(self) -> Any:
        """The Lambda client that resolves log groups (created on first use)."""
        return self._lambda

    @property
    def _logs(self) -> Any:
        client = self._logs_client.get()
        if self._metered is not client:
            self._meter(client)
        return client

    def _meter(self, client: Any) -> None:
        """Make each read request of ``client`` take a token, botocore's retries included.

        A ``before-send`` handler on the client, registered once per client (readers sharing one
        client share its handler); a client without botocore's events takes one token per call.
        """
        with self._metering:
            if self._metered is client:
                return
            events = getattr(getattr(client, "meta", None), "events", None)
            if events is not None:
                for operation in READ_OPERATIONS:
                    events.register(
                        f"before-send.logs.{operation}", self._take_token, unique_id=f"pipeskit-read-budget-{operation}"
                    )
            self._per_request = events is not None
            self._metered = client

    def _take_token(self, **_: Any) -> None:
        self.budget.acquire()  # returns None: botocore would take anything else as the response

    @property
    def _lambda(self) -> Any:
        return self._lambda_client.get()

    def deliver(
        self,
        invocation: LambdaInvocation,
        handler: PipesMessageHandler,
        log: DagsterLogManager,
        envelope: Envelope | None,
        *,
        skip_messages: int = 0,
    ) -> int:
        """Hand the invocation's Pipes messages to ``handler``, forward its other lines to ``log``.

        Messages are found wherever they stand in a line; a torn line or an unknown method costs
        that line only (a warning, and the text is forwarded); a message split over log events is
        put back together.

        Args:
            invocation: the invocation to read.
            handler: the run's message handler.
            log: the step's Dagster log.
            envelope: the kit's envelope, when there is one (it names the log stream).
            skip_messages: how many messages at the start were delivered already (by another
                channel, e.g. S3 chunks uploaded before the function died).

        Returns:
            The number of Pipes messages delivered.

        Raises:
            LogsNotReadableError: the stream or its end line did not appear within the
                ingestion timeout.
            MessagesLostError: a message split over log events could not be put back together
                (every other message was delivered first).
        """
        envelope = envelope or Envelope()
        group = envelope.get("log_group_name") or self.log_group_for(invocation.function_name)
        stream = envelope.get("log_stream_name") or self.find_stream(group, invocation)
        if stream is None:  # the handler never ran, and no line names the request yet: none will be waited for
            return 0
        return self.deliver_lines(
            self.lines(group, stream, invocation, started_ms=envelope.get("started_ms")),
            invocation, handler, log, skip_messages=skip_messages, source=f"{group}/{stream}",
        )  # fmt: skip

    def deliver_lines(
        self,
        lines: Iterable[str],
        invocation: LambdaInvocation,
        handler: PipesMessageHandler,
        log: DagsterLogManager,
        *,
        skip_messages: int = 0,
        source: str,
    ) -> int:
        """Hand the Pipes messages among an invocation's ``lines`` to ``handler``, forward the rest to ``log``
        (in batches, in order with the messages that create Dagster events).

        Args:
            lines: the invocation's lines, in order (from its log, or from its response envelope).
            source: where the lines were read, named in errors.

        Returns and raises as `deliver`.
        """
        prefix = f"[{function_base_name(invocation.function_name)} {invocation.request_id}]"
        forwarder = LogForwarder(log, prefix, self._settings.forward_batch_bytes, self._settings.forward_batch_s)
        delivery = _Delivery(handler, log, forwarder, prefix)
        delivery.skip = skip_messages
        scanner = MessageScanner()
        for line in lines:
            for found in scanner.feed(line):
                delivery.take(found)
        for found in scanner.close():
            delivery.take(found)
        delivery.forwarder.flush()
        if delivery.lost:
            raise MessagesLostError(
                f"request {invocation.request_id} of {invocation.function_name}: "
                + "; ".join(item.describe() for item in delivery.lost)
                + f". Read the whole line in {source}; keep each message under "
                "CloudWatch's 256 KB event size (large values belong in S3, referenced from metadata)."
            )
        return delivery.delivered

    @property
    def budget(self) -> RateBudget:
        """The read budget, found (and its directory checked) on first use."""
        if self._budget is None:
            settings = self._settings
            self._budget = shared_logs_budget(
                settings.logs_read_tps,
                scope=settings.logs_budget_scope,
                directory=settings.logs_budget_dir,
                key=quota_key(self._logs),
            )
        return self._budget

    def _call(self, operation: str, on_throttled: OnThrottled | None = None, **kwargs: Any) -> dict[str, Any]:
        """One read request (botocore's retries inside it); ``on_throttled`` decides past those."""
        client = self._logs
        throttled = 0
        while True:
            if not self._per_request:
                self.budget.acquire()
            try:
                return getattr(client, operation)(**kwargs)
            except ClientError as error:
                if on_throttled is None or not is_throttling(error):
                    raise
                throttled += 1
                on_throttled(error, throttled)

    def _log_group_for(self, function_name: str) -> str:
        try:
            config = self._lambda.get_function_configuration(FunctionName=function_name)
        except Exception:  # no permission or no such function: Lambda's default naming
            config = None
        return log_group_of(config, function_name)

    def _deadline(self) -> float:
        return time.monotonic() + self._settings.ingestion_timeout_s

    def filter_pages(
        self,
        group: str,
        *,
        start_ms: int | None = None,
        pattern: str | None = None,
        limit: int | None = None,
        on_throttled: OnThrottled | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """The pages of ``FilterLogEvents`` over ``group``, following ``nextToken`` to the last page.

        Args:
            group: the log group.
            start_ms: the earliest event time (epoch milliseconds); None: the whole group.
            pattern: a CloudWatch filter pattern, e.g. a quoted request id.
            limit: events per page; None: CloudWatch's default.
            on_throttled: what to do when a request is still throttled after botocore's retries;
                None: raise.

        Yields:
            Each page's events, as the API gives them.

        Raises:
            botocore.exceptions.ClientError: what CloudWatch answered, e.g. ``ResourceNotFoundException``
                for a group that does not exist.
        """
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"logGroupName": group}
            if start_ms is not None:
                kwargs["startTime"] = max(0, start_ms)
            if pattern:
                kwargs["filterPattern"] = pattern
            if limit:
                kwargs["limit"] = limit
            if token:
                kwargs["nextToken"] = token
            page = self._call("filter_log_events", on_throttled, **kwargs)
            yield page.get("events", [])
            token = page.get("nextToken")
            if not token:
                return

    def request_events(
        self,
        group: str,
        request_id: str,
        *,
        start_ms: int | None = None,
        limit: int | None = None,
        on_throttled: OnThrottled | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The events of ``group`` that contain ``request_id``, paged lazily (see `filter_pages`).

        Each event names its ``logStreamName``: the first one is where the request's lines are.

        Args:
            group: the log group.
            request_id: the invocation's request id (searched for quoted, then checked in each event).
            start_ms: the earliest event time (epoch milliseconds); None: the whole group.
            limit: events per page; None: CloudWatch's default.
            on_throttled: see `filter_pages`.

        Yields:
            The events, in the order ``FilterLogEvents`` gives them.

        Raises:
            botocore.exceptions.ClientError: what CloudWatch answered (see `filter_pages`).
        """
        pages = self.filter_pages(
            group, start_ms=start_ms, pattern=f'"{request_id}"', limit=limit, on_throttled=on_throttled
        )
        for page in pages:
            for event in page:
                if request_id in str(event.get("message", "")):  # the filter pattern's match, checked
                    yield event

    def stream(
        self,
        group: str,
        stream: str,
        start_ms: int,
        *,
        empty_pages: int = 1,
        on_throttled: OnThrottled | None = None,
    ) -> StreamCursor:
        """A forward read of one stream from ``start_ms``, through this reader's client and budget.

        Args:
            group: the log group.
            stream: the log stream.
            start_ms: the earliest event time (epoch milliseconds).
            empty_pages: empty pages in a row (each with a new token) taken as caught up.
            on_throttled: see `filter_pages`.

        Returns:
            A `StreamCursor` at the start of the stream.
        """
        return StreamCursor(self, group, stream, start_ms, empty_pages=empty_pages, on_throttled=on_throttled)

    def find_stream(self, group: str, invocation: LambdaInvocation) -> str | None:
        """The stream holding ``invocation``'s lines, found by its request id.

        Waits up to the ingestion timeout for its first line; for an invocation whose handler never
        ran (`LambdaInvocation.handler_never_ran`) it looks once, and None means no line names it yet.
        """
        once = invocation.handler_never_ran
        deadline = self._deadline()
        while True:
            events = self.request_events(group, invocation.request_id, start_ms=invocation.started_ms - 5_000, limit=50)
            try:
                event = next(events, None)
            except self._logs.exceptions.ResourceNotFoundException:
                event = None
            if event is not None:
                return str(event["logStreamName"])
            if once:
                return None
            if time.monotonic() > deadline:
                raise LogsNotReadableError(
                    f"no log line of request {invocation.request_id} appeared in {group} within "
                    f"{self._settings.ingestion_timeout_s:g} s. Check the function logs to that "
                    "group, or raise PIPESKIT_INGESTION_TIMEOUT_S if ingestion is slow."
                )
            time.sleep(self._settings.poll_interval_s)

    def lines(
        self, group: str, stream: str, invocation: LambdaInvocation, *, started_ms: int | None = None
    ) -> Iterator[str]:
        """Yield the lines between the invocation's start and end lines, waiting for late ones.

        Args:
            group: the log group.
            stream: the stream that holds the invocation.
            invocation: the invocation.
            started_ms: when the function says its session began (the envelope's ``started_ms``):
                reading starts there, past every earlier invocation of a warm stream. Without it,
                reading starts a little before the invoke and skips to the invocation's start line.

        An invocation whose handler never ran (`LambdaInvocation.handler_never_ran`) is read once:
        what is there is yielded, and nothing is waited for.
        """
        request_id = invocation.request_id
        once = invocation.handler_never_ran
        deadline = self._deadline()
        cursor = self.stream(group, stream, started_ms if started_ms is not None else invocation.started_ms - 5_000)
        inside = started_ms is not None
        read_any = False
        while True:
            for events in cursor.pages():
                for event in events:
                    for line in str(event.get("message", "")).splitlines():
                        if is_start_line(line, request_id):
                            inside = True
                        elif not inside:
                            continue
                        elif is_end_line(line, request_id):
                            return
                        else:
                            read_any = True
                            yield line
            if once:
                return
            if time.monotonic() > deadline:
                if not cursor.found:
                    what = f"the log stream {group}/{stream} did not appear"
                else:
                    what = f"{'its END' if inside else 'its START'} line did not appear in {group}/{stream}"
                missing = "messages after the last line read are missing" if read_any else "no message was read"
                raise LogsNotReadableError(
                    f"request {request_id}: {what} within {self._settings.ingestion_timeout_s:g} s; {missing}. "
                    "Raise PIPESKIT_INGESTION_TIMEOUT_S if ingestion is slow."
                )
            time.sleep(self._settings.poll_interval_s)


class StreamCursor:
    """Where a forward read of one log stream stands: ``GetLogEvents(startFromHead=True)`` from a
    start time, following ``nextForwardToken``.

    `pages` reads until caught up; calling it again reads what arrived since, from the token it
    stopped at. Built by `InvocationLogReader.stream`.

    Args:
        reader: the reader whose client, budget and retries the requests go through.
        group: the log group.
        stream: the log stream.
        start_ms: the earliest event time (epoch milliseconds).
        empty_pages: empty pages in a row (each with a new token) taken as caught up.
        on_throttled: see `InvocationLogReader.filter_pages`.
    """

    def __init__(
        self,
        reader: InvocationLogReader,
        group: str,
        stream: str,
        start_ms: int,
        *,
        empty_pages: int = 1,
        on_throttled: OnThrottled | None = None,
    ) -> None:
        self._reader = reader
        self.group = group
        self.stream = stream
        self._start_ms = start_ms
        self._empty_pages = max(1, empty_pages)
        self._on_throttled = on_throttled
        self.token: str | None = None
        """The forward token the next read starts from (None: the start time)."""
        self.found = False
        """Whether the stream has answered once (it may not exist yet)."""

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """Each page's events until caught up with the stream.

        Caught up: the forward token repeats (CloudWatch's end of the stream) or is missing, or
        ``empty_pages`` pages in a row were empty; a stream that does not exist (yet) is caught up
        at once.

        Raises:
            botocore.exceptions.ClientError: what CloudWatch answered, but ``ResourceNotFoundException``.
        """
        empty = 0
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": self.group,
                "logStreamName": self.stream,
                "startFromHead": True,
                "startTime": self._start_ms,
            }
            if self.token:
                kwargs["nextToken"] = self.token
            try:
                page = self._reader._call("get_log_events", self._on_throttled, **kwargs)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return
                raise
            self.found = True
            events = page.get("events", [])
            yield events
            next_token = page.get("nextForwardToken")
            empty = 0 if events else empty + 1
            caught_up = not next_token or next_token == self.token or empty >= self._empty_pages
            self.token = next_token or self.token
            if caught_up:
                return


class _Delivery:
    """Where each found item of one invocation goes: the session, the forwarded log, or a warning."""

    def __init__(self, handler: PipesMessageHandler, log: DagsterLogManager, forwarder: LogForwarder, prefix: str):
        self.handler = handler
        self.log = log
        self.forwarder = forwarder
        self.prefix = prefix
        self.delivered = 0
        self.skip = 0
        self.lost: list[Unreadable] = []

    def take(self, found: Found) -> None:
        if isinstance(found, Text):
            self.forwarder.add(found.line)
            return
        if isinstance(found, Message):
            if self.skip:
                self.skip -= 1
                return
            if found.message.get("method") not in EVENTLESS_METHODS:
                self.forwarder.flush()  # it creates a Dagster event: the lines before it go first
            self.handler.handle_message(found.message)  # type: ignore[arg-type]
            self.delivered += 1
            return
        self.forwarder.flush()
        self.log.warning(f"{self.prefix} skipped {found.describe()}")
        if found.reason == "lost":
            self.lost.append(found)
        else:
            self.forwarder.add(found.text)
