"""The read budget over real reads, and ``pipeskit logs`` over the same reader, against the local AWS's
CloudWatch Logs (throttling answered by a hook on the client, as CloudWatch answers over its quota)."""

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from pipeskit import rate_limit
from pipeskit.cloudwatch_logs import READ_OPERATIONS, InvocationLogReader
from pipeskit.invocation import LambdaInvocation
from pipeskit.lambda_commands import LambdaCommandError, logs_clients_from_env, logs_command
from pipeskit.local.testing import counting_budget
from pipeskit.rate_limit import RateBudget
from pipeskit.settings import LogsReaderSettings

RID = "8f5c1f9e-1111-4c2b-9d55-0123456789ab"
GROUP, STREAM = "/aws/lambda/fn", "2025/01/31/[$LATEST]0123456789abcdef"


def _reader(logs: Any, budget: RateBudget | None = None, **settings: Any) -> InvocationLogReader:
    settings = {"poll_interval_s": 0.0, "logs_budget_scope": "process", **settings}
    return InvocationLogReader(logs, object(), LogsReaderSettings(**settings), budget or RateBudget(1_000))




class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _throttle(client: Any, times: int) -> list[str]:
    """Answer the client's first ``times`` read requests with ThrottlingException, as CloudWatch does
    over its quota; every request sent, answered or not, is listed in the returned list."""
    sent: list[str] = []
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()

    def answer(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        sent.append(event_name.rpartition(".")[2])
        if len(sent) > times:
            return None  # on to moto
        headers = {"x-amzn-RequestId": f"throttled-{len(sent)}", "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, headers, _Body(body))

    for operation in READ_OPERATIONS:
        client.meta.events.register(f"before-send.logs.{operation}", answer)
    return sent


def _write_invocation(logs: Any, *lines: str) -> None:
    """An invocation of ``fn`` in its log group, made anew: START, ``lines``, END, REPORT (now)."""
    now = int(time.time() * 1000)
    try:
        logs.delete_log_group(logGroupName=GROUP)
    except logs.exceptions.ResourceNotFoundException:
        pass
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    messages = [f"START RequestId: {RID} Version: $LATEST", *lines, f"END RequestId: {RID}",
                f"REPORT RequestId: {RID}\tDuration: 1.00 ms"]  # fmt: skip
    events = [{"timestamp": now + i, "message": message} for i, message in enumerate(messages)]
    logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=events)


@pytest.fixture
def aws_client(local_aws: Any) -> Any:
    """A client of the session's local AWS making ``attempts`` attempts per call."""

    def _make(service: str, attempts: int = 1) -> Any:
        return local_aws.client(service, retries=attempts - 1)

    return _make


def test_each_read_request_takes_one_token_botocores_retries_included(
    aws_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    logs = aws_client("logs", attempts=3)
    _write_invocation(logs, "hello")
    budget = counting_budget()
    reader = _reader(logs, budget)
    sent = _throttle(reader.logs_client, times=2)  # the budget's hook comes first: registered when the reader met it
    invocation = LambdaInvocation(function_name="fn", request_id=RID, payload=b"", started_ms=int(time.time() * 1000))
    stream = reader.find_stream(GROUP, invocation)  # throttled twice, retried by botocore, answered
    assert list(reader.lines(GROUP, stream, invocation)) == ["hello"]
    assert sent == ["FilterLogEvents"] * 3 + ["GetLogEvents"]
    assert budget.taken == len(sent), "CloudWatch counts every attempt against the quota"


def test_pipeskit_logs_reads_through_the_budget(aws_client: Any) -> None:
    logs = aws_client("logs")
    _write_invocation(logs, "hello")
    sent = _throttle(logs, times=0)
    budget = counting_budget()
    out, err = io.StringIO(), io.StringIO()
    assert logs_command(logs, aws_client("lambda"), "fn", request_id=RID, out=out, err=err, budget=budget) == 0
    assert (
        logs_command(logs, aws_client("lambda"), "fn", since=time.time() - 60, out=out, err=err, budget=budget) == 0
    )
    assert [line.split("  ", 2)[2] for line in out.getvalue().splitlines()].count("hello") == 2
    assert sent == ["FilterLogEvents", "GetLogEvents", "FilterLogEvents"]
    assert budget.taken == len(sent)


def test_pipeskit_logs_clients_from_the_environment_take_the_settings_budget(
    local_aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in local_aws.env().items():  # the command's own clients: the local AWS, by the environment
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PIPESKIT_LOGS_BUDGET_SCOPE", "process")
    monkeypatch.setenv("PIPESKIT_LOGS_READ_TPS", "997")
    budget = counting_budget()
    monkeypatch.setitem(rate_limit._shared, (997.0, ""), budget)  # the budget the settings name, in this process
    logs, lambda_client = logs_clients_from_env()
    _write_invocation(logs, "hello")
    logs.filter_log_events(logGroupName=GROUP)
    assert budget.taken == 1, "the client itself is metered, whoever reads with it"
    out, err = io.StringIO(), io.StringIO()
    assert logs_command(logs, lambda_client, "fn", request_id=RID, out=out, err=err) == 0
    assert "hello" in out.getvalue()
    assert budget.taken == 3, "then FilterLogEvents and GetLogEvents, each through the budget"


def test_pipeskit_logs_follow_waits_out_throttling_without_end(aws_client: Any) -> None:
    logs = aws_client("logs")  # botocore gives up at once: the command's own patience is tested
    _write_invocation(logs, "hello")
    sent = _throttle(logs, times=8)
    pauses: list[float] = []
    out, err = io.StringIO(), io.StringIO()
    budget = counting_budget()
    code = logs_command(
        logs, aws_client("lambda"), "fn", request_id=RID, follow=True, out=out, err=err, sleep=pauses.append,
        budget=budget,
    )  # fmt: skip
    assert code == 0
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0], "backing off up to 30 s, never giving up"
    assert [line.split("  ", 2)[2] for line in out.getvalue().splitlines()][1] == "hello"
    assert budget.taken == len(sent) == 10


def test_pipeskit_logs_without_follow_fails_clearly_when_still_throttled(aws_client: Any) -> None:
    logs = aws_client("logs")
    _write_invocation(logs, "hello")
    _throttle(logs, times=1)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(LambdaCommandError) as failed:
        logs_command(logs, aws_client("lambda"), "fn", request_id=RID, out=out, err=err, budget=counting_budget())
    assert str(failed.value) == f"reading {GROUP}: AWS answered ThrottlingException: Rate exceeded"
    assert out.getvalue() == ""
