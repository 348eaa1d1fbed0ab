"""Find Pipes messages in a function's log lines, whatever was printed around them.

A message is one JSON object carrying ``__dagster_pipes_version``. In a Lambda log it may share its
line with other output (progress text printed without a newline, the other stream interleaved),
be torn or corrupt, name a method this Dagster does not know, or be longer than a CloudWatch log
event and arrive split over several events. `MessageScanner` turns a sequence of log pieces into
what they hold: text to forward, messages to handle, and what could not be decoded — never silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, get_args

from dagster_pipes import PIPES_PROTOCOL_VERSION_FIELD, Method

from pipeskit_lambda.protocol import LOG_EVENT_MAX_BYTES, LOG_EVENT_OVERHEAD_BYTES

KNOWN_METHODS = frozenset(get_args(Method))
_MARKER = f'"{PIPES_PROTOCOL_VERSION_FIELD}"'
_METHOD = re.compile(r'"method"\s*:\s*"([^"]{1,80})"')
_DECODER = json.JSONDecoder()

SPLIT_PIECE_BYTES = LOG_EVENT_MAX_BYTES - LOG_EVENT_OVERHEAD_BYTES - 3
"""A piece this long (in UTF-8, allowing for a character cut at the boundary) was cut by CloudWatch's
event size and continues in the next event."""

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Give up putting a split message back together beyond this size."""


@dataclass(frozen=True)
class Text:
    """Ordinary output: forward it to the Dagster log."""

    line: str


@dataclass(frozen=True)
class Message:
    """A Pipes message to hand to the session."""

    message: dict[str, Any]


@dataclass(frozen=True)
class Unreadable:
    """Something that looked like a Pipes message but could not be used.

    Attributes:
        reason: ``torn`` (not valid JSON), ``unknown-method`` or ``lost`` (a split message that
            could not be put back together).
        method: the message's method, when it could be read.
        text: the text itself (cut to a preview for long ones), forwarded to the Dagster log.
    """

    reason: str
    method: str | None
    text: str

    def describe(self) -> str:
        what = f"a {self.method!r} message" if self.method else "a message"
        preview = self.text if len(self.text) <= 300 else self.text[:300] + f"… ({len(self.text):,} chars)"
        return {
            "torn": f"{what} line that is not valid JSON (torn or corrupt): {preview}",
            "unknown-method": f"a message with the unknown method {self.method!r}: {preview}",
            "lost": f"{what} split over CloudWatch log events that could not be put back together "
            f"({len(self.text):,} chars received)",
        }[self.reason]


Found = Text | Message | Unreadable


def _method_of(text: str) -> str | None:
    match = _METHOD.search(text)
    return match.group(1) if match else None


def _is_split(piece: str) -> bool:
    return len(piece) * 4 >= SPLIT_PIECE_BYTES and len(piece.encode("utf-8", "replace")) >= SPLIT_PIECE_BYTES


class MessageScanner:
    """Turn an invocation's log pieces (one CloudWatch event's line each) into `Found` items.

    Feed every piece in order with `feed`, then call `close` for what is still pending.
    """

    def __init__(self) -> None:
        self._pending: str | None = None

    def feed(self, piece: str) -> Iterator[Found]:
        """What ``piece`` holds, in order (a split message is held until its last piece arrives)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            candidate = pending + piece
            decoded = self._decode_at(candidate, 0)
            if decoded is not None:
                message, end = decoded
                yield from self._message(message, candidate[:end])
                yield from self._scan(candidate[end:])
                return
            if _is_split(piece) and len(candidate) < MAX_MESSAGE_BYTES:
                self._pending = candidate
                return
            yield Unreadable("lost", _method_of(pending), pending)  # this piece is not its continuation
        yield from self._scan(piece)

    def close(self) -> Iterator[Found]:
        """What is left: a split message whose remaining pieces never came is reported lost."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            yield Unreadable("lost", _method_of(pending), pending)

    def _scan(self, line: str) -> Iterator[Found]:
        """What one line holds: each whole message wherever it stands, the text around them, and any
        torn fragment on its own — a fragment costs itself only, never a message after it."""
        if _MARKER not in line:
            if line.strip():
                yield Text(line)
            return
        done = 0  # the line is accounted for up to here
        unresolved: list[int] = []  # where each marker not part of a whole message begins
        marker = line.find(_MARKER)
        while marker >= 0:
            found = self._message_around(line, done, marker)
            if found is None:
                begin = line.rfind("{", done, marker)
                unresolved.append(begin if begin >= 0 else marker)
                marker = line.find(_MARKER, marker + len(_MARKER))
                continue
            begin, message, end = found
            yield from self._leftover(line[done:begin], unresolved, done)
            yield from self._message(message, line[begin:end])
            done, unresolved = end, []
            marker = line.find(_MARKER, end)
        if unresolved and _is_split(line):
            # The last fragment reaches the end of a piece CloudWatch cut: the start of a split message.
            last = unresolved.pop()
            yield from self._leftover(line[done:last], unresolved, done)
            self._pending = line[last:]
            return
        yield from self._leftover(line[done:], unresolved, done)

    def _message_around(self, line: str, done: int, marker: int) -> tuple[int, dict[str, Any], int] | None:
        """The whole message holding the marker at ``marker``: (begin, message, end), else None."""
        start = line.rfind("{", done, marker)
        while start >= done:
            decoded = self._decode_at(line, start)
            if decoded is not None and decoded[1] > marker:
                return start, decoded[0], decoded[1]
            start = line.rfind("{", done, start)
        return None

    @staticmethod
    def _leftover(text: str, fragments: list[int], offset: int) -> Iterator[Found]:
        """Text between messages: ordinary text, then each torn fragment (from its ``{`` to the next)."""
        if not fragments:
            if text.strip():
                yield Text(text)
            return
        starts = [begin - offset for begin in fragments]
        if not text.startswith("{", starts[0]):
            starts[0] = 0  # no JSON starts the first fragment (garbage around the marker): the line is its context
        if text[: starts[0]].strip():
            yield Text(text[: starts[0]])
        for index, begin in enumerate(starts):
            piece = text[begin : starts[index + 1] if index + 1 < len(starts) else len(text)]
            yield Unreadable("torn", _method_of(piece), piece)

    @staticmethod
    def _decode_at(text: str, start: int) -> tuple[dict[str, Any], int] | None:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            return None
        if isinstance(value, dict) and PIPES_PROTOCOL_VERSION_FIELD in value:
            return value, end
        return None

    @staticmethod
    def _message(message: dict[str, Any], text: str) -> Iterator[Found]:
        if message.get("method") in KNOWN_METHODS:
            yield Message(message)
        else:
            yield Unreadable("unknown-method", str(message.get("method")), text)


def scan_lines(lines: list[str]) -> list[Found]:
    """Everything ``lines`` hold, in order (for tests and one-off reads)."""
    scanner = MessageScanner()
    found = [item for line in lines for item in scanner.feed(line)]
    return found + list(scanner.close())
