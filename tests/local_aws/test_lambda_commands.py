"""`pipeskit invoke` and `pipeskit logs` against the local AWS, through `pipeskit.cli.main`."""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from typing import Any

import pytest

from pipeskit.cli import main
from pipeskit.lambda_commands import logs_clients_from_env, logs_command
from tests.local_aws.conftest import log_messages, unique, wait_until

ECHO = """
import logging, time
def handler(event, context):
    print(event.get("marker", "no marker"))
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError(event["fail"])
    return event
"""

TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  \[\$LATEST\][0-9a-f]{8}  .*")


@pytest.fixture
def aws_env(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment points boto3 at the local AWS, as `pipeskit local` tells a shell to."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in local_aws.env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def echo(deploy: Any, aws_env: None) -> str:
    """A function that prints its event's marker and returns its event (raises on ``fail``)."""
    return deploy(ECHO, timeout=30)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``pipeskit ARGV``: exit status, stdout, stderr."""
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def invoke_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, _ = run(capsys, "invoke", *argv, "--json")
    assert code in (0, 1), out
    return json.loads(out)


def marker() -> str:
    return f"marker-{uuid.uuid4().hex[:12]}"


# --- pipeskit invoke ----------------------------------------------------------------------------


def test_invoke_prints_the_response_of_an_inline_and_a_file_payload(echo, capsys, tmp_path):
    event = {"marker": marker(), "nested": {"values": [1, 2]}}
    code, out, err = run(capsys, "invoke", echo, "--payload", json.dumps(event))
    assert code == 0, err
    assert json.loads(out) == event
    assert out.startswith("{\n  "), "indented JSON"
    request_id = re.search(r"request id (\S+?),", err)[1]
    assert f"pipeskit logs {echo} --request-id {request_id}" in err
    assert "version $LATEST" in err

    path = tmp_path / "event.json"
    path.write_text(json.dumps({"from": "file"}))
    code, out, _ = run(capsys, "invoke", echo, "--payload", f"@{path}")
    assert code == 0
    assert json.loads(out) == {"from": "file"}

    code, out, _ = run(capsys, "invoke", echo)
    assert code == 0
    assert json.loads(out) == {}, "the default payload is {}"


def test_invoke_json_is_one_object_with_the_log_tail(echo, capsys):
    event = {"marker": marker()}
    code, out, _ = run(capsys, "invoke", echo, "--payload", json.dumps(event), "--json")
    assert code == 0
    document = json.loads(out)
    request_id = document["request_id"]
    assert document["function"] == echo
    assert document["status_code"] == 200
    assert document["executed_version"] == "$LATEST"
    assert document["function_error"] is None
    assert document["payload"] == event
    assert f"START RequestId: {request_id}" in document["log_tail"]
    assert event["marker"] in document["log_tail"]


def test_a_failing_function_exits_1_and_shows_its_error(echo, capsys):
    code, out, err = run(capsys, "invoke", echo, "--payload", '{"fail": "boom"}')
    assert code == 1
    assert json.loads(out)["errorType"] == "ValueError"
    assert "failed (Unhandled)" in err and "ValueError: boom" in err
    assert "REPORT RequestId:" in err, "the end of its log"

    document = invoke_json(capsys, echo, "--payload", '{"fail": "boom"}')
    assert document["function_error"] == "Unhandled"
    assert document["payload"]["errorType"] == "ValueError"
    assert document["payload"]["errorMessage"] == "boom"


def test_an_async_invoke_answers_202_and_its_lines_can_be_read(echo, capsys):
    code, out, err = run(capsys, "invoke", echo, "--async", "--payload", json.dumps({"marker": "async-one"}))
    assert code == 0
    request_id = out.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    assert "202" in err and f"--request-id {request_id}" in err

    document = invoke_json(capsys, echo, "--async", "--payload", json.dumps({"marker": "async-two"}))
    assert document == {"function": echo, "request_id": document["request_id"], "status_code": 202}

    def complete_lines() -> str | None:
        code, out, _ = run(capsys, "logs", echo, "--request-id", request_id)
        return out if code == 0 and f"REPORT RequestId: {request_id}" in out else None

    lines = wait_until(complete_lines, timeout=30, interval=0.2)
    assert "async-one" in lines and "async-two" not in lines


def test_invalid_json_invokes_nothing(echo, capsys, logs, tmp_path):
    code, out, err = run(capsys, "invoke", echo, "--payload", "{'single': 'quotes'}")
    assert code == 2
    assert out == ""
    assert "--payload \"{'single': 'quotes'}\" is not valid JSON" in err
    assert "@FILE" in err and "Nothing was invoked" in err

    path = tmp_path / "bad.json"
    path.write_text("{not json")
    code, _, err = run(capsys, "invoke", echo, "--payload", f"@{path}")
    assert code == 2
    assert f"the payload file '{path}' is not valid JSON" in err

    code, _, err = run(capsys, "invoke", echo, "--payload", f"@{tmp_path / 'missing.json'}")
    assert code == 2
    assert "cannot read the payload file" in err and "missing.json" in err

    time.sleep(0.5)
    assert log_messages(logs, f"/aws/lambda/{echo}") == [], "the function never ran"


def test_an_unknown_function_exits_2_naming_it(aws_env, capsys, local_aws):
    name = unique("no-such-function")
    code, out, err = run(capsys, "invoke", name)
    assert code == 2
    assert out == ""
    assert f"error: function {name} not found in us-east-1 (endpoint {local_aws.endpoint_url})" in err

    code, _, err = run(capsys, "logs", name)
    assert code == 2
    assert f"function {name} not found" in err and f"/aws/lambda/{name}" in err


# --- pipeskit logs ------------------------------------------------------------------------------


def test_logs_of_a_request_are_exactly_its_lines(echo, capsys):
    first, second = marker(), marker()
    first_id = invoke_json(capsys, echo, "--payload", json.dumps({"marker": first}))["request_id"]
    second_id = invoke_json(capsys, echo, "--payload", json.dumps({"marker": second}))["request_id"]

    code, out, err = run(capsys, "logs", echo, "--request-id", first_id)
    assert code == 0, err
    lines = out.splitlines()
    assert all(TEXT_LINE.fullmatch(line) for line in lines), lines
    messages = [line.split("  ", 2)[2] for line in lines]
    assert messages[0] == f"START RequestId: {first_id} Version: $LATEST"
    assert messages[1] == first
    assert messages[2] == f"END RequestId: {first_id}"
    assert messages[3].startswith(f"REPORT RequestId: {first_id}\t")
    assert len(messages) == 4
    assert second not in out and second_id not in out

    code, out, _ = run(capsys, "logs", echo, "--request-id", second_id, "--json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["message"] for r in records][1] == second
    assert first not in out
    assert {r["log_stream"] for r in records} == {records[0]["log_stream"]}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["timestamp"]) for r in records)


def test_logs_of_a_request_in_the_json_log_format(deploy, aws_env, capsys):
    name = deploy(
        "import logging\n"
        "logging.getLogger().setLevel(logging.INFO)\n"
        "def handler(event, context):\n"
        "    print(event['marker'])\n"
        "    logging.getLogger().info('logged %s', event['marker'])\n",
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"},
    )
    first, second = marker(), marker()
    first_id = invoke_json(capsys, name, "--payload", json.dumps({"marker": first}))["request_id"]
    invoke_json(capsys, name, "--payload", json.dumps({"marker": second}))

    code, out, _ = run(capsys, "logs", name, "--request-id", first_id, "--json")
    assert code == 0
    messages = [json.loads(line)["message"] for line in out.splitlines()]
    start, *body, report = (json.loads(m) if m.startswith("{") else m for m in messages)
    assert (start["type"], start["record"]["requestId"]) == ("platform.start", first_id)
    assert (report["type"], report["record"]["requestId"]) == ("platform.report", first_id)
    assert first in body, "print() output carries no request id, and is shown"
    assert any(isinstance(b, dict) and b.get("requestId") == first_id and first in b["message"] for b in body)
    assert second not in out


def test_logs_follow_of_a_request_stops_after_its_report_line(echo, capsys):
    code, out, _ = run(capsys, "invoke", echo, "--async", "--payload", json.dumps({"marker": "slow", "sleep": 2}))
    assert code == 0
    request_id = out.strip()
    result: dict[str, Any] = {}

    def follow() -> None:
        result["code"] = main(["logs", echo, "--request-id", request_id, "--follow"])

    thread = threading.Thread(target=follow, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "--follow --request-id did not stop after the REPORT line"
    assert result["code"] == 0
    assert time.monotonic() - started >= 1.0, "it waited for the running invocation"
    lines = capsys.readouterr().out.splitlines()
    assert "slow" in lines[1]
    assert f"REPORT RequestId: {request_id}" in lines[-1]


def test_logs_without_a_request_id_show_recent_lines_in_order(echo, capsys):
    markers = [marker(), marker()]
    for value in markers:
        assert invoke_json(capsys, echo, "--payload", json.dumps({"marker": value}))["function_error"] is None

    code, out, err = run(capsys, "logs", echo)
    assert code == 0, err
    lines = out.splitlines()
    assert all(TEXT_LINE.fullmatch(line) for line in lines), lines
    assert lines[0].split("  ", 2)[2].startswith("INIT_START")
    timestamps = [line.split("  ", 1)[0] for line in lines]
    assert timestamps == sorted(timestamps), "time order"
    positions = [next(i for i, line in enumerate(lines) if line.endswith(f"  {value}")) for value in markers]
    assert positions == sorted(positions)

    code, out, _ = run(capsys, "logs", echo, "--since", "1h", "--json")
    assert code == 0
    assert markers[1] in [json.loads(line)["message"] for line in out.splitlines()]


def test_logs_follow_prints_new_lines_until_ctrl_c(echo, local_aws, capsys):
    later = marker()
    out, err = io.StringIO(), io.StringIO()
    pauses = []

    def sleep(seconds: float) -> None:  # the poll's pause: invoke once, then wait for the line, then Ctrl-C
        pauses.append(seconds)
        if len(pauses) == 1:
            assert main(["invoke", echo, "--payload", json.dumps({"marker": later})]) == 0
        elif later in out.getvalue() or len(pauses) > 50:
            raise KeyboardInterrupt
        time.sleep(0.1)

    assert main(["invoke", echo, "--payload", json.dumps({"marker": "before"})]) == 0
    code = logs_command(
        local_aws.client("logs"), local_aws.client("lambda"), echo, follow=True, out=out, err=err, sleep=sleep
    )
    assert code == 0, "Ctrl-C ends --follow quietly"
    lines = out.getvalue().splitlines()
    messages = [line.split("  ", 2)[2] for line in lines]
    assert messages.index("before") < messages.index(later)
    assert len(lines) == len(set(lines)), "no event printed twice"


def test_logs_of_a_function_that_never_ran(echo, capsys):
    code, out, err = run(capsys, "logs", echo)
    assert code == 2
    assert out == ""
    assert f"log group /aws/lambda/{echo} does not exist: {echo} has not logged yet" in err

    code, _, err = run(capsys, "logs", echo, "--request-id", str(uuid.uuid4()))
    assert code == 2 and f"/aws/lambda/{echo}" in err


def test_logs_read_the_configured_log_group(deploy, aws_env, capsys):
    group = f"/custom/{unique('group')}"
    name = deploy(ECHO, LoggingConfig={"LogFormat": "Text", "LogGroup": group})
    value = marker()
    request_id = invoke_json(capsys, name, "--payload", json.dumps({"marker": value}))["request_id"]
    code, out, err = run(capsys, "logs", name, "--request-id", request_id)
    assert code == 0, err
    assert value in out


def test_logs_back_off_when_cloudwatch_throttles(echo, local_aws, capsys):
    """``pipeskit logs``' own client (botocore's standard retries) backs off; the command succeeds."""
    value = marker()
    request_id = invoke_json(capsys, echo, "--payload", json.dumps({"marker": value}))["request_id"]
    logs_client, lambda_client = logs_clients_from_env()
    throttled: list[str] = []

    def count_throttled(response: Any = None, **_: Any) -> None:
        if response is not None and response[1].get("Error", {}).get("Code") == "ThrottlingException":
            throttled.append("throttled")

    logs_client.meta.events.register("needs-retry.logs", count_throttled)
    out, err = io.StringIO(), io.StringIO()
    with local_aws.override(logs_read_tps=1):
        time.sleep(1.0)  # start with an empty one-second window
        code = logs_command(logs_client, lambda_client, echo, request_id=request_id, out=out, err=err)
    assert code == 0, err.getvalue()
    assert throttled, "the second read in the same second was throttled and retried"
    assert value in out.getvalue() and f"REPORT RequestId: {request_id}" in out.getvalue()


def test_logs_follow_waits_out_throttling_past_the_clients_retries(echo, local_aws, capsys):
    value = marker()
    request_id = invoke_json(capsys, echo, "--payload", json.dumps({"marker": value}))["request_id"]
    out, err = io.StringIO(), io.StringIO()
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    with local_aws.override(logs_read_tps=1):
        time.sleep(1.0)  # start with an empty one-second window
        code = logs_command(
            local_aws.client("logs", retries=0), local_aws.client("lambda"), echo,
            request_id=request_id, follow=True, out=out, err=err, sleep=sleep,
        )  # fmt: skip
    assert code == 0
    assert pauses, "the second read in the same second was throttled, waited out and sent again"
    assert value in out.getvalue() and f"REPORT RequestId: {request_id}" in out.getvalue()


# --- what AWS refused: one line, exit 2 ----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "action"),
    [
        (["adopt", "{fn}"], "pipeskit adopt (GetFunctionConfiguration)"),
        (["adopt", "{fn}", "--undo"], "pipeskit adopt (GetFunctionConfiguration)"),
        (["invoke", "{fn}"], "invoking {fn}"),
    ],
)
def test_access_denied_is_one_line_naming_the_call_and_what_to_check(
    argv: list[str], action: str, echo: str, local_aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import boto3

    with local_aws.override(iam=True):
        iam = local_aws.client("iam")
        user = unique("no-grants")
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # not the credentials an earlier client resolved
        code, _out, err = run(capsys, *[part.format(fn=echo) for part in argv])
    assert code == 2
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert f"error: {action.format(fn=echo)}: AWS refused" in err and "(AccessDeniedException: " in err
    assert "To fix it, " in err


def test_logs_of_a_request_whose_init_failed_show_its_platform_lines(deploy, aws_env, capsys, logs):
    """Lambda reports the invocation that waited for a failed init under its request id: both
    INIT_REPORTs, then START, END and a REPORT with the init's status and error type."""
    name = deploy("import not_installed\ndef handler(event, context):\n    return 1\n")
    document = invoke_json(capsys, name)
    request_id = document["request_id"]
    assert document["function_error"] == "Unhandled"

    code, out, err = run(capsys, "logs", name, "--request-id", request_id)
    assert code == 0, err
    messages = [line.split("  ", 2)[2] for line in out.splitlines()]
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert messages[1] == f"END RequestId: {request_id}"
    assert re.fullmatch(
        rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\t"
        r"Max Memory Used: \d+ MB\tStatus: error\tError Type: Runtime.ImportModuleError",
        messages[2],
    ), messages[2]
    assert len(messages) == 3

    # in the stream, the invocation follows the init attempts' own lines, as in Lambda
    stream = log_messages(logs, f"/aws/lambda/{name}")
    start = stream.index(messages[0])
    assert "Phase: invoke\tStatus: error\tError Type: Runtime.ImportModuleError" in stream[start - 1]
    assert stream[start:] == messages


def test_logs_of_a_request_whose_init_failed_in_the_json_log_format(deploy, aws_env, capsys):
    name = deploy(
        "import not_installed\ndef handler(event, context):\n    return 1\n",
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"},
    )
    request_id = invoke_json(capsys, name)["request_id"]
    code, out, _ = run(capsys, "logs", name, "--request-id", request_id, "--json")
    assert code == 0
    start, report = (json.loads(json.loads(line)["message"]) for line in out.splitlines())
    assert (start["type"], start["record"]["requestId"]) == ("platform.start", request_id)
    assert (report["type"], report["record"]["requestId"]) == ("platform.report", request_id)
    assert (report["record"]["status"], report["record"]["errorType"]) == ("error", "Runtime.ImportModuleError")
