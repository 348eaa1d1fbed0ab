"""The orchestrator ends of the kit's message channels, one module per channel, found by name.

Each reader's twin writer is in ``pipeskit_lambda.channels``; both share the wire contract of
``pipeskit_lambda.protocol``. A channel of your own is a reader registered here with
`register_channel` and a writer registered on the Lambda side with
``pipeskit_lambda.channels.register_writer``, under the same name.
"""

from .base import (
    ChannelSession,
    DurableFollowing,
    EventFollowing,
    LambdaMessageReader,
    LogReadingChannelSession,
    LogReadingMessageReader,
    channel_names,
    reader_class,
    register_channel,
    unregister_channel,
)
from .cloudwatch import CloudWatchLogsMessageReader
from .response import ResponsePayloadMessageReader
from .s3 import S3ChannelSession, S3MessageReader, S3ReaderSettings

for _reader in (ResponsePayloadMessageReader, CloudWatchLogsMessageReader, S3MessageReader):
    register_channel(_reader)

__all__ = [
    "ChannelSession",
    "CloudWatchLogsMessageReader",
    "DurableFollowing",
    "EventFollowing",
    "LambdaMessageReader",
    "LogReadingChannelSession",
    "LogReadingMessageReader",
    "ResponsePayloadMessageReader",
    "S3ChannelSession",
    "S3MessageReader",
    "S3ReaderSettings",
    "channel_names",
    "reader_class",
    "register_channel",
    "unregister_channel",
]
