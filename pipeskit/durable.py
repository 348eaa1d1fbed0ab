"""Lambda durable functions on the orchestrator's side: the durable-execution API calls the client makes.

A function whose configuration has a ``DurableConfig`` runs as a durable execution of up to a year,
made of invocations of at most 15 minutes each (its steps, waits and callbacks checkpointed between
them). `PipesLambdaClient.run` starts it asynchronously under a name derived from the Dagster run and
step (`execution_name`), so a re-execution of the run finds the same execution and follows it instead
of starting a second one (`find_execution`). While it runs, its messages come over the S3 channel (the
session's Lambda side is ``pipeskit_lambda.durable``) and its progress — steps completed, the wait in
progress and until when, a callback awaited and its id — from its history (`ProgressReader`). A
callback the function waits for is completed with `complete_callback` / `fail_callback` (``pipeskit
callback``).

Written against boto3's Lambda API (``GetFunctionConfiguration``'s ``DurableConfig``, ``Invoke`` with
``DurableExecutionName``, ``ListDurableExecutionsByFunction``, ``GetDurableExecution``,
``GetDurableExecutionHistory``, ``SendDurableExecutionCallbackSuccess``/``Failure``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster_pipes import DAGSTER_PIPES_MESSAGES_ENV_VAR, decode_param

from pipeskit_lambda.protocol import KEY_PREFIX_PARAM

from .errors import PipesKitError
from .invocation import function_base_name

__all__ = [
    "TERMINAL_STATUSES",
    "DurableExecution",
    "ProgressReader",
    "complete_callback",
    "durable_config",
    "durable_qualifier",
    "execution_name",
    "fail_callback",
    "find_execution",
    "progress_lines",
]

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})
"""The statuses of a durable execution that has ended (``GetDurableExecution``'s ``Status``)."""

RESTARTED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "STOPPED"})
"""An execution that ended so is not re-attached to: a re-execution starts the next one (``-2``, ``-3``…)."""

NAME_MAX = 64
"""``DurableExecutionName``: 1 to 64 of ``[a-zA-Z0-9-_]``."""

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_GENERATIONS = 50


def durable_config(lambda_client: Any, function_name: str, qualifier: str | None) -> dict[str, Any] | None:
    """The function's ``DurableConfig`` (``ExecutionTimeout``, ``RetentionPeriodInDays``), or None when the
    function is not durable (``GetFunctionConfiguration``)."""
    config = lambda_client.get_function_configuration(
        FunctionName=function_name, **({"Qualifier": qualifier} if qualifier else {})
    )
    durable = config.get("DurableConfig")
    return dict(durable) if durable else None


def durable_qualifier(function_name: str, qualifier: str | None) -> str | None:
    """The qualifier a durable function is invoked with: ``qualifier``, else none when ``function_name`` is
    qualified itself (``name:alias``, a version's ARN), else ``$LATEST`` — Lambda invokes durable functions
    qualified only, and an execution keeps the version it started on."""
    if qualifier:
        return qualifier
    parts = function_name.split(":")
    qualified = len(parts) == 8 if function_name.startswith("arn:") else len(parts) == 2
    return None if qualified else "$LATEST"


def execution_name(run_key: str, function_name: str, generation: int = 1, event_json: str = "") -> str:
    """The ``DurableExecutionName`` of a Dagster step's run of ``function_name`` on an event.

    The same for the run and its re-executions (``run_key``: the root run id and the step, as a fan-out's
    resume key), so a re-execution re-attaches to the execution instead of starting a second one; a step
    running the function on two events runs two executions. Its readable part is the step's name; a
    digest of the run key, function and event makes it unique; it keeps to AWS's 64 characters of
    ``[a-zA-Z0-9-_]``.

    Args:
        run_key: ``{root run id}/{step}``.
        function_name: the function (name, ``name:alias`` or ARN).
        generation: 2, 3… for the executions started after the previous one of the name failed, or
            succeeded and its messages are gone (`find_execution`).
        event_json: the event, as the run sends it.
    """
    identity = f"{run_key}\n{function_base_name(function_name)}\n{event_json}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
    step = _NAME_CHARS.sub("-", run_key.rpartition("/")[2]).strip("-") or "step"
    suffix = f"-{generation}" if generation > 1 else ""
    head = f"dagster-{step}"[: NAME_MAX - len(digest) - len(suffix) - 1]
    return f"{head}-{digest}{suffix}"


@dataclass
class DurableExecution:
    """One durable execution, as ``GetDurableExecution`` describes it.

    Attributes:
        arn: its ``DurableExecutionArn``.
        name: its ``DurableExecutionName``.
        status: ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``STOPPED``…
        result: the handler's return value (JSON-decoded), once it succeeded.
        error: ``ErrorType``, ``ErrorMessage``, ``StackTrace`` once it failed.
        input_payload: the execution's input (the event and the Pipes bootstrap), when asked for.
    """

    arn: str
    name: str = ""
    status: str = "RUNNING"
    result: Any = None
    error: dict[str, Any] = field(default_factory=dict)
    input_payload: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the execution has ended (`TERMINAL_STATUSES`)."""
        return self.status in TERMINAL_STATUSES

    @property
    def closes_session(self) -> bool:
        """Whether its handler ended it (returned or raised), so its last invocation wrote ``closed``; a timed-out
        or stopped execution was ended by Lambda, and no ``closed`` will come."""
        return self.status in ("SUCCEEDED", "FAILED")

    @classmethod
    def describe(cls, lambda_client: Any, arn: str, *, with_input: bool = False) -> DurableExecution:
        """``GetDurableExecution`` of ``arn``."""
        answer = lambda_client.get_durable_execution(DurableExecutionArn=arn, IncludeExecutionData=with_input)
        raw = answer.get("Result")
        try:
            result = json.loads(raw) if raw else None
        except ValueError:
            result = raw
        return cls(
            arn=arn, name=str(answer.get("DurableExecutionName", "")), status=str(answer.get("Status", "RUNNING")),
            result=result, error=dict(answer.get("Error") or {}), input_payload=answer.get("InputPayload"),
        )  # fmt: skip

    def messages_prefix(self) -> str | None:
        """The S3 channel's session prefix its bootstrap named (in its input), or None when it names none."""
        try:
            event = json.loads(self.input_payload or "")
            params = decode_param(event[DAGSTER_PIPES_MESSAGES_ENV_VAR])
        except (ValueError, KeyError, TypeError):
            return None
        prefix = params.get(KEY_PREFIX_PARAM) if isinstance(params, Mapping) else None
        return str(prefix) if prefix else None

    def error_document(self) -> dict[str, Any]:
        """Its error as Lambda's error document (``errorType``, ``errorMessage``, ``stackTrace``)."""
        error = self.error
        return {
            "errorType": str(error.get("ErrorType") or f"DurableExecution.{self.status.title().replace('_', '')}"),
            "errorMessage": str(error.get("ErrorMessage") or f"the durable execution {self.arn} ended {self.status}"),
            "stackTrace": [str(line) for line in error.get("StackTrace") or []],
        }


def find_execution(
    lambda_client: Any, function_name: str, qualifier: str | None, run_key: str, event_json: str = "",
    readable: Callable[[DurableExecution], bool] | None = None,
) -> tuple[str, DurableExecution | None]:  # fmt: skip
    """The name a step's run of ``function_name`` on ``event_json`` uses, and the execution of that name to
    re-attach to.

    The first of ``execution_name(run_key, function_name, 1, 2, …, event_json)`` that has no execution yet
    (None: start it) or whose execution is running, or succeeded with its messages still ``readable``
    (re-attach: the orchestrator that ran it died before it read the end). An execution that failed, timed
    out or was stopped is not re-attached to: a re-execution of the run is a retry, which starts the next
    generation; nor is one that succeeded and whose messages were read and deleted (the step is run again:
    a re-execution of a step that succeeded, or a second run of the same event in the step).

    Raises:
        PipesKitError: every generation up to 50 ended without success (nothing was invoked).
    """
    for generation in range(1, _MAX_GENERATIONS + 1):
        name = execution_name(run_key, function_name, generation, event_json)
        request: dict[str, Any] = {"FunctionName": function_name, "DurableExecutionName": name, "ReverseOrder": True}
        if qualifier:
            request["Qualifier"] = qualifier
        found = lambda_client.list_durable_executions_by_function(**request).get("DurableExecutions") or []
        if not found:
            return name, None
        latest = found[0]
        if str(latest.get("Status")) in RESTARTED_STATUSES:
            continue
        execution = DurableExecution.describe(lambda_client, str(latest["DurableExecutionArn"]), with_input=True)
        if execution.status != "SUCCEEDED" or readable is None or readable(execution):
            return name, execution
    raise PipesKitError(
        f"{function_name}: the step {run_key!r} started {_MAX_GENERATIONS} durable executions that all failed; start a "
        "new run instead of re-executing this one. Nothing was invoked."
    )


def _when(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _named(event: Mapping[str, Any]) -> str:
    """An operation by its name, else by its id (a hash the SDK derives from its position)."""
    name = event.get("Name")
    return repr(name) if name else str(event.get("Id", "?"))


def progress_lines(events: list[Mapping[str, Any]], callback_hint: Callable[[str], str] | None = None) -> list[str]:
    """What a step's log says of a durable execution's history ``events`` (``GetDurableExecutionHistory``):
    steps completed or failed, waits begun (until when), callbacks awaited (their id) and answered."""
    lines: list[str] = []
    for event in events:
        kind = str(event.get("EventType", ""))
        if kind == "StepSucceeded":
            lines.append(f"step {_named(event)} completed")
        elif kind == "StepFailed":
            error = ((event.get("StepFailedDetails") or {}).get("Error") or {}).get("Payload") or {}
            lines.append(f"step {_named(event)} failed: {error.get('ErrorType', '')}: {error.get('ErrorMessage', '')}")
        elif kind == "WaitStarted":
            details = event.get("WaitStartedDetails") or {}
            lines.append(f"waiting {details.get('Duration', '?')} s ({_named(event)}) until "
                         f"{_when(details.get('ScheduledEndTimestamp'))}")  # fmt: skip
        elif kind == "WaitSucceeded":
            lines.append(f"wait {_named(event)} ended")
        elif kind == "CallbackStarted":
            callback_id = str((event.get("CallbackStartedDetails") or {}).get("CallbackId", ""))
            hint = callback_hint(callback_id) if callback_hint else ""
            lines.append(f"awaiting callback {_named(event)}: callback id {callback_id}{hint}")
        elif kind in ("CallbackSucceeded", "CallbackFailed", "CallbackTimedOut"):
            lines.append(f"callback {_named(event)} {kind.removeprefix('Callback').lower()}")
        elif kind in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionStopped"):
            lines.append(f"execution {kind.removeprefix('Execution').lower()}")
    return lines


class ProgressReader:
    """Reads a durable execution's history as it grows and says each new event once.

    Args:
        lambda_client: a boto3 Lambda client.
        arn: the execution.
        say: what a progress line goes to (the step's log).
    """

    def __init__(self, lambda_client: Any, arn: str, say: Callable[[str], None]) -> None:
        self._client = lambda_client
        self.arn = arn
        self._say = say
        self._seen = 0

    def read(self) -> int:
        """Read what the history has new, newest first, up to the first event already said (one page while
        little happened, however long the execution's history); say it in order. Returns how many new events
        there were."""
        new: list[Mapping[str, Any]] = []
        marker: str | None = None
        while True:
            request: dict[str, Any] = {"DurableExecutionArn": self.arn, "IncludeExecutionData": False,
                                       "ReverseOrder": True}  # fmt: skip
            if marker:
                request["Marker"] = marker
            page = self._client.get_durable_execution_history(**request)
            events = page.get("Events") or []
            fresh = [event for event in events if int(event.get("EventId") or 0) > self._seen]
            new += fresh
            marker = page.get("NextMarker")
            if not marker or len(fresh) < len(events):
                break
        new.sort(key=lambda event: int(event.get("EventId") or 0))
        if new:
            self._seen = max(int(event.get("EventId") or 0) for event in new)
        for line in progress_lines(new, lambda callback_id: f" (complete it with: pipeskit callback succeed "
                                                              f"{callback_id} --result JSON)"):  # fmt: skip
            self._say(f"[pipeskit durable] {line}")
        return len(new)


def complete_callback(lambda_client: Any, callback_id: str, result: Any = None) -> None:
    """Complete the callback ``callback_id`` a durable function waits for, handing it ``result`` as JSON text
    (``SendDurableExecutionCallbackSuccess``): the function's ``callback.result()`` returns that text (the
    SDK passes a callback's result through unless its ``CallbackConfig`` names a serdes)."""
    request: dict[str, Any] = {"CallbackId": callback_id}
    if result is not None:
        request["Result"] = json.dumps(result).encode("utf-8")
    lambda_client.send_durable_execution_callback_success(**request)


def fail_callback(lambda_client: Any, callback_id: str, error_type: str, message: str) -> None:
    """Fail the callback ``callback_id``: the function's ``wait_for_callback`` raises with ``error_type`` and
    ``message`` (``SendDurableExecutionCallbackFailure``)."""
    lambda_client.send_durable_execution_callback_failure(
        CallbackId=callback_id, Error={"ErrorType": error_type, "ErrorMessage": message}
    )
