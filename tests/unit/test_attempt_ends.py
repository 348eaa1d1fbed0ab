"""Lambda's START and REPORT lines tell when each attempt of an asynchronous invocation ended, and how."""

from __future__ import annotations

import json

import pytest

from pipeskit.attempt_ends import AttemptEndWatcher, function_logs_shape, platform_line

RID = "8f5a-1"


@pytest.mark.parametrize(
    "line, parsed",
    [
        (f"START RequestId: {RID} Version: $LATEST", ("start", RID, "success", "")),
        (f"REPORT RequestId: {RID}\tDuration: 3.00 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\t"
         "Max Memory Used: 40 MB", ("report", RID, "success", "")),
        (f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
         "Max Memory Used: 40 MB\tStatus: timeout", ("report", RID, "timeout", "")),
        (f"REPORT RequestId: {RID}\tDuration: 9.00 ms\tBilled Duration: 9 ms\tMemory Size: 128 MB\t"
         "Max Memory Used: 40 MB\tStatus: error\tError Type: Runtime.ExitError",
         ("report", RID, "error", "Runtime.ExitError")),
        (json.dumps({"time": "t", "type": "platform.report",
                     "record": {"requestId": RID, "status": "error", "errorType": "Runtime.OutOfMemory"}}),
         ("report", RID, "error", "Runtime.OutOfMemory")),
        (json.dumps({"time": "t", "type": "platform.start", "record": {"requestId": RID}}),
         ("start", RID, "success", "")),
        (f"END RequestId: {RID}", None),
        ("an ordinary line mentioning REPORT RequestId: later", None),
    ],
)  # fmt: skip
def test_platform_lines_are_parsed_in_both_formats(line: str, parsed: tuple | None) -> None:
    assert platform_line(line) == parsed


class _Reader:
    """Pages of FilterLogEvents, as the log reader gives them."""

    def __init__(self, pages: list[list[dict]]) -> None:
        self.pages = pages

    def filter_pages(self, group: str, **_: object):
        yield from self.pages


def test_each_retry_of_a_request_is_its_own_end_with_its_own_start() -> None:
    events = [
        {"eventId": "1", "logStreamName": "s1", "timestamp": 1000, "message": f"START RequestId: {RID} Version: 1"},
        {"eventId": "2", "logStreamName": "s1", "timestamp": 1500,
         "message": f"REPORT RequestId: {RID}\tDuration: 1 ms\tStatus: error\tError Type: ValueError"},
        {"eventId": "3", "logStreamName": "s2", "timestamp": 9000, "message": f"START RequestId: {RID} Version: 1"},
        {"eventId": "4", "logStreamName": "s2", "timestamp": 9100,
         "message": f"REPORT RequestId: {RID}\tDuration: 1 ms"},
        {"eventId": "5", "logStreamName": "s2", "timestamp": 9200, "message": "START RequestId: other Version: 1"},
    ]  # fmt: skip
    watcher = AttemptEndWatcher(_Reader([events[:2], events[2:]]), "/aws/lambda/fn", json_format=False, poll_s=1)
    watcher._since[RID] = 0  # watched, without starting the polling thread
    watcher._ends[RID] = []
    watcher._read(0)
    watcher._read(0)  # read again (the lag window): nothing counted twice
    ends = watcher.ends(RID)
    assert [(e.stream, e.started_ms, e.ended_ms, e.status, e.error_type) for e in ends] == [
        ("s1", 1000, 1500, "error", "ValueError"), ("s2", 9000, 9100, "success", ""),
    ]  # fmt: skip
    assert watcher.ends("other") == []


def test_json_functions_at_warn_write_no_report_lines() -> None:
    assert function_logs_shape({}) == (False, True)
    assert function_logs_shape({"LoggingConfig": {"LogFormat": "JSON", "SystemLogLevel": "INFO"}}) == (True, True)
    assert function_logs_shape({"LoggingConfig": {"LogFormat": "JSON", "SystemLogLevel": "WARN"}}) == (True, False)
