"""The one invoke of a Lambda function: throttle back-off, request ids, AWS errors translated.

Every part of the kit that runs a function goes through here: a client session
(`pipeskit.runner.SessionRunner`), a fan-out item sent by invoke (`pipeskit.fan_out.FanOut`) and
``pipeskit invoke`` (`pipeskit.lambda_commands.call_invoke`). What Lambda answered becomes one
`LambdaInvocation`; what went wrong becomes one of the kit's errors:

- every attempt answered 429 (the function never ran): `InvokeThrottledError`;
- anything else Lambda refused, or a call that never reached it, as the kit's one translation
  (`pipeskit.aws_errors.aws_error`) says it: `FunctionNotFoundError`, `AwsAccessDeniedError`,
  `AwsEndpointUnreachableError`, `AwsCredentialsMissingError`, else `LambdaInvokeError`.

A failed invocation (Lambda answered with a ``FunctionError``) is not an error of the invoke: the
caller turns it into the step's failure with `function_error`.

The client should not retry by itself (see `pipeskit.runner.default_lambda_client`): a retried
invoke runs the function twice, while a 429 means it did not run, so only that is tried again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from pipeskit_lambda.protocol import CONTEXT_REUSED_MESSAGE

from .aws_errors import aws_error, aws_error_message, client_location, error_code
from .cloudwatch_logs import InvocationLogReader, log_group_of
from .errors import (
    FunctionNotFoundError,
    InvokeThrottledError,
    LambdaFunctionError,
    LambdaInvokeError,
    PipesContextReusedError,
)
from .invocation import LambdaInvocation
from .settings import LambdaClientSettings

InvocationType = Literal["RequestResponse", "Event"]

_THROTTLED = "TooManyRequestsException"

__all__ = [
    "aws_error_message", "client_location", "error_code", "function_error", "invocation_of", "invoke_function",
    "log_group_of_invocation", "request_id_of",
]  # fmt: skip


def invoke_function(
    client: Any,
    function_name: str,
    payload: bytes,
    *,
    invocation_type: InvocationType = "RequestResponse",
    qualifier: str | None = None,
    arguments: Mapping[str, Any] | None = None,
    settings: LambdaClientSettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> LambdaInvocation:
    """Invoke ``function_name`` once; a 429 (the function did not run) is tried again with back-off.

    The back-off is exponential with full jitter: before attempt ``n + 1`` it sleeps a random time up
    to ``min(throttle_max_delay_s, throttle_base_delay_s * 2 ** (n - 1))``, for at most
    ``throttle_max_attempts`` attempts in all.

    Args:
        client: a boto3 Lambda client (one that does not retry by itself).
        function_name: name, ``name:alias`` or ARN.
        payload: the event, as JSON bytes.
        invocation_type: ``RequestResponse`` (synchronous: 200 and the response) or ``Event``
            (asynchronous: 202, queued, no payload).
        qualifier: the version or alias to invoke.
        arguments: further ``Invoke`` arguments (e.g. ``{"LogType": "Tail"}``).
        settings: the throttle settings; defaults from ``PIPESKIT_*`` environment variables.
        sleep: the pause between attempts (tests pass their own).

    Returns:
        What Lambda answered: request id, status code, payload, function error, log tail.

    Raises:
        InvokeThrottledError: Lambda answered 429 to every attempt.
        FunctionNotFoundError: the function (or its qualifier) does not exist where the client points.
        LambdaInvokeError: Lambda refused the call for another reason, or the call never reached it.
    """
    settings = settings or LambdaClientSettings.from_env()
    request: dict[str, Any] = {
        "FunctionName": function_name,
        "InvocationType": invocation_type,
        "Payload": payload,
        **(arguments or {}),
    }
    if qualifier:
        request["Qualifier"] = qualifier
    named = f"{function_name}:{qualifier}" if qualifier else function_name
    attempts = settings.throttle_max_attempts
    for attempt in range(1, attempts + 1):
        started_ms = int(time.time() * 1000)
        try:
            response = client.invoke(**request)
        except ClientError as error:
            code = error_code(error)
            if code != _THROTTLED:
                raise _translated(error, client, function_name, qualifier) from error
            if attempt == attempts:
                raise InvokeThrottledError(
                    f"Lambda throttled {named} on all {attempt} attempts (429 {_THROTTLED}: {error}). Lower the "
                    "fan-out concurrency, raise the function's reserved concurrency, or raise "
                    f"{LambdaClientSettings.env_var('throttle_max_attempts')}."
                ) from error
            cap = min(settings.throttle_max_delay_s, settings.throttle_base_delay_s * 2 ** (attempt - 1))
            sleep(random.uniform(0, cap))  # full jitter
            continue
        except BotoCoreError as error:
            raise _translated(error, client, function_name, qualifier) from error
        return invocation_of(response, function_name, started_ms)
    raise AssertionError("unreachable")


def invocation_of(response: Mapping[str, Any], function_name: str, started_ms: int = 0) -> LambdaInvocation:
    """The record of what Lambda answered to an ``Invoke``.

    Args:
        response: boto3's answer to ``invoke``.
        function_name: the function as it was invoked.
        started_ms: epoch milliseconds just before the invoke.

    Returns:
        The invocation: request id (the ``x-amzn-requestid`` header, else the response metadata's
        ``RequestId``), status code, payload, function error, executed version and log tail.
    """
    body = response.get("Payload")
    return LambdaInvocation(
        function_name=function_name,
        request_id=request_id_of(response),
        payload=body.read() if body is not None else b"",
        function_error=response.get("FunctionError"),
        executed_version=response.get("ExecutedVersion"),
        log_result=response.get("LogResult"),
        started_ms=started_ms,
        status_code=int(response.get("StatusCode", 0)),
        durable_execution_arn=response.get("DurableExecutionArn"),
    )


def request_id_of(response: Mapping[str, Any]) -> str:
    """The request id of an AWS answer: its ``x-amzn-requestid`` header, else ``ResponseMetadata.RequestId``.

    Args:
        response: a boto3 answer.

    Returns:
        The request id, or an empty string when the answer carries none.
    """
    metadata = response.get("ResponseMetadata") or {}
    return str((metadata.get("HTTPHeaders") or {}).get("x-amzn-requestid") or metadata.get("RequestId") or "")


def _translated(
    error: ClientError | BotoCoreError, client: Any, function_name: str, qualifier: str | None
) -> FunctionNotFoundError | LambdaInvokeError:
    """The kit's error for an invoke Lambda refused (other than throttling) or that never reached it
    (`pipeskit.aws_errors.aws_error`, the one translation)."""
    named = f"{function_name}:{qualifier}" if qualifier else function_name
    return aws_error(
        error, f"invoking {named}", client=client, function_name=function_name, qualifier=qualifier,
        permission="lambda:InvokeFunction",
    )  # fmt: skip


def log_group_of_invocation(invocation: LambdaInvocation, logs: InvocationLogReader | None = None) -> str:
    """The log group holding ``invocation``'s lines.

    The response envelope's ``log_group_name`` when there is one, else the function's
    ``LoggingConfig.LogGroup`` as the channel's log reader finds it (cached per function), else
    Lambda's default ``/aws/lambda/<name>``.

    Args:
        invocation: what Lambda answered.
        logs: the channel's log reader (`LogReadingMessageReader.logs`), or None.

    Returns:
        The log group's name.
    """
    group = (invocation.envelope or {}).get("log_group_name")
    if group:
        return str(group)
    if logs is not None:
        return logs.log_group_for(invocation.function_name)
    return log_group_of(None, invocation.function_name)


def function_error(
    invocation: LambdaInvocation,
    read_error: BaseException | None = None,
    *,
    logs: InvocationLogReader | None = None,
) -> LambdaFunctionError:
    """The step's failure for a failed invocation (Lambda answered with a ``FunctionError``).

    Args:
        invocation: the failed invocation; its payload is Lambda's error document
            (``errorType``, ``errorMessage``, ``stackTrace``).
        read_error: why the function's messages could not all be read back afterwards, attached
            to the function's own error (never raised in its place).
        logs: the channel's log reader, to name the function's log group (see
            `log_group_of_invocation`).

    Returns:
        A `LambdaFunctionError` with the remote error, request id and log group; a
        `PipesContextReusedError` (with the fix, ``pipeskit adopt``) when the function reused
        dagster-pipes' closed context (dagster#22094).
    """
    details = invocation.error_details
    message = str(details.get("errorMessage", invocation.payload[:2000].decode(errors="replace")))
    arguments: dict[str, Any] = {
        "function_name": invocation.function_name,
        "request_id": invocation.request_id,
        "function_error": str(invocation.function_error),
        "error_type": str(details.get("errorType", "Unknown")),
        "error_message": message,
        "stack_trace": [str(line) for line in details.get("stackTrace") or []],
        "log_group_name": log_group_of_invocation(invocation, logs),
        "read_error": read_error,
    }
    if invocation.handler_never_ran:
        return LambdaFunctionError(
            **arguments,
            advice=(
                "Its handler never ran: Lambda could not load the function's code (its module, an import, or the "
                "handler setting). Fix the code or the handler setting and deploy it again; nothing of the run "
                "reached Dagster."
            ),
        )
    if CONTEXT_REUSED_MESSAGE in message:
        return PipesContextReusedError(
            **arguments,
            advice=(
                "The handler is not behind the kit's entrypoint, and dagster-pipes reused the context "
                "a previous invocation of this warm environment had closed (dagster#22094): only the "
                "first invocation of each environment can report to Dagster. Fix: "
                f"`pipeskit adopt {invocation.function_name}` puts the function behind "
                "pipeskit_lambda.entrypoint.handler, which gives each invocation its own context "
                "(add --dry-run to see the change first)."
            ),
        )
    return LambdaFunctionError(**arguments)
