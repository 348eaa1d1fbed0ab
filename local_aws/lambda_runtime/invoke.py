"""The Lambda invoke model: synchronous, asynchronous (``Event``) and dry-run invocations.

This is "what Lambda does" when a function is invoked; the HTTP shape of the Invoke
API lives in :mod:`local_aws.front`.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.models import lambda_backends
from moto.sqs.models import sqs_backends

from local_aws.errors import (
    AWSServiceError,
    FunctionNotFound,
    InvalidRequestContent,
    RequestTooLarge,
    TooManyRequests,
)
from local_aws.lambda_runtime.environments import (
    CodeStore,
    EnvironmentBroken,
    EnvironmentPool,
    FunctionSpec,
    InvocationResult,
    LayerSpec,
    LogEmitter,
)
from local_aws.settings import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    DUMMY_SESSION_TOKEN,
    LocalAWSSettings,
)

logger = logging.getLogger(__name__)

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
LOG_TAIL_BYTES = 4096
DEFAULT_ASYNC_RETRIES = 2
_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[^:]+):(?P<account>\d{12}):function:"
    r"(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)


def log_result_header(result: InvocationResult) -> str:
    """``X-Amz-Log-Result``: the last 4 KB of the invocation's log, base64."""
    data = result.log_tail.encode("utf-8")[-LOG_TAIL_BYTES:]
    return base64.b64encode(data).decode("ascii")


class LambdaRuntime:
    """Runs deployed functions in local execution environments.

    Args:
        settings: Returns the current settings.
        endpoint_url: Returns the local AWS endpoint (given to functions).
        work_dir: Where code and layers are extracted.
        emit: Where function log lines go.
    """

    def __init__(
        self,
        settings: Callable[[], LocalAWSSettings],
        endpoint_url: Callable[[], str],
        work_dir: Path,
        emit: LogEmitter,
    ) -> None:
        self._settings = settings
        self._endpoint_url = endpoint_url
        self.pool = EnvironmentPool(
            CodeStore(work_dir),
            python=lambda: self._settings().python_executable,
            base_env=self._base_env,
            emit=emit,
            init_timeout_s=lambda: self._settings().init_timeout_s,
        )
        self._async = concurrent.futures.ThreadPoolExecutor(
            max_workers=32, thread_name_prefix="local-aws-async"
        )
        self._stopping = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="local-aws-reaper", daemon=True)
        self._reaper.start()

    def _base_env(self) -> dict[str, str]:
        import os

        s = self._settings()
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_REGION": s.region,
            "AWS_DEFAULT_REGION": s.region,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": DUMMY_SESSION_TOKEN,
            "AWS_ENDPOINT_URL": self._endpoint_url(),
        }
        for name in ("LD_LIBRARY_PATH", "TMPDIR", "SYSTEMROOT"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    # -- function lookup -------------------------------------------------------------

    def _locate(self, name_or_arn: str) -> tuple[str, str, str, str | None]:
        s = self._settings()
        match = _ARN.match(name_or_arn)
        if match:
            return match["account"], match["region"], match["name"], match["qualifier"]
        if ":" in name_or_arn:
            name, qualifier = name_or_arn.split(":", 1)
            return s.account_id, s.region, name, qualifier
        return s.account_id, s.region, name_or_arn, None

    def moto_function(self, name_or_arn: str, qualifier: str | None = None) -> Any:
        """The moto ``LambdaFunction`` for a name/ARN and qualifier.

        Raises:
            FunctionNotFound: No such function or version.
        """
        account, region, name, arn_qualifier = self._locate(name_or_arn)
        qualifier = arn_qualifier or qualifier
        backend = lambda_backends[account][region]
        try:
            return backend.get_function(name, qualifier)
        except UnknownFunctionException:
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
            raise FunctionNotFound(f"{arn}:{qualifier}" if qualifier else arn) from None

    def resolve(self, name_or_arn: str, qualifier: str | None = None) -> FunctionSpec:
        """Snapshot what is deployed for a function version.

        Args:
            name_or_arn: Function name, partial or full ARN, optionally qualified.
            qualifier: Version or alias.

        Returns:
            The function specification.

        Raises:
            FunctionNotFound: No such function, version or layer.
        """
        fn = self.moto_function(name_or_arn, qualifier)
        backend = lambda_backends[fn.account_id][fn.region]
        layers = []
        for layer in fn.layers or []:
            version = backend.layers_versions_by_arn(layer["Arn"])
            if version is None:
                raise FunctionNotFound(layer["Arn"])
            layers.append(LayerSpec(layer["Arn"], version.code_sha_256, version.code_bytes))
        logging_config = getattr(fn, "logging_config", None) or {}
        unqualified = f"arn:aws:lambda:{fn.region}:{fn.account_id}:function:{fn.function_name}"
        reserved = fn.reserved_concurrency
        return FunctionSpec(
            name=fn.function_name,
            arn=unqualified,
            version=str(fn.version),
            handler=fn.handler or "",
            runtime=fn.run_time or "",
            timeout_s=float(fn.timeout or 3),
            memory_mb=int(fn.memory_size or 128),
            environment=tuple(sorted((fn.environment_vars or {}).items())),
            code_sha256=fn.code_sha_256,
            code_bytes=fn.code_bytes,
            layers=tuple(layers),
            log_group=logging_config.get("LogGroup") or f"/aws/lambda/{fn.function_name}",
            reserved_concurrency=None if reserved is None else int(reserved),
        )

    # -- invocations -----------------------------------------------------------------

    def invoke(
        self,
        name_or_arn: str,
        payload: bytes,
        qualifier: str | None = None,
        client_context: str | None = None,
        request_id: str | None = None,
    ) -> InvocationResult:
        """Invoke a function synchronously (``RequestResponse``).

        Args:
            name_or_arn: Function name or ARN.
            payload: The event as JSON bytes.
            qualifier: Version or alias.
            client_context: Base64 client context.
            request_id: Request id to use (a new one by default).

        Returns:
            The result; a function error is a result with ``function_error`` set.

        Raises:
            AWSServiceError: Not found, throttled, invalid payload.
        """
        _validate_payload(payload, SYNC_PAYLOAD_LIMIT)
        spec = self.resolve(name_or_arn, qualifier)
        return self._run(spec, payload, request_id or str(uuid.uuid4()), client_context,
                         invoked_arn=_invoked_arn(spec, name_or_arn, qualifier))

    def _run(
        self,
        spec: FunctionSpec,
        payload: bytes,
        request_id: str,
        client_context: str | None,
        invoked_arn: str,
    ) -> InvocationResult:
        try:
            env, _cold = self.pool.acquire(spec)
        except EnvironmentBroken as broken:  # the init phase crashed or timed out
            error = dict(broken.error)
            error["errorMessage"] = error["errorMessage"].replace("{request_id}", request_id)
            return InvocationResult.unhandled(request_id, error, "\n".join(broken.log_lines), spec.version)
        try:
            result = env.invoke(request_id, payload, invoked_arn, client_context)
        except EnvironmentBroken as broken:
            self.pool.discard(env)
            error = dict(broken.error)
            tail = error.pop("_log_tail", "")
            return InvocationResult.unhandled(request_id, error, tail, spec.version)
        except BaseException:
            self.pool.discard(env)
            raise
        self.pool.release(env)
        if result.function_error is None and len(result.payload) > SYNC_PAYLOAD_LIMIT:
            error = {
                "errorMessage": f"Response payload size ({len(result.payload)} bytes) exceeded "
                f"maximum allowed payload size ({SYNC_PAYLOAD_LIMIT} bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }
            result.payload = json.dumps(error).encode()
            result.function_error = "Unhandled"
            result.error = error
        return result

    def dry_run(self, name_or_arn: str, qualifier: str | None = None) -> FunctionSpec:
        """Validate that a function exists (``InvocationType=DryRun``)."""
        return self.resolve(name_or_arn, qualifier)

    def invoke_async(
        self, name_or_arn: str, payload: bytes, qualifier: str | None = None
    ) -> tuple[str, FunctionSpec]:
        """Queue an ``Event`` invocation; retries and destinations follow AWS rules.

        Args:
            name_or_arn: Function name or ARN.
            payload: The event as JSON bytes.
            qualifier: Version or alias.

        Returns:
            The request id and the resolved function version.

        Raises:
            AWSServiceError: Not found or invalid payload.
        """
        _validate_payload(payload, ASYNC_PAYLOAD_LIMIT)
        spec = self.resolve(name_or_arn, qualifier)
        request_id = str(uuid.uuid4())
        invoked_arn = _invoked_arn(spec, name_or_arn, qualifier)
        self._async.submit(self._run_async_logged, name_or_arn, qualifier, payload, request_id, invoked_arn)
        return request_id, spec

    def _run_async_logged(
        self, name_or_arn: str, qualifier: str | None, payload: bytes, request_id: str, invoked_arn: str
    ) -> None:
        try:
            self._run_async(name_or_arn, qualifier, payload, request_id, invoked_arn)
        except Exception:  # never lose an error silently in a background thread
            logger.exception("asynchronous invocation %s failed", request_id)

    def _run_async(
        self,
        name_or_arn: str,
        qualifier: str | None,
        payload: bytes,
        request_id: str,
        invoked_arn: str,
    ) -> None:
        fn = self.moto_function(name_or_arn, qualifier)
        config = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
        retries = int(config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
        destinations = config.get("DestinationConfig") or {}
        attempts = 0
        throttles = 0
        result: InvocationResult | None = None
        condition = "RetriesExhausted"
        while attempts <= retries and not self._stopping.is_set():
            spec = self.resolve(name_or_arn, qualifier)
            try:
                result = self._run(spec, payload, request_id, None, invoked_arn)
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

    # -- lifecycle -------------------------------------------------------------------

    def _reap(self) -> None:
        while not self._stopping.wait(5.0):
            try:
                self.pool.reap_idle(self._settings().environment_idle_timeout_s)
            except Exception:
                logger.exception("reaping idle environments failed")

    def close(self) -> None:
        """Stop background work and close every execution environment."""
        self._stopping.set()
        self._async.shutdown(wait=True, cancel_futures=True)
        self.pool.close()


def _validate_payload(payload: bytes, limit: int) -> None:
    if len(payload) > limit:
        raise RequestTooLarge(len(payload), limit)
    if payload:
        try:
            json.loads(payload)
        except ValueError as exc:
            raise InvalidRequestContent(str(exc)) from None


def _invoked_arn(spec: FunctionSpec, name_or_arn: str, qualifier: str | None) -> str:
    match = _ARN.match(name_or_arn)
    if match and match["qualifier"]:
        return name_or_arn
    if qualifier:
        return f"{spec.arn}:{qualifier}"
    if ":" in name_or_arn and not match:
        return f"{spec.arn}:{name_or_arn.split(':', 1)[1]}"
    return spec.arn


def _destination_record(
    fn: Any,
    request_id: str,
    payload: bytes,
    result: InvocationResult | None,
    attempts: int,
    condition: str,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
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


__all__ = ["AWSServiceError", "LambdaRuntime", "log_result_header"]
