"""The Lambda invoke model: function lookup, synchronous and dry-run invocations.

Asynchronous (``Event``) invocations, with their retries and destinations, are in
:mod:`pipeskit.local.runtime.async_invoke`.

This is "what Lambda does" when a function is invoked; the HTTP shape of the Invoke
API lives in :mod:`pipeskit.local.front`.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.models import lambda_backends

from pipeskit.local.errors import (
    AWSServiceError,
    FunctionNotFound,
    InvalidRequestContent,
    RequestTooLarge,
)
from pipeskit.local.runtime.async_invoke import AsyncInvoker
from pipeskit.local.runtime.code_store import CodeStore
from pipeskit.local.runtime.environment import EnvironmentBroken, LogEmitter
from pipeskit.local.runtime.image import default_runtime_cache
from pipeskit.local.runtime.launcher import Launcher
from pipeskit.local.runtime.pool import EnvironmentPool
from pipeskit.local.runtime.specs import FunctionSpec, InvocationResult, LayerSpec
from pipeskit.local.settings import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    DUMMY_SESSION_TOKEN,
    LocalAWSSettings,
)
from pipeskit_lambda.protocol import ASYNC_PAYLOAD_LIMIT_BYTES, LOG_TAIL_BYTES, SYNC_PAYLOAD_LIMIT_BYTES

logger = logging.getLogger(__name__)

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
        credentials: Returns an environment's ``(access key id, secret, session token)`` for a
            function version; dummy credentials when omitted.
    """

    def __init__(
        self,
        settings: Callable[[], LocalAWSSettings],
        endpoint_url: Callable[[], str],
        work_dir: Path,
        emit: LogEmitter,
        credentials: Callable[[FunctionSpec], tuple[str, str, str]] | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._endpoint_url = endpoint_url
        self._rng = random.Random()
        self.launcher = Launcher(settings, lambda: self._settings().runtime_cache_dir or default_runtime_cache())
        self.pool = EnvironmentPool(
            CodeStore(work_dir),
            launcher=self.launcher,
            base_env=self._base_env,
            emit=emit,
            init_timeout_s=lambda: self._settings().init_timeout_s,
            init_concurrency=settings().init_concurrency,
        )
        self._stopping = threading.Event()
        self._async = AsyncInvoker(self, settings, self._stopping)
        self._reaper = threading.Thread(target=self._reap, name="local-aws-reaper", daemon=True)
        self._reaper.start()

    def _base_env(self, spec: FunctionSpec) -> dict[str, str]:
        """What an environment gets besides Lambda's own variables: region, credentials, endpoint."""
        s = self._settings()
        if self._credentials is not None:
            key_id, secret, token = self._credentials(spec)
        else:
            key_id, secret, token = DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, DUMMY_SESSION_TOKEN
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "AWS_REGION": s.region,
            "AWS_DEFAULT_REGION": s.region,
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": token,
            "AWS_ENDPOINT_URL": self._endpoint_url(),
        }

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
            return backend.get_function(name, _routed(backend, name, qualifier, self._rng))
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
            log_format=str(logging_config.get("LogFormat") or "Text"),
            application_log_level=str(logging_config.get("ApplicationLogLevel") or "INFO").upper(),
            system_log_level=str(logging_config.get("SystemLogLevel") or "INFO").upper(),
            ephemeral_storage_mb=int(getattr(fn, "ephemeral_storage", None) or 512),
            reserved_concurrency=None if reserved is None else int(reserved),
            role=str(fn.role or ""),
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
        _validate_payload(payload, SYNC_PAYLOAD_LIMIT_BYTES)
        spec = self.resolve(name_or_arn, qualifier)
        return self.run_sync(spec, payload, request_id or str(uuid.uuid4()), client_context,
                         invoked_arn=invoked_arn(spec, name_or_arn, qualifier))

    def run_sync(
        self,
        spec: FunctionSpec,
        payload: bytes,
        request_id: str,
        client_context: str | None,
        invoked_arn: str,
    ) -> InvocationResult:
        try:
            env, _cold = self.pool.acquire(spec)
        except EnvironmentBroken as broken:  # both init attempts failed (their phases are logged)
            lines = list(broken.log_lines)
            if broken.environment is not None:  # the invocation itself is reported, as Lambda does
                lines += broken.environment.report_failed_init(request_id, broken.outcome)
            return InvocationResult.unhandled(request_id, dict(broken.error), _tail(lines), spec.version)
        try:
            result = env.invoke(request_id, payload, invoked_arn, _decoded(client_context))
        except EnvironmentBroken as broken:
            self.pool.discard(env)
            return InvocationResult.unhandled(request_id, dict(broken.error), _tail(broken.log_lines), spec.version)
        except BaseException:
            self.pool.discard(env)
            raise
        self.pool.release(env)
        if result.function_error is None and len(result.payload) > SYNC_PAYLOAD_LIMIT_BYTES:
            error = {
                "errorMessage": f"Response payload size ({len(result.payload)} bytes) exceeded "
                f"maximum allowed payload size ({SYNC_PAYLOAD_LIMIT_BYTES} bytes).",
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
        _validate_payload(payload, ASYNC_PAYLOAD_LIMIT_BYTES)
        spec = self.resolve(name_or_arn, qualifier)
        request_id = str(uuid.uuid4())
        self._async.submit(name_or_arn, qualifier, payload, request_id, invoked_arn(spec, name_or_arn, qualifier))
        return request_id, spec

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
        self.pool.close()  # first: running invocations end at once, and no new environment starts
        self._async.close()


def _routed(backend: Any, name: str, qualifier: str | None, rng: random.Random) -> str | None:
    """The version an alias sends this invocation to, per its weights (``RoutingConfig``)."""
    if not qualifier or qualifier == "$LATEST" or qualifier.isdigit():
        return qualifier
    try:
        alias = backend.get_alias(qualifier, name)
    except Exception:  # not an alias (moto resolves or refuses it below)  # noqa: BLE001
        return qualifier
    weights = ((alias.routing_config or {}).get("AdditionalVersionWeights")) or {}
    draw = rng.random()
    for version, weight in weights.items():
        draw -= float(weight)
        if draw < 0:
            return str(version)
    return str(alias.function_version)


def _tail(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _decoded(client_context: str | None) -> str | None:
    """The client context as the runtime receives it: Invoke's base64 header, decoded."""
    if not client_context:
        return None
    try:
        return base64.b64decode(client_context).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _validate_payload(payload: bytes, limit: int) -> None:
    if len(payload) > limit:
        raise RequestTooLarge(len(payload), limit)
    if payload:
        try:
            json.loads(payload)
        except ValueError as exc:
            raise InvalidRequestContent(str(exc)) from None


def split_qualifier(name_or_arn: str) -> str | None:
    """The qualifier written into a function name or ARN (``name:1``, ``arn:...:function:name:alias``)."""
    match = _ARN.match(name_or_arn)
    if match:
        return match["qualifier"]
    if ":" in name_or_arn and not name_or_arn.startswith("arn:"):
        return name_or_arn.split(":", 1)[1] or None
    return None


def invoked_arn(spec: FunctionSpec, name_or_arn: str, qualifier: str | None) -> str:
    match = _ARN.match(name_or_arn)
    if match and match["qualifier"]:
        return name_or_arn
    if qualifier:
        return f"{spec.arn}:{qualifier}"
    if ":" in name_or_arn and not match:
        return f"{spec.arn}:{name_or_arn.split(':', 1)[1]}"
    return spec.arn


__all__ = ["AWSServiceError", "LambdaRuntime", "invoked_arn", "log_result_header", "split_qualifier"]
