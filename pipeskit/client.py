"""`PipesLambdaClient`: invoke a Lambda function as a Dagster Pipes session, losslessly."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from dagster import (
    AssetExecutionContext,
    OpExecutionContext,
    PipesClient,
    PipesClientCompletedInvocation,
    PipesContextInjector,
    open_pipes_session,
)

from pipeskit_lambda.protocol import SYNC_PAYLOAD_LIMIT_BYTES

from ._dagster import TreatAsResourceParam
from .channels import LambdaMessageReader, ResponsePayloadMessageReader
from .errors import InvokeThrottledError, LambdaFunctionError, PayloadTooLargeError, PipesSessionNotOpenedError
from .injectors import LambdaEventContextInjector
from .invocation import LambdaInvocation, function_base_name
from .settings import LambdaClientSettings


class LambdaCompletedInvocation(PipesClientCompletedInvocation):
    """A completed session, plus what Lambda answered.

    Attributes:
        return_value: the handler's own return value (JSON-decoded).
        request_id: the invocation's AWS request id.
        function_name: the function invoked.
        executed_version: the function version that ran.
    """

    def __init__(self, session: Any, invocation: LambdaInvocation) -> None:
        super().__init__(
            session,
            metadata={"lambda_request_id": invocation.request_id, "lambda_function": invocation.function_name},
        )
        self.return_value: Any = invocation.return_value
        self.request_id = invocation.request_id
        self.function_name = invocation.function_name
        self.executed_version = invocation.executed_version


def default_lambda_client(settings: LambdaClientSettings) -> Any:
    """A boto3 Lambda client fit for long synchronous invokes.

    The read timeout is above Lambda's maximum function timeout, botocore's own retries are off
    (a retried invoke runs the function twice; throttling is retried by the kit, which knows a 429
    means the function did not run), and the pool holds one connection per concurrent invoke.
    """
    return boto3.client(
        "lambda",
        config=Config(
            read_timeout=settings.read_timeout_s,
            connect_timeout=settings.connect_timeout_s,
            retries={"total_max_attempts": 1},
            max_pool_connections=settings.max_pool_connections,
            tcp_keepalive=True,
        ),
    )


class PipesLambdaClient(PipesClient, TreatAsResourceParam):
    """Invoke AWS Lambda functions as Dagster Pipes sessions.

    A drop-in for ``dagster_aws.pipes.PipesLambdaClient`` (same constructor and ``run`` keywords)
    that delivers every message (no 4 KB log tail), returns the function's value, raises a Dagster
    failure carrying the remote error, retries throttled invokes and fails when the function never
    opened Pipes.

    Args:
        client: boto3 Lambda client; defaults to `default_lambda_client`.
        context_injector: defaults to the context inline in the event.
        message_reader: the channel; defaults to `ResponsePayloadMessageReader`. Use
            ``CloudWatchLogsMessageReader()`` for handlers that write messages to stdout/stderr.
            A reader owns its own clients and settings (e.g. the CloudWatch Logs client).
        settings: invoke settings; defaults from ``PIPESKIT_*`` environment variables.

    Example:
        >>> @asset
        ... def summary(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        ...     return lambda_pipes.run(
        ...         context=context, function_name="pipeskit-dev-dataset-summary", event={"rows": 100}
        ...     ).get_materialize_result()
    """

    def __init__(
        self,
        client: Any | None = None,
        context_injector: PipesContextInjector | None = None,
        message_reader: LambdaMessageReader | None = None,
        *,
        settings: LambdaClientSettings | None = None,
    ) -> None:
        self._settings = settings or LambdaClientSettings.from_env()
        self._client = client  # created on first use, so loading definitions needs no AWS config
        self._context_injector = context_injector or LambdaEventContextInjector()
        self._message_reader = message_reader or ResponsePayloadMessageReader()

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    @property
    def lambda_client(self) -> Any:
        """The boto3 Lambda client (the injected one, or `default_lambda_client`)."""
        if self._client is None:
            self._client = default_lambda_client(self._settings)
        return self._client

    @property
    def message_reader(self) -> LambdaMessageReader:
        """The channel's reader."""
        return self._message_reader

    def run(  # type: ignore[override]
        self,
        *,
        context: OpExecutionContext | AssetExecutionContext,
        function_name: str,
        event: Mapping[str, Any],
        extras: Mapping[str, Any] | None = None,
        qualifier: str | None = None,
    ) -> LambdaCompletedInvocation:
        """Invoke ``function_name`` synchronously as a Pipes session.

        Args:
            context: the asset's or op's execution context.
            function_name: name, ARN or ``name:alias`` of the function.
            event: JSON-serializable event; the Pipes bootstrap is merged into it.
            extras: extra values for the remote ``PipesContext.extras``.
            qualifier: version or alias to invoke.

        Returns:
            The completed invocation: ``get_materialize_result()``/``get_results()`` for Dagster and
            ``return_value`` for the handler's own value.

        Raises:
            LambdaFunctionError: the function failed; carries the remote error and request id.
            PipesSessionNotOpenedError: the function returned without opening Pipes.
            PayloadTooLargeError: the event plus bootstrap exceeds Lambda's 6 MB.
            InvokeThrottledError: Lambda throttled every attempt.
        """
        reader = self._message_reader
        with open_pipes_session(
            context=context,
            context_injector=self._context_injector,
            message_reader=reader,
            extras=dict(extras or {}),
        ) as session:
            payload = json.dumps({**event, **session.get_bootstrap_env_vars()}).encode()
            if len(payload) > SYNC_PAYLOAD_LIMIT_BYTES:
                raise PayloadTooLargeError(
                    f"the invoke payload for {function_name} is {len(payload):,} bytes, above Lambda's "
                    f"{SYNC_PAYLOAD_LIMIT_BYTES:,}-byte limit for synchronous invokes. Pass large "
                    "inputs by reference (e.g. an S3 key in the event) instead of inline."
                )
            invocation = self._invoke(function_name, payload, reader.invoke_arguments(), qualifier)
            context.log.debug(f"[pipeskit] {function_name} answered, request id {invocation.request_id}")
            reader.consume(invocation, context.log)
            if invocation.function_error:
                raise self._function_error(invocation)
        if not session.message_handler.received_opened_message:
            raise PipesSessionNotOpenedError(
                function_name=function_name,
                request_id=invocation.request_id,
                hint=(
                    "Open it in the handler with `pipeskit_lambda.pipes_handler` or "
                    "`open_dagster_pipes(params_loader=PipesMappingParamsLoader(event))`. A docs-style "
                    "handler deployed outside the kit's stack needs "
                    "message_reader=CloudWatchLogsMessageReader()."
                ),
            )
        return LambdaCompletedInvocation(session, invocation)

    def _invoke(
        self, function_name: str, payload: bytes, extra: Mapping[str, Any], qualifier: str | None
    ) -> LambdaInvocation:
        arguments: dict[str, Any] = {
            "FunctionName": function_name,
            "InvocationType": "RequestResponse",
            "Payload": payload,
            **extra,
        }
        if qualifier:
            arguments["Qualifier"] = qualifier
        settings = self._settings
        client = self.lambda_client
        for attempt in range(1, settings.throttle_max_attempts + 1):
            started_ms = int(time.time() * 1000)
            try:
                response = client.invoke(**arguments)
            except client.exceptions.TooManyRequestsException as error:
                if attempt == settings.throttle_max_attempts:
                    raise InvokeThrottledError(
                        f"Lambda throttled {function_name} on all {attempt} attempts (429 "
                        f"TooManyRequestsException: {error}). Lower the fan-out concurrency, raise the "
                        "function's reserved concurrency, or raise PIPESKIT_THROTTLE_MAX_ATTEMPTS."
                    ) from error
                cap = min(settings.throttle_max_delay_s, settings.throttle_base_delay_s * 2 ** (attempt - 1))
                time.sleep(random.uniform(0, cap))  # full jitter
                continue
            headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            return LambdaInvocation(
                function_name=function_name,
                request_id=headers.get("x-amzn-requestid") or response["ResponseMetadata"]["RequestId"],
                payload=response["Payload"].read(),
                function_error=response.get("FunctionError"),
                executed_version=response.get("ExecutedVersion"),
                log_result=response.get("LogResult"),
                started_ms=started_ms,
            )
        raise AssertionError("unreachable")

    def _function_error(self, invocation: LambdaInvocation) -> LambdaFunctionError:
        details = invocation.error_details
        return LambdaFunctionError(
            function_name=invocation.function_name,
            request_id=invocation.request_id,
            function_error=str(invocation.function_error),
            error_type=str(details.get("errorType", "Unknown")),
            error_message=str(details.get("errorMessage", invocation.payload[:2000].decode(errors="replace"))),
            stack_trace=[str(line) for line in details.get("stackTrace") or []],
            log_group_name=f"/aws/lambda/{function_base_name(invocation.function_name)}",
        )
