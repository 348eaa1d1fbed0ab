"""Lambda-side helpers of pipes-lambda-kit, shipped inside the pipes layer.

- `pipes_handler`: decorate a handler so each invocation is a Dagster Pipes session that works on
  warm environments, returns the handler's value and routes messages to the channel the
  orchestrator chose.
- ``pipeskit_lambda.entrypoint.handler``: the same for handlers that use ``open_dagster_pipes``
  directly (the Dagster docs style), set as the function's handler by the kit's stack.
- `ResponsePayloadMessageWriter` / `CloudWatchLogsMessageWriter` / `S3ChunkMessageWriter`: the Lambda
  ends of the channels; `register_writer` adds a channel of your own (its reader is registered with
  ``pipeskit.channels.register_channel`` under the same name).
- ``pipeskit_lambda.protocol``: the wire contract, shared with the orchestrator.

Depends on ``dagster-pipes`` and the standard library only.
"""

from __future__ import annotations

from .channels import (
    CloudWatchLogsMessageWriter,
    LambdaMessageWriter,
    ResponsePayloadMessageWriter,
    S3ChunkMessageWriter,
    register_writer,
)
from .session import open_pipes, pipes_handler, run_invocation

__all__ = [
    "CloudWatchLogsMessageWriter",
    "LambdaMessageWriter",
    "ResponsePayloadMessageWriter",
    "S3ChunkMessageWriter",
    "__version__",
    "open_pipes",
    "pipes_handler",
    "register_writer",
    "run_invocation",
]

__version__ = "0.1.0"
