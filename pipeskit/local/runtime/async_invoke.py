"""Asynchronous (``Event``) invocations: retries, throttling, and success/failure destinations.

"What Lambda does" after answering 202: the event is run in the background, retried per the
function's event-invoke config, and its outcome sent to the configured SQS destination or DLQ.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from moto.sqs.models import sqs_backends

from pipeskit.local.errors import ServiceStopping, TooManyRequests
from pipeskit.local.runtime.specs import FunctionSpec, InvocationResult
from pipeskit.local.settings import LocalAWSSettings

logger = logging.getLogger(__name__)

DEFAULT_ASYNC_RETRIES = 2
DEFAULT_MAX_EVENT_AGE_S = 6 * 3600


class SyncRunner(Protocol):
    """What an asynchronous invocation needs of the runtime: look a function up, run one attempt."""

    def moto_function(self, name_or_arn: str, qualifier: str | None = None) -> Any: ...

    def resolve(self, name_or_arn: str, qualifier: str | None = None) -> FunctionSpec: ...

    def run_sync(
        self, spec: FunctionSpec, payload: bytes, request_id: str, client_context: str | None, invoked_arn: str
    ) -> InvocationResult: ...


class AsyncInvoker:
    """Runs queued ``Event`` invocations on a thread pool.

    Args:
        runtime: Runs each attempt synchronously.
        settings: Returns the current settings (retry delays, throttling).
        stopping: Set when the local AWS stops; pending work is dropped.
    """

    def __init__(
        self, runtime: SyncRunner, settings: Callable[[], LocalAWSSettings], stopping: threading.Event
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._stopping = stopping
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="local-aws-async")

    def submit(
        self, name_or_arn: str, qualifier: str | None, payload: bytes, request_id: str, invoked_arn: str
    ) -> None:
        """Run the event in the background; its age counts from now."""
        received = time.monotonic()
        self._pool.submit(self._run_async_logged, name_or_arn, qualifier, payload, request_id, invoked_arn, received)

    def close(self) -> None:
        """Drop queued events and wait for running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run_async_logged(
        self, name_or_arn: str, qualifier: str | None, payload: bytes, request_id: str, invoked_arn: str,
        received: float,
    ) -> None:
        try:
            self._run_async(name_or_arn, qualifier, payload, request_id, invoked_arn, received)
        except ServiceStopping:
            logger.info("asynchronous invocation %s dropped: the local AWS is stopping", request_id)
        except Exception:  # never lose an error silently in a background thread
            logger.exception("asynchronous invocation %s failed", request_id)

    def _run_async(
        self,
        name_or_arn: str,
        qualifier: str | None,
        payload: bytes,
        request_id: str,
        invoked_arn: str,
        received: float,
    ) -> None:
        fn = self._runtime.moto_function(name_or_arn, qualifier)
        config = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
        retries = int(config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
        max_age_s = float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S))
        destinations = config.get("DestinationConfig") or {}
        attempts = 0
        throttles = 0
        result: InvocationResult | None = None
        condition = "RetriesExhausted"
        while attempts <= retries and not self._stopping.is_set():
            if time.monotonic() - received > max_age_s:  # Lambda drops an event older than its maximum age
                condition = "EventAgeExceeded"
                break
            spec = self._runtime.resolve(name_or_arn, qualifier)
            try:
                result = self._runtime.run_sync(spec, payload, request_id, None, invoked_arn)
            except TooManyRequests:
                throttles += 1
                if throttles > self._settings().async_max_throttle_retries:
                    condition = "EventAgeExceeded"
                    break
                self._stopping.wait(self._settings().async_throttle_retry_s)
                continue
            attempts += 1
            if result.function_error is None:
                self._deliver_success(fn, destinations, request_id, payload, result, attempts)
                return
            if attempts <= retries:
                delays = self._settings().async_retry_delays_s or (0.0,)
                self._stopping.wait(delays[min(attempts - 1, len(delays) - 1)])
        if self._stopping.is_set():
            return
        self._deliver_failure(fn, destinations, request_id, payload, result, max(attempts, 1), condition)

    def _deliver_success(
        self,
        fn: Any,
        destinations: dict[str, Any],
        request_id: str,
        payload: bytes,
        result: InvocationResult,
        attempts: int,
    ) -> None:
        target = (destinations.get("OnSuccess") or {}).get("Destination")
        if target:
            record = _destination_record(fn, request_id, payload, result, attempts, "Success")
            _send_to_target(target, json.dumps(record))

    def _deliver_failure(
        self,
        fn: Any,
        destinations: dict[str, Any],
        request_id: str,
        payload: bytes,
        result: InvocationResult | None,
        attempts: int,
        condition: str,
    ) -> None:
        target = (destinations.get("OnFailure") or {}).get("Destination")
        if target:
            record = _destination_record(fn, request_id, payload, result, attempts, condition)
            _send_to_target(target, json.dumps(record))
            return
        dlq = (getattr(fn, "dead_letter_config", None) or {}).get("TargetArn")
        if dlq:
            error = (result.error or {}) if result else {}
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str(error.get("errorMessage", condition))[:1024] or condition,
                },
            }
            _send_to_target(dlq, payload.decode("utf-8") or "{}", attributes)


def _destination_record(
    fn: Any,
    request_id: str,
    payload: bytes,
    result: InvocationResult | None,
    attempts: int,
    condition: str,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    version = result.executed_version if result else str(fn.version)
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": version}
    if result is not None and result.function_error:
        response_context["functionError"] = result.function_error
    try:
        request_payload: Any = json.loads(payload) if payload else {}
    except ValueError:
        request_payload = payload.decode("utf-8", errors="replace")
    response_payload: Any = None
    if result is not None:
        try:
            response_payload = json.loads(result.payload) if result.payload else None
        except ValueError:
            response_payload = result.payload.decode("utf-8", errors="replace")
    unqualified = f"arn:aws:lambda:{fn.region}:{fn.account_id}:function:{fn.function_name}"
    return {
        "version": "1.0",
        "timestamp": now,
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{unqualified}:{version}",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request_payload,
        "responseContext": response_context,
        "responsePayload": response_payload,
    }


def _send_to_target(
    arn: str, body: str, attributes: dict[str, Any] | None = None
) -> None:
    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "sqs":
        logger.warning("unsupported destination %s: only SQS queues are emulated", arn)
        return
    region, account, queue_name = parts[3], parts[4], parts[5]
    try:
        sqs_backends[account][region].send_message(
            queue_name, body, message_attributes=attributes or {}
        )
    except Exception:
        logger.exception("could not deliver to %s", arn)
