"""Finding Pipes messages in log lines whatever was printed around them; nothing dropped silently."""

from __future__ import annotations

import json

from pipeskit.message_lines import SPLIT_PIECE_BYTES, Message, Text, Unreadable, scan_lines


def message(method: str = "log", **params: object) -> dict:
    return {"__dagster_pipes_version": "0.1", "method": method, "params": params or {"message": "m", "level": "INFO"}}


def kinds(found: list) -> list:
    return [
        ("message", f.message["method"]) if isinstance(f, Message)
        else ("text", f.line) if isinstance(f, Text)
        else (f.reason, f.method)
        for f in found
    ]


def test_a_whole_line_message_and_ordinary_lines() -> None:
    found = scan_lines(["starting", json.dumps(message()), "done"])
    assert kinds(found) == [("text", "starting"), ("message", "log"), ("text", "done")]


def test_a_message_after_text_printed_without_a_newline() -> None:
    found = scan_lines(["progress 10%...progress 20%..." + json.dumps(message("report_custom_message", payload=1))])
    assert kinds(found) == [("text", "progress 10%...progress 20%..."), ("message", "report_custom_message")]


def test_two_messages_and_text_interleaved_on_one_line() -> None:
    line = json.dumps(message()) + "stdout bit" + json.dumps(message("closed", exception=None))
    assert kinds(scan_lines([line])) == [("message", "log"), ("text", "stdout bit"), ("message", "closed")]


def test_a_message_whose_version_key_is_not_first() -> None:
    reordered = {"method": "log", "params": {"message": "m", "level": "INFO"}, "__dagster_pipes_version": "0.1"}
    assert kinds(scan_lines(["x " + json.dumps(reordered)])) == [("text", "x "), ("message", "log")]


def test_a_torn_line_costs_that_line_only() -> None:
    torn = json.dumps(message())[:-10]
    found = scan_lines([torn, json.dumps(message("closed"))])
    assert kinds(found) == [("torn", "log"), ("message", "closed")]
    assert found[0].text == torn


def test_an_unknown_method_is_not_a_message_and_not_an_error() -> None:
    found = scan_lines([json.dumps(message("future_method")), json.dumps(message())])
    assert kinds(found) == [("unknown-method", "future_method"), ("message", "log")]


def test_a_message_split_over_log_events_is_put_back_together() -> None:
    big = json.dumps(message("report_custom_message", payload="x" * (3 * SPLIT_PIECE_BYTES)))
    pieces = [big[i : i + SPLIT_PIECE_BYTES] for i in range(0, len(big), SPLIT_PIECE_BYTES)]
    assert len(pieces) == 4
    found = scan_lines(["before", *pieces, "after"])
    assert kinds(found) == [("text", "before"), ("message", "report_custom_message"), ("text", "after")]
    assert found[1].message["params"]["payload"] == "x" * (3 * SPLIT_PIECE_BYTES)


def test_a_split_message_missing_its_end_is_reported_lost_by_name() -> None:
    big = json.dumps(message("report_asset_materialization", metadata="y" * (2 * SPLIT_PIECE_BYTES)))
    pieces = [big[i : i + SPLIT_PIECE_BYTES] for i in range(0, len(big), SPLIT_PIECE_BYTES)]
    found = scan_lines(pieces[:-1])  # the last piece never arrived
    [lost] = found
    assert isinstance(lost, Unreadable) and lost.reason == "lost"
    assert "'report_asset_materialization' message split over CloudWatch log events" in lost.describe()


def test_a_split_message_followed_by_something_else_is_lost_and_the_rest_kept() -> None:
    big = json.dumps(message("report_custom_message", payload="z" * (2 * SPLIT_PIECE_BYTES)))
    first = big[:SPLIT_PIECE_BYTES]
    found = scan_lines([first, "unrelated line"])
    assert kinds(found) == [("lost", "report_custom_message"), ("text", "unrelated line")]
