"""One execution environment: a long-lived worker process that imported the handler once.

An :class:`ExecutionEnvironment` is what Lambda calls a sandbox: the function's code (``/var/task``)
and layers (``/opt``) extracted on disk, and a process that serves invocations until it is
discarded. It frames each invocation's log (``START``/``END``/``REPORT``) and turns a crash or a
timeout into :class:`EnvironmentBroken`.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import secrets
import selectors
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeskit.local.runtime.specs import FunctionSpec, InvocationResult

WORKER_SCRIPT = str(Path(__file__).with_name("worker.py"))
_HEADER = struct.Struct(">I")
_READ_CHUNK = 65536

LogEmitter = Callable[[str, str, list[tuple[int, str]]], None]
"""``emit(log_group, log_stream, [(timestamp_ms, message), ...])``."""


def _python_paths(layer_root: Path, runtime: str) -> list[str]:
    """The ``/opt/python`` style directories a Python runtime puts on ``sys.path``."""
    version = runtime.replace("python", "") if runtime.startswith("python") else ""
    version = version or f"{sys.version_info.major}.{sys.version_info.minor}"
    return [
        str(layer_root / "python"),
        str(layer_root / "python" / "lib" / f"python{version}" / "site-packages"),
    ]


def new_log_stream_name(version: str) -> str:
    """A stream name like Lambda's: ``2026/11/21/[$LATEST]<32 hex>``."""
    day = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{secrets.token_hex(16)}"


class EnvironmentBroken(Exception):
    """The environment's process died or was killed; it must be discarded."""

    def __init__(self, error: dict[str, Any], log_lines: list[str]) -> None:
        super().__init__(error["errorMessage"])
        self.error = error
        self.log_lines = log_lines


class ExecutionEnvironment:
    """One execution environment: a worker process that imported the handler once.

    Args:
        spec: The function version this environment runs.
        task_root: Extracted code directory.
        layer_roots: Extracted layer directories, in attachment order.
        env: The process environment.
        python: Interpreter to run the worker with.
        log_stream: This environment's log stream name.
        emit: Where log lines go.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        task_root: Path,
        layer_roots: Sequence[Path],
        env: dict[str, str],
        python: str,
        log_stream: str,
        emit: LogEmitter,
    ) -> None:
        self.spec = spec
        self.log_stream = log_stream
        self.created = time.monotonic()
        self.last_used = self.created
        self.invocations = 0
        self._emit = emit
        self._sentinel = "__pipeskit_local_checkpoint_" + secrets.token_hex(16)
        self._sentinel_bytes = self._sentinel.encode()
        self._out_buf = b""
        self._ctl_buf = b""
        self._last_ts = 0
        self._dead = False

        sys_path = [str(task_root)]
        for root in layer_roots:
            sys_path.extend(_python_paths(root, spec.runtime))
        env = dict(env, PYTHONPATH=os.pathsep.join(sys_path))

        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        config = {
            "req_fd": req_r,
            "resp_fd": resp_w,
            "sentinel": self._sentinel,
            "sys_path": sys_path,
            "task_root": str(task_root),
            "handler": spec.handler,
        }
        try:
            self._proc = subprocess.Popen(
                [python, "-I", "-u", WORKER_SCRIPT, json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(req_r, resp_w),
                env=env,
                cwd=str(task_root),
                start_new_session=True,
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        assert self._proc.stdout is not None
        self._out_fd = self._proc.stdout.fileno()
        os.set_blocking(self._out_fd, False)
        os.set_blocking(self._resp_r, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out_fd, selectors.EVENT_READ, "out")
        self._selector.register(self._resp_r, selectors.EVENT_READ, "ctl")

    @property
    def pid(self) -> int:
        """Process id of the worker."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """Whether the process is still usable."""
        return not self._dead and self._proc.poll() is None

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """Wait for the init phase to end, logging its output (before ``START``).

        Args:
            timeout_s: Init phase limit.

        Returns:
            The worker's ``ready`` message.

        Raises:
            EnvironmentBroken: The process died or init timed out.
        """
        self._log([f"INIT_START Runtime Version: {self.spec.runtime or 'python'}"
                   f"\tRuntime Version ARN: local"])
        lines: list[str] = []
        message = self._pump(time.monotonic() + timeout_s, lines, "init")
        return message

    def invoke(
        self,
        request_id: str,
        payload: bytes,
        invoked_arn: str,
        client_context: str | None = None,
    ) -> InvocationResult:
        """Run one invocation in this environment.

        Args:
            request_id: The invocation's request id.
            payload: The event (JSON bytes).
            invoked_arn: ARN the caller used.
            client_context: Base64 client context, if any.

        Returns:
            The invocation's result. A handler error is a result, not an exception.

        Raises:
            EnvironmentBroken: The process died or timed out; the caller discards the
                environment. Log lines are already written.
        """
        spec = self.spec
        self.invocations += 1
        version = spec.version
        start_line = f"START RequestId: {request_id} Version: {version}"
        lines = [start_line]
        self._log([start_line])
        started = time.monotonic()
        deadline_wall_ms = time.time() * 1000 + spec.timeout_s * 1000
        message = {
            "payload": payload.decode("utf-8") if payload else "",
            "deadline_ms": deadline_wall_ms,
            "context": {
                "aws_request_id": request_id,
                "function_name": spec.name,
                "function_version": version,
                "invoked_function_arn": invoked_arn,
                "memory_limit_in_mb": spec.memory_mb,
                "log_group_name": spec.log_group,
                "log_stream_name": self.log_stream,
                "client_context": client_context,
            },
            "trace_id": f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0",
        }
        try:
            self._send(message)
            response = self._pump(started + spec.timeout_s, lines, "invoke")
        except EnvironmentBroken as broken:
            duration = (time.monotonic() - started) * 1000
            error = broken.error
            error["errorMessage"] = error["errorMessage"].replace("{request_id}", request_id)
            timed_out = error.get("errorType") == "Sandbox.Timedout"
            extra = error["errorMessage"] if timed_out else f"{error['errorMessage']}\n{error['errorType']}"
            status = "timeout" if timed_out else "error"
            error["_log_tail"] = self._finish(request_id, lines, duration, None, status, extra=[extra])
            raise
        duration = (time.monotonic() - started) * 1000
        tail = self._finish(request_id, lines, duration, response.get("max_memory_mb"), None)
        self.last_used = time.monotonic()
        if "error" in response:
            error = response["error"]
            return InvocationResult.unhandled(request_id, error, tail, version, duration)
        return InvocationResult(
            request_id=request_id,
            payload=response["payload"].encode(),
            log_tail=tail,
            duration_ms=duration,
            executed_version=version,
        )

    def _finish(
        self,
        request_id: str,
        lines: list[str],
        duration_ms: float,
        max_memory_mb: int | None,
        status: str | None,
        extra: Sequence[str] = (),
    ) -> str:
        memory = self.spec.memory_mb
        used = max_memory_mb if max_memory_mb is not None else 0
        billed = max(1, int(-(-duration_ms // 1)))
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {billed} ms\tMemory Size: {memory} MB\tMax Memory Used: {used} MB"
        )
        if status:
            report += f"\tStatus: {status}"
        end = f"END RequestId: {request_id}"
        closing = [*extra, end, report]
        self._log(closing)
        lines.extend(closing)
        text = "\n".join(lines) + "\n"
        return text

    def _log(self, messages: list[str]) -> None:
        if not messages:
            return
        now = max(int(time.time() * 1000), self._last_ts)
        self._last_ts = now
        self._emit(self.spec.log_group, self.log_stream, [(now, m) for m in messages])

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        data = _HEADER.pack(len(data)) + data
        try:
            while data:
                data = data[os.write(self._req_w, data):]
        except OSError:
            pass  # the process is gone: _pump reports how it ended

    def _pump(self, deadline: float, lines: list[str], phase: str) -> dict[str, Any]:
        """Read log output and the control channel until a message and the sentinel arrived."""
        message: dict[str, Any] | None = None
        checkpoint = False
        out_open = True
        while message is None or (not checkpoint and out_open):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._drain_output(lines)
                self.kill()
                raise EnvironmentBroken(self._timeout_error(phase), lines)
            events = self._selector.select(remaining)
            for key, _ in events:
                if key.data == "out":
                    try:
                        chunk = os.read(self._out_fd, _READ_CHUNK)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        out_open = False
                        self._selector.unregister(self._out_fd)
                        if message is None:
                            raise EnvironmentBroken(self._exit_error(lines), lines)
                        continue
                    checkpoint = self._consume_output(chunk, lines) or checkpoint
                else:
                    try:
                        chunk = os.read(self._resp_r, _READ_CHUNK)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        self._selector.unregister(self._resp_r)
                        raise EnvironmentBroken(self._exit_error(lines), lines)
                    self._ctl_buf += chunk
                    message = self._parse_message() or message
        return message

    def _parse_message(self) -> dict[str, Any] | None:
        if len(self._ctl_buf) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._ctl_buf)
        if len(self._ctl_buf) < _HEADER.size + size:
            return None
        body = self._ctl_buf[_HEADER.size : _HEADER.size + size]
        self._ctl_buf = self._ctl_buf[_HEADER.size + size :]
        return json.loads(body)

    def _consume_output(self, chunk: bytes, lines: list[str]) -> bool:
        self._out_buf += chunk
        *complete, self._out_buf = self._out_buf.split(b"\n")
        checkpoint = False
        batch: list[str] = []
        for raw in complete:
            if raw == self._sentinel_bytes:
                checkpoint = True
                continue
            if not raw:
                continue
            batch.append(raw.decode("utf-8", errors="replace").replace("\r", "\n"))
        if batch:
            lines.extend(batch)
            self._log(batch)
        return checkpoint

    def _drain_output(self, lines: list[str]) -> None:
        """Read whatever output is already buffered (the process is about to die)."""
        try:
            while True:
                chunk = os.read(self._out_fd, _READ_CHUNK)
                if not chunk:
                    break
                self._consume_output(chunk, lines)
        except (BlockingIOError, OSError, ValueError):
            pass
        if self._out_buf:
            self._consume_output(b"\n", lines)

    def _exit_error(self, lines: list[str]) -> dict[str, Any]:
        self._dead = True
        try:
            code = self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self._proc.wait()
        self._drain_output(lines)
        if code < 0:
            detail = f"signal: {_signal_name(-code)}"
        else:
            detail = f"exit status {code}"
        return {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {{request_id}} Error: Runtime exited with error: {detail}",
        }

    def _timeout_error(self, phase: str) -> dict[str, Any]:
        timeout = self.spec.timeout_s
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"{stamp} {{request_id}} Task timed out after {timeout:.2f} seconds",
        }

    def kill(self) -> None:
        """Kill the process (and its process group) and release the pipes."""
        self._dead = True
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
        """Stop the worker and release every resource."""
        if self._proc.poll() is None:
            try:
                os.close(self._req_w)  # EOF on the control channel: the worker exits
                self._req_w = -1
                self._proc.wait(timeout=0.5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self._selector.close()
        for fd in (self._req_w, self._resp_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError as exc:
                    if exc.errno != errno.EBADF:
                        raise
        self._req_w = self._resp_r = -1
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name.lower().removeprefix("sig")
    except ValueError:
        return str(number)
