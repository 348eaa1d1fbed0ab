"""Lambda-side ends of the kit's message channels, each the twin of a reader in ``pipeskit.channels``.

Every channel writes each message to stderr the moment it is reported, as one JSON line, so the
function's log stream holds a copy whatever happens next — a raise, a timeout, ``os._exit``, running
out of memory or a return value Lambda cannot marshal. The response channel also keeps the
messages in memory and returns them inside the invoke response (`Envelope`): on success the
orchestrator needs no call beyond ``Invoke``; on failure it reads the copy in the log. Nothing is
written to a file, so no session file can outlive its invocation.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import json
import logging
import sys
import threading
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, ClassVar, TextIO, TypeVar

from dagster_pipes import PipesMessage, PipesMessageWriter, PipesMessageWriterChannel, PipesParams

from .errors import UnknownChannelError
from .output import OutputCapture, write_uncaptured
from .protocol import (
    ATTEMPT_LINE,
    ATTEMPT_PREFIX,
    BUCKET_PARAM,
    CHANNEL_PARAM,
    END_HEADER_KEY,
    END_SUFFIX,
    ENDS_PARAM,
    ENVELOPE_VERSION,
    KEY_PREFIX_PARAM,
    LOGS_CHANNEL,
    OPEN_SUFFIX,
    RESPONSE_CHANNEL,
    S3_CHANNEL,
    EndHeader,
    Envelope,
)
from .settings import FunctionSettings

_log = logging.getLogger(__name__)


class LogLineChannel(PipesMessageWriterChannel):
    """Write each message as one JSON line to a stream (stderr: the function's log), flushed at once.

    One ``write`` per message, so a message line is never interleaved with other output of the
    same stream; ``kept`` also receives each message's JSON line when given (the response channel's
    buffer: a line takes a fraction of the memory of the message it encodes).
    """

    def __init__(self, stream: TextIO | None = None, kept: list[str] | None = None) -> None:
        self._stream = stream
        self._kept = kept

    def write_message(self, message: PipesMessage) -> None:
        line = json.dumps(message)
        stream = self._stream or sys.stderr  # looked up late: a test or the runtime may replace stderr
        write_uncaptured(stream, line + "\n")  # the line is kept below, not as ordinary output
        stream.flush()
        if self._kept is not None:
            self._kept.append(line)


class LambdaMessageWriter(PipesMessageWriter[PipesMessageWriterChannel], ABC):
    """A message writer that also finishes a Lambda invocation for its channel; one per invocation."""

    channel: ClassVar[str]
    started_ms: int | None = None
    """When the invocation's session began (epoch ms): its log lines are read back from there."""
    params: PipesParams
    """The channel's params from the bootstrap (`writer_for` sets them)."""

    def __init__(self) -> None:
        self.started_ms = int(time.time() * 1000)
        self.params = {}

    @abstractmethod
    def finish(self, result: Any, context: Any) -> Envelope:
        """Build the invoke response after the handler returned ``result``."""

    def abandon(self, error: BaseException, context: Any) -> None:
        """The handler raised ``error`` (the session, if open, is closed with it): what the channel does
        with what it holds. Must not raise. Nothing by default: the messages' copy is in the log."""

    def capture_output(self) -> AbstractContextManager[Any]:
        """Kept around the handler's call: keep its ordinary output for the envelope (none by default:
        the channel's orchestrator end reads it from the log)."""
        return nullcontext()

    def _envelope(self, result: Any, context: Any) -> Envelope:
        envelope = Envelope(__pipeskit__=ENVELOPE_VERSION, result=result)
        if self.started_ms is not None:
            envelope["started_ms"] = self.started_ms
        group = getattr(context, "log_group_name", None)
        stream = getattr(context, "log_stream_name", None)
        if group:
            envelope["log_group_name"] = group
        if stream:
            envelope["log_stream_name"] = stream
        return envelope


class ResponsePayloadMessageWriter(LambdaMessageWriter):
    """Messages travel back inside the invoke response, with a copy in the function's log.

    The handler's ordinary output (print, logging) is kept too, up to ``output_bytes``: the envelope
    then carries the session's lines, messages and output in the order written, compressed
    (``lines_zlib``), so the orchestrator forwards the output to Dagster without reading the log.
    Without output, messages travel plainly while they fit Lambda's 6 MB response, else compressed
    (``messages_zlib``: their JSON lines, zlib level 1, base64). When even the compressed lines do not
    fit, the output is left out (it is in the log; ``output_dropped`` says how much), then the
    messages too (``messages_in_logs``): the orchestrator reads the copy from CloudWatch Logs.

    Args:
        budget_bytes: largest envelope to return (default: `FunctionSettings.response_budget_bytes`,
            env ``PIPESKIT_RESPONSE_BUDGET_BYTES``).
        output_bytes: ordinary output kept at most (default: `FunctionSettings.response_output_bytes`,
            env ``PIPESKIT_RESPONSE_OUTPUT_BYTES``; 0 keeps none).
    """

    channel = RESPONSE_CHANNEL

    def __init__(self, budget_bytes: int | None = None, output_bytes: int | None = None) -> None:
        super().__init__()
        settings = FunctionSettings.current()
        self._budget = budget_bytes or settings.response_budget_bytes
        self._output_bytes = settings.response_output_bytes if output_bytes is None else output_bytes
        self._kept: list[str] = []
        self._output: list[tuple[int, str]] = []  # (messages kept before it, line)
        self._capture: OutputCapture | None = None

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        yield LogLineChannel(kept=self._kept)

    def capture_output(self) -> AbstractContextManager[Any]:
        if self._output_bytes <= 0:
            return nullcontext()
        self._capture = OutputCapture(lambda line: self._output.append((len(self._kept), line)), self._output_bytes)
        return self._capture

    def finish(self, result: Any, context: Any) -> Envelope:
        envelope = self._envelope(result, context)
        framing = len(json.dumps(envelope, default=str)) + 64
        capture = self._capture
        if self._output:
            packed = pack_messages(self._lines())
            if len(packed) + framing <= self._budget:
                envelope["lines_zlib"] = packed
                if capture is not None and capture.dropped_lines:
                    envelope["output_dropped"] = [capture.dropped_lines, capture.dropped_bytes]
                return envelope
            dropped = (capture.dropped_lines, capture.dropped_bytes) if capture is not None else (0, 0)
            output_bytes = sum(len(line) + 1 for _, line in self._output)
            envelope["output_dropped"] = [dropped[0] + len(self._output), dropped[1] + output_bytes]
            framing += 48
        elif capture is not None and capture.dropped_lines:
            envelope["output_dropped"] = [capture.dropped_lines, capture.dropped_bytes]
        if sum(len(line) + 2 for line in self._kept) + framing <= self._budget:
            envelope["messages"] = [json.loads(line) for line in self._kept]
            return envelope
        packed = pack_messages(self._kept)
        if len(packed) + framing <= self._budget:
            envelope["messages_zlib"] = packed
        else:
            envelope["messages_in_logs"] = True
        return envelope

    def _lines(self) -> Iterator[str]:
        """The session's lines in the order written: each message, and the output before it."""
        output = iter(self._output)
        pending = next(output, None)
        for index, message in enumerate(self._kept):
            while pending is not None and pending[0] <= index:
                yield pending[1]
                pending = next(output, None)
            yield message
        while pending is not None:
            yield pending[1]
            pending = next(output, None)


def pack_messages(lines: Iterable[str]) -> str:
    """Message lines as the envelope's ``messages_zlib``: JSON lines, zlib level 1, base64 (ASCII).

    Level 1: Pipes messages repeat their keys, so even the fastest level shrinks them tens of times
    (10.8 MB of messages to about 0.3 MB in about 30 ms).
    """
    return base64.b64encode(zlib.compress("\n".join(lines).encode("utf-8"), 1)).decode("ascii")


class CloudWatchLogsMessageWriter(LambdaMessageWriter):
    """Messages are written to stderr as they happen, one JSON line each, and so land in the
    function's CloudWatch log stream; the envelope tells the orchestrator which stream to read."""

    channel = LOGS_CHANNEL

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        yield LogLineChannel()

    def finish(self, result: Any, context: Any) -> Envelope:
        envelope = self._envelope(result, context)
        envelope["messages_in_logs"] = True
        return envelope


class S3ChunkChannel(PipesMessageWriterChannel):
    """Upload messages as numbered chunks of JSON lines, on size, on an interval and at close.

    Every message is also written to the function's log at once, so what a chunk held is still there
    when the function dies before the chunk is uploaded.

    Args:
        client: a boto3 S3 client.
        bucket: the messages bucket.
        prefix: where this attempt's chunks go (``{prefix}/{n}.json``, ``n`` from 1).
        interval_s: upload at least this often while messages wait.
        chunk_bytes: upload as soon as this much waits.
        end_stem: a fan-out item's (``{ends}.{attempt folder}``): the lines still waiting at the end go
            into its end object (`end`) instead of a last chunk, and the first chunk uploaded before the
            end is announced with ``{end_stem}.open``.
    """

    def __init__(self, client: Any, bucket: str, prefix: str, interval_s: float, chunk_bytes: int,
                 end_stem: str | None = None) -> None:  # fmt: skip
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._interval = interval_s
        self._chunk_bytes = chunk_bytes
        self._log = LogLineChannel()
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._lock = threading.Lock()
        self._upload_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self.chunks = 0
        self.end_stem = end_stem
        self.upload_error: str | None = None
        """The first refused upload: what AWS answered, naming the bucket (told to the orchestrator)."""
        self._thread = threading.Thread(target=self._upload_loop, name="pipeskit-s3-chunks", daemon=True)
        self._thread.start()

    def write_message(self, message: PipesMessage) -> None:
        self._log.write_message(message)
        line = json.dumps(message)
        with self._lock:
            self._pending.append(line)
            self._pending_bytes += len(line) + 1
            full = self._pending_bytes >= self._chunk_bytes
        if full:
            self._wake.set()

    def _upload_loop(self) -> None:
        while not self._closing:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._closing and self.end_stem is not None:
                return  # what waits goes into the end object
            self._flush_or_warn("will try again")

    def flush(self) -> None:
        """Upload what is waiting as the next chunk.

        A refused upload (after boto3's own retries) keeps its lines, in order, for the next try
        under the same chunk number: the reader never sees a chunk's number taken by other lines.

        Raises:
            Exception: the upload's error; nothing waiting was dropped.
        """
        with self._upload_lock:
            with self._lock:
                lines, self._pending, self._pending_bytes = self._pending, [], 0
            if not lines:
                return
            number = self.chunks + 1
            body = "\n".join(lines).encode("utf-8")
            try:
                self._client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{number}.json", Body=body)
                if number == 1 and self.end_stem is not None:  # the orchestrator follows this attempt's chunks
                    self._client.put_object(Bucket=self.bucket, Key=self.end_stem + OPEN_SUFFIX, Body=b"")
            except BaseException:
                with self._lock:
                    self._pending[:0] = lines
                    self._pending_bytes += len(body) + 1
                raise
            self.chunks = number

    def _flush_or_warn(self, then: str) -> None:
        try:
            self.flush()
        except Exception as error:  # the messages wait (and are in the log): the function goes on
            if self.upload_error is None:
                where = f"s3://{self.bucket}/{self.prefix}/"
                self.upload_error = f"PutObject to {where} failed: {type(error).__name__}: {error}"
            _log.warning(
                "pipeskit: uploading message chunk %d to s3://%s/%s failed (%s: %s); %s",
                self.chunks + 1, self.bucket, self.prefix, type(error).__name__, error, then,
            )  # fmt: skip

    def close(self) -> None:
        """Upload the rest and stop the upload thread.

        Never raises: when the last upload fails, the chunks stop short of ``closed`` and the
        orchestrator reads the rest from the copy in the function's log.
        """
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=60)
        if self.end_stem is None:
            self._flush_or_warn("the orchestrator reads the rest from the function's log")

    def end(self, header: EndHeader) -> None:
        """Upload the attempt's end object: ``header``, then the lines still waiting, in one PUT.

        Raises:
            Exception: the upload's error (the messages' copy is in the function's log).
        """
        assert self.end_stem is not None, "only a fan-out item's channel ends with an end object"
        with self._upload_lock, self._lock:
            header["chunks"] = self.chunks
            if self.upload_error:
                header["upload_error"] = self.upload_error
            put_end(self._client, self.bucket, self.end_stem, header, self._pending)
            self._pending, self._pending_bytes = [], 0


def put_end(client: Any, bucket: str, stem: str, header: EndHeader, lines: list[str]) -> None:
    """Upload a fan-out item's end (`END_SUFFIX`): ``header``, then ``lines`` — at once, or with the rest of
    its SQS batch's ends when a batch is being run (`EndBatch`).

    Raises:
        Exception: the upload's error (not raised for a batch's end: the batch says which items failed).
    """
    folder, _, name = stem.rpartition("/")
    header["end"] = name
    section = [json.dumps({END_HEADER_KEY: header}, default=str), *lines]
    batch = _end_batch.get()
    if batch is not None:
        batch.add(client, bucket, folder, section)
        return
    client.put_object(Bucket=bucket, Key=f"{stem}{END_SUFFIX}", Body="\n".join(section).encode("utf-8"))


class EndBatch:
    """The ends of one SQS batch's items, uploaded together: one object per fan-out for the items that
    ended within ``interval_s`` of each other (the batch's items run one after another, so short items
    share an upload and a long item's end is not held back).

    Args:
        interval_s: the longest an end waits for the next ones.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.owner = ""
        """The record whose session is running (its SQS message id): what a refused upload fails."""
        self._pending: dict[tuple[str, str], tuple[Any, list[str], list[str]]] = {}
        self._since: float | None = None

    def add(self, client: Any, bucket: str, folder: str, section: list[str]) -> None:
        """One item's end (its lines), for ``folder`` of ``bucket``."""
        _, lines, owners = self._pending.setdefault((bucket, folder), (client, [], []))
        lines.extend(section)
        owners.append(self.owner)
        self._since = self._since or time.monotonic()

    def due(self) -> bool:
        """Whether the oldest end waiting has waited ``interval_s``."""
        return self._since is not None and time.monotonic() - self._since >= self.interval_s

    def flush(self) -> list[str]:
        """Upload what waits; returns the records whose ends could not be uploaded (they must be run again)."""
        pending, self._pending, self._since = self._pending, {}, None
        refused: list[str] = []
        for (bucket, folder), (client, lines, owners) in pending.items():
            key = f"{folder}/batch-{uuid.uuid4().hex[:16]}{END_SUFFIX}"
            try:
                client.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode("utf-8"))
            except Exception as error:  # the items are delivered again; their messages are in the log
                _log.warning("pipeskit: uploading the ends of %d fan-out item(s) to s3://%s/%s failed (%s: %s); "
                             "they are reported failed, for SQS to deliver again", len(owners), bucket, key,
                             type(error).__name__, error)  # fmt: skip
                refused.extend(owners)
        return refused

    @contextmanager
    def running(self) -> Iterator[EndBatch]:
        """Ends written while inside go to this batch."""
        token = _end_batch.set(self)
        try:
            yield self
        finally:
            _end_batch.reset(token)


_end_batch: contextvars.ContextVar[EndBatch | None] = contextvars.ContextVar("pipeskit_end_batch", default=None)


class S3ChunkMessageWriter(LambdaMessageWriter):
    """Messages are uploaded while the function runs, in chunks under the session's prefix, so the
    orchestrator sees them as they happen; a copy of each is in the function's log.

    Uses dagster-pipes' layout (``{prefix}/{n}.json``) under one sub-prefix per attempt. The chunks
    are uploaded with the runtime's boto3. A fan-out item's attempt (`ENDS_PARAM` in its params)
    ends with one end object, its return value and last messages together, whatever became of its
    session: returned, raised, or never opened (the orchestrator says so at once).

    Args:
        client: a boto3 S3 client (default: the execution environment's one, `environment_s3_client`).
        settings: flush interval and chunk size (default: `FunctionSettings` from the environment).
    """

    channel = S3_CHANNEL

    def __init__(self, client: Any | None = None, settings: FunctionSettings | None = None) -> None:
        super().__init__()
        self._client = client
        self._settings = settings or FunctionSettings.current()
        self._channel: S3ChunkChannel | None = None
        self.attempt = f"{ATTEMPT_PREFIX}{uuid.uuid4().hex[:12]}"
        """This attempt's folder under the session's prefix (`ATTEMPT_PREFIX` then a token); set it before
        the session opens to order attempts (a durable execution names its invocations in time order)."""

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        if self._client is None:
            self._client = environment_s3_client()
        self.params = params
        prefix = f"{params[KEY_PREFIX_PARAM]}/{self.attempt}"
        settings = self._settings
        self._channel = S3ChunkChannel(
            self._client, params[BUCKET_PARAM], prefix, settings.s3_flush_interval_s, settings.s3_chunk_bytes,
            end_stem=self._end_stem(),
        )  # fmt: skip
        sys.stderr.write(ATTEMPT_LINE.format(bucket=params[BUCKET_PARAM], prefix=prefix) + "\n")
        try:
            yield self._channel
        finally:
            self._channel.close()

    def _end_stem(self) -> str | None:
        ends = self.params.get(ENDS_PARAM)
        return f"{ends}.{self.attempt}" if ends else None

    def finish(self, result: Any, context: Any) -> Envelope:
        envelope = self._envelope(result, context)
        if self._channel is not None:
            envelope["s3_prefix"] = self._channel.prefix
            envelope["s3_chunks"] = self._channel.chunks
            if self._channel.upload_error:
                envelope["s3_upload_error"] = self._channel.upload_error
        if self._end_stem() is not None:
            self._end(EndHeader(result=result), context)  # refused: the item fails, and is delivered again
        return envelope

    def abandon(self, error: BaseException, context: Any) -> None:
        if self._end_stem() is None:
            return
        header = EndHeader()
        if self._channel is None:  # raised before opening the session: no closed message tells why
            header["error"] = {"name": type(error).__name__, "message": str(error)}
        try:
            self._end(header, context)
        except Exception as refused:  # the handler's own error is the one raised
            _log.warning("pipeskit: uploading the end of this attempt failed (%s: %s); its messages are in the "
                         "log", type(refused).__name__, refused)  # fmt: skip

    def _end(self, header: EndHeader, context: Any) -> None:
        header["opened"] = self._channel is not None
        header["request_id"] = str(getattr(context, "aws_request_id", "") or "")
        for key in ("log_group_name", "log_stream_name"):
            value = getattr(context, key, None)
            if value:
                header[key] = value  # type: ignore[literal-required]
        if self._channel is not None:
            self._channel.end(header)
            return
        stem = self._end_stem()
        assert stem is not None
        header["chunks"] = 0
        put_end(self._client or environment_s3_client(), self.params[BUCKET_PARAM], stem, header, [])


@functools.cache
def environment_s3_client() -> Any:
    """The execution environment's S3 client, created on its first session and kept for the next ones.

    A boto3 client costs tens of milliseconds and a new connection to create; an environment serves
    many invocations (a fan-out worker many items per batch) with the same role's credentials, so one
    client serves them all (boto3 clients are thread-safe).
    """
    import boto3  # the Lambda runtime's own; pipeskit_lambda itself needs only dagster-pipes

    return boto3.client("s3")


WRITERS: dict[str, type[LambdaMessageWriter]] = {}
"""The registered writers by channel name (the twin of ``pipeskit.channels``' registry)."""

W = TypeVar("W", bound=type[LambdaMessageWriter])


def register_writer(writer: W) -> W:
    """Register a writer under its ``channel`` name, the name its twin reader asks for (a class decorator).

    Register it where the function's code is imported (e.g. the handler's module): the kit's
    entrypoint looks the writer up when each invocation begins.

    Raises:
        UnknownChannelError: another writer already has that name.
    """
    known = WRITERS.get(writer.channel)
    if known is not None and known is not writer:
        raise UnknownChannelError(f"the channel name {writer.channel!r} is taken by {known.__qualname__}")
    WRITERS[writer.channel] = writer
    return writer


for _writer in (ResponsePayloadMessageWriter, CloudWatchLogsMessageWriter, S3ChunkMessageWriter):
    register_writer(_writer)


def writer_for(params: PipesParams) -> LambdaMessageWriter | None:
    """A new writer for the kit channel the orchestrator asked for, or None for another orchestrator."""
    writer = WRITERS.get(str(params.get(CHANNEL_PARAM)))
    if writer is None:
        return None
    made = writer()
    made.params = params
    return made
