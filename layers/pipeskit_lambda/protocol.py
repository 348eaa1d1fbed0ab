"""The wire contract of pipes-lambda-kit: what the kit adds next to the Dagster Pipes protocol.

Defined once, here, and imported by both ends: the Lambda side (this package, in the pipes layer),
the orchestrator (``pipeskit``), the CDK constructs (``pipeskit.cdk``) and the local AWS
(``pipeskit.local``). Keep this module free of imports beyond the standard library.

The orchestrator puts ``pipeskit_channel`` in the decoded ``DAGSTER_PIPES_MESSAGES`` params to say
which channel carries messages back; the Lambda side answers with an `Envelope` as the invoke
response, so the orchestrator gets the handler's own return value next to the messages.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypedDict

# -- the bootstrap params the kit adds ---------------------------------------------------------------

CHANNEL_PARAM: Final = "pipeskit_channel"
"""Key, in the decoded ``DAGSTER_PIPES_MESSAGES`` params, of the channel the orchestrator chose."""

STDIO_PARAM: Final = "stdio"
"""Key of the stream in every kit channel's params: ``dagster_pipes``' own stdio writer key, so a
function with no kit code (``PipesDefaultMessageWriter``) writes its messages to its log, where the
orchestrator reads them back."""

STDERR: Final = "stderr"

# -- channels ----------------------------------------------------------------------------------------

RESPONSE_CHANNEL: Final = "response"
"""Messages return inside the invoke response envelope (a copy is in the function's log)."""

LOGS_CHANNEL: Final = "logs"
"""Messages are JSON lines on stderr, read back from the function's CloudWatch log stream."""

S3_CHANNEL: Final = "s3"
"""Messages are uploaded as chunks of JSON lines under a per-session prefix of the messages bucket,
while the function runs (dagster-pipes' blob layout: ``{prefix}/{n}.json``, ``n`` from 1)."""

ChannelName = Literal["response", "logs", "s3"]
CHANNELS: Final[tuple[str, ...]] = (RESPONSE_CHANNEL, LOGS_CHANNEL, S3_CHANNEL)

BUCKET_PARAM: Final = "bucket"
"""Key of the bucket in the S3 channel's params (dagster-pipes' ``PipesS3MessageWriter`` key)."""

KEY_PREFIX_PARAM: Final = "key_prefix"
"""Key of the session's prefix in the S3 channel's params (dagster-pipes' key)."""

MESSAGES_PREFIX: Final = "pipeskit/sessions"
"""Where every session's message chunks go in the messages bucket (``{MESSAGES_PREFIX}/{session}/``);
function roles may write there only."""

CONTEXT_PREFIX: Final = "pipeskit/contexts"
"""Where every session's context object goes in the context bucket; function roles may read there only."""

ENDS_PARAM: Final = "pipeskit_ends"
"""Key, in a fan-out item's S3 channel params, of the stem of its attempts' end objects
(``{fan-out prefix}/ends/{item index}``; see `END_SUFFIX`)."""

END_SUFFIX: Final = ".end"
"""A fan-out item's attempt ends with an end, uploaded when its session ends (returned, raised, or
never opened): a line ``{"__pipeskit_end__": {...}}`` (`EndHeader`, naming the attempt), then the
JSON lines of the messages not uploaded as chunks yet — for a short item, all of them. An invoked
item's end is the object ``{stem}.{attempt folder}.end``; the items of one SQS batch that end within
the flush interval of each other share one object in the ends' folder (``batch-{token}.end``), their
ends one after another. The orchestrator lists only the ends' folder and deletes what it has read,
so following a fan-out costs what ended since the last look, not the fan-out's size."""

OPEN_SUFFIX: Final = ".open"
"""``{stem}.{attempt folder}.open`` (empty) is uploaded once, after the attempt's first chunk, when its
messages outgrow one upload before its end: the orchestrator then follows its chunks
(``{item prefix}/{attempt folder}/{n}.json``) as they come."""

END_HEADER_KEY: Final = "__pipeskit_end__"


class EndHeader(TypedDict, total=False):
    """The first line of an end object (under `END_HEADER_KEY`).

    Keys:
        end: ``{item index}.{attempt folder}``: whose end this is.
        chunks: chunks the attempt uploaded before its end (the end's lines come after them).
        opened: whether the handler opened the Pipes session.
        result: the handler's return value (it returned).
        error: ``{"name", "message"}`` of what the handler raised without opening the session.
        request_id: the invocation's request id.
        log_group_name: the invocation's log group.
        log_stream_name: the invocation's log stream.
        upload_error: the first chunk upload the function was refused.
    """

    end: str
    chunks: int
    opened: bool
    result: Any
    error: dict[str, str]
    request_id: str
    log_group_name: str
    log_stream_name: str
    upload_error: str


ITEM_KEY: Final = "pipeskit_item"
"""Key, in a fan-out work item's body, of the item itself (the rest is the Pipes bootstrap).

A fan-out work item — the body of an SQS message on the work queue, or the event of an asynchronous
invoke — is a JSON object: ``{"pipeskit_item": <the item>, "DAGSTER_PIPES_CONTEXT": "...",
"DAGSTER_PIPES_MESSAGES": "..."}``, the bootstrap naming the S3 channel, the item's own prefix and
its ends' stem (`ENDS_PARAM`). The kit's Lambda side runs each record of an SQS event of such items as its own
Pipes session, the user's handler receiving the item's object as its event, and answers
``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`` for those that failed (the event
source mapping needs ``ReportBatchItemFailures``)."""

ATTEMPT_PREFIX: Final = "attempt-"
"""The kit's S3 writer puts each attempt of an invocation (Lambda retries an asynchronous one with the
same event) under ``{prefix}/attempt-{token}/``, so attempts never overwrite each other's chunks."""

ATTEMPT_LINE: Final = "pipeskit: this attempt's message chunks go to s3://{bucket}/{prefix}/"
"""The line the S3 channel's writer writes to the function's log when it opens: it ties the attempt's
lines in the log (its messages' copy) to its chunks, so a reader that reads both counts each once."""

DURABLE_ATTEMPT_FORMAT: Final = ATTEMPT_PREFIX + "{started_ms:013d}-{token}"
"""The attempt folder of each invocation of a durable execution: its start time (epoch ms, 13 digits) first,
so the folders of one execution's invocations — which run one after another — list in the order they ran,
and a reader that delivers the folders in listing order puts the session's messages back in order."""

DURABLE_EVENT_KEYS: Final = ("DurableExecutionArn", "CheckpointToken")
"""Keys of the event Lambda sends a durable function (the SDK's ``DurableExecutionInvocationInput``);
the Pipes bootstrap is inside the execution's input, which ``@durable_execution`` hands to the handler."""

# -- the response envelope ---------------------------------------------------------------------------

ENVELOPE_KEY: Final = "__pipeskit__"
"""Key (holding the envelope version) that marks an invoke response as the kit's envelope."""

ENVELOPE_VERSION: Final = 1


class Envelope(TypedDict, total=False):
    """The invoke response of a Pipes session run by the kit's Lambda side.

    Every key is optional on the wire but ``__pipeskit__``; the orchestrator reads each with
    `EnvelopeKeys`, never with a bare string.

    Keys:
        __pipeskit__: the envelope version (`ENVELOPE_VERSION`).
        result: the handler's own return value.
        messages: Pipes messages, for the response channel (absent when they went to the logs).
        messages_zlib: the same messages compressed, when they did not fit plainly: their JSON lines
            joined by newlines, zlib-compressed, base64-encoded.
        messages_in_logs: true when the messages were written to the function's log instead.
        lines_zlib: the session's lines in the order written — message JSON lines and the handler's
            ordinary output — packed like ``messages_zlib``; replaces ``messages`` when present.
        output_dropped: ``[lines, bytes]`` of ordinary output the envelope does not carry (it is in
            the function's log).
        started_ms: when the invocation's session began (epoch ms): its log lines start there.
        log_group_name: the invocation's log group.
        log_stream_name: the invocation's log stream.
        s3_prefix: where the S3 channel's writer put this attempt's chunks.
        s3_chunks: how many chunks it uploaded.
        s3_upload_error: the first upload the function's S3 writer was refused (bucket and AWS error).
    """

    __pipeskit__: int
    result: Any
    messages: list[dict[str, Any]]
    messages_zlib: str
    messages_in_logs: bool
    lines_zlib: str
    output_dropped: list[int]
    started_ms: int
    log_group_name: str
    log_stream_name: str
    s3_prefix: str
    s3_chunks: int
    s3_upload_error: str


class EnvelopeKeys:
    """The keys of `Envelope`, as constants."""

    VERSION: Final = ENVELOPE_KEY
    RESULT: Final = "result"
    MESSAGES: Final = "messages"
    MESSAGES_ZLIB: Final = "messages_zlib"
    MESSAGES_IN_LOGS: Final = "messages_in_logs"
    LINES_ZLIB: Final = "lines_zlib"
    OUTPUT_DROPPED: Final = "output_dropped"
    STARTED_MS: Final = "started_ms"
    LOG_GROUP_NAME: Final = "log_group_name"
    LOG_STREAM_NAME: Final = "log_stream_name"
    S3_PREFIX: Final = "s3_prefix"
    S3_CHUNKS: Final = "s3_chunks"
    S3_UPLOAD_ERROR: Final = "s3_upload_error"


# -- limits ------------------------------------------------------------------------------------------

SYNC_PAYLOAD_LIMIT_BYTES: Final = 6 * 1024 * 1024
"""Lambda's synchronous invoke request (and response) payload limit."""

ASYNC_PAYLOAD_LIMIT_BYTES: Final = 1024 * 1024
"""Lambda's asynchronous (``Event``) invoke request payload limit."""

LOG_TAIL_BYTES: Final = 4096
"""What ``LogType=Tail`` returns of an invocation's log."""

DEFAULT_RESPONSE_BUDGET_BYTES: Final = 5_500_000
"""Largest response envelope the Lambda side returns: 6 MB less room for the JSON framing."""

LOG_EVENT_MAX_BYTES: Final = 256 * 1024
"""Largest CloudWatch log event Lambda writes; a longer line arrives split over several events."""

LOG_EVENT_OVERHEAD_BYTES: Final = 26
"""What CloudWatch counts per event on top of its message."""

CONTEXT_REUSED_MESSAGE: Final = "Cannot send message after pipes context is closed"
"""What dagster-pipes raises when a warm environment reuses its closed context (dagster#22094)."""

# -- how functions are deployed behind the kit -------------------------------------------------------

ENTRYPOINT_HANDLER: Final = "pipeskit_lambda.entrypoint.handler"
"""The Lambda handler of every function deployed by the kit; it runs the user's handler."""

HANDLER_ENV_VAR: Final = "PIPESKIT_HANDLER"
"""Environment variable naming the user's ``module.function`` behind `ENTRYPOINT_HANDLER`."""

LAMBDA_RUNTIME: Final = "python3.12"
"""The Lambda runtime the pipes layer is built for."""

LAYER_DESCRIPTION: Final = "dagster-pipes and pipeskit_lambda (pipes-lambda-kit)"
"""Description of every published pipes layer; ``pipeskit adopt`` recognises the layer by it."""
