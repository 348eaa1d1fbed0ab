"""What makes an execution environment Lambda-shaped from inside: isolation, memory, freezing.

- **Isolation** with bubblewrap (``bwrap``): the code read-only at ``/var/task``, layers at ``/opt``,
  the runtime at ``/var/runtime``, a private ``/tmp`` of the function's ephemeral-storage size, its
  own PID, IPC and UTS namespaces, only Lambda's environment variables, no host path but the system
  libraries and the interpreter. The network is shared so the function reaches the local AWS.
- **Memory**: a memory cgroup limited to the function's ``MemorySize``; the kernel ends an
  environment that goes above it, as Lambda does, and the peak is the REPORT line's
  ``Max Memory Used``.
- **Freezing**: a freezer cgroup stops every process of the environment between invocations.

Where the host lacks one of these (no bubblewrap, no namespaces, no cgroup v1 controllers), the
local AWS warns once and runs without it.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

logger = logging.getLogger(__name__)

TASK_ROOT = "/var/task"
OPT_ROOT = "/opt"
RUNTIME_ROOT = "/var/runtime"
_SYSTEM_DIRS = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin")
_SYSTEM_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/localtime")
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_warned: set[str] = set()
_warn_lock = threading.Lock()


def warn_once(key: str, message: str) -> None:
    """Log ``message`` the first time ``key`` is seen in this process."""
    with _warn_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(message)


@cache
def bubblewrap() -> str | None:
    """The ``bwrap`` executable, if it can create the namespaces an environment needs here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(
        [path, "--unshare-pid", "--unshare-ipc", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        warn_once("bwrap-namespaces", f"bubblewrap cannot create namespaces here ({probe.stderr.strip()})")
        return None
    return path


def _own_cgroup(controller: str) -> Path | None:
    """Where this process sits in a cgroup v1 hierarchy, if that controller is mounted and writable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            where = _CGROUP_ROOT / controller / path.lstrip("/")
            if where.is_dir() and os.access(where, os.W_OK):
                return where
    return None


@cache
def cgroup_parents() -> dict[str, Path]:
    """The memory and freezer cgroup v1 directories environments are created under (may be empty)."""
    parents = {}
    for controller in ("memory", "freezer"):
        own = _own_cgroup(controller)
        if own is None:
            continue
        parent = own / f"pipeskit-local-{os.getpid()}"
        try:
            parent.mkdir(exist_ok=True)
        except OSError:
            continue
        parents[controller] = parent
    return parents


class Confinement:
    """The cgroups of one environment: memory limit and peak, freezing. Degrades to signals.

    Args:
        name: unique name of the environment.
        memory_mb: the function's memory size.
    """

    def __init__(self, name: str, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self._pgid: int | None = None
        self._dirs: dict[str, Path] = {}
        for controller, parent in cgroup_parents().items():
            directory = parent / name
            try:
                directory.mkdir()
            except OSError:
                continue
            self._dirs[controller] = directory
        memory = self._dirs.get("memory")
        if memory is not None:
            limit = str(memory_mb * 1024 * 1024)
            _write(memory / "memory.limit_in_bytes", limit)
            _write(memory / "memory.memsw.limit_in_bytes", limit)  # no swapping past the limit, where accounted
        else:
            warn_once("memory-cgroup", "no writable memory cgroup: function memory sizes are not enforced")
        if "freezer" not in self._dirs:
            warn_once("freezer-cgroup", "no writable freezer cgroup: environments are paused with SIGSTOP instead")

    @property
    def enforces_memory(self) -> bool:
        return "memory" in self._dirs

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` started from inside the environment's cgroups (a shell joins them, then execs),
        so every process it starts is counted and frozen from its first instruction."""
        if not self._dirs:
            return command
        joins = "".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}; " for d in self._dirs.values())
        return ["/bin/sh", "-c", joins + 'exec "$@"', "pipeskit-environment", *command]

    def started(self, pgid: int) -> None:
        """Remember the environment's process group (for the signal fallback)."""
        self._pgid = pgid

    def freeze(self) -> None:
        """Stop every process of the environment until `thaw`."""
        freezer = self._dirs.get("freezer")
        if freezer is not None:
            _write(freezer / "freezer.state", "FROZEN")
        elif self._pgid is not None:
            _signal_group(self._pgid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let the environment's processes run again."""
        freezer = self._dirs.get("freezer")
        if freezer is not None:
            _write(freezer / "freezer.state", "THAWED")
        elif self._pgid is not None:
            _signal_group(self._pgid, signal.SIGCONT)

    def reset_peak(self) -> None:
        """Start measuring the peak memory of the next invocation."""
        memory = self._dirs.get("memory")
        if memory is not None:
            _write(memory / "memory.max_usage_in_bytes", "0")

    def peak_mb(self, fallback_pid: int | None = None) -> int:
        """The peak memory since `reset_peak`, in MB (the REPORT line's ``Max Memory Used``)."""
        memory = self._dirs.get("memory")
        if memory is not None:
            try:
                used = int((memory / "memory.max_usage_in_bytes").read_text())
            except (OSError, ValueError):
                used = 0
            return min(self.memory_mb, max(1, round(used / (1024 * 1024))))
        return _peak_rss_mb(fallback_pid)

    def out_of_memory(self) -> bool:
        """Whether the kernel ended a process of the environment for going above its memory."""
        memory = self._dirs.get("memory")
        if memory is None:
            return False
        try:
            control = (memory / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in control.splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        try:
            return int((memory / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        """Remove the cgroups (their processes are gone)."""
        self.thaw()
        for directory in self._dirs.values():
            try:
                directory.rmdir()
            except OSError:
                pass
        self._dirs.clear()


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _peak_rss_mb(pid: int | None) -> int:
    if pid is None:
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return max(1, int(line.split()[1]) // 1024)
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass(frozen=True)
class Layout:
    """Where an environment's parts are on the host.

    Attributes:
        task: the extracted function code.
        opt: the function's layers, merged as Lambda does in ``/opt``.
        runtime: the runtime image (interface client, SDK, bootstrap).
        interpreter_prefix: the Python installation to run.
        tmp_mb: the size of the private ``/tmp`` (ephemeral storage).
    """

    task: Path
    opt: Path
    runtime: Path
    interpreter_prefix: str
    tmp_mb: int


def isolated_command(
    bwrap: str, layout: Layout, python: str, handler: str, env: Mapping[str, str], keep_fds: Sequence[int]
) -> list[str]:
    """The ``bwrap`` command running ``bootstrap.py handler`` inside a Lambda-shaped box."""
    # No --die-with-parent: its signal follows the *thread* that started bwrap, and environments are
    # started from request threads that end long before the environment does.
    command = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "localhost"]
    for directory in _SYSTEM_DIRS:
        if Path(directory).is_dir() and not Path(directory).is_symlink():
            command += ["--ro-bind", directory, directory]
        elif Path(directory).is_symlink():
            command += ["--symlink", os.readlink(directory), directory]
    for file in _SYSTEM_FILES:
        if Path(file).exists():
            command += ["--ro-bind", file, file]
    if not any(layout.interpreter_prefix.startswith(d + "/") for d in _SYSTEM_DIRS):
        command += ["--ro-bind", layout.interpreter_prefix, layout.interpreter_prefix]
    command += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(layout.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp",
        "--ro-bind", str(layout.task), TASK_ROOT,
        "--ro-bind", str(layout.opt), OPT_ROOT,
        "--ro-bind", str(layout.runtime), RUNTIME_ROOT,
        "--chdir", TASK_ROOT,
        "--clearenv",
    ]  # fmt: skip
    for name, value in env.items():
        command += ["--setenv", name, value]
    del keep_fds  # bubblewrap passes inherited descriptors through
    return [*command, python, "-I", "-S", f"{RUNTIME_ROOT}/bootstrap.py", handler]
