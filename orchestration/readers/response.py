"""Messages that travel back inside the invoke response (the default for synchronous invokes)."""

from __future__ import annotations

import uuid

from dagster_pipes import PipesParams

from ..protocol import CHANNEL_PARAM, RESPONSE_CHANNEL
from .base import LambdaInvocation, LambdaMessageReader, ReadContext


class ResponsePayloadMessageReader(LambdaMessageReader):
    """Read messages from the invoke response envelope: lossless up to Lambda's 6 MB response and
    no AWS call beyond the invoke itself.

    Twin of ``pipeskit_lambda.ResponsePayloadMessageWriter``. When the messages did not fit in the
    response, or the function failed (Lambda then returns only the error), they were written to
    the function's log instead and are read back from CloudWatch Logs, so none is lost.
    """

    channel = RESPONSE_CHANNEL

    def messages_params(self) -> PipesParams:
        # `path` is what PipesDefaultMessageWriter understands, so Dagster-docs-style handlers
        # write here too; the kit's Lambda side moves the file into the response envelope.
        return {"path": f"/tmp/pipeskit-messages-{uuid.uuid4().hex}.jsonl", CHANNEL_PARAM: self.channel}

    def consume(self, invocation: LambdaInvocation, read: ReadContext) -> None:
        envelope = invocation.envelope
        if envelope is not None and not envelope.get("messages_in_logs"):
            for message in envelope.get("messages", []):
                self.handler.handle_message(message)
            return
        if envelope is None and invocation.function_error is None:
            return  # not a kit function: nothing to read, the client reports the missing session
        read.logs.deliver(invocation, self.handler, read.log, envelope)

    def no_messages_debug_text(self) -> str:
        return (
            "Expected messages in the invoke response envelope written by the pipes layer's "
            "pipeskit_lambda helpers (the kit's entrypoint or @pipes_handler)."
        )
