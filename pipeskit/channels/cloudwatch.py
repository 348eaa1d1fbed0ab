"""The logs channel's reader: messages read back from the function's CloudWatch log stream."""

from __future__ import annotations

from typing import Any

from dagster import DagsterLogManager
from dagster_pipes import PipesParams

from pipeskit_lambda.protocol import CHANNEL_PARAM, LOGS_CHANNEL, STDERR, STDIO_PARAM

from ..cloudwatch_logs import InvocationLogReader
from ..invocation import LambdaInvocation
from ..rate_limit import RateBudget
from ..settings import LogsReaderSettings
from .base import LambdaMessageReader


class CloudWatchLogsMessageReader(LambdaMessageReader):
    """Read messages from the function's CloudWatch log stream, with no 4 KB limit.

    Twin of ``pipeskit_lambda.CloudWatchLogsMessageWriter``; also what a handler written as in the
    Dagster docs uses (messages on stderr). Every other line of the invocation is forwarded to the
    Dagster step's log.

    Args:
        logs_client: boto3 CloudWatch Logs client; defaults to one that backs off on throttling.
        lambda_client: boto3 Lambda client used to look up a function's log group.
        settings: read settings; defaults from ``PIPESKIT_*`` environment variables.
        budget: CloudWatch read budget; defaults to the process-wide one.
    """

    channel = LOGS_CHANNEL

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

    def messages_params(self) -> PipesParams:
        return {STDIO_PARAM: STDERR, CHANNEL_PARAM: self.channel}

    def consume(self, invocation: LambdaInvocation, log: DagsterLogManager) -> None:
        self.logs.deliver(invocation, self.handler, log, invocation.envelope)

    def no_messages_debug_text(self) -> str:
        return "Expected messages as JSON lines on stderr, read back from the function's CloudWatch log stream."
