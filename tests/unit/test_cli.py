"""The one `pipeskit` command: its commands, its version, its options."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from pipeskit import __version__
from pipeskit.cli import build_parser, main


def test_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "pipeskit", "--help"], capture_output=True, text=True, check=True)
    for command in ("layer", "local", "adopt", "invoke", "logs"):
        assert command in result.stdout


def test_the_reference_deployments_demo_is_not_a_library_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo"])
    assert exited.value.code == 2
    assert "invalid choice: 'demo'" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"pipeskit {__version__}"


@pytest.mark.parametrize(
    ("command", "described"),
    [
        ("invoke", ["--payload JSON|@FILE", "@-", "--async", "InvocationType=Event", "--qualifier", "--json",
                    "request_id", "log_tail", "Exit status: 0", "1 when it failed", "AWS_ENDPOINT_URL"]),
        ("logs", ["--request-id ID", "REPORT line", "--follow", "Ctrl-C", "--since DURATION", "30s, 10m, 2h, 1d",
                  "default: 10m", "--json", "ISO-8601", "LoggingConfig.LogGroup"]),
    ],
)  # fmt: skip
def test_invoke_and_logs_help_describe_their_options(
    command: str, described: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for words in described:
        assert words in text, f"pipeskit {command} --help does not mention {words!r}"


def test_logs_since_takes_durations_and_times() -> None:
    parser = build_parser()
    before = time.time()
    since = parser.parse_args(["logs", "fn", "--since", "10m"]).since
    assert before - 600 - 1 < since <= time.time() - 600
    assert parser.parse_args(["logs", "fn", "--since", "2025-01-31T12:00:00Z"]).since == 1738324800.0
    assert parser.parse_args(["logs", "fn"]).since is None, "the command's default: 10 minutes, or the whole group"


def test_logs_refuses_a_malformed_since(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["logs", "fn", "--since", "ten minutes"])
    assert exited.value.code == 2
    assert "'ten minutes' is not a duration or a time: use e.g. 30s, 10m" in capsys.readouterr().err


def test_invoke_refuses_a_payload_that_is_not_json_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")  # no region: any boto3 client would fail
    assert main(["invoke", "fn", "--payload", "{oops}"]) == 2
    err = capsys.readouterr().err
    assert "--payload '{oops}' is not valid JSON" in err and "Nothing was invoked" in err


def test_invoke_says_what_the_resource_says_of_an_unreachable_endpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pipeskit invoke` and `PipesLambdaClient` share one translation of AWS errors: the same line."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert main(["invoke", "my-function"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: invoking my-function: could not connect to the AWS endpoint {endpoint} (region us-east-1). "
        "Nothing was invoked. To fix it, check that it is up and reachable from here, or point the client's "
        "endpoint_url (AWS_ENDPOINT_URL) at the right one; unset, AWS's own endpoint of the region is used."
    )
