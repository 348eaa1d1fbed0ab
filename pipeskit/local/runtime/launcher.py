"""How an environment of a function version is started: its interpreter, box, runtime and variables.

Decided once per function version from the settings and what the host offers: the runtime's Python
(``python3.12`` for ``python3.12``) else this interpreter, bubblewrap isolation where available, and
the runtime image for that Python. What the host lacks is said once, as a warning, at first use.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

from pipeskit.local.runtime import sandbox
from pipeskit.local.runtime.environment import Launch
from pipeskit.local.runtime.image import Interpreter, find_python, probe, python_version_of, runtime_image
from pipeskit.local.runtime.sandbox import OPT_ROOT, RUNTIME_ROOT, TASK_ROOT, Layout, warn_once
from pipeskit.local.runtime.specs import FunctionSpec
from pipeskit.local.settings import LocalAWSSettings


class Launcher:
    """Chooses how each function version's environments start.

    Args:
        settings: Returns the current settings.
        runtime_cache: Where runtime images are kept.
    """

    def __init__(self, settings: Callable[[], LocalAWSSettings], runtime_cache: Callable[[], Path]) -> None:
        self._settings = settings
        self._runtime_cache = runtime_cache
        self._lock = threading.Lock()
        self._images: dict[str, Path] = {}

    def interpreter(self, spec: FunctionSpec) -> Interpreter:
        """The Python an environment of ``spec`` runs on."""
        configured = self._settings().python_executable
        if configured:
            found = probe(configured)
            if found is None:
                raise RuntimeError(
                    f"PIPESKIT_LOCAL_PYTHON_EXECUTABLE={configured!r} does not run; point it at a Python "
                    "interpreter or unset it to use the function's runtime version"
                )
            return found
        version = python_version_of(spec.runtime)
        found = find_python(version) if version else None
        if found is not None:
            return found
        host = probe(sys.executable)
        assert host is not None
        warn_once(
            f"python-{version}",
            f"no python{version} interpreter found (PATH, pyenv): functions with runtime {spec.runtime} run on "
            f"Python {host.version} here. Install python{version} or set PIPESKIT_LOCAL_PYTHON_EXECUTABLE.",
        )
        return host

    def bubblewrap(self) -> str | None:
        """The bubblewrap executable when isolation is on and possible here."""
        mode = self._settings().isolation
        if mode == "none":
            return None
        found = sandbox.bubblewrap()
        if found is None:
            message = (
                "bubblewrap (bwrap) is not usable here: execution environments run without isolation (they see "
                "the host's files and processes). Install it: apt-get install bubblewrap"
            )
            if mode == "bubblewrap":
                raise RuntimeError(message)
            warn_once("bubblewrap", message)
        return found

    def image(self, interpreter: Interpreter) -> Path:
        """The runtime image for ``interpreter``'s version, prepared once."""
        with self._lock:
            if interpreter.version not in self._images:
                self._images[interpreter.version] = runtime_image(interpreter.version, self._runtime_cache())
            return self._images[interpreter.version]

    def launch(self, spec: FunctionSpec, task: Path, opt: Path) -> Launch:
        """How to start an environment of ``spec``."""
        interpreter = self.interpreter(spec)
        layout = Layout(
            task=task,
            opt=opt,
            runtime=self.image(interpreter),
            interpreter_prefix=interpreter.prefix,
            tmp_mb=spec.ephemeral_storage_mb,
        )
        return Launch(python=interpreter.executable, bwrap=self.bubblewrap(), layout=layout,
                      region=self._settings().region)


def lambda_environment(spec: FunctionSpec, log_stream: str, base: dict[str, str], isolated: bool) -> dict[str, str]:
    """The variables Lambda sets in an execution environment, then the function's own."""
    env = dict(base)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout_s)),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python'}",
            "_HANDLER": spec.handler,
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
        }
    )
    if isolated:
        env.update(
            LAMBDA_TASK_ROOT=TASK_ROOT,
            LAMBDA_RUNTIME_DIR=RUNTIME_ROOT,
            PATH=f"/usr/local/bin:/usr/bin:/bin:{OPT_ROOT}/bin",
            LD_LIBRARY_PATH=f"/lib64:/usr/lib64:{RUNTIME_ROOT}:{TASK_ROOT}:{TASK_ROOT}/lib:{OPT_ROOT}/lib",
        )
    env.update(dict(spec.environment))
    return env
