"""The response channel's reader: messages travel back inside the invoke response (the default)."""

from __future__ import annotations

import base64
import zlib
from typing import Any

from dagster import DagsterLogManager, PipesMessageHandler
from dagster_pipes import PipesParams

from pipeskit_lambda.protocol import CHANNEL_PARAM, RESPONSE_CHANNEL, STDERR, STDIO_PARAM, EnvelopeKeys

from ..invocation import LambdaInvocation, function_base_name
from .base import LogReadingMessageReader
from .chunks import chunk_messages


def unpack_messages(packed: str) -> list[dict[str, Any]]:
    """The messages of an envelope's ``messages_zlib`` (``pipeskit_lambda.channels.pack_messages``)."""
    return chunk_messages(zlib.decompress(base64.b64decode(packed)))


def unpack_lines(packed: str) -> list[str]:
    """The lines of an envelope's ``lines_zlib``: messages and ordinary output, in the order written."""
    return zlib.decompress(base64.b64decode(packed)).decode("utf-8", errors="replace").split("\n")


class ResponsePayloadMessageReader(LogReadingMessageReader):
    """Read messages from the invoke response envelope: lossless up to Lambda's 6 MB response and
    no AWS call beyond the invoke itself.

    Twin of ``pipeskit_lambda.ResponsePayloadMessageWriter``, which also writes every message to the
    function's log as it is reported. Messages too many for the response travel in it compressed.
    The function's ordinary output (print, logging) travels with the messages, in order, and is
    forwarded to the step's log in batches, as when it is read from the log.
    When even those did not fit in the response, or the function
    failed — raised, timed out, crashed, returned what Lambda cannot marshal — they are read back from
    that copy in CloudWatch Logs, so none is lost. A function with no kit code (dagster-pipes alone)
    writes its messages to its log too, and they are read from there.

    Takes the keyword arguments of `LogReadingMessageReader` (the CloudWatch Logs client,
    settings and read budget).
    """

    channel = RESPONSE_CHANNEL

    def messages_params(self) -> PipesParams:
        # The kit's Lambda side answers with the envelope; a function with no kit code understands
        # `stdio` (PipesDefaultMessageWriter) and writes its messages to its log, read back then.
        return {STDIO_PARAM: STDERR, CHANNEL_PARAM: self.channel}

    def deliver(self, invocation: LambdaInvocation, handler: PipesMessageHandler, log: DagsterLogManager) -> None:
        envelope = invocation.envelope
        if envelope is not None and not envelope.get(EnvelopeKeys.MESSAGES_IN_LOGS):
            lines = envelope.get(EnvelopeKeys.LINES_ZLIB)
            if lines is not None:
                self.logs.deliver_lines(unpack_lines(lines), invocation, handler, log, source="its response")
            else:
                packed = envelope.get(EnvelopeKeys.MESSAGES_ZLIB)
                messages = unpack_messages(packed) if packed is not None else envelope.get(EnvelopeKeys.MESSAGES, [])
                for message in messages:
                    handler.handle_message(message)  # type: ignore[arg-type]
            dropped = envelope.get(EnvelopeKeys.OUTPUT_DROPPED)
            if dropped:
                name = function_base_name(invocation.function_name)
                log.info(
                    f"[{name} {invocation.request_id}] {dropped[0]:,} lines ({dropped[1]:,} bytes) of output did not "
                    f"fit in the response; they are in the function's log: pipeskit logs {name} "
                    f"--request-id {invocation.request_id}"
                )
            return
        # The function failed (Lambda returned only its error), the messages overflowed the response,
        # or the function runs no kit code: in each case its messages are in its log.
        self.logs.deliver(invocation, handler, log, envelope)

    def no_messages_debug_text(self) -> str:
        return (
            "Expected messages in the invoke response envelope written by the pipes layer's "
            "pipeskit_lambda helpers (the kit's entrypoint or @pipes_handler)."
        )
