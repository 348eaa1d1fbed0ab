"""Lambda-side ends of the kit's message channels, each the twin of a reader in ``pipeskit.channels``.

Both channels write messages with ``dagster_pipes``' own mechanisms (a file named by ``path`` or a
stdio stream), so a handler written exactly as in the Dagster docs — ``PipesDefaultMessageWriter``
— produces the same bytes as one written with the kit's decorator. The channel then finishes the
invocation: it builds the response envelope and, on failure, makes sure no message is lost.
"""

from __future__ import annotations

import json
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from dagster_pipes import (
    PipesFileMessageWriterChannel,
    PipesMessageWriter,
    PipesMessageWriterChannel,
    PipesParams,
    PipesStreamMessageWriterChannel,
)

from .protocol import (
    CHANNEL_PARAM,
    ENVELOPE_VERSION,
    LOGS_CHANNEL,
    PATH_PARAM,
    RESPONSE_CHANNEL,
    Envelope,
)
from .settings import FunctionSettings


class LambdaMessageWriter(PipesMessageWriter[PipesMessageWriterChannel], ABC):
    """A message writer that also knows how to finish a Lambda invocation for its channel."""

    channel: ClassVar[str]

    @abstractmethod
    def finish(self, params: PipesParams, result: Any, context: Any) -> Envelope:
        """Build the invoke response after the handler returned ``result``."""

    def on_error(self, params: PipesParams) -> None:
        """Called when the handler raised, before the error propagates to Lambda."""

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
    """Messages travel back inside the invoke response.

    The handler's messages go to the session file named by ``path`` (what
    ``PipesDefaultMessageWriter`` does too); `finish` moves them into the envelope. If they would
    overflow Lambda's 6 MB response, they are written to the function's log instead and the
    envelope says so — the orchestrator then reads them from CloudWatch Logs. If the handler fails,
    `on_error` writes them to the log, since Lambda only returns the error.

    Args:
        budget_bytes: largest envelope to return (default: `FunctionSettings.response_budget_bytes`,
            env ``PIPESKIT_RESPONSE_BUDGET_BYTES``).
    """

    channel = RESPONSE_CHANNEL

    def __init__(self, budget_bytes: int | None = None) -> None:
        self._budget = budget_bytes or FunctionSettings.from_env().response_budget_bytes

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        yield PipesFileMessageWriterChannel(params[PATH_PARAM])

    def finish(self, params: PipesParams, result: Any, context: Any) -> Envelope:
        lines = _take_lines(params[PATH_PARAM])
        envelope = self._envelope(result, context)
        size = sum(len(line) + 1 for line in lines) + len(json.dumps(envelope, default=str))
        if size <= self._budget:
            envelope["messages"] = [json.loads(line) for line in lines]
        else:
            _write_to_log(lines)
            envelope["messages_in_logs"] = True
        return envelope

    def on_error(self, params: PipesParams) -> None:
        _write_to_log(_take_lines(params[PATH_PARAM]))


class CloudWatchLogsMessageWriter(LambdaMessageWriter):
    """Messages are written to stderr as they happen, one JSON line each, and so land in the
    function's CloudWatch log stream; the envelope tells the orchestrator which stream to read."""

    channel = LOGS_CHANNEL

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        yield PipesStreamMessageWriterChannel(sys.stderr)

    def finish(self, params: PipesParams, result: Any, context: Any) -> Envelope:
        sys.stderr.flush()
        envelope = self._envelope(result, context)
        envelope["messages_in_logs"] = True
        return envelope


WRITERS: Mapping[str, type[LambdaMessageWriter]] = {
    writer.channel: writer for writer in (ResponsePayloadMessageWriter, CloudWatchLogsMessageWriter)
}


def writer_for(params: PipesParams) -> LambdaMessageWriter | None:
    """The kit writer the orchestrator asked for, or None for a non-kit orchestrator."""
    writer = WRITERS.get(str(params.get(CHANNEL_PARAM)))
    return writer() if writer else None


def _take_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as file:
            lines = [line.rstrip("\n") for line in file if line.strip()]
    except FileNotFoundError:
        return []
    os.unlink(path)
    return lines


def _write_to_log(lines: list[str]) -> None:
    for line in lines:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
