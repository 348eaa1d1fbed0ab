"""The orchestrator ends of the kit's message channels, one module per channel.

Each reader's twin writer is in ``pipeskit_lambda.channels``; both share the wire contract of
``pipeskit_lambda.protocol``.
"""

from .base import ChannelSession, LambdaMessageReader, LogReadingMessageReader
from .cloudwatch import CloudWatchLogsMessageReader
from .response import ResponsePayloadMessageReader
from .s3 import S3ChannelSession, S3MessageReader, S3ReaderSettings

__all__ = [
    "ChannelSession",
    "CloudWatchLogsMessageReader",
    "LambdaMessageReader",
    "LogReadingMessageReader",
    "ResponsePayloadMessageReader",
    "S3ChannelSession",
    "S3MessageReader",
    "S3ReaderSettings",
]
