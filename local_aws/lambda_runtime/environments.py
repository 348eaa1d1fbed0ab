"""Execution environments: one long-lived worker process per environment.

An :class:`ExecutionEnvironment` is what Lambda calls a sandbox: the function's code
(``/var/task``) and layers (``/opt``) extracted on disk, and a process that imported
the handler once and serves invocations until it is discarded. Environments are
pooled per function version by :class:`EnvironmentPool`, which reuses warm ones,
starts new ones for concurrent invocations, honours reserved concurrency and drops
environments whose function code or configuration changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import hashlib
import io
import json
import os
import secrets
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from local_aws.errors import TooManyRequests

WORKER_SCRIPT = str(Path(__file__).with_name("worker.py"))
_HEADER = struct.Struct(">I")
_READ_CHUNK = 65536

LogEmitter = Callable[[str, str, list[tuple[int, str]]], None]
"""``emit(log_group, log_stream, [(timestamp_ms, message), ...])``."""


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


class CodeStore:
    """Extracts function and layer zips once per content hash."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _extract(self, kind: str, sha: str, code: bytes) -> Path:
        # moto's CodeSha256 is base64 (may hold "/"): hash it again into a file name
        digest = hashlib.sha256(sha.encode() if sha else code).hexdigest()[:32]
        key = f"{kind}-{digest}"
        target = self._root / key
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if not target.exists():
                staging = self._root / f".{key}.{secrets.token_hex(4)}"
                staging.mkdir(parents=True)
                if code:
                    with zipfile.ZipFile(io.BytesIO(code)) as archive:
                        archive.extractall(staging)
                        _restore_modes(archive, staging)
                staging.rename(target)
        return target

    def task_root(self, spec: FunctionSpec) -> Path:
        """Directory holding the function's code (its ``/var/task``)."""
        return self._extract("task", spec.code_sha256, spec.code_bytes)

    def layer_root(self, layer: LayerSpec) -> Path:
        """Directory holding one layer's content (its part of ``/opt``)."""
        return self._extract("layer", layer.sha256, layer.code_bytes)


def _restore_modes(archive: zipfile.ZipFile, root: Path) -> None:
    for info in archive.infolist():
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            try:
                os.chmod(root / info.filename, mode | 0o400)
            except OSError:
                pass


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
    day = dt.datetime.now(dt.timezone.utc).strftime("%Y/%m/%d")
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
        self._sentinel = "__local_aws_checkpoint_" + secrets.token_hex(16)
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
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
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


class EnvironmentPool:
    """Execution environments of every function, keyed by function version.

    Args:
        code_store: Where code and layers are extracted.
        python: Interpreter that runs workers.
        base_env: Variables every environment gets (endpoint, region, credentials).
        emit: Where log lines go.
        init_timeout_s: Init phase limit.
    """

    def __init__(
        self,
        code_store: CodeStore,
        python: Callable[[], str],
        base_env: Callable[[], dict[str, str]],
        emit: LogEmitter,
        init_timeout_s: Callable[[], float],
    ) -> None:
        self._code_store = code_store
        self._python = python
        self._base_env = base_env
        self._emit = emit
        self._init_timeout_s = init_timeout_s
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str], list[ExecutionEnvironment]] = {}
        self._fingerprints: dict[tuple[str, str], str] = {}
        self._busy: dict[str, int] = {}
        self._live: set[ExecutionEnvironment] = set()
        self._closed = False

    def busy_count(self, function_arn: str) -> int:
        """Invocations of a function (all versions) in progress."""
        with self._lock:
            return self._busy.get(function_arn, 0)

    def environment_count(self, function_arn: str) -> int:
        """Idle environments of a function (all versions)."""
        with self._lock:
            return sum(len(v) for k, v in self._idle.items() if k[0] == function_arn)

    def acquire(self, spec: FunctionSpec) -> tuple[ExecutionEnvironment, bool]:
        """Take a warm environment for ``spec`` or start a new one.

        Args:
            spec: The function version to run.

        Returns:
            The environment and whether it was a cold start. Release it with
            :meth:`release` (or :meth:`discard` if it broke).

        Raises:
            TooManyRequests: Reserved concurrency is exhausted.
            EnvironmentBroken: A new environment failed to start.
        """
        key = (spec.arn, spec.version)
        stale: list[ExecutionEnvironment] = []
        with self._lock:
            reserved = spec.reserved_concurrency
            busy = self._busy.get(spec.arn, 0)
            if reserved is not None and busy >= int(reserved):
                raise TooManyRequests()
            self._busy[spec.arn] = busy + 1
            if self._fingerprints.get(key) != spec.fingerprint:
                stale = self._idle.pop(key, [])
                self._fingerprints[key] = spec.fingerprint
            idle = self._idle.get(key)
            env = idle.pop() if idle else None
        for old in stale:
            self._close(old)
        if env is not None:
            if env.alive:
                return env, False
            self._close(env)
        try:
            return self._start(spec), True
        except BaseException:
            self._done(spec.arn)
            raise

    def _start(self, spec: FunctionSpec) -> ExecutionEnvironment:
        task_root = self._code_store.task_root(spec)
        layer_roots = [self._code_store.layer_root(layer) for layer in spec.layers]
        stream = new_log_stream_name(spec.version)
        env = dict(self._base_env())
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout_s)),
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python'}",
                "LAMBDA_TASK_ROOT": str(task_root),
                "_HANDLER": spec.handler,
            }
        )
        env.update(dict(spec.environment))
        environment = ExecutionEnvironment(
            spec, task_root, layer_roots, env, self._python(), stream, self._emit
        )
        with self._lock:
            self._live.add(environment)
        try:
            environment.wait_ready(self._init_timeout_s())
        except BaseException:
            self._close(environment)
            raise
        return environment

    def _done(self, arn: str) -> None:
        with self._lock:
            self._busy[arn] = max(0, self._busy.get(arn, 0) - 1)

    def release(self, env: ExecutionEnvironment) -> None:
        """Return a healthy environment to the warm pool."""
        spec = env.spec
        key = (spec.arn, spec.version)
        with self._lock:
            self._busy[spec.arn] = max(0, self._busy.get(spec.arn, 0) - 1)
            keep = (
                not self._closed
                and env.alive
                and self._fingerprints.get(key) == spec.fingerprint
            )
            if keep:
                self._idle.setdefault(key, []).append(env)
        if not keep:
            self._close(env)

    def _close(self, env: ExecutionEnvironment) -> None:
        with self._lock:
            self._live.discard(env)
        env.close()

    def discard(self, env: ExecutionEnvironment) -> None:
        """Drop a broken environment (crash, timeout)."""
        self._done(env.spec.arn)
        self._close(env)

    def invalidate(self, function_arn: str) -> None:
        """Close every idle environment of a function."""
        with self._lock:
            keys = [k for k in self._idle if k[0] == function_arn]
            envs = [e for k in keys for e in self._idle.pop(k)]
            for k in keys:
                self._fingerprints.pop(k, None)
        for env in envs:
            self._close(env)

    def reap_idle(self, max_idle_s: float) -> int:
        """Close environments idle for longer than ``max_idle_s``; return how many."""
        now = time.monotonic()
        victims: list[ExecutionEnvironment] = []
        with self._lock:
            for key, envs in self._idle.items():
                keep = [e for e in envs if now - e.last_used <= max_idle_s and e.alive]
                victims.extend(e for e in envs if e not in keep)
                self._idle[key] = keep
        for env in victims:
            self._close(env)
        return len(victims)

    def close(self) -> None:
        """Close every idle environment and refuse to pool more."""
        with self._lock:
            self._closed = True
            envs = [e for v in self._idle.values() for e in v]
            self._idle.clear()
            envs.extend(e for e in self._live if e not in envs)  # busy ones too
            self._live.clear()
        for env in envs:
            env.close()


def remove_tree(path: Path) -> None:
    """Remove an extraction directory, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
