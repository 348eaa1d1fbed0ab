"""Run the AWS CDK CLI from Python: ``cdk bootstrap``, ``deploy`` and ``synth`` in a CDK project.

For a deployment's own scripts and tests (the reference deployment's demo, tests and benchmarks use
it). It needs no extra: it runs the CLI as a subprocess.

The CLI is found in this order: the ``cdk`` argument or ``PIPESKIT_CDK``; the project's pinned
``node_modules/.bin/cdk`` (``npm ci`` in a directory with the kit's ``package.json``); ``cdk`` on
``PATH``. The project's ``node_modules/.bin`` goes first on ``PATH`` so the pinned Node.js (the
``node`` package, a 22.x LTS) runs the CLI, not an older system Node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeskit_lambda.settings import Settings, setting

from .errors import CdkCliError

__all__ = ["CdkCli", "CdkCliError", "CdkCliSettings"]


@dataclass(frozen=True)
class CdkCliSettings(Settings):
    """Which CDK CLI the kit runs.

    Attributes:
        cdk: path of the ``cdk`` executable (``PIPESKIT_CDK``); empty: the project's pinned one,
            else ``cdk`` on ``PATH``.
    """

    cdk: str = setting("", doc="the CDK CLI to run")


@dataclass(frozen=True)
class CdkCli:
    """The CDK CLI, run in a CDK project (a directory holding ``cdk.json``).

    Args:
        project_dir: the CDK project.
        cdk: the executable; default from `CdkCliSettings`, then the project's, then ``PATH``.
        output_dir: the cloud assembly directory (``--output``); default: the project's ``cdk.out``.
            Give each concurrent caller its own: the CLI locks the directory while it synthesizes.
    """

    project_dir: Path
    cdk: str = ""
    output_dir: Path | None = None

    @property
    def bin_dir(self) -> Path:
        """The project's ``node_modules/.bin``."""
        return self.project_dir / "node_modules" / ".bin"

    def executable(self) -> str:
        """The ``cdk`` to run.

        Raises:
            CdkCliError: none is installed; the message says how to install the pinned one.
        """
        chosen = self.cdk or CdkCliSettings.from_env().cdk
        if chosen:
            return chosen
        pinned = self.bin_dir / "cdk"
        if pinned.exists():
            return str(pinned)
        found = shutil.which("cdk")
        if found:
            return found
        raise CdkCliError(
            f"the AWS CDK CLI is not installed: no {pinned} and no `cdk` on PATH. Install it in "
            f"{self.project_dir} (npm install aws-cdk, or npm ci where a package.json pins it), "
            f"or set {CdkCliSettings.env_var('cdk')} to a cdk executable."
        )

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The process environment for ``cdk``: the project's pinned Node.js first on ``PATH``."""
        env = {**os.environ, **(extra or {})}
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", "")])
        env.setdefault("CDK_DISABLE_VERSION_CHECK", "1")  # no network call to look for a newer CLI
        return env

    def run(self, arguments: Sequence[str], env: Mapping[str, str] | None = None) -> float:
        """Run ``cdk <arguments>`` in the project; returns the wall time in seconds.

        Raises:
            CdkCliError: the command failed; the message holds its output.
        """
        if not (self.project_dir / "cdk.json").exists():
            raise CdkCliError(
                f"{self.project_dir} is not a CDK project (no cdk.json); run from the directory of "
                "your CDK app or pass its path."
            )
        if self.output_dir is not None and "--output" not in arguments:
            arguments = [*arguments, "--output", str(self.output_dir)]
        started = time.perf_counter()
        result = subprocess.run(
            [self.executable(), *arguments],
            cwd=self.project_dir,
            env=self.environment(env),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise CdkCliError(
                f"`cdk {' '.join(arguments)}` failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return time.perf_counter() - started

    def bootstrap(self, account: str, region: str, env: Mapping[str, str] | None = None) -> float:
        """``cdk bootstrap aws://ACCOUNT/REGION``; returns the wall time."""
        return self.run(["bootstrap", f"aws://{account}/{region}"], env)

    def deploy(
        self, outputs_file: Path, env: Mapping[str, str] | None = None, *, extra: Sequence[str] = ()
    ) -> tuple[float, dict[str, str]]:
        """``cdk deploy`` without approval prompts; returns the wall time and the stack's outputs."""
        outputs_file.parent.mkdir(parents=True, exist_ok=True)
        seconds = self.run(
            ["deploy", "--require-approval", "never", "--outputs-file", str(outputs_file), *extra], env
        )
        outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
        return seconds, dict(next(iter(outputs.values()), {}))

    def synth(self, env: Mapping[str, str] | None = None) -> float:
        """``cdk synth --quiet``; returns the wall time."""
        return self.run(["synth", "--quiet"], env)
