"""One durable execution, one Pipes session: the Lambda side of durable functions.

A Lambda durable function (``@durable_execution`` of ``aws-durable-execution-sdk-python``) runs as a
durable execution made of invocations: each one replays the handler from the top, skipping the steps
that completed (their checkpointed result is returned instead of running them) and suspending at a
wait or a callback that is not due yet. The kit makes the whole execution one Pipes session:

- ``opened`` is written once, and every message once: a message reported while the SDK replays
  (``DurableContext.is_replaying()``: code outside steps running again up to where the previous
  invocation stopped) was written by that invocation already and is skipped here — the very rule the
  SDK's replay-safe ``context.logger`` applies to log lines. A completed step's body does not run
  again, so what it reported is not reported again. Replay status is each context's own (a child
  context, a map item or a parallel branch reaches the end of its replay on its own, possibly on its
  own thread), so it is asked of the context the reporting code runs in (`ReplayStatus`).
- ``closed`` is written only when the execution ends: the handler returned (with its value, which is
  also the execution's result) or raised an error that fails the execution. An invocation that
  suspends (the SDK's ``SuspendExecution``, for a wait, a callback or a step's retry delay) or that the
  SDK hands back to Lambda for a retry (a retryable ``InvocationError``) uploads its messages and
  leaves the session open.
- The S3 channel carries it: each invocation's chunks go to its own attempt folder, named by its start
  time (`protocol.DURABLE_ATTEMPT_FORMAT`), so no invocation overwrites another's chunks and the reader
  (``pipeskit.channels.chunks.ChunkReader``) delivers them in the order the invocations ran.

The writer skips rather than the reader de-duplicating: the replay status is the SDK's own, known where
the message is reported, and nothing replayed travels or is stored twice. Its limit is the SDK's too:
code that reported messages after the last checkpoint of an invocation that then crashed (no suspend)
runs again as new work, and reports again, as its log lines do.

Use it by putting ``@durable_execution`` above the kit's ``@pipes_handler``, which runs each invocation
with ``pipeskit_lambda.session.run_durable_invocation``; the SDK is imported only when a durable context
is seen, so ``pipeskit_lambda`` itself does not need it.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

from dagster_pipes import (
    PipesContext,
    PipesExtras,
    PipesMessage,
    PipesMessageWriter,
    PipesMessageWriterChannel,
    PipesOpenedData,
    PipesParams,
)

from .channels import S3ChunkChannel, S3ChunkMessageWriter
from .errors import HandlerConfigurationError
from .protocol import DURABLE_ATTEMPT_FORMAT, DURABLE_EVENT_KEYS

logger = logging.getLogger("pipeskit_lambda")

SDK_PACKAGE = "aws_durable_execution_sdk_python"

WRONG_ORDER = (
    "@pipes_handler received the event Lambda sends a durable function ({keys}): the decorators are in the wrong "
    "order. Put @durable_execution above @pipes_handler (the SDK turns that event into the execution's input, "
    "where the Pipes bootstrap is, and hands the handler a DurableContext)."
)


BARE_DURABLE = (
    "open_dagster_pipes was called in a durable handler that is not decorated with the kit's @pipes_handler: "
    "each invocation of the execution (every replay after a wait or a callback) would open its own session and "
    "send opened, closed and the replayed messages again. Decorate the handler with @durable_execution above "
    "@pipes_handler; inside it, its pipes argument and open_dagster_pipes are the execution's one session."
)


def is_durable_event(event: Any) -> bool:
    """Whether ``event`` is what Lambda sends a durable function (before ``@durable_execution`` unwraps it):
    the ``DurableExecutionArn`` and ``CheckpointToken`` of its invocation, as JSON or as the SDK's input
    object (which its in-process test runner hands the handler)."""
    if isinstance(event, Mapping):
        return all(key in event for key in DURABLE_EVENT_KEYS)
    return type(event).__module__.startswith(SDK_PACKAGE) and hasattr(event, "durable_execution_arn")


class BareDurableContext(PipesContext):
    """What ``open_dagster_pipes`` hands a durable handler run without ``@pipes_handler``: any use of it
    raises `HandlerConfigurationError` saying how to decorate the handler (`BARE_DURABLE`), instead of a
    session that would start again on every replay."""

    def __init__(self) -> None:  # nothing is opened
        pass

    def __getattr__(self, name: str) -> Any:
        raise HandlerConfigurationError(BARE_DURABLE)

    def __enter__(self) -> PipesContext:
        raise HandlerConfigurationError(BARE_DURABLE)


def is_durable_context(context: Any) -> bool:
    """Whether ``context`` is the SDK's ``DurableContext`` (checked without importing the SDK)."""
    return type(context).__module__.startswith(SDK_PACKAGE) and callable(getattr(context, "is_replaying", None))


_NEVER_HOLDS_A_CONTEXT = ("dagster_pipes", "pipeskit_lambda", "logging")
"""Modules whose frames are skipped without reading their variables (a reported message passes through them)."""


class ReplayStatus:
    """Whether the code reporting a message now is replayed: asked of the ``DurableContext`` it runs in.

    The SDK tracks replay per context: a child context (``run_in_child_context``), a map item or a
    parallel branch starts replaying and reaches the end of its replay on its own, on its own thread for
    map and parallel, while its parent is still replaying the operation that holds it. The SDK names no
    current context, so it is found where the reporting code runs: the nearest frame of the calling
    thread that holds a ``DurableContext`` in its own variables (a parameter such as the branch's
    ``ctx``, or ``self`` of the SDK's operation methods), not one it only closes over (the root
    ``context`` a branch function may capture). Code on a thread the function started itself, with no
    context on its stack, is judged by the root context.

    Args:
        root: the execution's root ``DurableContext``, handed to the handler.
    """

    def __init__(self, root: Any) -> None:
        self.root = root

    def __call__(self) -> bool:
        return bool(self.current(sys._getframe(1)).is_replaying())

    def current(self, frame: FrameType | None) -> Any:
        """The durable context ``frame`` (or the nearest frame above it that holds one) runs in."""
        while frame is not None:
            if str(frame.f_globals.get("__name__", "")).startswith(_NEVER_HOLDS_A_CONTEXT):
                frame = frame.f_back  # dagster-pipes' and the kit's own frames, between the report and its caller
                continue
            code = frame.f_code
            own = code.co_varnames + code.co_cellvars
            variables = frame.f_locals
            for name in own:
                if is_durable_context(variables.get(name)):
                    return variables[name]
            frame = frame.f_back
        return self.root


def ends_execution(error: BaseException) -> bool:
    """Whether ``error``, raised out of a durable handler, ends its execution (the SDK records it as the
    execution's failure) rather than suspending it or having Lambda retry the invocation."""
    from aws_durable_execution_sdk_python.exceptions import (  # the function's own SDK
        BackgroundThreadError,
        InvocationError,
        SuspendExecution,
    )

    if isinstance(error, (SuspendExecution, BackgroundThreadError)):
        return False
    if isinstance(error, InvocationError):
        return not error.is_retryable()
    return isinstance(error, Exception)


class DurableChannel(PipesMessageWriterChannel):
    """The S3 channel of one invocation of a durable execution: skips what a replay reports again and holds
    ``closed`` until the invocation's end says whether the execution ends.

    Args:
        inner: the invocation's S3 chunk channel.
        is_replaying: whether the reporting code is replayed (`ReplayStatus`).
        skip_opened: drop ``opened`` whatever the replay status (the session was opened by an earlier
            invocation and is opened here only to be closed).
    """

    def __init__(self, inner: S3ChunkChannel, is_replaying: Callable[[], bool], skip_opened: bool = False) -> None:
        self.inner = inner
        self._is_replaying = is_replaying
        self.skip_opened = skip_opened
        self.closed_message: PipesMessage | None = None
        self.written = 0
        self.skipped = 0

    def write_message(self, message: PipesMessage) -> None:
        method = message.get("method")
        if method == "closed":
            self.closed_message = message
            return
        if self._is_replaying() or (method == "opened" and self.skip_opened):
            self.skipped += 1
            return
        self.written += 1
        self.inner.write_message(message)

    def end(self) -> None:
        """The execution ends: write the held ``closed`` and upload it (the channel itself is closed by now)."""
        if self.closed_message is None:
            return
        self.inner.write_message(self.closed_message)
        self.written += 1
        try:
            self.inner.flush()
        except Exception as error:  # its copy is in the function's log, read back by the orchestrator
            logger.warning("pipeskit: uploading the session's closed message to s3://%s/%s failed (%s: %s)",
                           self.inner.bucket, self.inner.prefix, type(error).__name__, error)  # fmt: skip


class DurableMessageWriter(PipesMessageWriter[PipesMessageWriterChannel]):
    """The message writer of one invocation of a durable execution (see `DurableChannel`).

    Args:
        inner: the kit's S3 writer of the invocation; its attempt folder is named in time order here.
        is_replaying: whether the reporting code is replayed (`ReplayStatus`).
    """

    def __init__(self, inner: S3ChunkMessageWriter, is_replaying: Callable[[], bool]) -> None:
        self.inner = inner
        self._is_replaying = is_replaying
        self.skip_opened = False
        self.channel: DurableChannel | None = None
        inner.attempt = DURABLE_ATTEMPT_FORMAT.format(started_ms=int(time.time() * 1000), token=uuid.uuid4().hex[:8])

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        with self.inner.open(params) as channel:
            assert isinstance(channel, S3ChunkChannel)
            self.channel = DurableChannel(channel, self._is_replaying, self.skip_opened)
            yield self.channel

    def get_opened_payload(self) -> PipesOpenedData:
        return self.inner.get_opened_payload()

    def get_opened_extras(self) -> PipesExtras:
        return self.inner.get_opened_extras()


def open_to_close(pipes: Any, writer: DurableMessageWriter, first: bool) -> None:
    """Open the session if this invocation did not, so the execution's end can be reported: an earlier
    invocation may have opened it (in a step that is replayed here, not run), and wrote its ``opened``. An
    execution of one invocation that never used Pipes stays unopened, for the orchestrator to say so."""
    if pipes.is_opened or first:
        return
    writer.skip_opened = True
    pipes.open()
