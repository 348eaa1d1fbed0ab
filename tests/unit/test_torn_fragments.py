"""A torn fragment costs itself only, on every read path: property-based.

Messages, torn fragments (a message's JSON cut short after its version key, as a handler's
interrupted ``sys.stdout.write`` leaves it) and ordinary text are interleaved at random, on the same
line or on lines of their own. Every complete message must be delivered exactly once, in order, from
the log's lines (CloudWatch), from the response envelope's lines (the response channel's read-back
path) and from S3 chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeskit.channels.chunks import chunk_messages
from pipeskit.cloudwatch_logs import InvocationLogReader
from pipeskit.invocation import LambdaInvocation
from pipeskit.message_lines import Message, Unreadable, scan_lines


@dataclass(frozen=True)
class Piece:
    text: str
    message: dict[str, Any] | None = None  # set for a complete message


def message(i: int, method: str) -> dict[str, Any]:
    params = {"payload": {"i": i}} if method == "report_custom_message" else {"message": f"m{i}", "level": "INFO"}
    return {"__dagster_pipes_version": "0.1", "method": method, "params": params}


@st.composite
def pieces(draw: st.DrawFn) -> list[Piece]:
    drawn: list[Piece] = []
    for i in range(draw(st.integers(min_value=0, max_value=12))):
        kind = draw(st.sampled_from(["message", "fragment", "text"]))
        if kind == "text":
            # Ordinary output with any characters but a closing brace (which could complete a fragment
            # into a message of its own) and the version key.
            drawn.append(Piece(draw(st.text(st.characters(blacklist_characters="}\n\r", blacklist_categories=("Cs",)),
                                            min_size=1, max_size=30))))  # fmt: skip
            continue
        whole = json.dumps(message(i, draw(st.sampled_from(["report_custom_message", "log"]))))
        if kind == "message":
            drawn.append(Piece(whole, json.loads(whole)))
        else:
            cut = draw(st.integers(min_value=len('{"__dagster_pipes_version"'), max_value=len(whole) - 1))
            drawn.append(Piece(whole[:cut]))
    return drawn


def layout(drawn: list[Piece], breaks: list[bool]) -> list[str]:
    """The pieces as lines: each piece after the first starts a new line or continues the last one."""
    lines: list[str] = []
    for index, piece in enumerate(drawn):
        if lines and not breaks[index % len(breaks)]:
            lines[-1] += piece.text
        else:
            lines.append(piece.text)
    return lines


def expected(drawn: list[Piece]) -> list[dict[str, Any]]:
    return [piece.message for piece in drawn if piece.message is not None]


layouts = st.lists(st.booleans(), min_size=1, max_size=12)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(pieces(), layouts)
def test_the_log_lines_deliver_every_whole_message_once(drawn: list[Piece], breaks: list[bool]) -> None:
    found = scan_lines(layout(drawn, breaks))
    assert [item.message for item in found if isinstance(item, Message)] == expected(drawn)
    torn = sum(piece.message is None and '"__dagster_pipes_version"' in piece.text for piece in drawn)
    assert sum(isinstance(item, Unreadable) for item in found) <= torn, "only fragments are unreadable"


class _Handler:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def handle_message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class _Log:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda text: self.records.append((level, text))


@PROPERTY
@given(pieces(), layouts)
def test_the_response_envelopes_lines_deliver_every_whole_message_once(
    drawn: list[Piece], breaks: list[bool]
) -> None:
    handler, log = _Handler(), _Log()
    invocation = LambdaInvocation(function_name="fn", request_id="req-1", payload=b"")
    InvocationLogReader().deliver_lines(layout(drawn, breaks), invocation, handler, log, source="its response")
    assert handler.messages == expected(drawn)


@PROPERTY
@given(pieces(), layouts)
def test_s3_chunks_deliver_every_whole_message_once(drawn: list[Piece], breaks: list[bool]) -> None:
    skipped: list[Any] = []
    body = "\n".join(layout(drawn, breaks)).encode()
    assert chunk_messages(body, skipped) == expected(drawn)
    assert all(piece.message is None for piece in drawn) or body, "sanity"


def test_the_issues_case_a_fragment_then_a_message_on_the_same_line() -> None:
    fragment = '{"__dagster_pipes_version": "0.1", "method": "report_custom_message", "params": {"payload": {"i": 99'
    five = json.dumps(message(5, "report_custom_message"))
    for lines in ([fragment + five], [fragment, five], ["progress " + fragment + five + " done"]):
        found = scan_lines(lines)
        assert [item.message for item in found if isinstance(item, Message)] == [json.loads(five)]
        [torn] = [item for item in found if isinstance(item, Unreadable)]
        assert torn.text.startswith(fragment) and torn.reason == "torn"
