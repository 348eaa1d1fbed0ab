"""What every Lambda message reader shares: the invocation record and the reader contract.

A reader is one end of a channel (its twin writer lives in the pipes layer). It contributes its
own bootstrap params and invoke arguments and consumes its own part of the invoke response, so the
client never switches on the reader's type and a new channel never edits the client.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from dagster import DagsterLogManager, PipesMessageReader
from dagster._core.pipes.context import PipesMessageHandler
from dagster_pipes import PIPES_PROTOCOL_VERSION_FIELD, PipesParams

from ..protocol import ENVELOPE_KEY

if TYPE_CHECKING:
    from .cloudwatch import InvocationLogReader


@dataclass
class LambdaInvocation:
    """One synchronous invoke and what Lambda answered.

    Attributes:
        function_name: name or ARN invoked.
        request_id: the invocation's request id (``x-amzn-RequestId``).
        payload: the raw response payload.
        function_error: ``Unhandled`` / ``Handled`` when the function failed, else None.
        executed_version: the version that ran.
        log_result: base64 log tail, when the reader asked for one.
        started_ms: epoch milliseconds just before the invoke (bounds log reads).
    """

    function_name: str
    request_id: str
    payload: bytes
    function_error: str | None = None
    executed_version: str | None = None
    log_result: str | None = None
    started_ms: int = 0

    @cached_property
    def decoded(self) -> Any:
        """The payload parsed as JSON (None if empty or not JSON)."""
        try:
            return json.loads(self.payload) if self.payload else None
        except ValueError:
            return None

    @property
    def envelope(self) -> Mapping[str, Any] | None:
        """The kit's response envelope, when the function ran under the kit's Lambda helpers."""
        value = self.decoded
        if self.function_error is None and isinstance(value, dict) and ENVELOPE_KEY in value:
            return value
        return None

    @property
    def return_value(self) -> Any:
        """The handler's own return value (unwrapped from the envelope when there is one)."""
        envelope = self.envelope
        return envelope.get("result") if envelope is not None else self.decoded


@dataclass
class ReadContext:
    """What a reader may use while consuming an invocation.

    Attributes:
        log: the Dagster step's log manager.
        logs: reads an invocation's lines back from CloudWatch Logs.
    """

    log: DagsterLogManager
    logs: InvocationLogReader


def parse_message_line(line: str) -> dict[str, Any] | None:
    """The Pipes message on ``line``, if the WHOLE line is one (the protocol's rule), else None."""
    stripped = line.strip()
    if not (stripped.startswith("{") and PIPES_PROTOCOL_VERSION_FIELD in stripped):
        return None
    try:
        message = json.loads(stripped)
    except ValueError:
        return None
    return message if isinstance(message, dict) and PIPES_PROTOCOL_VERSION_FIELD in message else None


class LambdaMessageReader(PipesMessageReader):
    """Base of the kit's readers: one channel's orchestrator end."""

    channel: ClassVar[str]

    def __init__(self) -> None:
        self._handler: PipesMessageHandler | None = None

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        self._handler = handler
        try:
            yield self.messages_params()
        finally:
            self._handler = None

    @property
    def handler(self) -> PipesMessageHandler:
        if self._handler is None:
            raise RuntimeError("a reader consumes invocations only inside its Pipes session")
        return self._handler

    @abstractmethod
    def messages_params(self) -> PipesParams:
        """The ``DAGSTER_PIPES_MESSAGES`` params telling the Lambda side where to write."""

    def invoke_arguments(self) -> dict[str, Any]:
        """Extra keyword arguments for ``lambda.invoke`` that this channel needs."""
        return {}

    @abstractmethod
    def consume(self, invocation: LambdaInvocation, read: ReadContext) -> None:
        """Deliver this invocation's messages (and forward its logs) to the session."""
