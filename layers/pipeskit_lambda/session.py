"""Run a Lambda invocation as a Pipes session: the ``pipes_handler`` decorator and its machinery.

Each invocation gets its own `InvocationPipesContext`, installed as ``dagster_pipes``' process-wide
context before the handler runs, so ``open_dagster_pipes(...)`` — called exactly as in the Dagster
docs — hands it back instead of the closed context of a previous invocation (dagster#22094). The
context opens on first use only: a handler that never touches Pipes never reports ``opened``, and the
orchestrator can tell (dagster#17868). After the handler, the session is closed (with the handler's
exception, if any) and the channel finishes the invocation.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from dagster_pipes import (
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    PipesContext,
    PipesContextData,
    PipesContextLoader,
    PipesDefaultContextLoader,
    PipesMappingParamsLoader,
    PipesMessageWriter,
    PipesParams,
    PipesParamsLoader,
    PipesS3ContextLoader,
    decode_param,
    open_dagster_pipes,
)

from .channels import EndBatch, LambdaMessageWriter, S3ChunkMessageWriter, writer_for
from .durable import (
    WRONG_ORDER,
    BareDurableContext,
    DurableMessageWriter,
    ReplayStatus,
    ends_execution,
    is_durable_context,
    is_durable_event,
    open_to_close,
)
from .errors import HandlerConfigurationError, UnknownChannelError
from .protocol import CHANNEL_PARAM, DURABLE_EVENT_KEYS, ITEM_KEY, S3_CHANNEL
from .settings import FunctionSettings

# The standard library's logging: under Lambda's runtime its records carry the request id and follow
# the function's log format (text or JSON) and application log level.
logger = logging.getLogger("pipeskit_lambda")

Handler = Callable[[dict[str, Any], Any], Any]
PipesAwareHandler = Callable[..., Any]
F = TypeVar("F", bound=PipesAwareHandler)

# The context of the invocation being run, so `open_pipes` and a `pipes_handler` under the kit's
# entrypoint use it instead of opening a second session.
_current: contextvars.ContextVar[InvocationPipesContext | None] = contextvars.ContextVar(
    "pipeskit_current_context", default=None
)


class InvocationPipesContext(PipesContext):
    """A ``PipesContext`` for one invocation that opens (reports ``opened``) on first use.

    It is a real ``PipesContext``: ``PipesContext.__init__`` runs the first time any of its state is
    needed, which is what ``open_dagster_pipes`` callers, ``with`` blocks and every reporting method
    do. Until then nothing is sent.
    """

    def __init__(
        self, params_loader: PipesParamsLoader, context_loader: PipesContextLoader, message_writer: PipesMessageWriter
    ) -> None:
        self.__dict__["_pipeskit_deferred"] = (params_loader, context_loader, message_writer)

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not set yet: the first use of the context's own state opens it.
        deferred = self.__dict__.pop("_pipeskit_deferred", None)
        if deferred is None or name.startswith("__"):
            raise AttributeError(name)
        PipesContext.__init__(self, *deferred)
        return getattr(self, name)

    @property
    def is_opened(self) -> bool:
        """Whether the handler used Pipes (``opened`` was reported)."""
        return "_pipeskit_deferred" not in self.__dict__

    def finish(self, error: BaseException | None = None) -> None:
        """Close the session if the handler opened it and left it open, with ``error`` if it raised."""
        if not self.is_opened or self.is_closed:
            return
        if error is None:
            self.close()
        else:
            self.__exit__(type(error), error, error.__traceback__)

    @property
    def is_closed(self) -> bool:
        """Whether ``closed`` was reported."""
        return bool(self.__dict__.get("_closed"))

    def open(self) -> InvocationPipesContext:
        """Open the session now (report ``opened``) if nothing has yet; returns the context."""
        if not self.is_opened:
            self.__getattr__("_closed")
        return self


class KitContextLoader(PipesContextLoader):
    """Load the context inline from the event, or from S3 when the orchestrator put it there."""

    @contextmanager
    def load_context(self, params: PipesParams) -> Iterator[PipesContextData]:
        if "bucket" in params and "key" in params:
            import boto3  # the Lambda runtime's own; pipeskit_lambda itself needs only dagster-pipes

            with PipesS3ContextLoader(boto3.client("s3")).load_context(params) as data:
                yield data
        else:
            with PipesDefaultContextLoader().load_context(params) as data:
                yield data


def is_pipes_event(event: Any) -> bool:
    """Whether ``event`` carries a Dagster Pipes bootstrap."""
    return isinstance(event, dict) and DAGSTER_PIPES_CONTEXT_ENV_VAR in event


def reset_pipes_singleton() -> None:
    """Forget the ``PipesContext`` left by a previous invocation of this environment.

    ``open_dagster_pipes`` returns the existing process-wide context when there is one, even a closed
    one, so the second invocation in a warm environment would fail with "Cannot send message after
    pipes context is closed" (dagster#22094). dagster_pipes has a public ``PipesContext.set`` but no
    public reset; its singleton lives in ``PipesContext._instance``.
    """
    PipesContext._instance = None


def _writer_params(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get(DAGSTER_PIPES_MESSAGES_ENV_VAR)
    return decode_param(raw) if raw else {}


def fan_out_records(event: Any) -> list[tuple[str, dict[str, Any]]] | None:
    """``(messageId, item event)`` of each record of an SQS event of fan-out work items, else None.

    Raises:
        HandlerConfigurationError: an SQS event some or none of whose records are fan-out items: the
            function is mapped to a queue whose messages it cannot run (the error says what it got).
    """
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records):
        return None
    items: list[tuple[str, dict[str, Any]]] = []
    for record in records:
        try:
            body = json.loads(record.get("body") or "")
        except ValueError:
            body = None
        if not (is_pipes_event(body) and ITEM_KEY in body):
            preview = str(record.get("body"))[:200]
            raise HandlerConfigurationError(
                f"received an SQS event of {len(records)} record(s), but record {record.get('messageId')!r} is not a "
                f"fan-out work item (its body starts {preview!r}); a work item is a JSON object with {ITEM_KEY!r} "
                "and the Pipes bootstrap, sent by PipesLambdaClient.fan_out. Map this function only to the kit's "
                "work queue, or deploy a handler of your own for that queue without the kit's entrypoint."
            )
        items.append((str(record.get("messageId", "")), body))
    return items


def run_fan_out_batch(handler: Handler, items: list[tuple[str, dict[str, Any]]], context: Any) -> dict[str, Any]:
    """Run each fan-out item as its own Pipes session; the records whose session failed, as SQS wants them.

    One failing item never fails its batch-mates: SQS delivers only the failed ones again. The items'
    ends go up together (`EndBatch`): an item whose end could not be uploaded is failed too.
    """
    failed: list[str] = []
    ends = EndBatch(FunctionSettings.current().s3_flush_interval_s)
    with ends.running():
        for message_id, item in items:
            ends.owner = message_id
            try:
                run_invocation(handler, item, context)
            except Exception:  # the item's session closed with the error, which is in the log too
                logger.exception("fan-out item (SQS message %s) failed", message_id)
                failed.append(message_id)
            if ends.due():
                failed += ends.flush()
        failed += ends.flush()
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in dict.fromkeys(failed)]}


def run_invocation(handler: Handler, event: Any, context: Any) -> Any:
    """Run ``handler`` for one invocation, as a Pipes session when the event asks for one.

    The handler is called with ``(event, context)``. When the event carries a kit bootstrap, the
    channel the orchestrator chose finishes the invocation (the envelope with messages and the
    handler's return value). Without a bootstrap, or for a non-kit orchestrator, the handler runs as
    a plain Lambda handler and its return value is returned untouched. An SQS event of fan-out work
    items (`fan_out_records`) runs each item as its own session, so the handler that serves ``run()``
    also consumes the work queue; the answer lists the failed records (``batchItemFailures``). The
    event of a durable function's invocation goes to its ``@durable_execution`` handler untouched, with
    ``open_dagster_pipes`` refusing to open a session per invocation (`durable.BareDurableContext`).
    """
    if _current.get() is not None:  # a pipes_handler under the kit's entrypoint: one session only
        return handler(event, context)
    items = fan_out_records(event)
    if items is not None:
        return run_fan_out_batch(handler, items, context)
    reset_pipes_singleton()
    try:
        if is_durable_event(event):  # a durable handler: @pipes_handler under it opens the execution's session
            PipesContext.set(BareDurableContext())
            return handler(event, context)
        writer = writer_for(_writer_params(event)) if is_pipes_event(event) else None
        if writer is None:
            return handler(event, context)
        return _run_session(handler, writer, event, context)
    finally:
        reset_pipes_singleton()


def _run_session(handler: Handler, writer: LambdaMessageWriter, event: dict[str, Any], context: Any) -> Any:
    started = time.perf_counter()
    pipes = InvocationPipesContext(PipesMappingParamsLoader(event), KitContextLoader(), writer)
    PipesContext.set(pipes)
    token = _current.set(pipes)
    try:
        try:
            with writer.capture_output():
                result = handler(event, context)
        except BaseException as error:
            pipes.finish(error)
            writer.abandon(error, context)
            logger.exception("handler failed; Pipes session (channel %s) closed with the exception", writer.channel)
            raise
        pipes.finish()
    finally:
        _current.reset(token)
    envelope = writer.finish(result, context)
    logger.info(
        "pipes session finished: channel %s, opened %s, %d messages in the response, messages in logs: %s, %.2f ms",
        writer.channel,
        pipes.is_opened,
        len(envelope.get("messages", [])),
        bool(envelope.get("messages_in_logs")),
        (time.perf_counter() - started) * 1000,
    )
    return envelope


def run_durable_invocation(handler: Callable[[Any, Any], Any], event: Any, context: Any) -> Any:
    """Run one invocation of a durable execution's handler as its part of the execution's Pipes session.

    Called by `pipes_handler` when the SDK hands it a ``DurableContext``; ``event`` is the execution's
    input (the Pipes bootstrap). Returns the handler's own value: it is the execution's result, which the
    orchestrator reads with ``GetDurableExecution``.

    Raises:
        HandlerConfigurationError: the bootstrap names a channel other than the S3 channel (the only one
            that carries a session across invocations).
    """
    if not is_pipes_event(event):
        return handler(event, context)
    params = PipesMappingParamsLoader(event).load_messages_params()
    inner = writer_for(params)
    if not isinstance(inner, S3ChunkMessageWriter):
        raise HandlerConfigurationError(
            f"a durable execution reports to Dagster over the S3 channel only (its bootstrap names "
            f"{CHANNEL_PARAM}={params.get(CHANNEL_PARAM)!r}): run it with PipesLambdaClient(channel={S3_CHANNEL!r}), "
            "which detects a durable function and needs the messages bucket"
        )
    first = not context.state.has_prior_operations()
    writer = DurableMessageWriter(inner, ReplayStatus(context))
    reset_pipes_singleton()
    pipes = InvocationPipesContext(PipesMappingParamsLoader(event), KitContextLoader(), writer)
    PipesContext.set(pipes)
    token = _current.set(pipes)
    ended = False
    try:
        try:
            result = handler(event, context)
        except BaseException as error:
            ended = ends_execution(error)
            if ended or pipes.is_opened:
                open_to_close(pipes, writer, first)
                pipes.finish(error)  # closed is held by the channel; written below only if the execution ends
            raise
        ended = True
        open_to_close(pipes, writer, first)
        pipes.finish()
        return result
    finally:
        _current.reset(token)
        reset_pipes_singleton()
        if writer.channel is not None:
            if ended:
                writer.channel.end()
            logger.info(
                "pipes session (durable execution): this invocation %s; %d messages written, %d skipped as replayed",
                "ended the execution" if ended else "suspended it", writer.channel.written, writer.channel.skipped,
            )  # fmt: skip


def open_pipes(event: dict[str, Any], writer: LambdaMessageWriter | None = None) -> PipesContext:
    """The Pipes context of this invocation (opened), or a new one outside the kit's entrypoint.

    Args:
        event: the invocation event carrying the bootstrap.
        writer: message writer; defaults to the channel named in the bootstrap.

    Returns:
        An open ``PipesContext``, also ``PipesContext.get()`` for this invocation.

    Raises:
        UnknownChannelError: the bootstrap names no kit channel (use ``open_dagster_pipes`` then).
    """
    current = _current.get()
    if current is not None and writer is None:
        return current.open()
    writer = writer or writer_for(PipesMappingParamsLoader(event).load_messages_params())
    if writer is None:
        raise UnknownChannelError(
            "the Pipes bootstrap does not name a pipes-lambda-kit channel; open the session with "
            "dagster_pipes.open_dagster_pipes for other orchestrators"
        )
    reset_pipes_singleton()
    pipes = PipesContext(PipesMappingParamsLoader(event), KitContextLoader(), writer)
    PipesContext.set(pipes)
    return pipes


def pipes_handler(func: F) -> Handler:
    """Decorate a Lambda handler so each invocation is a Dagster Pipes session.

    The decorated function is called as ``func(event, context, pipes)`` where ``pipes`` is an open
    ``dagster_pipes.PipesContext`` — or ``None`` when the event carries no Pipes bootstrap, in which
    case it runs as a plain Lambda handler. A bootstrap from another orchestrator (dagster-aws's
    client) gets dagster-pipes' own message writer, so the handler works with either client. Its
    return value reaches the orchestrator (``completed.return_value``). An unhandled exception closes
    the session with that exception and is re-raised, so Lambda reports a ``FunctionError``.

    Under ``@durable_execution`` (put it above ``@pipes_handler``) the whole durable execution — every
    replay, wait and callback — is one session (`pipeskit_lambda.durable`): ``context`` is then the SDK's
    ``DurableContext`` and the return value is the execution's result.

    Raises:
        HandlerConfigurationError: ``@pipes_handler`` is above ``@durable_execution`` (it received the
            durable invocation's event), or a durable execution's bootstrap names a channel other than S3.

    Example:
        >>> @pipes_handler
        ... def handler(event, context, pipes):
        ...     pipes.log.info("working")
        ...     pipes.report_asset_materialization(metadata={"rows": 3})
        ...     return {"rows": 3}
    """

    @functools.wraps(func)
    def wrapper(event: dict[str, Any], context: Any) -> Any:
        if is_durable_event(event):
            raise HandlerConfigurationError(WRONG_ORDER.format(keys=", ".join(DURABLE_EVENT_KEYS)))

        def call(inner_event: dict[str, Any], inner_context: Any) -> Any:
            current = _current.get()
            if current is not None:
                return func(inner_event, inner_context, current.open())
            if not is_pipes_event(inner_event):
                return func(inner_event, inner_context, None)
            # Another orchestrator's bootstrap (e.g. dagster-aws's client): dagster-pipes' own writer.
            with open_dagster_pipes(params_loader=PipesMappingParamsLoader(inner_event)) as pipes:
                return func(inner_event, inner_context, pipes)

        if is_durable_context(context):  # under @durable_execution: the whole execution is one session
            return run_durable_invocation(call, event, context)
        return run_invocation(call, event, context)

    return wrapper
