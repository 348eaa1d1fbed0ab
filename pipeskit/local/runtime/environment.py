"""One execution environment: AWS's runtime interface client in a Lambda-shaped box.

An :class:`ExecutionEnvironment` runs ``awslambdaric`` on the function's Python, isolated by
bubblewrap where the host allows (see :mod:`~pipeskit.local.runtime.sandbox`), talking to its own
Lambda Runtime API (:mod:`~pipeskit.local.runtime.runtime_api`). It initialises once, serves
invocations one at a time, is frozen between them, and is discarded when it crashes, times out,
goes above its memory or fails to initialise. Its output becomes CloudWatch log events: a line of
stdout or stderr is one event, a record of the runtime's logger (received on the telemetry log
descriptor, as Lambda's runtime writes it) is one event, and Lambda's platform lines frame each
invocation in the function's log format.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import selectors
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeskit.local.runtime.platform_log import Outcome, PlatformLog
from pipeskit.local.runtime.runtime_api import ApiEvent, NextInvocation, RuntimeApi
from pipeskit.local.runtime.sandbox import Confinement, Layout, isolated_command
from pipeskit.local.runtime.specs import FunctionSpec, InvocationResult

from ..errors import LocalAWSError

_READ_CHUNK = 65536
_FRAME = struct.Struct(">IIQ")  # frame type, length, timestamp in microseconds

LogEmitter = Callable[[str, str, list[tuple[int, str]]], None]
"""``emit(log_group, log_stream, [(timestamp_ms, message), ...])``."""


def new_log_stream_name(version: str) -> str:
    """A stream name like Lambda's: ``2026/11/21/[$LATEST]<32 hex>``."""
    day = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{secrets.token_hex(16)}"


class EnvironmentBroken(LocalAWSError):
    """The environment died, timed out or failed to initialise; it must be discarded.

    Attributes:
        error: the error document Lambda returns (``errorType``, ``errorMessage``).
        log_lines: the log lines of the failed phase.
        outcome: status and error type for the REPORT line.
        environment: the environment whose init failed (None when an invocation broke it): the
            invocation that waited for it is reported in its log stream (`report_failed_init`).
    """

    def __init__(
        self, error: dict[str, Any], log_lines: list[str], outcome: Outcome,
        environment: ExecutionEnvironment | None = None,
    ) -> None:
        super().__init__(error["errorMessage"])
        self.error = error
        self.environment = environment
        self.log_lines = log_lines
        self.outcome = outcome


@dataclass(frozen=True)
class Launch:
    """How to start an environment's process.

    Attributes:
        python: the interpreter inside the environment.
        bwrap: the bubblewrap executable, or None to run without isolation.
        layout: where code, layers and runtime are on the host.
        region: for platform records.
    """

    python: str
    bwrap: str | None
    layout: Layout
    region: str


class ExecutionEnvironment:
    """One execution environment of one function version.

    Args:
        spec: The function version this environment runs.
        launch: How to start its process.
        lambda_env: The environment variables Lambda gives the function (and the endpoint).
        log_stream: This environment's log stream name.
        emit: Where log lines go.
    """

    def __init__(
        self, spec: FunctionSpec, launch: Launch, lambda_env: Mapping[str, str], log_stream: str, emit: LogEmitter
    ) -> None:
        self.spec = spec
        self.log_stream = log_stream
        self.created = time.monotonic()
        self.last_used = self.created
        self.invocations = 0
        self.init_ms: float | None = None
        self._failed_init_mb = 0
        self._emit = emit
        self._platform = PlatformLog(spec, launch.region)
        self._last_ts = 0
        self._out_buf = b""
        self._tel_buf = b""
        self._dead = False
        self._api = RuntimeApi()
        self._confinement = Confinement(f"env-{secrets.token_hex(6)}", spec.memory_mb)
        self._out_r, out_w = os.pipe()
        self._tel_r, tel_w = os.pipe()
        env = {
            **lambda_env,
            "AWS_LAMBDA_RUNTIME_API": self._api.address,
            "_LAMBDA_TELEMETRY_LOG_FD": str(tel_w),
        }
        if spec.json_logs:
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            env["AWS_LAMBDA_LOG_LEVEL"] = spec.application_log_level
        layout = launch.layout
        self._isolated = bool(launch.bwrap)
        if launch.bwrap:
            command = isolated_command(launch.bwrap, layout, launch.python, spec.handler, env, (tel_w,))
            process_env: dict[str, str] | None = {"PATH": "/usr/bin:/bin"}
        else:
            env.update(LAMBDA_TASK_ROOT=str(layout.task), _PIPESKIT_OPT_ROOT=str(layout.opt))
            command = [launch.python, "-I", "-S", str(layout.runtime / "bootstrap.py"), spec.handler]
            process_env = env
        command = self._confinement.wrap(command)
        self._init_started = time.monotonic()
        self._log(self._platform.init_start())
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                pass_fds=(tel_w,),
                env=process_env,
                cwd=str(layout.task) if not launch.bwrap else None,
                start_new_session=True,
            )
        finally:
            os.close(out_w)
            os.close(tel_w)
        self._confinement.started(self._proc.pid)
        for fd in (self._out_r, self._tel_r):
            os.set_blocking(fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out_r, selectors.EVENT_READ, "out")
        self._selector.register(self._tel_r, selectors.EVENT_READ, "tel")
        self._selector.register(self._api.signal_fd, selectors.EVENT_READ, "api")

    @property
    def pid(self) -> int:
        """Process id of the environment's outermost process."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """Whether the environment can take an invocation."""
        return not self._dead and self._proc.poll() is None

    # -- init ---------------------------------------------------------------------------------

    def wait_ready(self, timeout_s: float, phase: str = "init") -> None:
        """Wait for the runtime to ask for its first event (its init phase is over).

        Raises:
            EnvironmentBroken: init failed (its error), timed out, or the runtime exited.
        """
        lines: list[str] = []
        event = self._wait(time.monotonic() + timeout_s, lines, {"ready", "init_error"})
        elapsed = (time.monotonic() - self._init_started) * 1000
        if event is None:
            self._failed_init_mb = self._peak()
            self.kill()
            outcome = Outcome("timeout", "")
            self._log(self._platform.init_report(elapsed, phase, outcome))
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"{_stamp()} Init phase ({phase}) timed out after {timeout_s:.2f} seconds",
            }
            raise EnvironmentBroken(error, lines, outcome, self)
        if event.kind == "ready":
            self.init_ms = elapsed
            self.freeze()
            return
        error = event.error_document() if event.kind == "init_error" else self._exit_error()
        outcome = Outcome("error", str(error["errorType"]))
        self._drain(lines)
        self._log(self._platform.init_report(elapsed, phase, outcome))
        self._failed_init_mb = self._peak()
        self.kill()
        raise EnvironmentBroken(error, lines, outcome, self)

    def report_failed_init(self, request_id: str, outcome: Outcome) -> list[str]:
        """Log the invocation that waited for this environment's failed init; returns the lines.

        Lambda reports it as any other, after the init's own ``INIT_REPORT``: ``START``, ``END`` and
        a ``REPORT`` with ``Status: error`` and the init's error type (or ``Status: timeout``), so a
        search by the request id finds it. Its duration is the init's.
        """
        duration = (time.monotonic() - self._init_started) * 1000
        lines = self._platform.start(request_id)
        lines += self._platform.end(request_id, duration, self._failed_init_mb, None, outcome)
        self._log(lines)
        return lines

    # -- invoke -------------------------------------------------------------------------------

    def invoke(
        self, request_id: str, payload: bytes, invoked_arn: str, client_context: str | None = None
    ) -> InvocationResult:
        """Run one invocation in this environment.

        Args:
            request_id: The invocation's request id.
            payload: The event (JSON bytes).
            invoked_arn: ARN the caller used.
            client_context: The client context, decoded (JSON text), if any.

        Returns:
            The invocation's result. A handler error is a result, not an exception.

        Raises:
            EnvironmentBroken: The runtime exited, went above its memory or timed out; the caller
                discards the environment. Log lines are already written.
        """
        spec = self.spec
        self.invocations += 1
        init_ms, self.init_ms = self.init_ms, None  # reported once, on the cold invocation
        lines = self._platform.start(request_id)
        self._log(lines)
        started = time.monotonic()
        self._confinement.reset_peak()
        self._confinement.thaw()
        self._api.offer(
            NextInvocation(
                request_id=request_id,
                payload=payload or b"{}",
                deadline_ms=int(time.time() * 1000 + spec.timeout_s * 1000),
                invoked_arn=invoked_arn,
                trace_id=f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0",
                client_context=client_context,
            )
        )
        event = self._wait(started + spec.timeout_s, lines, {"response", "error"}, request_id)
        duration = (time.monotonic() - started) * 1000
        if event is None or event.kind not in ("response", "error"):
            error, outcome = self._broken(event, request_id)
            lines += self._platform.failure(request_id, error, outcome)
            self._log(self._platform.failure(request_id, error, outcome))
            memory = spec.memory_mb if outcome.error_type == "Runtime.OutOfMemory" else self._peak()
            closing = self._platform.end(request_id, duration, memory, init_ms, outcome)
            self._log(closing)
            raise EnvironmentBroken(error, lines + closing, outcome)
        self._drain(lines)
        used = self._peak()
        self.freeze()
        self.last_used = time.monotonic()
        if event.kind == "error":
            error = event.error_document()
            closing = self._platform.end(request_id, duration, used, init_ms, Outcome("error", error["errorType"]))
            self._log(closing)
            return InvocationResult.unhandled(request_id, error, _tail(lines + closing), spec.version, duration)
        closing = self._platform.end(request_id, duration, used, init_ms, Outcome())
        self._log(closing)
        return InvocationResult(
            request_id=request_id,
            payload=event.body,
            log_tail=_tail(lines + closing),
            duration_ms=duration,
            executed_version=spec.version,
        )

    def _broken(self, event: ApiEvent | None, request_id: str) -> tuple[dict[str, Any], Outcome]:
        if event is None:  # the deadline passed
            self.kill()
            timeout = self.spec.timeout_s
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"{_stamp()} {request_id} Task timed out after {timeout:.2f} seconds",
            }
            return error, Outcome("timeout", "")
        error = self._exit_error()
        error["errorMessage"] = f"RequestId: {request_id} Error: {error['errorMessage']}"
        return error, Outcome("error", str(error["errorType"]))

    def _exit_error(self) -> dict[str, Any]:
        """Why the runtime's process ended (it has, or is about to)."""
        self._dead = True
        try:
            code = self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self._proc.wait()
        if self._confinement.out_of_memory():
            return {"errorType": "Runtime.OutOfMemory", "errorMessage": "Runtime exited with error: signal: killed"}
        if code > 128 and self._isolated:  # bubblewrap reports a signalled child as 128 + signal
            code = 128 - code
        detail = f"signal: {_signal_name(-code)}" if code < 0 else f"exit status {code}"
        return {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited with error: {detail}"}

    # -- the event loop -----------------------------------------------------------------------

    def _wait(
        self, deadline: float, lines: list[str], kinds: set[str], request_id: str | None = None
    ) -> ApiEvent | None:
        """Pump the log pipes until the runtime reports one of ``kinds`` (None: the deadline passed).

        An ``init_error``/``error``/``response`` for another request is ignored; the runtime's
        process ending yields an ``exit`` event.
        """
        while True:
            for event in self._api.take_events():
                if event.kind in kinds and (request_id is None or event.request_id in ("", request_id)):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._drain(lines)
                return None
            for key, _ in self._selector.select(min(remaining, 0.5)):
                if key.data == "api":
                    continue  # handled at the top of the loop
                if self._read(key.data, lines) == "eof":
                    self._selector.unregister(self._out_r if key.data == "out" else self._tel_r)
            if self._proc.poll() is not None:
                for event in self._api.take_events():  # what it reported just before exiting
                    if event.kind in kinds and (request_id is None or event.request_id in ("", request_id)):
                        return event
                self._drain(lines)
                return ApiEvent("exit")

    def _read(self, which: str, lines: list[str]) -> str:
        """Read what one pipe holds: ``data``, ``empty`` (nothing now) or ``eof``."""
        fd = self._out_r if which == "out" else self._tel_r
        try:
            chunk = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return "empty"
        except OSError:
            return "eof"
        if not chunk:
            return "eof"
        if which == "out":
            self._out_buf += chunk
            *complete, self._out_buf = self._out_buf.split(b"\n")
            self._take_lines([raw.decode("utf-8", "replace") for raw in complete if raw], lines)
        else:
            self._tel_buf += chunk
            self._take_frames(lines)
        return "data"

    def _take_frames(self, lines: list[str]) -> None:
        records = []
        while len(self._tel_buf) >= _FRAME.size:
            _, length, _ = _FRAME.unpack_from(self._tel_buf)
            if len(self._tel_buf) < _FRAME.size + length:
                break
            body = self._tel_buf[_FRAME.size : _FRAME.size + length]
            self._tel_buf = self._tel_buf[_FRAME.size + length :]
            records.append(body.decode("utf-8", "replace").rstrip("\n"))
        self._take_lines(records, lines)

    def _take_lines(self, new: list[str], lines: list[str]) -> None:
        if new:
            lines.extend(new)
            self._log(new)

    def _drain(self, lines: list[str]) -> None:
        """Read what the pipes already hold (written before the runtime reported)."""
        for which in ("out", "tel"):
            while self._read(which, lines) == "data":
                pass
        if self._out_buf:  # a last line without its newline ends with the invocation, as in Lambda
            self._take_lines([self._out_buf.decode("utf-8", "replace")], lines)
            self._out_buf = b""

    def _log(self, messages: list[str]) -> None:
        if not messages:
            return
        now = max(int(time.time() * 1000), self._last_ts)
        self._last_ts = now
        self._emit(self.spec.log_group, self.log_stream, [(now, m) for m in messages])

    def _peak(self) -> int:
        return self._confinement.peak_mb(self._proc.pid)

    # -- lifecycle ----------------------------------------------------------------------------

    def freeze(self) -> None:
        """Stop the environment's processes until the next invocation (as Lambda does)."""
        self._confinement.freeze()

    def kill(self) -> None:
        """Kill every process of the environment."""
        self._dead = True
        self._confinement.thaw()
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self._proc.kill()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        """Stop the environment and release every resource."""
        self.kill()
        self._api.close()
        self._selector.close()
        for fd in (self._out_r, self._tel_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._confinement.close()


def _tail(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_SIGNAL_WORDS = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGSEGV: "segmentation fault",
                 signal.SIGABRT: "aborted"}


def _signal_name(number: int) -> str:
    """How Lambda names the signal that ended a runtime (``signal: killed``)."""
    try:
        sig = signal.Signals(number)
    except ValueError:
        return str(number)
    return _SIGNAL_WORDS.get(sig, sig.name.lower().removeprefix("sig"))


__all__ = ["EnvironmentBroken", "ExecutionEnvironment", "Launch", "LogEmitter", "new_log_stream_name"]
