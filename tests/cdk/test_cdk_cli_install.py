"""`pipeskit cdk` in a project of the user's own: the kit's pinned CDK CLI, installed from the npm
registry into a fresh cache on first use, runs on the pinned Node.js 22 — not on the system's Node."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeskit.cdk_cli import pinned_toolchain


@pytest.fixture(autouse=True)
def npm() -> str:
    """npm, which the first install of the pinned CDK CLI needs: `make test` installs the repository's own pin with
    it too, so a host without it cannot run the suite at all; a missing npm fails here, naming it."""
    found = shutil.which("npm")
    assert found, "npm is not installed: install Node.js with npm >= 9 (e.g. apt-get install npm); make test needs it"
    return found


def test_pipeskit_cdk_installs_the_pinned_cli_on_first_use_and_runs_it_on_node_22(tmp_path: Path) -> None:
    pin = pinned_toolchain()
    project = tmp_path / "my-project"  # no package.json, no node_modules
    project.mkdir()
    cache = tmp_path / "cache"
    # Every Node.js process the command starts (npm's, while installing, too) appends its version and script.
    probe = tmp_path / "probe.js"
    started = tmp_path / "node-processes"
    probe.write_text(
        f"require('fs').appendFileSync({str(started)!r}, process.version + ' ' + process.argv[1] + '\\n');\n"
    )
    env = {
        **os.environ,
        "PIPESKIT_CDK_CACHE_DIR": str(cache),
        "NODE_OPTIONS": f"--require {probe}",
    }
    env.pop("PIPESKIT_CDK", None)

    def pipeskit_cdk(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeskit", "cdk", *arguments],
            cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
        )

    first = pipeskit_cdk("--version")
    assert first.returncode == 0, first.stderr
    assert first.stdout.split()[0] == pin.cdk_version
    assert f"installing the CDK CLI {pin.cdk_version} and Node.js {pin.node_version}" in first.stderr
    processes = [line.split(" ", 1) for line in started.read_text().splitlines()]
    cli_versions = {version for version, script in processes if Path(script).name == "cdk"}
    assert cli_versions == {f"v{pin.node_version}"}, f"the CDK CLI ran on {cli_versions}: {processes}"
    assert pin.node_version.startswith("22.")
    assert (cache / pin.name / "node_modules" / ".bin" / "cdk").exists()

    again = pipeskit_cdk("--version")
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "installing" not in again.stderr, "the second use runs the cached CLI"


def test_an_unreachable_registry_before_the_first_install_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: the registry is unreachable
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PIPESKIT_CDK_CACHE_DIR": str(tmp_path / "cache"),
        "npm_config_registry": f"http://127.0.0.1:{port}/",
        "npm_config_cache": str(tmp_path / "npm-cache"),  # nothing to install from without the registry
        "npm_config_fetch_retries": "0",
    }
    env.pop("PIPESKIT_CDK", None)
    result = subprocess.run(
        [sys.executable, "-m", "pipeskit", "cdk", "--version"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "npm could not reach the npm registry (offline? npm said: code ECONNREFUSED" in error
    assert "Connect to the network" in error and "Traceback" not in result.stderr
    assert not (tmp_path / "cache" / pinned_toolchain().name).exists()
