"""The S3 channel's chunk layout: which keys are chunks, and the messages a chunk holds."""

import json

import pytest

from pipeskit.channels.chunks import ChunkKey, chunk_key, chunk_messages, closing


@pytest.mark.parametrize(
    "relative, expected",
    [
        ("1.json", ChunkKey("", 1)),  # dagster-pipes' own writer: no attempt folder
        ("attempt-3f2a/12.json", ChunkKey("attempt-3f2a", 12)),
        ("attempt-3f2a/result.json", None),  # the return value, not a chunk
        ("done.json", None),  # a fan-out's resume marker
        ("other/1.json", None),  # a folder that is not an attempt's
        ("attempt-a/b/1.json", None),  # nested deeper than an attempt
        ("attempt-a/1.txt", None),
        ("attempt-a/-1.json", None),
        ("attempt-a/.json", None),
    ],
)
def test_which_keys_are_chunks(relative: str, expected: ChunkKey | None) -> None:
    assert chunk_key(relative) == expected


def test_a_chunk_holds_its_messages_in_order_blank_lines_skipped() -> None:
    messages = [
        {"__dagster_pipes_version": "0.1", "method": "opened", "params": {}},
        {"__dagster_pipes_version": "0.1", "method": "log", "params": {"message": "hi", "level": "INFO"}},
    ]
    body = ("\n".join(json.dumps(m) for m in messages) + "\n\n").encode()
    assert chunk_messages(body) == messages


def test_a_line_that_is_not_a_message_costs_itself_only_and_is_handed_back() -> None:
    skipped: list = []
    opened = {"__dagster_pipes_version": "0.1", "method": "opened", "params": {}}
    assert chunk_messages(json.dumps(opened).encode() + b"\n[1, 2]\n" + json.dumps(opened).encode(), skipped) == [
        opened, opened,
    ]  # fmt: skip
    assert [item.line for item in skipped] == ["[1, 2]"]


def test_closed_tells_the_exception_it_carries() -> None:
    assert closing({"method": "log", "params": {}}) == (False, None)
    assert closing({"method": "closed", "params": {}}) == (True, None)
    assert closing({"method": "closed"}) == (True, None)
    error = {"name": "ValueError", "message": "boom"}
    assert closing({"method": "closed", "params": {"exception": error}}) == (True, error)



def test_an_exception_names_its_type_once() -> None:
    from pipeskit.channels.chunks import exception_message, exception_text

    exception = {"name": "RuntimeError", "message": "RuntimeError: item 3 fails\n", "stack": []}
    assert exception_message(exception) == "item 3 fails"
    assert exception_text(exception) == "RuntimeError: item 3 fails"
    assert exception_text({"name": None, "message": "plain\n"}) == "plain"


def test_a_failed_fan_out_names_its_first_failed_items_and_their_errors() -> None:
    from pipeskit.errors import FanOutFailedError
    from pipeskit.fan_out import FanOutSummary, ItemResult

    results = [ItemResult(i, f"day-{i}", status="failed" if i % 2 else "succeeded",
                          error=f"ValueError: day {i} is bad" if i % 2 else None) for i in range(10)]  # fmt: skip
    with pytest.raises(FanOutFailedError) as raised:
        FanOutSummary(results, tolerated_failures=1).raise_for_failures()
    text = str(raised.value)
    assert "5 of 10 items failed, more than the 1 tolerated" in text
    assert "item 1 ('day-1'): ValueError: day 1 is bad; item 3 ('day-3'): ValueError: day 3 is bad" in text
    assert "and 2 more (all in the metadata)" in text
