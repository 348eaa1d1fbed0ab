"""What the managed Python runtime holds, prepared once per Python version and cached.

A Lambda execution environment for ``python3.x`` holds the standard library, the runtime interface
client and the AWS SDK, and nothing else but the function's code and layers. The local AWS prepares
the same from PyPI, without Docker: ``awslambdaric`` (AWS's own runtime interface client) and
``boto3``/``botocore`` at pinned versions, installed for the runtime's platform into a cached
directory that execution environments see read-only (at ``/var/runtime`` when isolated).

`find_python` finds the interpreter of the function's runtime (``python3.12`` for ``python3.12``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..._pip import PipInstallError, pip_install_for_platform
from ..errors import LocalAWSError

RUNTIME_PACKAGES = ("awslambdaric==4.2.2", "boto3==1.44.8", "botocore==1.44.8")
"""AWS's runtime interface client, and the SDK at a version recent enough for the durable-execution API
(``CheckpointDurableExecution``, ``GetDurableExecutionState``: the durable SDK needs boto3 1.43.114 or
newer, and a layer cannot bring its own, as the pipes layer leaves out what the runtime ships). Update
both pins together."""

PLATFORM = "manylinux2014_x86_64"
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
_RUNTIME = re.compile(r"^python(3\.\d+)$")


class RuntimeImageError(LocalAWSError, RuntimeError):
    """The runtime image could not be prepared; the message says why and what to do."""


def default_runtime_cache() -> Path:
    """The user's cache directory for runtime images."""
    from platformdirs import user_cache_path

    return user_cache_path("pipes-lambda-kit") / "runtimes"


def python_version_of(runtime: str) -> str | None:
    """``3.12`` for ``python3.12``; None for a runtime that is not Python."""
    match = _RUNTIME.match(runtime or "")
    return match.group(1) if match else None


def runtime_image(python_version: str, cache_dir: Path) -> Path:
    """The directory holding the runtime's packages and the bootstrap, built once per inputs.

    Raises:
        RuntimeImageError: pip could not install the runtime's packages.
    """
    digest = hashlib.sha256()
    for part in (python_version, PLATFORM, *RUNTIME_PACKAGES):
        digest.update(part.encode() + b"\0")
    digest.update(BOOTSTRAP.read_bytes())
    target = cache_dir / f"python{python_version}-{digest.hexdigest()[:16]}"
    if (target / "bootstrap.py").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".runtime-", dir=cache_dir))
    try:
        pip_install_for_platform(RUNTIME_PACKAGES, staging, platform=PLATFORM, python_version=python_version)
        shutil.rmtree(staging / "bin", ignore_errors=True)
        shutil.copyfile(BOOTSTRAP, staging / "bootstrap.py")
        try:
            staging.rename(target)
        except OSError:  # another process built it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    except PipInstallError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeImageError(
            f"could not prepare the python{python_version} runtime ({', '.join(RUNTIME_PACKAGES)}) for the "
            f"local AWS:\n{error}\nCheck that PyPI is reachable."
        ) from None
    return target


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter an execution environment runs on.

    Attributes:
        executable: the real binary (not a shim).
        version: ``3.12``.
        prefix: its installation prefix (mounted read-only in an isolated environment).
    """

    executable: str
    version: str
    prefix: str


def probe(executable: str) -> Interpreter | None:
    """What ``executable`` really is, or None if it does not run."""
    script = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable); print(sys.base_prefix)"
    try:
        result = subprocess.run(
            [executable, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.split()
    if result.returncode != 0 or len(lines) != 3:
        return None
    return Interpreter(executable=lines[1], version=lines[0], prefix=lines[2])


@cache
def find_python(version: str) -> Interpreter | None:
    """A working ``python{version}`` interpreter: on ``PATH``, or a pyenv installation; else None.

    Each candidate is run once to check it really is that version (a pyenv shim on ``PATH`` may
    answer for a version that is not active).
    """
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            found = probe(candidate)
            if found is not None and found.version == version:
                return found
    return None
