"""What an invocation runs and what it produced: snapshots of deployed function versions and results."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """A layer version attached to a function.

    Attributes:
        arn: Layer version ARN.
        sha256: Hash of the layer's zip.
        code_bytes: The layer's zip.
    """

    arn: str
    sha256: str
    code_bytes: bytes = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    """A snapshot of what was deployed for one function version.

    Attributes:
        name: Function name.
        arn: Unqualified function ARN.
        version: ``$LATEST`` or a published version number.
        handler: ``module.function``.
        runtime: e.g. ``python3.11``.
        timeout_s: Function timeout in seconds.
        memory_mb: Memory size.
        environment: The function's ``Environment.Variables``.
        code_sha256: Hash of the function's zip.
        code_bytes: The function's zip.
        layers: Attached layers in order.
        log_group: Log group the function writes to.
        reserved_concurrency: ``ReservedConcurrentExecutions`` or ``None``.
        log_format: ``Text`` or ``JSON`` (``LoggingConfig.LogFormat``).
        application_log_level: ``LoggingConfig.ApplicationLogLevel`` (JSON format only).
        system_log_level: ``LoggingConfig.SystemLogLevel`` (JSON format only).
        ephemeral_storage_mb: the size of ``/tmp``.
        role: The execution role's ARN (its temporary credentials are the environment's).
    """

    name: str
    arn: str
    version: str
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    environment: tuple[tuple[str, str], ...]
    code_sha256: str
    code_bytes: bytes = dataclasses.field(repr=False, compare=False)
    layers: tuple[LayerSpec, ...] = ()
    log_group: str = ""
    reserved_concurrency: int | None = dataclasses.field(default=None, compare=False)
    log_format: str = "Text"
    application_log_level: str = "INFO"
    system_log_level: str = "INFO"
    ephemeral_storage_mb: int = 512
    role: str = ""

    @property
    def json_logs(self) -> bool:
        """Whether the function is configured for the JSON log format."""
        return self.log_format.upper() == "JSON"

    @property
    def qualified_arn(self) -> str:
        """ARN with the version qualifier."""
        return f"{self.arn}:{self.version}"

    @property
    def fingerprint(self) -> str:
        """Changes whenever code or configuration relevant to an environment changes."""
        material = json.dumps(
            [
                self.handler,
                self.runtime,
                self.timeout_s,
                self.memory_mb,
                list(self.environment),
                self.code_sha256,
                [layer.sha256 + layer.arn for layer in self.layers],
                self.log_group,
                self.log_format,
                self.application_log_level,
                self.system_log_level,
                self.ephemeral_storage_mb,
                self.role,
            ]
        )
        return hashlib.sha256(material.encode()).hexdigest()[:20]


@dataclasses.dataclass
class InvocationResult:
    """What one invocation produced.

    Attributes:
        request_id: The invocation's request id.
        payload: Response body (the handler's JSON result or the error document).
        function_error: ``None`` on success, else ``Unhandled``.
        error: The error document when the invocation failed.
        log_tail: The invocation's log text (``START`` .. ``REPORT``).
        duration_ms: Handler duration.
        executed_version: The version that ran.
    """

    request_id: str
    payload: bytes
    function_error: str | None = None
    error: dict[str, Any] | None = None
    log_tail: str = ""
    duration_ms: float = 0.0
    executed_version: str = "$LATEST"

    @classmethod
    def unhandled(
        cls, request_id: str, error: dict[str, Any], log_tail: str, executed_version: str, duration_ms: float = 0.0
    ) -> InvocationResult:
        """A failed invocation: Lambda answers with the error document and ``Unhandled``."""
        return cls(
            request_id=request_id,
            payload=json.dumps(error).encode(),
            function_error="Unhandled",
            error=error,
            log_tail=log_tail,
            duration_ms=duration_ms,
            executed_version=executed_version,
        )
