"""Durable functions on the local AWS: AWS's own testing executor behind the Lambda API.

A function created with a ``DurableConfig`` runs as a durable execution when it is invoked. The
local AWS does not emulate the checkpoint protocol itself: the executor, the checkpoint processor and
the API handlers of ``aws-durable-execution-sdk-python-testing`` do, and this module wires them in:

- ``Invoke`` of a durable function (qualified, as Lambda requires; ``Event`` or ``RequestResponse``,
  optional ``DurableExecutionName``) starts an execution in the executor, or returns the existing
  one of that name (:meth:`DurableExecutions.start`).
- The executor's :class:`LambdaInvoker` runs each invocation of the handler through the local AWS's
  own ``Invoke``, marked with its header (``X-Dex-Handler-Invoke``): the front then runs it as a
  plain synchronous invocation, in the function's execution environments, with the durable
  invocation input as the event.
- The durable-execution API (``/2025-12-01/...``: checkpoint, state, execution, history, list by
  function, callbacks, stop) is answered by the testing package's endpoint handlers
  (:meth:`DurableExecutions.serve`).

Execution ARNs have Lambda's shape (``<function ARN>:<qualifier>/durable-execution/<name>/<id>``), so
IAM authorizes the durable calls on the function, as AWS does. Waits and step retries wait for real
unless the setting ``durable_skip_waits`` is on: then they fire at once while the execution's clock
(its history's timestamps) moves on by the time skipped.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote

from pipeskit.local.errors import AWSServiceError
from pipeskit.local.settings import LocalAWSSettings

DURABLE_API_PREFIX = "/2025-12-01/"
"""Where the durable-execution operations of the Lambda API live (botocore's service model)."""

INVOCATION_MARKER_HEADER = "HTTP_X_DEX_HANDLER_INVOKE"
"""The WSGI name of the header the testing executor's invoker puts on each handler invocation."""

_EXECUTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EXECUTION_ARN = re.compile(r"^(?P<function>arn:[^/]+:function:[^:/]+):(?P<qualifier>[^/]+)/durable-execution/")

logger = logging.getLogger(__name__)


class DurableExecutionAlreadyStarted(AWSServiceError):
    """An execution of that name exists with another payload (Lambda's 409)."""

    def __init__(self, name: str, arn: str) -> None:
        super().__init__(
            "DurableExecutionAlreadyStartedException",
            f"A durable execution named {name!r} already exists ({arn}) with another payload: invoke with the "
            "same payload to get that execution back, or with another DurableExecutionName to start a new one.",
            409,
        )


def is_durable_api(path: str) -> bool:
    """Whether a request path is one of the Lambda API's durable-execution operations."""
    return path.startswith(DURABLE_API_PREFIX)


def raw_path(environ: dict[str, Any]) -> str:
    """The request path as sent (``%2F`` kept), which durable execution ARNs in a path need."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    return quote(environ.get("PATH_INFO", ""))


def function_of_execution(execution_arn: str) -> str | None:
    """The qualified function ARN a durable execution ARN belongs to (``None``: not of that shape)."""
    match = _EXECUTION_ARN.match(execution_arn)
    return f"{match['function']}:{match['qualifier']}" if match else None


def function_of_callback(callback_id: str) -> str | None:
    """The qualified function ARN whose execution issued a callback id (``None``: not one of ours)."""
    from aws_durable_execution_sdk_python_testing.token import CallbackToken

    try:
        return function_of_execution(CallbackToken.from_str(callback_id).execution_arn)
    except Exception:  # not a token of this executor  # noqa: BLE001
        return None


class _SettingsClock:
    """The executor's clock: real time plus what was skipped; skips a wait while ``durable_skip_waits`` is on."""

    def __init__(self, settings: Callable[[], LocalAWSSettings]) -> None:
        self._settings = settings
        self._skipped = datetime.timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime.datetime:
        with self._lock:
            return datetime.datetime.now(datetime.UTC) + self._skipped

    def arm(self, wake: datetime.datetime) -> float:
        with self._lock:
            gap = wake - (datetime.datetime.now(datetime.UTC) + self._skipped)
            if not self._settings().durable_skip_waits:
                return max(gap.total_seconds(), 0.0)
            if gap > datetime.timedelta(0):
                self._skipped += gap
            return 0.0


class DurableExecutions:
    """The durable executions of one local AWS: AWS's testing executor, started on first use.

    Args:
        settings: Returns the current settings.
        lambda_client: Makes the Lambda client (administrator, local endpoint) the executor invokes
            handlers with.
        invocation_timeout_s: Upper bound of one handler invocation, as the executor enforces it.
    """

    def __init__(
        self,
        settings: Callable[[], LocalAWSSettings],
        lambda_client: Callable[[], Any],
        invocation_timeout_s: int = 900,
    ) -> None:
        self._settings = settings
        self._lambda_client = lambda_client
        self._invocation_timeout_s = invocation_timeout_s
        self._lock = threading.Lock()
        self._executor: Any = None
        self._parts: list[Any] = []
        self._handlers: dict[type, Any] = {}
        self._router: Any = None
        self._by_name: dict[tuple[str, str], tuple[str, str]] = {}

    # -- the executor ------------------------------------------------------------------

    def _ensure(self) -> Any:
        with self._lock:
            if self._executor is None:
                self._build()
            return self._executor

    def _build(self) -> None:
        from aws_durable_execution_sdk_python_testing.checkpoint.processor import CheckpointProcessor
        from aws_durable_execution_sdk_python_testing.executor import Executor
        from aws_durable_execution_sdk_python_testing.invoker import (
            INVOCATION_MARKER_HEADER as MARKER,
        )
        from aws_durable_execution_sdk_python_testing.invoker import (
            INVOCATION_MARKER_VALUE,
            LambdaInvoker,
            read_timeout_for,
        )
        from aws_durable_execution_sdk_python_testing.scheduler import Scheduler
        from aws_durable_execution_sdk_python_testing.stores.memory import InMemoryExecutionStore
        from aws_durable_execution_sdk_python_testing.web import handlers, routes
        from aws_durable_execution_sdk_python_testing.worker.registry import ExecutionRegistry

        _patch_execution_arns()
        s = self._settings()
        client = self._lambda_client()

        def mark(params: dict[str, Any], **_: Any) -> None:
            params.setdefault("headers", {})[MARKER] = INVOCATION_MARKER_VALUE

        client.meta.events.register("before-call.lambda.Invoke", mark)
        store = InMemoryExecutionStore()
        scheduler = Scheduler()
        clock = _SettingsClock(self._settings)
        invoker = LambdaInvoker(
            client,
            read_timeout_seconds=read_timeout_for(self._invocation_timeout_s),
            endpoint_url=client.meta.endpoint_url,
            region_name=s.region,
        )
        registry = ExecutionRegistry(store, scheduler)
        processor = CheckpointProcessor(store, scheduler, clock=clock)
        executor = Executor(
            store=store,
            scheduler=scheduler,
            invoker=invoker,
            checkpoint_processor=processor,
            invocation_timeout_seconds=self._invocation_timeout_s,
            registry=registry,
            clock=clock,
            region=s.region,
        )
        processor.add_execution_observer(executor)
        processor.set_chained_invoke_preflight(executor.preflight_chained_invoke)
        scheduler.start()
        self._router = routes.Router()
        self._handlers = {
            routes.GetDurableExecutionRoute: handlers.GetDurableExecutionHandler(executor),
            routes.CheckpointDurableExecutionRoute: handlers.CheckpointDurableExecutionHandler(executor),
            routes.StopDurableExecutionRoute: handlers.StopDurableExecutionHandler(executor),
            routes.GetDurableExecutionStateRoute: handlers.GetDurableExecutionStateHandler(executor),
            routes.GetDurableExecutionHistoryRoute: handlers.GetDurableExecutionHistoryHandler(executor),
            routes.ListDurableExecutionsByFunctionRoute: handlers.ListDurableExecutionsByFunctionHandler(executor),
            routes.CallbackSuccessRoute: handlers.SendDurableExecutionCallbackSuccessHandler(executor),
            routes.CallbackFailureRoute: handlers.SendDurableExecutionCallbackFailureHandler(executor),
            routes.CallbackHeartbeatRoute: handlers.SendDurableExecutionCallbackHeartbeatHandler(executor),
        }
        self._parts = [executor, registry, scheduler]
        self._executor = executor

    def close(self) -> None:
        """Stop the executor and its scheduler (executions in flight are dropped)."""
        with self._lock:
            for part in self._parts:
                try:
                    (part.stop if hasattr(part, "stop") and not hasattr(part, "shutdown") else part.shutdown)()
                except Exception:  # noqa: BLE001  # the rest still stops
                    pass
            self._parts, self._executor = [], None

    # -- starting an execution ---------------------------------------------------------

    def start(
        self, fn: Any, qualifier: str, payload: bytes, name: str | None
    ) -> str:
        """Start a durable execution of a function version, or find the one of that name.

        Args:
            fn: moto's function (its ``durable_config`` set).
            qualifier: The version or alias invoked (``$LATEST`` included).
            payload: The invocation's event (JSON).
            name: ``DurableExecutionName``; a new unique name when omitted.

        Returns:
            The execution's ARN (of the one started now, or of the one of that name and payload).

        Raises:
            AWSServiceError: A bad name, or a name already used with another payload.
        """
        from aws_durable_execution_sdk_python_testing.model import StartDurableExecutionInput

        if name is not None and not _EXECUTION_NAME.match(name):
            raise AWSServiceError(
                "InvalidParameterValueException",
                f"DurableExecutionName {name!r} is not valid: use 1 to 64 letters, digits, '-' or '_'.",
            )
        executor = self._ensure()
        text = payload.decode("utf-8") if payload else "{}"
        key = (f"arn:aws:lambda:{fn.region}:{fn.account_id}:function:{fn.function_name}", name or "")
        with self._lock:
            if name is not None and key in self._by_name:
                arn, first_payload = self._by_name[key]
                if _same_json(first_payload, text):
                    return arn
                raise DurableExecutionAlreadyStarted(name, arn)
            config = fn.durable_config
            started = executor.start_execution(
                StartDurableExecutionInput(
                    account_id=fn.account_id,
                    function_name=fn.function_name,
                    function_qualifier=qualifier,
                    execution_name=name or str(uuid.uuid4()),
                    execution_timeout_seconds=int(config["ExecutionTimeout"]),
                    execution_retention_period_days=int(config["RetentionPeriodInDays"]),
                    input=text,
                )
            )
            if name is not None:
                self._by_name[key] = (started.execution_arn, text)
            return started.execution_arn

    def wait(self, arn: str, timeout_s: float) -> dict[str, Any] | None:
        """Wait for an execution to end; its ``GetDurableExecution`` answer, or ``None`` on timeout."""
        executor = self._ensure()
        if not executor.wait_until_complete(arn, timeout_s):
            return None
        return executor.get_execution_details(arn).to_dict()  # type: ignore[no-any-return]

    # -- the durable-execution API ------------------------------------------------------

    def serve(self, environ: dict[str, Any], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one durable-execution API request with the testing package's handlers.

        Returns:
            Status code, headers and body of the answer.
        """
        from aws_durable_execution_sdk_python_testing.exceptions import (
            AwsApiException,
            ServiceException,
            UnknownRouteError,
        )
        from aws_durable_execution_sdk_python_testing.web.models import HTTPRequest, HTTPResponse
        from aws_durable_execution_sdk_python_testing.web.routes import (
            BytesPayloadRoute,
            ListDurableExecutionsByFunctionRoute,
        )

        self._ensure()
        method = environ.get("REQUEST_METHOD", "GET")
        path = raw_path(environ)
        try:
            route = self._router.find_route(path, method)
            handler = self._handlers.get(type(route))
            if handler is None:
                raise UnknownRouteError(method, path)
            if isinstance(route, ListDurableExecutionsByFunctionRoute):  # a name, a partial or a full ARN
                name = route.function_name.split(":function:")[-1].split(":")[0]
                route = type(route)(raw_path=route.raw_path, segments=route.segments, function_name=name)
            query = parse_qs(environ.get("QUERY_STRING", ""))
            headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
            if isinstance(route, BytesPayloadRoute):
                request = HTTPRequest.from_raw_bytes(
                    body_bytes=body, method=method, path=route, headers=headers, query_params=query
                )
            else:
                request = HTTPRequest.from_bytes(
                    body_bytes=body, method=method, path=route, headers=headers, query_params=query
                )
            response = handler.handle(route, request)
        except Exception as error:  # noqa: BLE001  # answered as the service would
            if not isinstance(error, AwsApiException):  # not an answer of the API: a fault here, kept with its trace
                logger.exception("local AWS: the durable-execution API failed on %s %s", method, path)
            api_error = error if isinstance(error, AwsApiException) else ServiceException(str(error))
            response = HTTPResponse.create_error_from_exception(api_error)
        data = response.body_to_bytes() if response.body else b""
        headers_out = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        if response.status_code >= 400:
            code = _error_code(data)
            if code and not any(k.lower() == "x-amzn-errortype" for k, _ in headers_out):
                headers_out.append(("x-amzn-ErrorType", code))
        headers_out.append(("Content-Length", str(len(data))))
        return response.status_code, headers_out, data


def durable_qualifier(name_or_arn: str, qualifier: str | None) -> str:
    """The qualifier a durable function is invoked with; Lambda refuses an unqualified invoke.

    Raises:
        AWSServiceError: Neither the name/ARN nor ``Qualifier`` names a version or alias.
    """
    from pipeskit.local.runtime.invoke import split_qualifier

    found = split_qualifier(name_or_arn) or qualifier
    if not found:
        raise AWSServiceError(
            "InvalidParameterValueException",
            f"{name_or_arn} is a durable function: invoke it qualified, with a version, an alias or "
            "$LATEST (Qualifier=..., or name:qualifier), as Lambda requires.",
        )
    return found


def _same_json(first: str, second: str) -> bool:
    try:
        return bool(json.loads(first) == json.loads(second))
    except ValueError:
        return first == second


def _error_code(data: bytes) -> str | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    return str(body.get("Type") or body.get("__type") or "") or None if isinstance(body, dict) else None


_arns_patched = False


def _patch_execution_arns() -> None:
    # Why: the testing package names an execution "<uuid>/<invocation id>"; Lambda names it
    # "<function ARN>:<qualifier>/durable-execution/<name>/<id>", which is what IAM policies (granted on
    # "function:NAME:*") match and what a caller may read the function from. The executor builds every
    # execution through Execution.new; the ARN it gets is Lambda's.
    global _arns_patched
    if _arns_patched:
        return
    from aws_durable_execution_sdk_python_testing.execution import Execution

    original = Execution.new

    def new(input: Any) -> Any:  # noqa: A002
        execution = original(input=input)
        region = _region_of.get(input.account_id, "us-east-1")
        function_arn = f"arn:aws:lambda:{region}:{input.account_id}:function:{input.function_name}"
        execution.durable_execution_arn = (
            f"{function_arn}:{input.function_qualifier}/durable-execution/{input.execution_name}/"
            f"{input.invocation_id or uuid.uuid4()}"
        )
        return execution

    Execution.new = staticmethod(new)  # type: ignore[method-assign,assignment]
    _arns_patched = True


_region_of: dict[str, str] = {}
"""The region of the local AWS serving an account (one local AWS per process serves one region)."""


def register_region(account_id: str, region: str) -> None:
    """Name the region the execution ARNs of ``account_id`` are in."""
    _region_of[account_id] = region


__all__ = [
    "DURABLE_API_PREFIX",
    "DurableExecutionAlreadyStarted",
    "DurableExecutions",
    "durable_qualifier",
    "function_of_callback",
    "function_of_execution",
    "is_durable_api",
    "raw_path",
    "register_region",
]
