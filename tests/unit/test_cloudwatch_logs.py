"""Reading an invocation back from CloudWatch Logs: line framing, message lines, forwarding."""

import json

import pytest

from pipeskit.cloudwatch_logs import LogForwarder, is_end_line, is_start_line

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
    assert forwarder.forwarded == 5
