"""The orchestrator ends of the kit's message channels."""

from .base import LambdaInvocation, LambdaMessageReader, ReadContext
from .cloudwatch import CloudWatchLogsMessageReader, InvocationLogReader
from .response import ResponsePayloadMessageReader

__all__ = [
    "CloudWatchLogsMessageReader",
    "InvocationLogReader",
    "LambdaInvocation",
    "LambdaMessageReader",
    "ReadContext",
    "ResponsePayloadMessageReader",
]
