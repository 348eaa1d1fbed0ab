"""``pipeskit invoke`` and ``pipeskit logs``: run a Lambda function and read its log from the shell.

Plain functions over boto3 clients that write to the streams they are given, so they run the same
against the local AWS (``pipeskit local``), a real account, and in tests. `pipeskit.cli` builds the
clients from boto3's usual credential chain, region and endpoint (``AWS_PROFILE``,
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``…) and turns a `LambdaCommandError` into
``error: …`` and exit status 2.

Reading one invocation's lines: its request id is found with ``FilterLogEvents``, which names the
stream; the stream is then read with ``GetLogEvents`` from the invocation's ``START`` line to its
``REPORT`` line (``platform.start`` / ``platform.report`` in the JSON log format), because what the
handler prints between them does not carry the request id. ``pipeskit logs`` reads through the
kit's one log reader (`pipeskit.cloudwatch_logs.InvocationLogReader`): the same read budget, the
same botocore retries and the same log-group rule as the client's channels.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .aws_errors import aws_error
from .client import default_lambda_client
from .cloudwatch_logs import InvocationLogReader, default_logs_client, is_report_line, is_start_line, log_group_of
from .errors import FunctionNotFoundError, InvokeThrottledError, LambdaCommandError, LambdaInvokeError, PipesKitError
from .invocation import LambdaInvocation
from .invoke import aws_error_message, invoke_function
from .invoke import client_location as _where
from .invoke import error_code as _error_code
from .rate_limit import RateBudget
from .settings import LambdaClientSettings, LogsReaderSettings, SettingsError

DEFAULT_SINCE = "10m"
"""How far back ``pipeskit logs`` starts without ``--request-id`` (as ``aws logs tail`` does)."""

POLL_INTERVAL_S = 1.0
"""Pause between reads of ``--follow`` once caught up."""

FOLLOW_LOOKBACK_MS = 10_000
"""``--follow`` re-reads this much before the newest event seen: a late-ingested event is not missed."""

REQUEST_SEARCH_LOOKBACK_MS = 300_000
"""When ``--follow`` waits for a request id, later searches start this long before the first one."""

MAX_THROTTLE_DELAY_S = 30.0
"""Longest pause of ``--follow`` when a read is still throttled after botocore's retries."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}



# --- clients ----------------------------------------------------------------------------------


def lambda_client_from_env() -> Any:
    """The invoke client: `default_lambda_client` (read timeout above 900 s, no botocore retries).

    Raises:
        LambdaCommandError: no region is configured, or a ``PIPESKIT_*`` setting is invalid.
    """
    try:
        return default_lambda_client(LambdaClientSettings.from_env())
    except (BotoCoreError, ValueError, LambdaInvokeError) as error:
        raise LambdaCommandError(_setup_advice(error)) from error


def logs_clients_from_env() -> tuple[Any, Any]:
    """``(logs, lambda)`` clients of ``pipeskit logs``, as the log reader has them.

    The logs client is `default_logs_client` (botocore's standard retries back off on throttling),
    and each of its read requests takes a token from the read budget of the ``PIPESKIT_LOGS_*``
    settings, shared with the host's other readers.

    Raises:
        LambdaCommandError: no region is configured, or a ``PIPESKIT_*`` setting is invalid.
    """
    try:
        settings = LogsReaderSettings.from_env()
        reader = InvocationLogReader(default_logs_client(settings), boto3.client("lambda"), settings=settings)
        return reader.logs_client, reader.lambda_client
    except (BotoCoreError, ValueError, LambdaInvokeError) as error:
        raise LambdaCommandError(_setup_advice(error)) from error


def _setup_advice(error: Exception) -> str:
    """What to do when the clients cannot be made: botocore's errors as the kit's one translation says them."""
    if isinstance(error, BotoCoreError):
        return str(aws_error(error, "creating the lambda client", nothing_done="No AWS call was made."))
    return str(error)


def _aws_error(error: ClientError | BotoCoreError, action: str) -> LambdaCommandError:
    """A `LambdaCommandError` naming what was being done and what AWS answered."""
    return LambdaCommandError(aws_error_message(error, action))


# --- pipeskit invoke ----------------------------------------------------------------------------


def read_payload(value: str, stdin: TextIO | None = None) -> bytes:
    """The bytes of ``--payload``: inline JSON, ``@FILE`` (a file's content) or ``@-`` (stdin).

    The payload must be one JSON document: it is checked here, before anything is invoked, and
    sent as given.

    Raises:
        LambdaCommandError: the file cannot be read, or the text is not JSON (the message names it).
    """
    if value.startswith("@"):
        source = value[1:]
        if source == "-":
            if stdin is None:
                raise LambdaCommandError("--payload @- reads standard input, and there is none")
            data = stdin.read().encode()
            where = "the payload read from standard input"
        else:
            try:
                data = Path(source).read_bytes()
            except OSError as error:
                raise LambdaCommandError(
                    f"cannot read the payload file {source!r} ({error.strerror or error}); pass an existing "
                    "file as --payload @FILE, or the JSON itself as --payload '{...}'"
                ) from error
            where = f"the payload file {source!r}"
    else:
        data = value.encode()
        shown = value if len(value) <= 80 else value[:77] + "..."
        where = f"--payload {shown!r}"
    try:
        json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise LambdaCommandError(f"{where} is not UTF-8 text ({error}); Lambda takes a JSON document") from error
    except ValueError as error:
        raise LambdaCommandError(
            f'{where} is not valid JSON ({error}). Pass one JSON document, e.g. --payload \'{{"name": "kit"}}\' '
            "(mind the shell's quoting), or @FILE to read it from a file. Nothing was invoked."
        ) from error
    return data


def _shown_payload(invocation: LambdaInvocation) -> Any:
    """The payload as JSON when it is JSON, else as text (None when empty)."""
    if not invocation.payload:
        return None
    return invocation.decoded if invocation.decoded is not None else invocation.payload.decode("utf-8", "replace")


def invocation_document(invocation: LambdaInvocation) -> dict[str, Any]:
    """The ``--json`` document of ``pipeskit invoke``: what Lambda answered to one invoke.

    Args:
        invocation: the invoke's record.

    Returns:
        ``function``, ``request_id`` and ``status_code``; for a synchronous invoke also
        ``executed_version``, ``function_error``, ``payload`` (JSON, else text) and ``log_tail``.
    """
    document: dict[str, Any] = {
        "function": invocation.function_name,
        "request_id": invocation.request_id,
        "status_code": invocation.status_code,
    }
    if invocation.status_code == 202:
        return document
    document.update(
        executed_version=invocation.executed_version,
        function_error=invocation.function_error,
        payload=_shown_payload(invocation),
    )
    if invocation.log_tail is not None:
        document["log_tail"] = invocation.log_tail
    return document


def call_invoke(
    client: Any,
    function: str,
    payload: bytes,
    *,
    asynchronous: bool = False,
    qualifier: str | None = None,
    settings: LambdaClientSettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> LambdaInvocation:
    """Invoke ``function`` once through `pipeskit.invoke.invoke_function` (429s back off and retry).

    Synchronous invokes ask for the log tail (``LogType=Tail``). The client should not retry by
    itself (see `default_lambda_client`): a retried invoke runs the function twice.

    Args:
        client: a boto3 Lambda client.
        function: name, ``name:alias`` or ARN, as given on the command line.
        payload: the event, as JSON bytes.
        asynchronous: an ``Event`` invoke (202, queued) instead of a synchronous one.
        qualifier: the version or alias to invoke.
        settings: the throttle settings; defaults from ``PIPESKIT_*`` environment variables.
        sleep: the pause between throttled attempts (tests pass their own).

    Returns:
        What Lambda answered.

    Raises:
        LambdaCommandError: the function does not exist, Lambda refused the call, or every attempt
            was throttled.
    """
    settings = settings or LambdaClientSettings.from_env()
    try:
        invocation = invoke_function(
            client, function, payload, invocation_type="Event" if asynchronous else "RequestResponse",
            qualifier=qualifier, arguments=None if asynchronous else {"LogType": "Tail"}, settings=settings,
            sleep=sleep,
        )  # fmt: skip
    except InvokeThrottledError as error:
        named = f"{function}:{qualifier}" if qualifier else function
        attempts = settings.throttle_max_attempts
        raise LambdaCommandError(
            f"Lambda throttled {named} on all {attempts} attempts (429 TooManyRequestsException); the function "
            "did not run. Try again later, or raise its reserved concurrency."
        ) from error
    except (FunctionNotFoundError, LambdaInvokeError) as error:
        raise LambdaCommandError(str(error)) from error
    return invocation


def invoke_command(
    client: Any,
    function: str,
    payload: bytes,
    *,
    asynchronous: bool = False,
    qualifier: str | None = None,
    as_json: bool = False,
    out: TextIO,
    err: TextIO,
    settings: LambdaClientSettings | None = None,
) -> int:
    """``pipeskit invoke``: invoke ``function`` and report what it answered.

    Human output: the response payload on ``out`` (indented when it is JSON; the request id for an
    asynchronous invoke), a status line on ``err`` with the command that shows the invocation's log.
    With ``as_json``, one JSON object on ``out`` (`invocation_document`).

    Returns:
        0 on success, 1 when the function failed (a ``FunctionError``).

    Raises:
        LambdaCommandError: the invoke itself failed (see `call_invoke`).
    """
    outcome = call_invoke(client, function, payload, asynchronous=asynchronous, qualifier=qualifier, settings=settings)
    logs_hint = f"pipeskit logs {shlex.quote(function)} --request-id {outcome.request_id}"
    shown = _shown_payload(outcome)
    if as_json:
        print(json.dumps(invocation_document(outcome), ensure_ascii=False), file=out)
    elif asynchronous:
        print(outcome.request_id, file=out)
        print(f"# {function}: queued (202), request id {outcome.request_id}; follow it: {logs_hint} --follow", file=err)
    else:
        if outcome.decoded is not None:
            print(json.dumps(shown, indent=2, ensure_ascii=False), file=out)
        elif outcome.payload:
            print(shown, file=out)
        version = f", version {outcome.executed_version}" if outcome.executed_version else ""
        print(f"# {function}: request id {outcome.request_id}{version}; its log: {logs_hint}", file=err)
    if not outcome.function_error:
        return 0
    if not as_json:
        details = outcome.error_details
        error_type = details.get("errorType", "Unknown")
        message = details.get("errorMessage", "")
        print(
            f"error: {function} failed ({outcome.function_error}) [request id {outcome.request_id}]: "
            f"{error_type}: {message}",
            file=err,
        )
        if outcome.log_tail:
            print("# the end of its log (last 4 KB):", file=err)
            print(outcome.log_tail.rstrip("\n"), file=err)
    return 1


# --- pipeskit logs ------------------------------------------------------------------------------


def parse_since(text: str, now: float | None = None) -> float:
    """The epoch seconds ``--since`` names: a duration back from now (``30s``, ``10m``, ``2h``, ``1d``,
    ``1w``; a bare number is seconds) or an ISO-8601 time (UTC when it has no offset).

    Raises:
        LambdaCommandError: neither form (a ValueError); the message shows the accepted ones.
    """
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if match:
        return (time.time() if now is None else now) - float(match[1]) * _UNIT_S[match[2]]
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise LambdaCommandError(
            f"{text!r} is not a duration or a time: use e.g. 30s, 10m, 2h, 1d, or 2025-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class LogEvent:
    """One CloudWatch Logs event.

    Attributes:
        timestamp_ms: when it was written (epoch milliseconds).
        log_stream: its stream.
        message: its text (Lambda ends most with a newline; kept as read).
        event_id: CloudWatch's id of the event, when the API gives one.
    """

    timestamp_ms: int
    log_stream: str
    message: str
    event_id: str = ""

    @classmethod
    def from_api(cls, event: dict[str, Any], stream: str = "") -> LogEvent:
        """From a ``FilterLogEvents`` or ``GetLogEvents`` event (the latter names no stream)."""
        return cls(
            timestamp_ms=int(event.get("timestamp", 0)),
            log_stream=str(event.get("logStreamName", stream)),
            message=str(event.get("message", "")),
            event_id=str(event.get("eventId", "")),
        )

    @property
    def key(self) -> tuple[str, str, int, str]:
        """What tells two reads of the same event apart from two events."""
        return (self.log_stream, self.event_id, self.timestamp_ms, "" if self.event_id else self.message)

    @property
    def iso_time(self) -> str:
        """``2025-01-31T12:00:00.123Z``."""
        moment = dt.datetime.fromtimestamp(self.timestamp_ms / 1000, tz=dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` line."""
        return {"timestamp": self.iso_time, "log_stream": self.log_stream, "message": self.message.rstrip("\n")}

    def as_text(self) -> str:
        """``TIMESTAMP  STREAM  MESSAGE``, the stream shortened to ``[version]`` and 8 characters."""
        message = self.message.rstrip("\n")
        return f"{self.iso_time}  {short_stream(self.log_stream)}  {message}"


def short_stream(stream: str) -> str:
    """``[$LATEST]1a2b3c4d`` from ``2025/01/31/[$LATEST]1a2b3c4d…`` (Lambda's stream names)."""
    head, bracket, rest = stream.rpartition("]")
    if bracket:
        return f"{head[head.rfind('[') :]}]{rest[:8]}"
    return stream[-17:]


def _json_record(message: str) -> dict[str, Any] | None:
    if not message.startswith("{"):
        return None
    try:
        record = json.loads(message)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _record_request_id(record: dict[str, Any]) -> str:
    """The request id of a JSON record: the runtime's ``requestId``, a platform record's
    ``record.requestId``, or Powertools' ``function_request_id``."""
    inner = record.get("record")
    inner_id = inner.get("requestId") if isinstance(inner, dict) else None
    return str(record.get("requestId") or inner_id or record.get("function_request_id") or "")


def mentions_request(message: str, request_id: str) -> bool:
    """Whether a line belongs to the request by what it says: a JSON record whose request id
    (``requestId``, ``record.requestId``, ``function_request_id``) is ID, or a text line containing ID."""
    record = _json_record(message)
    if record is not None:
        return _record_request_id(record) == request_id
    return request_id in message


class _NoLogGroup(PipesKitError):
    """CloudWatch Logs answered ResourceNotFoundException: the group (or stream) does not exist."""


@dataclass(frozen=True)
class _Found:
    """Where a request's lines are: its stream, and the time of its first line there."""

    stream: str
    first_ms: int


_MAX_EMPTY_PAGES = 5
"""Empty ``GetLogEvents`` pages in a row (each with a new token) taken as the end of the stream."""


def function_log_group(lambda_client: Any, function: str) -> tuple[str, bool | None]:
    """The function's log group and whether the function exists.

    ``LoggingConfig.LogGroup`` when the configuration sets one, else ``/aws/lambda/<name>``.

    Returns:
        ``(group, exists)``: exists is None when Lambda could not be asked (e.g. no permission).
    """
    try:
        config = lambda_client.get_function_configuration(FunctionName=function)
    except ClientError as error:
        return log_group_of(None, function), (False if _error_code(error) == "ResourceNotFoundException" else None)
    except BotoCoreError:
        return log_group_of(None, function), None
    return log_group_of(config, function), True


def logs_command(
    logs_client: Any,
    lambda_client: Any,
    function: str,
    *,
    request_id: str | None = None,
    follow: bool = False,
    since: float | None = None,
    as_json: bool = False,
    out: TextIO,
    err: TextIO,
    poll_interval_s: float = POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    settings: LogsReaderSettings | None = None,
    budget: RateBudget | None = None,
) -> int:
    """``pipeskit logs``: print a function's recent log events, or one invocation's lines.

    Without ``request_id``: the group's events from ``since`` (default: 10 minutes ago) in time
    order. With it: the lines of that invocation, from its start line to its ``REPORT`` line, in
    the stream that holds it (``since``, when given, bounds the search for it; else the whole group
    is searched). ``follow`` keeps reading new events until Ctrl-C, or, for a request, until its
    ``REPORT`` line arrives; it waits for a log group that does not exist yet.

    Reads go through the kit's log reader: each request takes a token from the read budget, and a
    read still throttled after the client's own retries fails the command, or, with ``follow``, is
    sent again after a pause, without end.

    Args:
        logs_client: a boto3 ``logs`` client (`logs_clients_from_env`).
        lambda_client: a boto3 ``lambda`` client (for the function's ``LoggingConfig.LogGroup``).
        function: name, ``name:alias`` or ARN.
        request_id: the invocation to show.
        follow: keep reading.
        since: epoch seconds to start from (`parse_since`).
        as_json: one JSON object per event (``timestamp``, ``log_stream``, ``message``).
        out: where events go.
        err: where notes go (what is awaited, an empty window).
        poll_interval_s: pause between reads once caught up.
        sleep: the pause (tests pass their own).
        clock: epoch seconds now.
        settings: the read settings (the budget's rate and scope); default: ``PIPESKIT_*`` variables.
        budget: the read budget; default: the one ``settings`` name, shared by the host's readers.

    Returns:
        0, also when Ctrl-C ends ``follow``.

    Raises:
        LambdaCommandError: the log group does not exist (and ``follow`` cannot wait for it), the
            request id is not in it, or CloudWatch Logs refused the call.
    """
    if settings is None:
        try:
            settings = LogsReaderSettings.from_env()
        except ValueError as error:
            raise LambdaCommandError(_setup_advice(error)) from error
    reader = InvocationLogReader(logs_client, lambda_client, settings=settings, budget=budget)
    tail = _LogTail(
        reader, function, follow=follow, as_json=as_json, out=out, err=err,
        poll_interval_s=poll_interval_s, sleep=sleep, clock=clock,
    )  # fmt: skip
    start_ms = None if since is None else int(since * 1000)
    try:
        if request_id:
            tail.request(request_id, start_ms)
        else:
            tail.recent(start_ms if start_ms is not None else int(parse_since(DEFAULT_SINCE, clock()) * 1000))
    except KeyboardInterrupt:
        return 0
    return 0


class _LogTail:
    """One run of ``pipeskit logs`` over the log reader: what to read next, what to print, when to wait."""

    def __init__(
        self, reader: InvocationLogReader, function: str, *, follow: bool, as_json: bool, out: TextIO,
        err: TextIO, poll_interval_s: float, sleep: Callable[[float], None], clock: Callable[[], float],
    ) -> None:  # fmt: skip
        self._reader = reader
        self._lambda = reader.lambda_client
        self._function = function
        self._follow = follow
        self._as_json = as_json
        self._out = out
        self._err = err
        self._poll_interval_s = poll_interval_s
        self._sleep = sleep
        self._clock = clock
        self._notes: set[str] = set()
        self.printed = 0
        self.group, self._exists = function_log_group(self._lambda, function)
        # past botocore's retries, a throttled read fails the command, or --follow waits it out
        self._on_throttled = self._wait_out_throttling if follow else None

    # reading

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Say what went wrong reading the group: a missing group is `_NoLogGroup`, the rest a `LambdaCommandError`."""
        try:
            yield
        except ClientError as error:
            if _error_code(error) == "ResourceNotFoundException":
                raise _NoLogGroup from error
            raise _aws_error(error, f"reading {self.group}") from error
        except BotoCoreError as error:
            raise _aws_error(error, f"reading {self.group} in {_where(self._reader.logs_client)}") from error
        except SettingsError as error:  # the read budget's directory cannot be used
            raise LambdaCommandError(str(error)) from error

    def _wait_out_throttling(self, error: ClientError, times: int) -> None:
        """With ``--follow``, a read still throttled after botocore's retries: pause, then it is sent again."""
        self._sleep(min(MAX_THROTTLE_DELAY_S, 2 ** min(times, 6) / 2))

    def _filter_pages(self, start_ms: int | None, pattern: str | None = None) -> Iterator[list[LogEvent]]:
        """The pages of ``FilterLogEvents`` over the group (raises `_NoLogGroup`)."""
        with self._reading():
            for page in self._reader.filter_pages(
                self.group, start_ms=start_ms, pattern=pattern, on_throttled=self._on_throttled
            ):
                yield [LogEvent.from_api(event) for event in page]

    # output

    def _print(self, event: LogEvent) -> None:
        line = json.dumps(event.as_json(), ensure_ascii=False) if self._as_json else event.as_text()
        print(line, file=self._out, flush=True)  # flushed: a follower sees each line as it comes
        self.printed += 1

    def _note(self, note: str) -> None:
        """Say once on ``err`` what ``--follow`` waits for."""
        if note not in self._notes:
            self._notes.add(note)
            print(f"# {note}; Ctrl-C to stop", file=self._err, flush=True)

    def _wait_for_group(self) -> None:
        """With ``--follow``, note that the group is awaited; else (or with no function) fail."""
        if not self._follow or self._exists is False:  # no function: nothing will ever log there
            raise self._missing_group()
        self._note(f"waiting for log group {self.group} ({self._function} has not logged yet)")

    def _missing_group(self) -> LambdaCommandError:
        if self._exists is False:
            return LambdaCommandError(
                f"function {self._function} not found in {_where(self._lambda)}, and its log group {self.group} does "
                "not exist. Check the name, the region (AWS_REGION, AWS_DEFAULT_REGION, AWS_PROFILE) and "
                "AWS_ENDPOINT_URL."
            )
        return LambdaCommandError(
            f"log group {self.group} does not exist: {self._function} has not logged yet (it was never invoked), or "
            f"it does not exist in {_where(self._lambda)}. Invoke it first (pipeskit invoke "
            f"{shlex.quote(self._function)}), or add --follow to wait for its first lines."
        )

    # pipeskit logs FUNCTION

    def recent(self, start_ms: int) -> None:
        """The group's events from ``start_ms`` in time order; with ``--follow``, then the new ones.

        Following re-reads `FOLLOW_LOOKBACK_MS` before the newest event seen, so an event ingested
        late (timestamped before one already printed) is still printed, once.
        """
        seen: dict[tuple[str, str, int, str], int] = {}
        cursor = start_ms
        while True:
            try:
                events = [event for page in self._filter_pages(cursor) for event in page]
            except _NoLogGroup:
                self._wait_for_group()
            else:
                for event in sorted((e for e in events if e.key not in seen), key=lambda e: e.timestamp_ms):
                    self._print(event)
                    seen[event.key] = event.timestamp_ms
                if not self._follow:
                    if not self.printed:
                        since = LogEvent(start_ms, "", "").iso_time
                        print(f"# no events in {self.group} since {since}; --since widens the window", file=self._err)
                    return
                if seen:
                    cursor = max(start_ms, max(seen.values()) - FOLLOW_LOOKBACK_MS)
                    seen = {key: ts for key, ts in seen.items() if ts >= cursor}
            self._sleep(self._poll_interval_s)

    # pipeskit logs FUNCTION --request-id ID

    def request(self, request_id: str, start_ms: int | None) -> None:
        """One invocation's lines: find its stream by request id, read the stream from start to REPORT."""
        while True:
            try:
                found = self._find(request_id, start_ms)
            except _NoLogGroup:
                self._wait_for_group()
            else:
                if found is not None:
                    break
                if not self._follow:
                    window = "" if start_ms is None else f" since {LogEvent(start_ms, '', '').iso_time}"
                    raise LambdaCommandError(
                        f"no log line of request {request_id} in {self.group}{window}. Check the request id and the "
                        "function; a new invocation's lines take a moment to arrive: add --follow to wait for them"
                        + ("." if start_ms is None else ", or widen --since.")
                    )
                self._note(f"waiting for request {request_id} to appear in {self.group}")
            if start_ms is None:  # the first search covered the whole group; later ones need not
                start_ms = int(self._clock() * 1000) - REQUEST_SEARCH_LOOKBACK_MS
            self._sleep(self._poll_interval_s)
        self._read_stream(request_id, found)

    def _find(self, request_id: str, start_ms: int | None) -> _Found | None:
        """The stream holding the request (the one with its start line, else its first line)."""
        matches: list[LogEvent] = []
        with self._reading():
            for raw in self._reader.request_events(
                self.group, request_id, start_ms=start_ms, on_throttled=self._on_throttled
            ):
                event = LogEvent.from_api(raw)
                if is_start_line(event.message, request_id):
                    return _Found(event.log_stream, event.timestamp_ms)
                matches.append(event)
        if not matches:
            return None
        stream = matches[0].log_stream
        return _Found(stream, min(event.timestamp_ms for event in matches if event.log_stream == stream))

    def _read_stream(self, request_id: str, found: _Found) -> None:
        """Print the request's lines from its stream: start line to ``REPORT`` inclusive.

        Where the stream has no start line for it (e.g. a JSON-format function whose system log
        level leaves platform records out), the lines that name the request are printed.
        """
        cursor = self._reader.stream(
            self.group, found.stream, found.first_ms, empty_pages=_MAX_EMPTY_PAGES, on_throttled=self._on_throttled
        )
        inside = False
        while True:
            with self._reading():  # a stream deleted meanwhile, or not visible yet, reads as caught up
                for page in cursor.pages():
                    for event in (LogEvent.from_api(raw, found.stream) for raw in page):
                        inside = inside or is_start_line(event.message, request_id)
                        if inside or mentions_request(event.message, request_id):
                            self._print(event)
                        if is_report_line(event.message, request_id):
                            return
            if not self._follow:
                print(
                    f"# no REPORT line of request {request_id} yet in {self.group}: it may still be running "
                    "(add --follow to wait for its end)",
                    file=self._err,
                )
                return
            self._note(f"following request {request_id} until its REPORT line")
            self._sleep(self._poll_interval_s)
