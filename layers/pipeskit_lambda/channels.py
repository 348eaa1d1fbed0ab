"""Lambda-side ends of the kit's message channels, each the twin of a reader in ``pipeskit.channels``.

Every channel writes each message to stderr the moment it is reported, as one JSON line, so the
function's log stream holds a copy whatever happens next — a raise, a timeout, ``os._exit``, running
out of memory or a return value Lambda cannot marshal. The response channel also keeps the
messages in memory and returns them inside the invoke response (`Envelope`): on success the
orchestrator needs no call beyond ``Invoke``; on failure it reads the copy in the log. Nothing is
written to a file, so no session file can outlive its invocation.
"""

from __future__ import annotations

import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, TextIO

from dagster_pipes import PipesMessage, PipesMessageWriter, PipesMessageWriterChannel, PipesParams

from .protocol import CHANNEL_PARAM, ENVELOPE_VERSION, LOGS_CHANNEL, RESPONSE_CHANNEL, Envelope
from .settings import FunctionSettings


class LogLineChannel(PipesMessageWriterChannel):
    """Write each message as one JSON line to a stream (stderr: the function's log), flushed at once.

    One ``write`` per message, so a message line is never interleaved with other output of the
    same stream; ``kept`` also receives each message when given (the response channel's buffer).
    """

    def __init__(self, stream: TextIO | None = None, kept: list[tuple[PipesMessage, int]] | None = None) -> None:
        self._stream = stream
        self._kept = kept

    def write_message(self, message: PipesMessage) -> None:
        line = json.dumps(message)
        stream = self._stream or sys.stderr  # looked up late: a test or the runtime may replace stderr
        stream.write(line + "\n")
        stream.flush()
        if self._kept is not None:
            self._kept.append((message, len(line) + 1))


class LambdaMessageWriter(PipesMessageWriter[PipesMessageWriterChannel], ABC):
    """A message writer that also finishes a Lambda invocation for its channel; one per invocation."""

    channel: ClassVar[str]

    @abstractmethod
    def finish(self, result: Any, context: Any) -> Envelope:
        """Build the invoke response after the handler returned ``result``."""

    @staticmethod
    def _envelope(result: Any, context: Any) -> Envelope:
        envelope = Envelope(__pipeskit__=ENVELOPE_VERSION, result=result)
        group = getattr(context, "log_group_name", None)
        stream = getattr(context, "log_stream_name", None)
        if group:
            envelope["log_group_name"] = group
        if stream:
            envelope["log_stream_name"] = stream
        return envelope


class ResponsePayloadMessageWriter(LambdaMessageWriter):
    """Messages travel back inside the invoke response, with a copy in the function's log.

    If they would overflow Lambda's 6 MB response, the envelope leaves them out and says so
    (``messages_in_logs``): the orchestrator then reads the copy from CloudWatch Logs.

    Args:
        budget_bytes: largest envelope to return (default: `FunctionSettings.response_budget_bytes`,
            env ``PIPESKIT_RESPONSE_BUDGET_BYTES``).
    """

    channel = RESPONSE_CHANNEL

    def __init__(self, budget_bytes: int | None = None) -> None:
        self._budget = budget_bytes or FunctionSettings.from_env().response_budget_bytes
        self._kept: list[tuple[PipesMessage, int]] = []

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        yield LogLineChannel(kept=self._kept)

    def finish(self, result: Any, context: Any) -> Envelope:
        envelope = self._envelope(result, context)
        size = sum(size for _, size in self._kept) + len(json.dumps(envelope, default=str))
        if size <= self._budget:
            envelope["messages"] = [dict(message) for message, _ in self._kept]
        else:
            envelope["messages_in_logs"] = True
        return envelope


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


WRITERS: Mapping[str, type[LambdaMessageWriter]] = {
    writer.channel: writer for writer in (ResponsePayloadMessageWriter, CloudWatchLogsMessageWriter)
}


def writer_for(params: PipesParams) -> LambdaMessageWriter | None:
    """A new writer for the kit channel the orchestrator asked for, or None for another orchestrator."""
    writer = WRITERS.get(str(params.get(CHANNEL_PARAM)))
    return writer() if writer else None
