"""One invocation and what Lambda answered: the record the client hands to the channel's reader."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pipeskit_lambda.protocol import ENVELOPE_KEY, Envelope, EnvelopeKeys


def function_base_name(function_name: str) -> str:
    """``my-fn`` from ``my-fn``, ``my-fn:alias`` or a function ARN."""
    if function_name.startswith("arn:"):
        return function_name.split(":")[6]
    return function_name.split(":")[0]


INIT_ERROR_TYPES = frozenset({
    "Runtime.ImportModuleError", "Runtime.UserCodeSyntaxError", "Runtime.HandlerNotFound",
    "Runtime.MalformedHandlerName", "Runtime.BuiltInModuleConflict", "Runtime.BeforeSnapshotError",
    "Runtime.AfterRestoreError", "Runtime.UnmarshalError", "Runtime.LambdaContextUnmarshalError",
})  # fmt: skip
"""The runtime's errors of a function whose handler never ran: its code could not be loaded (import,
syntax, no such handler), or the event could not be handed to it. Nothing it would have reported exists."""


def handler_never_ran(error: Mapping[str, Any] | None) -> bool:
    """Whether a Lambda error document (``errorType``, ``errorMessage``) says the handler never ran
    (one of `INIT_ERROR_TYPES`)."""
    return bool(error) and str(error.get("errorType", "")) in INIT_ERROR_TYPES  # type: ignore[union-attr]


@dataclass
class LambdaInvocation:
    """One invoke and what Lambda answered (built by `pipeskit.invoke.invoke_function`).

    Attributes:
        function_name: name or ARN invoked.
        request_id: the invocation's request id (``x-amzn-RequestId``).
        payload: the raw response payload (empty for an asynchronous invoke).
        function_error: ``Unhandled`` / ``Handled`` when the function failed, else None.
        executed_version: the version that ran (synchronous invokes only).
        log_result: base64 log tail, when the invoke asked for one (``LogType=Tail``).
        started_ms: epoch milliseconds just before the invoke (bounds log reads).
        status_code: Lambda's status code: 200 (synchronous) or 202 (asynchronous, queued).
        durable_execution_arn: the durable execution the invoke started (a durable function's), else None.
    """

    function_name: str
    request_id: str
    payload: bytes
    function_error: str | None = None
    executed_version: str | None = None
    log_result: str | None = None
    started_ms: int = 0
    status_code: int = 200
    durable_execution_arn: str | None = None

    @property
    def log_tail(self) -> str | None:
        """The log tail (the last 4 KB of the invocation's log) decoded, when the invoke asked for it."""
        if not self.log_result:
            return None
        return base64.b64decode(self.log_result).decode("utf-8", errors="replace")

    @cached_property
    def decoded(self) -> Any:
        """The payload parsed as JSON (None if empty or not JSON)."""
        try:
            return json.loads(self.payload) if self.payload else None
        except ValueError:
            return None

    @property
    def envelope(self) -> Envelope | None:
        """The kit's response envelope, when the function ran under the kit's Lambda helpers."""
        value = self.decoded
        if self.function_error is None and isinstance(value, dict) and ENVELOPE_KEY in value:
            return value  # type: ignore[return-value]
        return None

    @property
    def return_value(self) -> Any:
        """The handler's own return value (unwrapped from the envelope when there is one)."""
        envelope = self.envelope
        return envelope.get(EnvelopeKeys.RESULT) if envelope is not None else self.decoded

    @property
    def error_details(self) -> Mapping[str, Any]:
        """The remote error document (``errorType``, ``errorMessage``, ``stackTrace``) of a failure."""
        return self.decoded if self.function_error and isinstance(self.decoded, dict) else {}

    @property
    def handler_never_ran(self) -> bool:
        """Lambda answered with an init error (`INIT_ERROR_TYPES`, e.g. ``Runtime.ImportModuleError``): the
        handler never ran, so no message or log line of it will ever come — readers do not wait for them."""
        return handler_never_ran(self.error_details)
