"""The response channel's reader: messages travel back inside the invoke response (the default)."""

from __future__ import annotations

import uuid

from dagster import DagsterLogManager
from dagster_pipes import PipesParams

from pipeskit_lambda.protocol import CHANNEL_PARAM, PATH_PARAM, RESPONSE_CHANNEL

from ..invocation import LambdaInvocation
from .base import LogReadingMessageReader


class ResponsePayloadMessageReader(LogReadingMessageReader):
    """Read messages from the invoke response envelope: lossless up to Lambda's 6 MB response and
    no AWS call beyond the invoke itself.

    Twin of ``pipeskit_lambda.ResponsePayloadMessageWriter``. When the messages did not fit in the
    response, or the function failed (Lambda then returns only the error), they were written to
    the function's log instead and are read back from CloudWatch Logs, so none is lost.

    Takes the keyword arguments of `LogReadingMessageReader` (the CloudWatch Logs client,
    settings and read budget).
    """

    channel = RESPONSE_CHANNEL

    def messages_params(self) -> PipesParams:
        # `path` is what PipesDefaultMessageWriter understands, so Dagster-docs-style handlers
        # write here too; the kit's Lambda side moves the file into the response envelope.
        return {PATH_PARAM: f"/tmp/pipeskit-messages-{uuid.uuid4().hex}.jsonl", CHANNEL_PARAM: self.channel}

    def consume(self, invocation: LambdaInvocation, log: DagsterLogManager) -> None:
        envelope = invocation.envelope
        if envelope is not None and not envelope.get("messages_in_logs"):
            for message in envelope.get("messages", []):
                self.handler.handle_message(message)  # type: ignore[arg-type]
            return
        if envelope is None and invocation.function_error is None:
            return  # not a kit function: nothing to read, the client reports the missing session
        self.logs.deliver(invocation, self.handler, log, envelope)

    def no_messages_debug_text(self) -> str:
        return (
            "Expected messages in the invoke response envelope written by the pipes layer's "
            "pipeskit_lambda helpers (the kit's entrypoint or @pipes_handler)."
        )
