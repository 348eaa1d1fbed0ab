"""The S3 channel's reader: message chunks read from the messages bucket while the function runs.

Twin of ``pipeskit_lambda.S3ChunkMessageWriter``, and reads dagster-pipes' own
``PipesS3MessageWriter`` too (the same ``{prefix}/{n}.json`` layout). Each run gets its own prefix
under the bucket's session prefix — never the bucket root. A background poller lists and fetches
every available chunk per poll and hands the messages to the run's session as they arrive, so a long
invocation's logs and materializations reach Dagster before it ends; the run finishes as soon as
``closed`` has been read (no fixed wait). A missing chunk is named; what the run read is deleted
(configurable). When the function dies before its last chunk is uploaded, the rest is read from the
copy in its log.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster import DagsterLogManager, PipesMessageHandler
from dagster_pipes import PipesParams

from pipeskit_lambda.protocol import (
    ATTEMPT_LINE,
    BUCKET_PARAM,
    CHANNEL_PARAM,
    KEY_PREFIX_PARAM,
    S3_CHANNEL,
    STDERR,
    STDIO_PARAM,
    EnvelopeKeys,
)

from .._boto import DEFAULT_TARGET, AwsTarget
from .._lazy import LazyClient
from ..attempt_ends import AttemptEnd
from ..cloudwatch_logs import is_throttling
from ..durable import DurableExecution
from ..errors import MessagesLostError, PipesKitError, S3NotUsableError
from ..failures import record_error
from ..invocation import LambdaInvocation, handler_never_ran
from ..message_lines import Message, Text, Unreadable, scan_lines
from ..settings import ClientSettings, DeploymentSettings, S3ReaderSettings
from .base import ChannelSession, DurableFollowing, EventFollowing, LambdaMessageReader, LogReadingMessageReader
from .chunks import AttemptChunks, ChunkReader, delete_keys, exception_message, probe_prefix


class S3MessageReader(LogReadingMessageReader):
    """Read messages from chunks in the messages bucket, as the function writes them.

    Args:
        bucket: the messages bucket; default `DeploymentSettings.messages_bucket`
            (``PIPESKIT_MESSAGES_BUCKET``).
        client: a boto3 S3 client (created on first use, in ``aws``).
        s3_settings: polling, waiting and deletion; defaults from ``PIPESKIT_*`` variables.
        **logs: the keyword arguments of `LogReadingMessageReader` (``aws`` included), for the log copy
            read back when the function dies before its last chunk is uploaded.

    Raises:
        PipesKitError: when first used, if no bucket was given and none is configured.
    """

    channel = S3_CHANNEL
    supports_event_invocations = True  # its messages never travel in the invoke response

    def __init__(
        self,
        bucket: str | None = None,
        *,
        client: Any | None = None,
        s3_settings: S3ReaderSettings | None = None,
        **logs: Any,
    ) -> None:
        super().__init__(**logs)
        aws: AwsTarget = logs.get("aws", DEFAULT_TARGET)
        # What was not given is read from the environment on first use, once: a code location builds
        # its resources at import, possibly before its environment is complete.
        self._given_settings = s3_settings
        self._given_bucket = bucket
        self._client = LazyClient(client, lambda: aws.client("s3"))
        self._bucket_checked = False

    @cached_property
    def s3_settings(self) -> S3ReaderSettings:
        """The polling, waiting and deletion settings."""
        return self._given_settings or S3ReaderSettings.from_env()

    @cached_property
    def _bucket(self) -> str:
        return self._given_bucket if self._given_bucket is not None else DeploymentSettings.from_env().messages_bucket

    @classmethod
    def configured(
        cls, settings: ClientSettings, aws: AwsTarget = DEFAULT_TARGET, clients: Mapping[str, Any] | None = None
    ) -> LambdaMessageReader:
        return cls(
            settings.deployment.messages_bucket, client=(clients or {}).get("s3"), s3_settings=settings.s3,
            **cls.log_arguments(settings, aws, clients),
        )  # fmt: skip

    @property
    def bucket_name(self) -> str:
        """The messages bucket, or ``""`` when none is configured."""
        return self._bucket or ""

    @property
    def bucket(self) -> str:
        """The messages bucket.

        Raises:
            PipesKitError: none given and none configured (before anything is invoked).
        """
        bucket = self._bucket
        if not bucket:
            raise PipesKitError(
                "S3MessageReader needs the messages bucket: pass bucket=..., set the client's messages_bucket, "
                f"or set {DeploymentSettings.env_var('messages_bucket')} (the stack's MessagesBucketName output), "
                "or name the deployed stack with the client's stack_name"
            )
        return bucket

    @property
    def client(self) -> Any:
        """The S3 client (created on first use)."""
        return self._client.get()

    def messages_params(self) -> PipesParams:
        prefix = f"{self.s3_settings.s3_session_prefix.strip('/')}/{uuid.uuid4().hex}"
        # `stdio`: a handler with no kit code, on dagster-pipes' default writer, writes its messages to
        # its log (read back from there); the kit's writer and PipesS3MessageWriter use the bucket.
        return {BUCKET_PARAM: self.bucket, KEY_PREFIX_PARAM: prefix, CHANNEL_PARAM: self.channel, STDIO_PARAM: STDERR}

    def holds_session(self, prefix: str | None) -> bool:
        """Whether any of a session's objects are still under ``prefix`` (a durable execution's session, whose
        chunks are deleted once its end was read)."""
        return bool(prefix) and probe_prefix(self.client, self.bucket, str(prefix).rstrip("/"))

    def check_bucket(self) -> None:
        """Refuse, before anything is invoked, a messages bucket that does not exist or may not be listed
        (checked once per reader; a transient error such as SlowDown is left to the reads).

        Raises:
            S3NotUsableError: naming the bucket, the setting and what to do.
        """
        if self._bucket_checked:
            return
        bucket, prefix = self.bucket, self.s3_settings.s3_session_prefix.strip("/")
        try:
            probe_prefix(self.client, bucket, prefix)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            setting = f"messages_bucket, or {DeploymentSettings.env_var('messages_bucket')}"
            if code == "NoSuchBucket" or status == 404:
                raise S3NotUsableError(
                    f"the messages bucket {bucket!r} does not exist ({setting}). Set it to the stack's "
                    "MessagesBucketName output. Nothing was invoked."
                ) from error
            if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
                raise S3NotUsableError(
                    f"the orchestrator may not list s3://{bucket}/{prefix}/ ({code or status}): the S3 channel reads "
                    "the function's message chunks there. Grant s3:ListBucket on the bucket and s3:GetObject and "
                    "s3:DeleteObject under the prefix (the stack's OrchestratorPolicy does), or check "
                    f"{setting}. Nothing was invoked."
                ) from error
            return  # transient: the reads retry, and the log copy backs them
        except BotoCoreError:
            return  # unreachable now: the reads say so, and the log copy backs them
        self._bucket_checked = True

    def open_session(self, *, asynchronous: bool = False, prefix: str | None = None) -> S3ChannelSession:
        """This run's end of the channel; ``prefix``: the session's prefix, when it is an existing session's
        (a durable execution re-attached to), else a new one."""
        return S3ChannelSession(self, asynchronous=asynchronous, prefix=prefix)

    def no_messages_debug_text(self) -> str:
        return f"Expected message chunks under s3://{self.bucket}/{self.s3_settings.s3_session_prefix}/<session>/."


_ATTEMPT_LINE = re.compile(
    re.escape(ATTEMPT_LINE.split("{bucket}")[0]) + r"[^/\s]+/(\S+?)/?$"
)


@dataclass
class _LogCopy:
    """One ended attempt of an asynchronous run, as its log copy tells it."""

    end: AttemptEnd
    lines: list[str]
    attempt: str | None = None  # its chunks' attempt folder (the S3 writer's first line says)
    error: dict[str, Any] | None = None  # None: it succeeded


def _closed_error(exception: dict[str, Any]) -> dict[str, Any]:
    """The error document of a session that closed with ``exception`` (dagster-pipes' shape)."""
    return {
        "errorType": exception.get("name") or "Unknown",
        "errorMessage": exception_message(exception) or "the function failed",
        "stackTrace": exception.get("stack") or [],
    }


def _runtime_error(line: str) -> dict[str, Any] | None:
    """The Lambda runtime's record of an unhandled error (``[ERROR] Type: message`` or its JSON)."""
    if line.startswith("[ERROR] "):
        kind, _, message = line[len("[ERROR] ") :].partition(": ")
        if kind and " " not in kind:
            return {"errorType": kind, "errorMessage": message, "stackTrace": []}
        return None
    if line.startswith("{") and '"errorType"' in line:
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if isinstance(record, dict) and record.get("errorType") and record.get("level", "ERROR") == "ERROR":
            return {"errorType": str(record["errorType"]), "errorMessage": str(record.get("errorMessage", "")),
                    "stackTrace": record.get("stackTrace") or []}  # fmt: skip
    return None


class StatusLooks:
    """When a followed durable execution's status is read: every ``status_interval_s``, and once its
    ``closed`` is read at once, then at a pace doubling from ``first_after_closed_s`` up to the interval.
    The invocation that ends the execution uploads ``closed`` just before it returns and the execution
    records its end just after, so the end is seen within about a poll of it, not a status interval later.

    Args:
        status_interval_s: the pace while the execution runs.
        first_after_closed_s: the first pause once ``closed`` was read.
    """

    def __init__(self, status_interval_s: float, first_after_closed_s: float) -> None:
        self.status_interval_s = status_interval_s
        self.first_after_closed_s = first_after_closed_s
        self._next = 0.0  # the first look is at once
        self._after_closed: float | None = None

    def closed_read(self, now: float) -> None:
        """The session's ``closed`` was read (only its first reading counts)."""
        if self._after_closed is None:
            self._after_closed = self.first_after_closed_s
            self._next = now

    def due(self, now: float) -> bool:
        """Whether the status is to be read now."""
        return now >= self._next

    def looked(self, now: float) -> None:
        """The status was read at ``now`` and the execution had not ended."""
        interval = self.status_interval_s
        if self._after_closed is not None:
            interval = min(self._after_closed, interval)
            self._after_closed *= 2
        self._next = now + interval


class S3ChannelSession(ChannelSession):
    """One run's end of the S3 channel: polls its prefix in the background while the function runs."""

    reader: S3MessageReader

    def __init__(self, reader: S3MessageReader, *, asynchronous: bool = False, prefix: str | None = None) -> None:
        super().__init__(reader)
        self._chunks: ChunkReader | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prefix = prefix or ""
        self._given_prefix = prefix
        self.asynchronous = asynchronous  # an Event invocation: messages are held per attempt
        self.keep_chunks = False
        """Leave the chunks when the session closes (a durable execution that has not ended: a re-execution
        of the run re-attaches to it and reads them again)."""

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        self._handler = handler
        self.reader.check_bucket()
        params = self.reader.messages_params()
        if self._given_prefix:
            params[KEY_PREFIX_PARAM] = self._given_prefix
        self._prefix = str(params[KEY_PREFIX_PARAM])
        self._chunks = ChunkReader(
            self.reader.client, self.reader.bucket, self._prefix, handler.handle_message,
            gap_timeout_s=self.reader.s3_settings.s3_gap_timeout_s, hold=self.asynchronous,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._poll_loop, name="pipeskit-s3-reader", daemon=True)
        self._thread.start()
        try:
            yield params
        finally:
            self._stop.set()
            self._thread.join(timeout=30)
            if self.reader.s3_settings.s3_delete_chunks and not self.keep_chunks:
                self._delete_everything()

    @property
    def requests(self) -> int:
        """S3 requests this run made."""
        return self._chunks.requests if self._chunks is not None else 0

    @property
    def _state(self) -> ChunkReader:
        assert self._chunks is not None, "read_messages() opens the session's chunk reader"
        return self._chunks

    def consume(self, invocation: LambdaInvocation, log: DagsterLogManager) -> None:
        """Wait until ``closed`` was read (or the function's failure is known), then stop polling.

        Raises:
            MessagesLostError: a chunk never appeared (named by its key).
        """
        envelope = invocation.envelope
        settings = self.reader.s3_settings
        unreadable: Exception | None = None
        try:
            if envelope is not None and envelope.get("s3_prefix"):
                attempt = str(envelope["s3_prefix"]).removeprefix(self._prefix).strip("/")
                self._wait(lambda: self._attempt_done(attempt, int(envelope.get("s3_chunks") or 0)),
                           settings.s3_completion_timeout_s)  # fmt: skip
            elif invocation.function_error is None and envelope is None:
                # No kit code ran. dagster-pipes' PipesS3MessageWriter uploaded its chunks before the
                # handler returned; with none, its default writer wrote the messages to the log.
                self._poll()
                if self._state.attempts:
                    self._wait(self._any_closed, settings.s3_completion_timeout_s)
            else:
                self._wait(self._any_closed, 0.0)  # one last look: the function failed
        except (BotoCoreError, ClientError) as error:
            unreadable = error
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if unreadable is None:
            try:
                self._poll()  # the thread is gone: this one is the last
            except (BotoCoreError, ClientError) as error:
                unreadable = error
        # The kit's writer ran (it copies every message to the log), or no writer used the bucket.
        has_log_copy = invocation.function_error is not None or envelope is not None or not self._state.attempts
        if unreadable is not None and not has_log_copy:
            raise S3NotUsableError(
                f"request {invocation.request_id}: reading the message chunks under s3://{self.reader.bucket}/"
                f"{self._prefix}/ failed: {unreadable}. The function's writer keeps no copy in its log. Check that "
                "the orchestrator may s3:ListBucket and s3:GetObject there (the stack's OrchestratorPolicy); on "
                "SlowDown, run again later."
            ) from unreadable
        if unreadable is not None:
            log.warning(
                f"[pipeskit] request {invocation.request_id}: reading the message chunks under s3://"
                f"{self.reader.bucket}/{self._prefix}/ failed ({unreadable}); the rest of the messages is read "
                "from their copy in the function's log"
            )
        if not self._any_closed() and has_log_copy:
            # The function died before uploading its last chunk, its last upload was refused, or the
            # chunks could not be read: the rest is in its log.
            delivered = max((a.delivered for a in self._state.attempts.values()), default=0)
            self.reader.logs.deliver(invocation, self.handler, log, envelope, skip_messages=delivered)
        refused = (envelope or {}).get(EnvelopeKeys.S3_UPLOAD_ERROR)
        if refused:
            log.warning(
                f"[pipeskit] request {invocation.request_id}: the function's message uploads were refused ({refused}); "
                "its messages were read from its log. Grant the function's role s3:PutObject on the messages "
                "bucket's session prefix (PipesFunction does, given the bucket)."
            )
        self._report_skipped(invocation, log)
        if self._state.lost:
            raise MessagesLostError(
                f"request {invocation.request_id}: message chunk(s) {', '.join(self._state.lost)} never appeared in "
                f"s3://{self.reader.bucket}; the messages they held are missing (their copy is in the function's log)."
            )

    def follow_event(self, invocation: LambdaInvocation, following: EventFollowing) -> dict[str, Any] | None:
        """Follow an ``Event`` invocation to its end; None on success, else the error document.

        It ends with the first attempt that succeeded — its ``closed`` read from its chunks, or, when
        its uploads stopped short, from its lines in the function's log once Lambda wrote its REPORT
        line (``following.attempt_ends``); or with the last allowed attempt failing — raised, exited,
        timed out, ran out of memory — seen the same ways or in the on-failure destination's record
        (``following.failure_record``). Only with no word at all (no chunk, no REPORT line) for the
        function's timeout plus the margin is it a timeout. The attempt that counts is delivered
        once: its chunks, then the rest of its messages from its log copy.
        """
        timeout_s, margin_s = following.timeout_s, following.margin_s
        self._event_log = following.log
        pause = self.reader.s3_settings.s3_poll_interval_s
        deadline = time.monotonic() + timeout_s + margin_s
        known, examined, failures = 0, 0, 0
        last: _LogCopy | None = None
        while True:
            self._poll()
            attempts = list(self._state.attempts.values())
            if len(attempts) > known:  # a new attempt began: it has its own timeout
                known = len(attempts)
                deadline = time.monotonic() + timeout_s + margin_s
            done = next((a for a in attempts if a.closed and not a.exception), None)
            if done is not None:
                self._release(done)
                return None
            ends = following.attempt_ends(invocation.request_id)
            while examined < len(ends):
                end, examined = ends[examined], examined + 1
                deadline = time.monotonic() + timeout_s + margin_s
                last = self._log_copy(invocation, end)
                if last.error is None:
                    self._deliver_copy(invocation, last)
                    return None
                failures += 1
                if failures >= following.max_attempts:
                    self._deliver_copy(invocation, last)
                    return last.error
            record = following.failure_record(invocation.request_id)
            failed = [a for a in attempts if a.closed]
            error: dict[str, Any] | None = None
            if record is not None:
                error = record_error(record)
                # the last attempt's REPORT line, then its log copy, will come — unless its handler never ran
                # (an init error: no message of it exists, and the local AWS writes no REPORT line for it)
                if not following.silence_note and not handler_never_ran(error):
                    ends = self._await_ends(invocation, following, examined)
                    if examined < len(ends):
                        last, examined = self._log_copy(invocation, ends[-1]), len(ends)
            elif len(failed) >= following.max_attempts:
                error = _closed_error(failed[-1].exception or {})
            elif time.monotonic() > deadline:
                error = {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"no word from request {invocation.request_id} within the function's "
                    f"timeout ({timeout_s:.0f} s) plus {margin_s:.0f} s: no message chunk and no REPORT line "
                    f"in its log{following.silence_note}",
                    "stackTrace": [],
                }
            if error is not None:
                if last is not None and examined == len(ends):
                    self._deliver_copy(invocation, last)
                elif attempts:
                    self._release(attempts[-1])
                return error
            time.sleep(pause)

    def follow_durable(self, following: DurableFollowing) -> DurableExecution:
        """Follow a durable execution to its end: the chunks of every invocation delivered in the order they
        ran as they come (the Lambda side wrote each message once), its status and progress read as
        `StatusLooks` says. Returns the ended execution, once its ``closed`` was read too or
        ``s3_completion_timeout_s`` after; its chunks are left in the bucket while it runs (`keep_chunks`)."""
        self.keep_chunks = True
        pause = self.reader.s3_settings.s3_poll_interval_s
        looks = StatusLooks(following.status_interval_s, first_after_closed_s=pause)
        while True:  # the session's poll loop lists the chunks (backing off while none come); this one reads state
            if self._any_closed():
                looks.closed_read(time.monotonic())
            if looks.due(time.monotonic()):
                try:
                    execution = following.describe()
                    following.progress()
                except ClientError as error:
                    if not is_throttling(error):
                        raise
                    looks.looked(time.monotonic())  # over the rate: the next look is at the pace's next turn
                    continue
                if execution.ended:
                    # a handler that returned or raised wrote closed; a timed-out or stopped execution's did not
                    wait_s = self.reader.s3_settings.s3_completion_timeout_s if execution.closes_session else 0.0
                    self._wait(self._any_closed, wait_s)
                    self.keep_chunks = False
                    return execution
                looks.looked(time.monotonic())
            time.sleep(pause)

    def _await_ends(self, invocation: LambdaInvocation, following: EventFollowing, seen: int) -> list[AttemptEnd]:
        """The attempts' ends once one more than ``seen`` is in (Lambda sent its failure record: the last
        attempt ended, its REPORT line is due), waiting no longer than the log reader's ingestion timeout."""
        deadline = time.monotonic() + self.reader.logs.settings.ingestion_timeout_s
        while True:
            ends = following.attempt_ends(invocation.request_id)
            if len(ends) > seen or time.monotonic() > deadline:
                return ends
            time.sleep(self.reader.s3_settings.s3_poll_interval_s)

    def _log_copy(self, invocation: LambdaInvocation, end: AttemptEnd) -> _LogCopy:
        """One ended attempt's lines from its log stream, and how it ended."""
        lines = list(self.reader.logs.lines(end.group, end.stream, invocation, started_ms=end.started_ms))
        copy = _LogCopy(end=end, lines=lines)
        closed: dict[str, Any] | None = None
        runtime_error: dict[str, Any] | None = None
        for found in scan_lines(lines):
            if isinstance(found, Message):
                if found.message.get("method") == "closed":
                    closed = found.message
            elif isinstance(found, Text):
                match = _ATTEMPT_LINE.search(found.line)
                if match:
                    copy.attempt = match.group(1).rsplit("/", 1)[-1]
                runtime_error = runtime_error or _runtime_error(found.line)
        exception = ((closed or {}).get("params") or {}).get("exception")
        if exception:
            copy.error = _closed_error(exception)
        elif end.status != "success":
            copy.error = {
                "errorType": end.error_type or {"timeout": "Sandbox.Timedout"}.get(end.status, f"Runtime.{end.status}"),
                "errorMessage": f"attempt ended with status {end.status}"
                + (f" ({end.error_type})" if end.error_type else "")
                + f" in {end.group}/{end.stream}",
                "stackTrace": [],
            }
        elif runtime_error is not None:
            copy.error = runtime_error
        return copy

    def _deliver_copy(self, invocation: LambdaInvocation, copy: _LogCopy) -> None:
        """The attempt that counts: what its chunks held, then the rest of its messages from its log copy."""
        attempt = self._state.attempts.get(copy.attempt) if copy.attempt is not None else None
        skip = 0
        if attempt is not None:
            self._release(attempt)
            skip = attempt.delivered
        with self._lock:
            self.reader.logs.deliver_lines(
                copy.lines, invocation, self.handler, self._event_log, skip_messages=skip,
                source=f"{copy.end.group}/{copy.end.stream}",
            )  # fmt: skip

    def _report_skipped(self, invocation: LambdaInvocation, log: DagsterLogManager) -> None:
        """A warning for each chunk line that was not a whole message (it cost itself only)."""
        for item in self._state.skipped:
            if isinstance(item, Unreadable):
                what = item.describe()
            else:
                what = f"a line that is not a Pipes message: {item.line[:300]}"
            log.warning(f"[pipeskit] request {invocation.request_id}: skipped {what} (in a chunk under s3://"
                        f"{self.reader.bucket}/{self._prefix}/)")  # fmt: skip
        self._state.skipped.clear()

    def _release(self, attempt: AttemptChunks) -> None:
        with self._lock:
            self._state.release(attempt)

    # -- polling -------------------------------------------------------------------------------

    def _wait(self, done: Any, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pause = self.reader.s3_settings.s3_poll_interval_s
        while True:
            self._poll()
            if done() or time.monotonic() >= deadline:
                return
            time.sleep(pause)

    def _poll_loop(self) -> None:
        settings = self.reader.s3_settings
        pause = settings.s3_poll_interval_s
        while not self._stop.wait(pause):
            try:
                got = self._poll()
            except Exception:  # a failed listing is retried on the next poll  # noqa: BLE001
                got = 0
            pause = settings.s3_poll_interval_s if got else min(settings.s3_max_poll_interval_s, pause * 2)

    def _poll(self) -> int:
        """List the prefix, deliver every new chunk in order; returns how many chunks were read."""
        with self._lock:
            return self._state.poll()

    def _list(self) -> list[str]:
        return self._state.list()

    def _any_closed(self) -> bool:
        return self._state.any_closed()

    def _attempt_done(self, name: str, chunks: int) -> bool:
        if not chunks:
            return True  # the function uploaded nothing (refused, or it died first): the rest is in its log
        attempt = self._state.attempts.get(name)
        return attempt is not None and (attempt.closed or attempt.next_chunk > chunks)

    def _delete_everything(self) -> None:
        """Delete the run's chunks, read or not (the bucket's lifecycle rule is only the backstop)."""
        try:
            keys = self._list()
        except Exception:  # noqa: BLE001 - cleaning up must never hide the run's outcome
            keys = list(self._state.keys_read)
        self._state.requests += delete_keys(self.reader.client, self.reader.bucket, keys, keep_going=True)
