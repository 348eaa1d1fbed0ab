"""The one `pipeskit` command: its commands, its version, and where the demo's port comes from."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeskit import __version__
from pipeskit.cli import build_parser, main
from pipeskit.local.settings import LocalAWSSettings


def test_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "pipeskit", "--help"], capture_output=True, text=True, check=True)
    for command in ("layer", "local", "demo"):
        assert command in result.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"pipeskit {__version__}"


def test_the_demo_port_comes_from_the_flag_else_the_environment() -> None:
    parser = build_parser()
    unset = parser.parse_args(["demo"]).port
    assert unset is None
    assert LocalAWSSettings.from_env({"PIPESKIT_LOCAL_PORT": "4600"}, port=unset).port == 4600
    flagged = parser.parse_args(["demo", "--port", "4700"]).port
    assert LocalAWSSettings.from_env({"PIPESKIT_LOCAL_PORT": "4600"}, port=flagged).port == 4700


def test_the_demo_outside_a_deployment_refuses_before_starting_anything(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "missing cdk.json, infra, orchestration" in err and "make demo" in err
