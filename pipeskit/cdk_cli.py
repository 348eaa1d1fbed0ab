"""Run the AWS CDK CLI from Python and from ``pipeskit cdk``: the pinned CLI, on the pinned Node.js.

For a deployment's own scripts and tests (the reference deployment's demo, tests and benchmarks use
it) and for ``pipeskit cdk ARGS...``. It needs no extra: it runs the CLI as a subprocess.

The kit pins one CDK CLI (``aws-cdk``, a 2.x release) and the Node.js 22 LTS that runs it (the
``node`` package brings a Node.js binary), in the ``package.json`` and ``package-lock.json`` it
ships (`pinned_toolchain`). The CLI is found in this order:

1. the ``cdk`` argument, or ``PIPESKIT_CDK``;
2. the project's pinned ``node_modules/.bin/cdk`` (``npm ci`` in a directory with a ``package.json``
   that pins it);
3. the kit's own pinned CLI in the user's cache directory
   (``~/.cache/pipes-lambda-kit/cdk/<cdk version>-node<node version>/`` on Linux,
   ``PIPESKIT_CDK_CACHE_DIR`` to move it), installed with ``npm ci`` on first use.

The chosen CLI's ``node_modules/.bin`` goes first on ``PATH``, so the pinned Node.js runs it, not an
older system Node. npm is needed once, for the first install; concurrent first uses wait for one
another (a file lock) and the installation appears in the cache only when complete (a rename).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from pipeskit_lambda.settings import Settings, setting

from .errors import CdkCliError

__all__ = [
    "CdkCli",
    "CdkCliError",
    "CdkCliSettings",
    "PinnedToolchain",
    "default_cdk_cache_dir",
    "install_toolchain",
    "pinned_toolchain",
]

TOOLCHAIN_FILES = ("package.json", "package-lock.json")
"""The files that pin the kit's CDK CLI and Node.js, shipped in the package (``pipeskit/cdk-toolchain``)."""

INSTALL_ESTIMATE_S = 20
"""About how long the first install takes (some 130 MB from the npm registry)."""

_NPM_NOISE = re.compile(r"at |syscall |errno |[a-z]+: |[{}]|A complete log")
_OFFLINE = re.compile(r"ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENETUNREACH|EHOSTUNREACH|network")


@dataclass(frozen=True)
class CdkCliSettings(Settings):
    """Which CDK CLI the kit runs.

    Attributes:
        cdk: path of the ``cdk`` executable (``PIPESKIT_CDK``); empty: the project's pinned one,
            else the kit's own pinned one.
        cdk_cache_dir: where the kit installs its pinned CDK CLI and Node.js
            (``PIPESKIT_CDK_CACHE_DIR``); empty: the user's cache directory.
    """

    cdk: str = setting("", doc="the CDK CLI to run")
    cdk_cache_dir: Path | None = setting(None, doc="where the kit installs its pinned CDK CLI and Node.js")


@dataclass(frozen=True)
class PinnedToolchain:
    """The CDK CLI and Node.js versions the kit pins (its shipped ``package-lock.json``).

    Attributes:
        cdk_version: the ``aws-cdk`` package's version, e.g. ``2.1148.1``.
        node_version: the ``node`` package's version (the Node.js it brings), e.g. ``22.23.3``.
        files: the pinning files' names and bytes, as shipped (written into each installation).
    """

    cdk_version: str
    node_version: str
    files: tuple[tuple[str, bytes], ...]

    @property
    def name(self) -> str:
        """The installation's directory name: ``<cdk version>-node<node version>``."""
        return f"{self.cdk_version}-node{self.node_version}"


@cache
def pinned_toolchain() -> PinnedToolchain:
    """The CDK CLI and Node.js the kit pins, read from the ``package-lock.json`` it ships."""
    shipped = resources.files("pipeskit") / "cdk-toolchain"
    files = tuple((name, (shipped / name).read_bytes()) for name in TOOLCHAIN_FILES)
    packages = json.loads(dict(files)["package-lock.json"])["packages"]
    return PinnedToolchain(
        cdk_version=packages["node_modules/aws-cdk"]["version"],
        node_version=packages["node_modules/node"]["version"],
        files=files,
    )


def default_cdk_cache_dir() -> Path:
    """The user's cache directory for the pinned CDK CLI (``~/.cache/pipes-lambda-kit/cdk`` on Linux)."""
    from platformdirs import user_cache_path

    return user_cache_path("pipes-lambda-kit") / "cdk"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _complete(installation: Path) -> bool:
    bin_dir = installation / "node_modules" / ".bin"
    return (bin_dir / "cdk").exists() and (bin_dir / "node").exists()


def install_toolchain(
    cache_dir: Path | None = None, *, report: Callable[[str], None] = _stderr, npm: str | None = None
) -> Path:
    """The ``node_modules/.bin`` of the kit's pinned CDK CLI and Node.js, installed on first use.

    The installation is ``<cache_dir>/<cdk version>-node<node version>``. On first use, ``npm ci``
    installs the shipped lockfile into a staging directory next to it, the installed Node.js is
    checked to be the pinned one, and the staging directory is renamed into place: an
    interrupted install leaves nothing half-done behind. Concurrent first uses take turns on a file
    lock; the later ones find the installation done.

    Args:
        cache_dir: where installations live; default: ``PIPESKIT_CDK_CACHE_DIR``, else
            `default_cdk_cache_dir`.
        report: receives the progress lines (default: printed on stderr).
        npm: the npm to install with; default: ``npm`` on ``PATH``.

    Returns:
        The installation's ``node_modules/.bin`` (holding ``cdk`` and ``node``).

    Raises:
        CdkCliError: npm is missing, the registry cannot be reached, or the install failed; the
            message says what to do.
    """
    from filelock import FileLock

    pin = pinned_toolchain()
    cache_dir = cache_dir or CdkCliSettings.from_env().cdk_cache_dir or default_cdk_cache_dir()
    target = cache_dir / pin.name
    bin_dir = target / "node_modules" / ".bin"
    if _complete(target):
        return bin_dir
    npm = npm or shutil.which("npm")
    what = f"the CDK CLI {pin.cdk_version} and Node.js {pin.node_version}"
    if not npm:
        raise CdkCliError(
            f"npm is needed once, to install {what} into {target}, and there is no `npm` on PATH. Install "
            "Node.js with npm (any version, e.g. `apt-get install npm` or `brew install node`) and re-run; or "
            f"set {CdkCliSettings.env_var('cdk')} to a cdk executable you have."
        )
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CdkCliError(
            f"cannot create {cache_dir} to install {what} ({error.strerror or error}); set "
            f"{CdkCliSettings.env_var('cdk_cache_dir')} to a directory you can write"
        ) from None
    lock = FileLock(str(cache_dir / f".{pin.name}.lock"))
    with lock:
        if _complete(target):  # another process installed it while this one waited
            return bin_dir
        if target.exists():  # not complete: left by hand or by an older kit; install afresh
            shutil.rmtree(target)
        report(f"installing {what} into {target} (first use, about {INSTALL_ESTIMATE_S} s) …")
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{pin.name}-", dir=cache_dir))
        try:
            for name, data in pin.files:
                (staging / name).write_bytes(data)
            _npm_ci(npm, staging, what)
            _check_node(staging / "node_modules" / ".bin", pin, what)
            staging.chmod(0o755)  # a temporary directory is the user's alone; an installation is readable
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        report(f"installed {what} in {time.monotonic() - started:.0f} s")
    return bin_dir


def _npm_ci(npm: str, directory: Path, what: str) -> None:
    command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", "--ignore-scripts=false"]
    env = {**os.environ, "npm_config_update_notifier": "false"}
    try:
        result = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, check=False)
    except OSError as error:
        raise CdkCliError(f"cannot run {npm} to install {what} ({error.strerror or error}); check your npm") from None
    if result.returncode == 0:
        return
    tail = _npm_said(result.stderr + "\n" + result.stdout)
    if _OFFLINE.search(result.stderr + result.stdout):
        raise CdkCliError(
            f"cannot install {what}: npm could not reach the npm registry (offline? npm said: {tail}). Connect "
            "to the network (or configure npm's registry and proxy with `npm config set`) and re-run; or set "
            f"{CdkCliSettings.env_var('cdk')} to a cdk executable you have."
        )
    raise CdkCliError(
        f"`npm ci` failed (exit {result.returncode}) while installing {what}: {tail}. Fix what npm says and "
        f"re-run; or set {CdkCliSettings.env_var('cdk')} to a cdk executable you have."
    )


def _npm_said(output: str) -> str:
    """npm's error in a few words: its code and message lines, without the stack and the error's fields."""
    lines = [re.sub(r"^npm (?:error|ERR!)", "", line).strip() for line in output.splitlines()]
    kept = [line for line in lines if line and not _NPM_NOISE.match(line)]
    return " | ".join(kept[:3]) or "no output"


def _check_node(bin_dir: Path, pin: PinnedToolchain, what: str) -> None:
    node = bin_dir / "node"
    try:
        version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, check=False, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as error:
        version = f"none ({error})"
    if version != f"v{pin.node_version}" or not (bin_dir / "cdk").exists():
        raise CdkCliError(
            f"`npm ci` installed {what} without a working Node.js {pin.node_version} (node --version: {version!r}); "
            "the `node` package installs its binary with an install script: check that npm may run it "
            "(`npm config get ignore-scripts` must be false) and re-run"
        )


@dataclass(frozen=True)
class CdkCli:
    """The CDK CLI, run in a CDK project (a directory holding ``cdk.json``).

    Args:
        project_dir: the CDK project.
        cdk: the executable; default from `CdkCliSettings`, then the project's pinned one, then the
            kit's own pinned one (installed into the user's cache on first use).
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
        """The ``cdk`` to run (installing the kit's pinned one on first use when the project has none).

        Raises:
            CdkCliError: none could be found or installed; the message says what to do.
        """
        return self._resolved()[0]

    def _resolved(self) -> tuple[str, Path | None]:
        """The ``cdk`` to run and the ``node_modules/.bin`` to put first on ``PATH`` (None: none)."""
        chosen = self.cdk or CdkCliSettings.from_env().cdk
        if chosen:
            beside = Path(chosen).parent
            return chosen, beside if (beside / "node").exists() else self._project_bin()
        project = self._project_bin()
        if project is not None and (project / "cdk").exists():
            return str(project / "cdk"), project
        installed = install_toolchain()
        return str(installed / "cdk"), installed

    def _project_bin(self) -> Path | None:
        return self.bin_dir if self.bin_dir.is_dir() else None

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The process environment for ``cdk``: the pinned Node.js first on ``PATH``."""
        return self._environment(self._resolved()[1], extra)

    @staticmethod
    def _environment(bin_dir: Path | None, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {**os.environ, **(extra or {})}
        if bin_dir is not None:
            env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
        env.setdefault("CDK_DISABLE_VERSION_CHECK", "1")  # no network call to look for a newer CLI
        return env

    def call(self, arguments: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        """Run ``cdk <arguments>`` in the project with this process's stdin, stdout and stderr.

        What ``pipeskit cdk`` does: no ``cdk.json`` is needed (``cdk --version``, ``cdk init``), and
        Ctrl-C reaches the CLI, which decides how to stop; this waits for it.

        Returns:
            The CLI's exit status (``128 + N`` when a signal N ended it).

        Raises:
            CdkCliError: no CDK CLI could be found or installed.
        """
        executable, bin_dir = self._resolved()
        try:
            process = subprocess.Popen(
                [executable, *arguments], cwd=self.project_dir, env=self._environment(bin_dir, env)
            )
        except OSError as error:
            raise self._not_runnable(executable, error) from None
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:  # the CLI got the same SIGINT: let it finish
                continue
        return 128 - code if code < 0 else code

    def _not_runnable(self, executable: str, error: OSError) -> CdkCliError:
        if self.cdk:
            chosen = f"cdk={executable}"
        elif CdkCliSettings.from_env().cdk:
            chosen = f"{CdkCliSettings.env_var('cdk')}={executable}"
        else:
            chosen = executable
        return CdkCliError(
            f"cannot run the CDK CLI {chosen} in {self.project_dir} ({error.strerror or error}); point it at an "
            f"executable cdk, or unset {CdkCliSettings.env_var('cdk')} to run the kit's pinned one"
        )

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
        executable, bin_dir = self._resolved()
        started = time.perf_counter()
        try:
            result = subprocess.run(
                [executable, *arguments],
                cwd=self.project_dir,
                env=self._environment(bin_dir, env),
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as error:
            raise self._not_runnable(executable, error) from None
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
