"""Read an invocation's lines back from CloudWatch Logs; the logs channel's reader.

Lines are bounded by the invocation's ``START``/``END`` lines (text log format) or its
``platform.start``/``platform.runtimeDone``/``platform.report`` records (JSON log format), read with
``GetLogEvents(startFromHead=True)`` and the forward token until the token repeats, tolerant of
late ingestion and of streams that do not exist yet. Every read call first takes a token from a
process-wide `RateBudget`; botocore's standard retry mode backs off on ``ThrottlingException``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from dagster import DagsterLogManager
from dagster._core.pipes.context import PipesMessageHandler
from dagster_pipes import PipesParams

from ..errors import LogsNotReadableError
from ..protocol import CHANNEL_PARAM, LOGS_CHANNEL
from ..rate_limit import RateBudget
from ..settings import LogsReaderSettings
from .base import LambdaInvocation, LambdaMessageReader, ReadContext, parse_message_line

_END_RECORD_TYPES = frozenset({"platform.runtimeDone", "platform.report"})
_FORWARDED_LEVELS = {"WARNING": "warning", "WARN": "warning", "ERROR": "error", "CRITICAL": "critical"}


def function_base_name(function_name: str) -> str:
    """``my-fn`` from ``my-fn``, ``my-fn:alias`` or a function ARN."""
    if function_name.startswith("arn:"):
        return function_name.split(":")[6]
    return function_name.split(":")[0]


def _platform_record(line: str) -> tuple[str, str] | None:
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
    return str(record["type"]), str(inner.get("requestId", ""))


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


class LogForwarder:
    """Forward an invocation's ordinary log lines to the Dagster step's log.

    Structured records at WARNING and above are forwarded one by one at their level; everything else
    goes in batches (one Dagster log event per ``batch_bytes``), so megabytes of output stay cheap.
    """

    def __init__(self, log: DagsterLogManager, prefix: str, batch_bytes: int) -> None:
        self._log = log
        self._prefix = prefix
        self._batch_bytes = batch_bytes
        self._batch: list[str] = []
        self._size = 0
        self.forwarded = 0

    def add(self, line: str) -> None:
        self.forwarded += 1
        level = self._structured_level(line)
        if level:
            self.flush()
            getattr(self._log, level)(f"{self._prefix} {line}")
            return
        self._batch.append(line)
        self._size += len(line) + 1
        if self._size >= self._batch_bytes:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._log.info(f"{self._prefix} log lines:\n" + "\n".join(self._batch))
            self._batch, self._size = [], 0

    @staticmethod
    def _structured_level(line: str) -> str | None:
        if not line.startswith("{") or '"level"' not in line:
            return None
        try:
            record = json.loads(line)
        except ValueError:
            return None
        return _FORWARDED_LEVELS.get(str(record.get("level", "")).upper()) if isinstance(record, dict) else None


class InvocationLogReader:
    """Find and read one invocation's lines in CloudWatch Logs.

    Args:
        logs_client: a boto3 ``logs`` client.
        lambda_client: a boto3 ``lambda`` client (to resolve a function's log group when needed).
        settings: timeouts and forwarding.
        budget: the process-wide read budget.
    """

    def __init__(
        self, logs_client: Any, lambda_client: Any, settings: LogsReaderSettings, budget: RateBudget
    ) -> None:
        self._logs = logs_client
        self._lambda = lambda_client
        self._settings = settings
        self._budget = budget
        self.log_group_for = lru_cache(maxsize=256)(self._log_group_for)

    def deliver(
        self,
        invocation: LambdaInvocation,
        handler: PipesMessageHandler,
        log: DagsterLogManager,
        envelope: Mapping[str, Any] | None,
    ) -> int:
        """Hand the invocation's Pipes messages to ``handler``, forward its other lines to ``log``.

        Returns:
            The number of Pipes messages delivered.

        Raises:
            LogsNotReadableError: the stream or its end line did not appear within the
                ingestion timeout.
        """
        envelope = envelope or {}
        group = envelope.get("log_group_name") or self.log_group_for(invocation.function_name)
        stream = envelope.get("log_stream_name") or self.find_stream(group, invocation)
        base = function_base_name(invocation.function_name)
        forwarder = LogForwarder(log, f"[{base} {invocation.request_id}]", self._settings.forward_batch_bytes)
        delivered = 0
        for line in self.lines(group, stream, invocation):
            message = parse_message_line(line)
            if message is None:
                forwarder.add(line)
                continue
            forwarder.flush()  # keep the step's log in the order the function wrote it
            handler.handle_message(message)  # type: ignore[arg-type]
            delivered += 1
        forwarder.flush()
        return delivered

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        self._budget.acquire()
        return getattr(self._logs, operation)(**kwargs)

    def _log_group_for(self, function_name: str) -> str:
        try:
            config = self._lambda.get_function_configuration(FunctionName=function_name)
        except Exception:  # no permission or no such function: Lambda's default naming
            return f"/aws/lambda/{function_base_name(function_name)}"
        return (config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{config['FunctionName']}"

    def _deadline(self) -> float:
        return time.monotonic() + self._settings.ingestion_timeout_s

    def find_stream(self, group: str, invocation: LambdaInvocation) -> str:
        """The stream holding ``invocation``'s lines, found by its request id."""
        deadline = self._deadline()
        while True:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": group,
                    "filterPattern": f'"{invocation.request_id}"',
                    "startTime": invocation.started_ms - 5_000,
                    "limit": 50,
                }
                if token:
                    kwargs["nextToken"] = token
                try:
                    page = self._call("filter_log_events", **kwargs)
                except self._logs.exceptions.ResourceNotFoundException:
                    break
                for event in page.get("events", []):
                    if invocation.request_id in event.get("message", ""):
                        return str(event["logStreamName"])
                token = page.get("nextToken")
                if not token:
                    break
            if time.monotonic() > deadline:
                raise LogsNotReadableError(
                    f"no log line of request {invocation.request_id} appeared in {group} within "
                    f"{self._settings.ingestion_timeout_s:.0f} s. Check the function logs to that "
                    "group, or raise PIPESKIT_INGESTION_TIMEOUT_S if ingestion is slow."
                )
            time.sleep(self._settings.poll_interval_s)

    def lines(self, group: str, stream: str, invocation: LambdaInvocation) -> Iterator[str]:
        """Yield the lines between the invocation's start and end lines, waiting for late ones."""
        request_id = invocation.request_id
        deadline = self._deadline()
        token: str | None = None
        inside = False
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream,
                "startFromHead": True,
                "startTime": invocation.started_ms - 5_000,
            }
            if token:
                kwargs["nextToken"] = token
            try:
                page = self._call("get_log_events", **kwargs)
            except self._logs.exceptions.ResourceNotFoundException:
                page = {"events": [], "nextForwardToken": token}
            for event in page.get("events", []):
                for line in str(event.get("message", "")).splitlines():
                    if not inside:
                        inside = is_start_line(line, request_id)
                    elif is_end_line(line, request_id):
                        return
                    else:
                        yield line
            next_token = page.get("nextForwardToken")
            if next_token == token or not page.get("events"):
                if time.monotonic() > deadline:
                    state = "its END line" if inside else "its START line"
                    raise LogsNotReadableError(
                        f"request {request_id}: {state} did not appear in {group}/{stream} within "
                        f"{self._settings.ingestion_timeout_s:.0f} s; messages after the last line "
                        "read are missing. Raise PIPESKIT_INGESTION_TIMEOUT_S if ingestion is slow."
                    )
                time.sleep(self._settings.poll_interval_s)
            if next_token:
                token = next_token


class CloudWatchLogsMessageReader(LambdaMessageReader):
    """Read messages from the function's CloudWatch log stream, with no 4 KB limit.

    Twin of ``pipeskit_lambda.CloudWatchLogsMessageWriter``; also what a handler written as in the
    Dagster docs uses (messages on stderr). Every other line of the invocation is forwarded to the
    Dagster step's log.
    """

    channel = LOGS_CHANNEL

    def messages_params(self) -> PipesParams:
        return {"stdio": "stderr", CHANNEL_PARAM: self.channel}

    def consume(self, invocation: LambdaInvocation, read: ReadContext) -> None:
        read.logs.deliver(invocation, self.handler, read.log, invocation.envelope)

    def no_messages_debug_text(self) -> str:
        return "Expected messages as JSON lines on stderr, read back from the function's CloudWatch log stream."
