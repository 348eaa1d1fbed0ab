"""Install wheels for a Lambda platform into a directory with pip, without Docker.

Shared by the pipes layer build (``pipeskit.layer_build``) and the local AWS's runtime image
(``pipeskit.local``): pip resolves binary wheels for the target platform and Python version
(``--platform``, ``--python-version``, ``--only-binary=:all:``), whatever the host runs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import PipInstallError


def pip_install_for_platform(
    requirements: Sequence[str], target: Path, *, platform: str, python_version: str
) -> None:
    """Install ``requirements`` (pip arguments: pins, or ``--requirement FILE``) into ``target``.

    Raises:
        PipInstallError: pip failed; the message holds its stderr.
    """
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile", "--no-warn-script-location",
        "--platform", platform,
        "--python-version", python_version,
        "--implementation", "cp",
        "--only-binary=:all:",
        "--target", str(target),
        *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PipInstallError(result.stderr.strip())
