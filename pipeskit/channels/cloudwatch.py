"""The logs channel's reader: messages read back from the function's CloudWatch log stream."""

from __future__ import annotations

from dagster_pipes import PipesParams

from pipeskit_lambda.protocol import CHANNEL_PARAM, LOGS_CHANNEL, STDERR, STDIO_PARAM

from .base import LogReadingMessageReader


class CloudWatchLogsMessageReader(LogReadingMessageReader):
    """Read messages from the function's CloudWatch log stream, with no 4 KB limit.

    Twin of ``pipeskit_lambda.CloudWatchLogsMessageWriter``; also what a handler written as in the
    Dagster docs uses (messages on stderr). Every other line of the invocation is forwarded to the
    Dagster step's log.

    Takes the keyword arguments of `LogReadingMessageReader` (the CloudWatch Logs client,
    settings and read budget).
    """

    channel = LOGS_CHANNEL

    def messages_params(self) -> PipesParams:
        return {STDIO_PARAM: STDERR, CHANNEL_PARAM: self.channel}

    def no_messages_debug_text(self) -> str:
        return "Expected messages as JSON lines on stderr, read back from the function's CloudWatch log stream."


PipesLambdaLogsMessageReader = CloudWatchLogsMessageReader
"""dagster-aws's name for reading messages from the function's logs (there: the last 4 KB only)."""
