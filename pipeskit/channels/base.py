"""The reader contract every channel's orchestrator end follows.

A reader is one end of a channel (its twin writer lives in ``pipeskit_lambda.channels``). It
contributes its own bootstrap params and invoke arguments and consumes its own part of the invoke
response, so the client never switches on the reader's type and a new channel never edits the
client. A reader owns its dependencies (clients, settings, budgets).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from dagster import DagsterLogManager, PipesMessageHandler, PipesMessageReader
from dagster_pipes import PipesParams

from ..cloudwatch_logs import InvocationLogReader
from ..invocation import LambdaInvocation
from ..rate_limit import RateBudget
from ..settings import LogsReaderSettings


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
        """The message handler of the Pipes session in progress."""
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
    def consume(self, invocation: LambdaInvocation, log: DagsterLogManager) -> None:
        """Deliver this invocation's messages to the session; forward its other output to ``log``."""


class LogReadingMessageReader(LambdaMessageReader):
    """A reader that may read the invocation's lines back from CloudWatch Logs.

    Args:
        logs_client: boto3 CloudWatch Logs client; created on first use when needed, with botocore's
            back-off on throttling.
        lambda_client: boto3 Lambda client used to look up a function's log group.
        settings: read settings; defaults from ``PIPESKIT_*`` environment variables.
        budget: CloudWatch read budget; defaults to the process-wide one.
    """

    def __init__(
        self,
        *,
        logs_client: Any | None = None,
        lambda_client: Any | None = None,
        settings: LogsReaderSettings | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        super().__init__()
        self.logs = InvocationLogReader(logs_client, lambda_client, settings, budget)
