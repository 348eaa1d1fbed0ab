"""Reading an invocation back from CloudWatch Logs: line framing, paging, waiting, the read budget, forwarding;
and ``pipeskit logs`` reading through the same reader."""

import json
import re
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from pipeskit.cloudwatch_logs import InvocationLogReader, LogForwarder, is_end_line, is_start_line, readable_record
from pipeskit.errors import LogsNotReadableError
from pipeskit.invocation import LambdaInvocation
from pipeskit.rate_limit import RateBudget
from pipeskit.settings import LogsReaderSettings

RID = "8f5c1f9e-1111-4c2b-9d55-0123456789ab"


@pytest.mark.parametrize(
    "line, start, end",
    [
        (f"START RequestId: {RID} Version: $LATEST", True, False),
        (f"END RequestId: {RID}", False, True),
        ("END RequestId: 00000000-0000-0000-0000-000000000000", False, False),
        (json.dumps({"time": "t", "type": "platform.start", "record": {"requestId": RID}}), True, False),
        (json.dumps({"time": "t", "type": "platform.runtimeDone", "record": {"requestId": RID}}), False, True),
        (json.dumps({"time": "t", "type": "platform.report", "record": {"requestId": "other"}}), False, False),
        (f"user printed START RequestId: {RID}", False, False),
    ],
)
def test_invocation_framing_in_text_and_json_log_formats(line: str, start: bool, end: bool) -> None:
    assert is_start_line(line, RID) is start
    assert is_end_line(line, RID) is end


class _Log:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def __getattr__(self, level: str):  # info, warning, error, critical
        return lambda message: self.records.append((level, message))


def test_forwarder_batches_ordinary_lines_and_keeps_warnings_apart() -> None:
    log = _Log()
    forwarder = LogForwarder(log, "[fn rid]", batch_bytes=25)  # type: ignore[arg-type]
    for line in ["a" * 10, "b" * 10, "c" * 10, json.dumps({"level": "ERROR", "message": "boom"}), "d"]:
        forwarder.add(line)
    forwarder.flush()
    assert [level for level, _ in log.records] == ["info", "error", "info"]
    assert log.records[0][1] == "[fn rid] log lines:\n" + "\n".join(["a" * 10, "b" * 10, "c" * 10])
    assert log.records[1] == ("error", "[fn rid] ERROR boom")
    assert forwarder.forwarded == 5


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (  # Lambda's JSON log format, a logger call with fields of its own
            {"timestamp": "t", "level": "INFO", "message": "summarized", "logger": "root", "requestId": "r", "rows": 3},
            ("INFO", 'INFO summarized {"rows": 3}'),
        ),
        (  # Powertools, logger.exception: the traceback once, as it was formatted
            {"level": "ERROR", "location": "handler:9", "message": "failed", "service": "s", "timestamp": "t",
             "exception": "Traceback (most recent call last):\n  ...\nValueError: boom",
             "exception_name": "ValueError"},
            ("ERROR", "ERROR failed\nTraceback (most recent call last):\n  ...\nValueError: boom"),
        ),
        (  # the runtime's record of an unhandled error, in the JSON log format
            {"timestamp": "t", "level": "ERROR", "message": {"errorMessage": "boom", "errorType": "ValueError",
             "requestId": "r", "stackTrace": ["  File \"h.py\", line 3\n", "    raise\n"]}},
            ("ERROR", 'ERROR ValueError: boom\n  File "h.py", line 3\n    raise'),
        ),
    ],
)  # fmt: skip
def test_structured_records_are_forwarded_as_readable_text(record: dict[str, Any], expected: tuple[str, str]) -> None:
    assert readable_record(json.dumps(record)) == expected
    assert readable_record("plain text") == (None, "plain text")


# --- reading a stream and finding a request (the API answers stubbed with botocore's Stubber) -------

GROUP, STREAM = "/aws/lambda/fn", "2025/01/31/[$LATEST]0123456789abcdef"
STARTED_MS = 1_700_000_000_000
INVOCATION = LambdaInvocation(function_name="fn", request_id=RID, payload=b"", started_ms=STARTED_MS)
READ = {"logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": True, "startTime": STARTED_MS - 5_000}


def _client() -> Any:
    return boto3.client(
        "logs", region_name="us-east-1", endpoint_url="https://logs.us-east-1.amazonaws.com",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )  # fmt: skip


def _reader(logs: Any, budget: RateBudget | None = None, **settings: Any) -> InvocationLogReader:
    settings = {"poll_interval_s": 0.0, "logs_budget_scope": "process", **settings}
    return InvocationLogReader(logs, object(), LogsReaderSettings(**settings), budget or RateBudget(1_000))


def _page(*messages: str, token: str) -> dict[str, Any]:
    events = [{"timestamp": STARTED_MS + i, "message": m, "ingestionTime": STARTED_MS} for i, m in enumerate(messages)]
    return {"events": events, "nextForwardToken": token, "nextBackwardToken": "b/0"}


def _platform(kind: str, request_id: str = RID) -> str:
    return json.dumps({"time": "2025-01-31T12:00:00.000Z", "type": kind, "record": {"requestId": request_id}})


def test_a_stream_is_read_forward_following_the_token_until_it_repeats() -> None:
    logs = _client()
    reader = _reader(logs)
    cursor = reader.stream(GROUP, STREAM, STARTED_MS)
    start = {**READ, "startTime": STARTED_MS}
    with Stubber(logs) as stub:
        stub.add_response("get_log_events", _page("a", token="f/1"), start)
        stub.add_response("get_log_events", _page("b", "c", token="f/2"), {**start, "nextToken": "f/1"})
        stub.add_response("get_log_events", _page(token="f/2"), {**start, "nextToken": "f/2"})  # the end: it repeats
        assert [[e["message"] for e in page] for page in cursor.pages()] == [["a"], ["b", "c"], []]
        assert (cursor.token, cursor.found) == ("f/2", True)
        stub.add_response("get_log_events", _page("d", token="f/3"), {**start, "nextToken": "f/2"})
        stub.add_response("get_log_events", _page(token="f/3"), {**start, "nextToken": "f/3"})
        assert [[e["message"] for e in page] for page in cursor.pages()] == [["d"], []], "read again from where it was"
        stub.assert_no_pending_responses()


def test_an_invocations_lines_are_those_between_its_start_and_end_lines_in_the_text_format() -> None:
    logs = _client()
    pages = [
        _page("END RequestId: previous", "REPORT RequestId: previous", f"START RequestId: {RID} Version: $LATEST",
              "one\ntwo", token="f/1"),
        _page(token="f/2"),  # empty: caught up for now, read again
        _page("three", f"END RequestId: {RID}", f"REPORT RequestId: {RID}  Duration: 1.00 ms", "after", token="f/3"),
    ]  # fmt: skip
    with Stubber(logs) as stub:
        stub.add_response("get_log_events", pages[0], READ)
        stub.add_response("get_log_events", pages[1], {**READ, "nextToken": "f/1"})
        stub.add_response("get_log_events", pages[2], {**READ, "nextToken": "f/2"})
        assert list(_reader(logs).lines(GROUP, STREAM, INVOCATION)) == ["one", "two", "three"]
        stub.assert_no_pending_responses()


def test_with_the_functions_start_time_reading_begins_there_not_seconds_before() -> None:
    """The envelope's ``started_ms``: the read starts at the invocation's own first line, so a warm
    stream's earlier invocations are never paged; its START line, stamped in the same millisecond, is
    skipped, the lines after it are the invocation's."""
    logs = _client()
    started = STARTED_MS + 700
    page = _page(f"START RequestId: {RID} Version: $LATEST", "one", f"END RequestId: {RID}", token="f/1")
    with Stubber(logs) as stub:
        stub.add_response("get_log_events", page, {**READ, "startTime": started})
        assert list(_reader(logs).lines(GROUP, STREAM, INVOCATION, started_ms=started)) == ["one"]
        stub.assert_no_pending_responses()
    lines_only = _page("two", f"END RequestId: {RID}", token="f/1")  # its START line came a millisecond before
    with Stubber(logs) as stub:
        stub.add_response("get_log_events", lines_only, {**READ, "startTime": started})
        assert list(_reader(logs).lines(GROUP, STREAM, INVOCATION, started_ms=started)) == ["two"]


def test_an_invocations_lines_in_the_json_format_are_bounded_by_its_platform_records() -> None:
    logs = _client()
    record = json.dumps({"timestamp": "t", "level": "INFO", "message": "hello", "requestId": RID})
    page = _page(
        _platform("platform.report", "previous"), json.dumps({"type": "platform.initStart", "record": {}}),
        _platform("platform.start"), record, "printed", _platform("platform.runtimeDone"), _platform("platform.report"),
        token="f/1",
    )  # fmt: skip
    with Stubber(logs) as stub:
        stub.add_response("get_log_events", page, READ)
        assert list(_reader(logs).lines(GROUP, STREAM, INVOCATION)) == [record, "printed"]


def test_a_stream_that_appears_late_is_waited_for() -> None:
    logs = _client()
    with Stubber(logs) as stub:
        stub.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.")
        stub.add_response(
            "get_log_events", _page(f"START RequestId: {RID}", "late", f"END RequestId: {RID}", token="f/1")
        )
        assert list(_reader(logs).lines(GROUP, STREAM, INVOCATION)) == ["late"]
        stub.assert_no_pending_responses()


def test_an_end_line_that_never_comes_fails_naming_the_stream() -> None:
    logs = _client()
    read: list[str] = []
    with Stubber(logs) as stub, pytest.raises(LogsNotReadableError) as failed:
        stub.add_response("get_log_events", _page(f"START RequestId: {RID}", "one", token="f/1"), READ)
        stub.add_response("get_log_events", _page(token="f/1"), {**READ, "nextToken": "f/1"})
        for line in _reader(logs, ingestion_timeout_s=0.0).lines(GROUP, STREAM, INVOCATION):
            read.append(line)
    assert read == ["one"]
    assert str(failed.value) == (
        f"request {RID}: its END line did not appear in {GROUP}/{STREAM} within 0 s; messages after the last line "
        "read are missing. Raise PIPESKIT_INGESTION_TIMEOUT_S if ingestion is slow."
    )


def test_a_stream_that_never_appears_fails_naming_it() -> None:
    logs = _client()
    with Stubber(logs) as stub, pytest.raises(LogsNotReadableError, match=f"the log stream {re.escape(GROUP)}/"):
        stub.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.")
        next(_reader(logs, ingestion_timeout_s=0.0).lines(GROUP, STREAM, INVOCATION))


def test_find_stream_follows_next_token_and_checks_the_patterns_match() -> None:
    logs = _client()
    search = {"logGroupName": GROUP, "filterPattern": f'"{RID}"', "startTime": STARTED_MS - 5_000, "limit": 50}
    elsewhere = {"logStreamName": "other", "timestamp": STARTED_MS, "message": "a word of the id, not the id"}
    with Stubber(logs) as stub:
        stub.add_response("filter_log_events", {"events": [elsewhere], "nextToken": "n/1"}, search)
        stub.add_response(
            "filter_log_events",
            {"events": [{"logStreamName": STREAM, "timestamp": STARTED_MS, "message": f"START RequestId: {RID}"}]},
            {**search, "nextToken": "n/1"},
        )
        assert _reader(logs).find_stream(GROUP, INVOCATION) == STREAM
        stub.assert_no_pending_responses()


def test_find_stream_waits_for_a_group_and_a_request_that_appear_late() -> None:
    logs = _client()
    search = {"logGroupName": GROUP, "filterPattern": f'"{RID}"', "startTime": STARTED_MS - 5_000, "limit": 50}
    with Stubber(logs) as stub:
        stub.add_client_error(
            "filter_log_events", "ResourceNotFoundException", "The specified log group does not exist."
        )
        stub.add_response("filter_log_events", {"events": []}, search)
        stub.add_response(
            "filter_log_events", {"events": [{"logStreamName": STREAM, "message": f"START RequestId: {RID}"}]}, search
        )
        assert _reader(logs).find_stream(GROUP, INVOCATION) == STREAM
        stub.assert_no_pending_responses()
