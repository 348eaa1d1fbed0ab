"""Execution environments of every function, pooled per function version.

:class:`EnvironmentPool` reuses warm environments, starts new ones for concurrent invocations,
honours reserved concurrency and drops environments whose function code or configuration changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pipeskit.local.errors import ServiceStopping, TooManyRequests
from pipeskit.local.runtime.code_store import CodeStore
from pipeskit.local.runtime.environment import EnvironmentBroken, ExecutionEnvironment, LogEmitter, new_log_stream_name
from pipeskit.local.runtime.launcher import Launcher, lambda_environment
from pipeskit.local.runtime.specs import FunctionSpec


class EnvironmentPool:
    """Execution environments of every function, keyed by function version.

    Args:
        code_store: Where code and layers are extracted.
        launcher: How environments start (interpreter, isolation, runtime image).
        base_env: Variables an environment of a function version gets besides Lambda's own
            (endpoint, region, credentials).
        emit: Where log lines go.
        init_timeout_s: Init phase limit.
        init_concurrency: How many environments may initialise at once (the host's cores are
            shared, where each Lambda environment has its own).
    """

    def __init__(
        self,
        code_store: CodeStore,
        launcher: Launcher,
        base_env: Callable[[FunctionSpec], dict[str, str]],
        emit: LogEmitter,
        init_timeout_s: Callable[[], float],
        init_concurrency: int,
    ) -> None:
        self._code_store = code_store
        self._launcher = launcher
        self._init_slots = threading.Semaphore(max(1, init_concurrency))
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
            ServiceStopping: The pool is closed (the local AWS is stopping).
        """
        key = (spec.arn, spec.version)
        stale: list[ExecutionEnvironment] = []
        with self._lock:
            if self._closed:
                raise ServiceStopping()
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
        """A new, initialised environment.

        As Lambda does, an init that fails or passes the init limit is tried once more within the
        invocation (phase ``invoke``), under the function's timeout; that second failure is raised.

        Raises:
            EnvironmentBroken: both attempts failed; the error names the phase.
        """
        task = self._code_store.task_root(spec)
        opt = self._code_store.opt_root(spec.layers)
        launch = self._launcher.launch(spec, task, opt)
        with self._init_slots:
            try:
                return self._init(spec, launch, self._init_timeout_s(), "init")
            except EnvironmentBroken:
                return self._init(spec, launch, spec.timeout_s, "invoke")

    def _init(self, spec: FunctionSpec, launch: Any, timeout_s: float, phase: str) -> ExecutionEnvironment:
        stream = new_log_stream_name(spec.version)
        env = lambda_environment(spec, stream, self._base_env(spec), isolated=bool(launch.bwrap))
        environment = ExecutionEnvironment(spec, launch, env, stream, self._emit)
        with self._lock:
            closed = self._closed
            if not closed:
                self._live.add(environment)
        if closed:  # the pool closed while this one started: it would outlive the local AWS
            environment.close()
            raise ServiceStopping()
        try:
            environment.wait_ready(timeout_s, phase)
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
        """Close every idle environment, kill every busy one and refuse to start or pool more.

        A busy environment's processes are killed at once; its invocation sees it die and closes it
        (closing it here would pull its file descriptors from under that invocation).
        """
        with self._lock:
            self._closed = True
            idle = [e for v in self._idle.values() for e in v]
            self._idle.clear()
            busy = [e for e in self._live if e not in idle]
            self._live.clear()
        for env in idle:
            env.close()
        for env in busy:
            env.kill()
