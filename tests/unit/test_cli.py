"""The one `pipeskit` command: its commands, its version, its options."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeskit import __version__
from pipeskit.cli import build_parser, main


def test_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "pipeskit", "--help"], capture_output=True, text=True, check=True)
    for command in ("layer", "local", "adopt", "invoke", "logs", "cdk"):
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


# --- invalid flags and unusable AWS settings: one line, exit 2 ---------------------------------------


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--port", "99999"], "--port 99999 is not valid: the maximum is 65535 (allowed: 0 to 65535)"),
        (["--port", "-1"], "--port -1 is not valid: the minimum is 0 (allowed: 0 to 65535)"),
        (["--invoke-throttle-rate", "2"], "--invoke-throttle-rate 2.0 is not valid: the maximum is 1.0"),
        (["--s3-slow-down-rate", "-0.5"], "--s3-slow-down-rate -0.5 is not valid: the minimum is 0.0"),
        (["--s3-slow-down-per-key", "-1"], "--s3-slow-down-per-key -1 is not valid: the minimum is 0"),
        (["--log-ingestion-delay", "-1"], "--log-ingestion-delay -1.0 is not valid: the minimum is 0.0"),
        (["--log-stream-delay", "-1"], "--log-stream-delay -1.0 is not valid: the minimum is 0.0"),
        (["--logs-read-tps", "-3"], "--logs-read-tps -3.0 is not valid: the minimum is 0.0"),
    ],
)
def test_an_invalid_local_flag_is_named_as_the_flag(
    argv: list[str], said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("PIPESKIT_LOCAL_PORT", "PIPESKIT_LOCAL_INVOKE_THROTTLE_RATE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["local", *argv]) == 2
    err = _one_error_line(capsys)
    assert said in err and f"leave {argv[0]} out for the default" in err
    assert "PIPESKIT_LOCAL_" not in err


def test_an_invalid_local_variable_is_named_as_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPESKIT_LOCAL_PORT", "70000")
    assert main(["local"]) == 2
    assert "PIPESKIT_LOCAL_PORT=70000 is not valid: the maximum is 65535" in _one_error_line(capsys)


def test_every_local_flag_sets_the_setting_it_is_named_by() -> None:
    from pipeskit.local.cli import FLAG_SETTINGS
    from pipeskit.local.settings import LocalAWSSettings

    parser = build_parser()
    [local] = [action.choices["local"] for action in parser._subparsers._group_actions]  # type: ignore[union-attr]
    options = {option: action.dest for action in local._actions for option in action.option_strings}
    fields = set(LocalAWSSettings.env_vars())
    for dest, field in FLAG_SETTINGS.items():
        assert options["--" + dest.replace("_", "-")] == dest
        assert field in fields
    settable = {dest for dest in options.values()} - {"help", "verbose"}
    assert settable == set(FLAG_SETTINGS), "a local flag whose errors would not name it"


@pytest.fixture
def aws_nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """boto3 with no config files, no profile, keys and a region, one attempt per call (and a new default
    session: the old one cached the credentials it first resolved)."""
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return monkeypatch


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("command", [["adopt", "fn"], ["adopt", "fn", "--undo"], ["adopt", "fn", "--stack", "s"]])
def test_an_unreachable_endpoint_is_one_line_saying_what_to_do(
    command: list[str], aws_nowhere: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_nowhere.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    assert main(command) == 2
    err = _one_error_line(capsys)
    assert "could not connect to the AWS endpoint http://127.0.0.1:" in err
    assert "start `pipeskit local`" in err and "AWS_ENDPOINT_URL" in err


@pytest.mark.parametrize("command", [["adopt", "fn"], ["invoke", "fn"], ["logs", "fn"]])
def test_no_region_is_one_line_saying_what_to_set(
    command: list[str], aws_nowhere: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_nowhere.delenv("AWS_DEFAULT_REGION")
    aws_nowhere.delenv("AWS_REGION", raising=False)
    assert main(command) == 2
    err = _one_error_line(capsys)
    assert "no AWS region is set" in err and "AWS_DEFAULT_REGION" in err


@pytest.mark.parametrize("command", [["adopt", "fn"], ["invoke", "fn"]])
def test_no_credentials_is_one_line_saying_how_to_configure_them(
    command: list[str], aws_nowhere: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_nowhere.delenv("AWS_ACCESS_KEY_ID")
    aws_nowhere.delenv("AWS_SECRET_ACCESS_KEY")
    aws_nowhere.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    assert main(command) == 2
    err = _one_error_line(capsys)
    assert "no AWS credentials were found" in err and "AWS_PROFILE" in err
    assert "export what `pipeskit local` prints" in err


def test_an_unknown_profile_is_one_line(aws_nowhere: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    aws_nowhere.setenv("AWS_PROFILE", "no-such-profile")
    assert main(["adopt", "fn"]) == 2
    err = _one_error_line(capsys)
    assert "The config profile (no-such-profile) could not be found; set AWS_PROFILE to a profile" in err


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
        " For the local AWS, start "
        "`pipeskit local` and export what it prints."
    )
