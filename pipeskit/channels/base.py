"""The reader contract every channel's orchestrator end follows, and the per-run end of a channel.

A reader is one end of a channel (its twin writer lives in ``pipeskit_lambda.channels``). It
contributes its own bootstrap params and invoke arguments and consumes its own part of the invoke
response, so the client never switches on the reader's type and a new channel never edits the
client. A reader owns its dependencies (clients, settings, budgets) and holds no state of any run:
each run gets its own `ChannelSession`, so one reader serves any number of concurrent runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from dagster import DagsterLogManager, PipesMessageHandler, PipesMessageReader
from dagster_pipes import PipesParams

from ..cloudwatch_logs import InvocationLogReader
from ..invocation import LambdaInvocation
from ..rate_limit import RateBudget
from ..settings import LogsReaderSettings


class LambdaMessageReader(ABC):
    """Base of the kit's readers: one channel's orchestrator end, shared by every run."""

    channel: ClassVar[str]
    supports_event_invocations: ClassVar[bool] = False
    """Whether runs on this channel can be asynchronous (``Event``: no response reaches the caller)."""

    def open_session(self) -> ChannelSession:
        """The per-run end of this channel, handed to Dagster's ``open_pipes_session``."""
        return ChannelSession(self)

    @abstractmethod
    def messages_params(self) -> PipesParams:
        """The ``DAGSTER_PIPES_MESSAGES`` params telling the Lambda side where to write."""

    def invoke_arguments(self) -> dict[str, Any]:
        """Extra keyword arguments for ``lambda.invoke`` that this channel needs."""
        return {}

    @abstractmethod
    def consume(self, invocation: LambdaInvocation, handler: PipesMessageHandler, log: DagsterLogManager) -> None:
        """Deliver the invocation's messages to ``handler``; forward its other output to ``log``."""

    @abstractmethod
    def no_messages_debug_text(self) -> str:
        """What Dagster says when no message arrived."""


class ChannelSession(PipesMessageReader):
    """One run's end of a channel: the Pipes message handler of that run, and nothing shared.

    Args:
        reader: the channel's reader.
    """

    def __init__(self, reader: LambdaMessageReader) -> None:
        self.reader = reader
        self._handler: PipesMessageHandler | None = None

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        self._handler = handler
        yield self.reader.messages_params()

    def consume(self, invocation: LambdaInvocation, log: DagsterLogManager) -> None:
        """Deliver ``invocation``'s messages to this run's session."""
        if self._handler is None:
            raise RuntimeError("a channel session consumes an invocation only inside its Pipes session")
        self.reader.consume(invocation, self._handler, log)

    def no_messages_debug_text(self) -> str:
        return self.reader.no_messages_debug_text()


class LogReadingMessageReader(LambdaMessageReader):
    """A reader that may read the invocation's lines back from CloudWatch Logs.

    Args:
        logs_client: boto3 CloudWatch Logs client; created on first use when needed, with botocore's
            back-off on throttling.
        lambda_client: boto3 Lambda client used to look up a function's log group.
        settings: read settings; defaults from ``PIPESKIT_*`` environment variables.
        budget: CloudWatch read budget; defaults to the one shared by the host's processes
            (``PIPESKIT_LOGS_BUDGET_SCOPE``).
    """

    def __init__(
        self,
        *,
        logs_client: Any | None = None,
        lambda_client: Any | None = None,
        settings: LogsReaderSettings | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        self.logs = InvocationLogReader(logs_client, lambda_client, settings, budget)
