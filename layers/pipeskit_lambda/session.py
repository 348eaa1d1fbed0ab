"""Run a Lambda invocation as a Pipes session: the ``pipes_handler`` decorator and its machinery.

Works the same on every invocation of a warm execution environment: each invocation opens its own
``PipesContext`` and clears ``dagster_pipes``' process-wide singleton afterwards (dagster#22094).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dagster_pipes import (
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    PipesContext,
    PipesDefaultContextLoader,
    PipesMappingParamsLoader,
    decode_param,
)

from .channels import LambdaMessageWriter, writer_for

# The standard library's logging: under Lambda's runtime its records carry the request id and follow
# the function's log format (text or JSON) and application log level.
logger = logging.getLogger("pipeskit_lambda")

Handler = Callable[[dict[str, Any], Any], Any]
PipesAwareHandler = Callable[..., Any]
F = TypeVar("F", bound=PipesAwareHandler)

# Set while an invocation is being run, so a `pipes_handler` under the kit's entrypoint does not
# finish the invocation a second time.
_running: contextvars.ContextVar[bool] = contextvars.ContextVar("pipeskit_running", default=False)
# The writer `run_invocation` chose for the current invocation, so `open_pipes` need not decode the
# bootstrap's message params again.
_writer: contextvars.ContextVar[LambdaMessageWriter | None] = contextvars.ContextVar(
    "pipeskit_writer", default=None
)


def is_pipes_event(event: Any) -> bool:
    """Whether ``event`` carries a Dagster Pipes bootstrap."""
    return isinstance(event, dict) and DAGSTER_PIPES_CONTEXT_ENV_VAR in event


def reset_pipes_singleton() -> None:
    """Forget the ``PipesContext`` left by a previous invocation of this environment.

    ``open_dagster_pipes`` returns the existing process-wide context when there is one, even a closed
    one, so the second invocation in a warm environment would fail with "Cannot send message after
    pipes context is closed" (dagster#22094). dagster_pipes has no public reset; its singleton lives
    in ``PipesContext._instance``.
    """
    PipesContext._instance = None


def run_invocation(handler: Handler, event: Any, context: Any) -> Any:
    """Run ``handler`` for one invocation, as a Pipes session when the event asks for one.

    The handler is called with ``(event, context)``. When the event carries a kit bootstrap, the
    channel the orchestrator chose finishes the invocation (the envelope with messages and the
    handler's return value). Without a bootstrap, or for a non-kit orchestrator, the handler runs as
    a plain Lambda handler and its return value is returned untouched.
    """
    if _running.get():
        return handler(event, context)
    reset_pipes_singleton()
    token = _running.set(True)
    try:
        if not is_pipes_event(event):
            return handler(event, context)
        raw_params = event.get(DAGSTER_PIPES_MESSAGES_ENV_VAR)
        params = decode_param(raw_params) if raw_params else {}
        writer = writer_for(params)
        if writer is None:
            return handler(event, context)
        writer_token = _writer.set(writer)
        try:
            return _run_with_writer(handler, writer, params, event, context)
        finally:
            _writer.reset(writer_token)
    finally:
        _running.reset(token)
        reset_pipes_singleton()


def _run_with_writer(
    handler: Handler, writer: LambdaMessageWriter, params: dict[str, Any], event: Any, context: Any
) -> Any:
    started = time.perf_counter()
    try:
        result = handler(event, context)
    except BaseException:
        logger.exception("handler failed; Pipes session (channel %s) closed with the exception", writer.channel)
        writer.on_error(params)
        raise
    envelope = writer.finish(params, result, context)
    logger.info(
        "pipes session finished: channel %s, %d messages in the response, messages in logs: %s, %.2f ms",
        writer.channel,
        len(envelope.get("messages", [])),
        bool(envelope.get("messages_in_logs")),
        (time.perf_counter() - started) * 1000,
    )
    return envelope


def open_pipes(event: dict[str, Any], writer: LambdaMessageWriter | None = None) -> PipesContext:
    """Open a Pipes context for this invocation (not the process-wide singleton's leftover).

    Args:
        event: the invocation event carrying the bootstrap.
        writer: message writer; defaults to the channel named in the bootstrap.

    Returns:
        An open ``PipesContext``, also installed as ``PipesContext.get()`` for this invocation.
    """
    loader = PipesMappingParamsLoader(event)
    writer = writer or _writer.get() or writer_for(loader.load_messages_params())
    if writer is None:
        raise ValueError(
            "the Pipes bootstrap does not name a pipes-lambda-kit channel; open the session with "
            "dagster_pipes.open_dagster_pipes for other orchestrators"
        )
    reset_pipes_singleton()
    pipes = PipesContext(loader, PipesDefaultContextLoader(), writer)
    PipesContext.set(pipes)
    return pipes


def pipes_handler(func: F) -> Handler:
    """Decorate a Lambda handler so each invocation is a Dagster Pipes session.

    The decorated function is called as ``func(event, context, pipes)`` where ``pipes`` is an open
    ``dagster_pipes.PipesContext`` — or ``None`` when the event carries no Pipes bootstrap, in which
    case it runs as a plain Lambda handler. Its return value reaches the orchestrator
    (``completed.return_value``). An unhandled exception closes the session with that exception
    and is re-raised, so Lambda reports a ``FunctionError``.

    Example:
        >>> @pipes_handler
        ... def handler(event, context, pipes):
        ...     pipes.log.info("working")
        ...     pipes.report_asset_materialization(metadata={"rows": 3})
        ...     return {"rows": 3}
    """

    @functools.wraps(func)
    def wrapper(event: dict[str, Any], context: Any) -> Any:
        def call(inner_event: dict[str, Any], inner_context: Any) -> Any:
            if not is_pipes_event(inner_event):
                return func(inner_event, inner_context, None)
            with open_pipes(inner_event) as pipes:
                return func(inner_event, inner_context, pipes)

        return run_invocation(call, event, context)

    return wrapper
