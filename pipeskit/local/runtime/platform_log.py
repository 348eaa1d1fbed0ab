"""Lambda's own lines in a function's log: ``START``/``END``/``REPORT`` in text, ``platform.*`` in JSON.

What the function is configured with (``LoggingConfig.LogFormat`` and ``SystemLogLevel``) decides
the shape: text lines, or JSON records ``{"time", "type": "platform.…", "record": {…}}`` whose
metrics include ``initDurationMs`` on a cold start. With ``SystemLogLevel=WARN`` the INFO-level
records (start, report) are left out, as Lambda does.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

from pipeskit.local.runtime.specs import FunctionSpec

RUNTIME_VERSION_ARN = "arn:aws:lambda:{region}::runtime:local"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def billed_ms(duration_ms: float) -> int:
    """Lambda bills every started millisecond."""
    return max(1, math.ceil(duration_ms))


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended, for its REPORT.

    Attributes:
        status: ``success``, ``error`` or ``timeout``.
        error_type: e.g. ``Runtime.ExitError`` (failures only).
    """

    status: str = "success"
    error_type: str = ""


class PlatformLog:
    """Builds the platform lines of one function's invocations.

    Args:
        spec: the function version (its log format and system log level).
        region: for the runtime version ARN.
    """

    def __init__(self, spec: FunctionSpec, region: str) -> None:
        self._spec = spec
        self._json = spec.json_logs
        self._info = not self._json or spec.system_log_level in ("DEBUG", "TRACE", "INFO")
        self._runtime_version = f"{spec.runtime or 'python'}.local"
        self._runtime_arn = RUNTIME_VERSION_ARN.format(region=region)

    def _record(self, kind: str, record: dict[str, Any]) -> str:
        return json.dumps({"time": _now(), "type": f"platform.{kind}", "record": record})

    def init_start(self) -> list[str]:
        if not self._info:
            return []
        if self._json:
            return [self._record("initStart", {
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": self._runtime_version,
                "runtimeVersionArn": self._runtime_arn,
                "functionName": self._spec.name,
                "functionVersion": self._spec.version,
            })]  # fmt: skip
        return [f"INIT_START Runtime Version: {self._runtime_version}\tRuntime Version ARN: {self._runtime_arn}"]

    def init_report(self, duration_ms: float, phase: str, outcome: Outcome) -> list[str]:
        """A failed or timed-out init (``INIT_REPORT``), naming its phase (``init`` or ``invoke``)."""
        if self._json:
            record: dict[str, Any] = {
                "initializationType": "on-demand",
                "phase": phase,
                "status": outcome.status,
                "metrics": {"durationMs": round(duration_ms, 3)},
            }
            if outcome.error_type:
                record["errorType"] = outcome.error_type
            return [self._record("initReport", record)]
        line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: {phase}\tStatus: {outcome.status}"
        if outcome.error_type:
            line += f"\tError Type: {outcome.error_type}"
        return [line]

    def start(self, request_id: str) -> list[str]:
        if not self._info:
            return []
        if self._json:
            return [self._record("start", {"requestId": request_id, "version": self._spec.version})]
        return [f"START RequestId: {request_id} Version: {self._spec.version}"]

    def failure(self, request_id: str, error: dict[str, Any], outcome: Outcome) -> list[str]:
        """The lines Lambda writes when the runtime exited or the invocation timed out."""
        if self._json:
            return []  # carried by the report's status and errorType
        if outcome.status == "timeout":
            return [error["errorMessage"]]
        return [f"{error['errorMessage']}\n{error['errorType']}"]

    def end(self, request_id: str, duration_ms: float, memory_used_mb: int, init_ms: float | None,
            outcome: Outcome) -> list[str]:
        """``END`` and ``REPORT`` (text) or the ``platform.report`` record (JSON)."""
        if not self._info:
            return []
        memory = self._spec.memory_mb
        if self._json:
            metrics: dict[str, Any] = {
                "durationMs": round(duration_ms, 3),
                "billedDurationMs": billed_ms(duration_ms),
                "memorySizeMB": memory,
                "maxMemoryUsedMB": memory_used_mb,
            }
            if init_ms is not None:
                metrics["initDurationMs"] = round(init_ms, 3)
            record: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": outcome.status}
            if outcome.error_type:
                record["errorType"] = outcome.error_type
            return [self._record("report", record)]
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {billed_ms(duration_ms)} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {memory_used_mb} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        if outcome.status != "success":
            report += f"\tStatus: {outcome.status}"
            if outcome.error_type:
                report += f"\tError Type: {outcome.error_type}"
        return [f"END RequestId: {request_id}", report]
