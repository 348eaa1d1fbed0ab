"""The function's ordinary output during a Pipes session, kept for the response envelope.

On the response channel the orchestrator makes no call beyond ``Invoke``, so what the handler
prints or logs would reach Dagster only through a CloudWatch read. `OutputCapture` keeps those lines
(up to a byte limit) while the session is open, in order with the session's messages, so the
envelope can carry them; everything still goes to the function's log as before.

Two sources, each line once: writes to ``sys.stdout`` / ``sys.stderr`` (``print``, Powertools'
Logger, tracebacks printed by the handler) through a tee, and records of Python's root logger
(the Lambda runtime sends those to its own log channel, not to stdout) through a handler that formats
them as the runtime does.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

Sink = Callable[[str], None]


class _Tee:
    """A text stream that writes through to ``original`` and hands each complete line to ``sink``."""

    def __init__(self, original: TextIO, sink: Sink) -> None:
        self.original = original
        self._sink = sink
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self.original.write(text)
        if text:
            with self._lock:
                pending = self._partial + text
                *lines, self._partial = pending.split("\n")
            for line in lines:
                self._sink(line)
        return written

    def write_original(self, text: str) -> None:
        """Write ``text`` to the original stream only (a message line: the channel keeps it itself)."""
        self.original.write(text)

    def flush(self) -> None:
        self.original.flush()

    def close_capture(self) -> None:
        """Hand on a last line the handler left without its newline."""
        with self._lock:
            partial, self._partial = self._partial, ""
        if partial:
            self._sink(partial)

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, buffer, ...
        return getattr(self.original, name)


class _RecordHandler(logging.Handler):
    """Hands each record of the root logger to the sink, formatted as the runtime's handler does."""

    def __init__(self, sink: Sink, like: logging.Handler | None) -> None:
        super().__init__()
        self._sink = sink
        self._plain = logging.Formatter("[%(levelname)s]\t%(message)s")
        self.setFormatter((like.formatter if like is not None else None) or self._plain)
        for record_filter in like.filters if like is not None else ():
            self.addFilter(record_filter)  # the runtime's adds the request id its format names

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # the runtime's format needs what its handler adds: fall back to the plain one
            try:
                text = self._plain.format(record)
            except Exception:  # a record that cannot be formatted at all is the logging module's to report
                return
        for line in text.splitlines():
            self._sink(line)


class OutputCapture:
    """Keep the ordinary lines written while it is open, up to ``limit_bytes``.

    Args:
        sink: receives each line kept (without its newline), in the order written.
        limit_bytes: ordinary output kept at most; lines beyond are counted in `dropped_lines`
            and `dropped_bytes` (they are still in the function's log).
    """

    def __init__(self, sink: Sink, limit_bytes: int) -> None:
        self._sink = sink
        self._limit = limit_bytes
        self.kept_bytes = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self._tees: list[tuple[str, _Tee]] = []
        self._handler: _RecordHandler | None = None

    def _keep(self, line: str) -> None:
        size = len(line) + 1
        if not line.strip():
            return
        if self.kept_bytes + size > self._limit:
            self.dropped_lines += 1
            self.dropped_bytes += size
            return
        self.kept_bytes += size
        self._sink(line)

    def __enter__(self) -> OutputCapture:
        for name in ("stdout", "stderr"):
            tee = _Tee(getattr(sys, name), self._keep)
            setattr(sys, name, tee)
            self._tees.append((name, tee))
        root = logging.getLogger()
        # Records the runtime's handler sends to the console (stdout) are kept by the tee already.
        if not any(_writes_to_console(handler) for handler in root.handlers):
            like = next((handler for handler in root.handlers if handler.formatter), None)
            self._handler = _RecordHandler(self._keep, like)
            root.addHandler(self._handler)
        return self

    def __exit__(self, *_: object) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        for name, tee in reversed(self._tees):
            tee.close_capture()
            if getattr(sys, name) is tee:  # the handler replaced it meanwhile: leave theirs alone
                setattr(sys, name, tee.original)
        self._tees.clear()


def _writes_to_console(handler: logging.Handler) -> bool:
    """Whether ``handler`` writes to stdout or stderr (a StreamHandler; the runtime's handler when it
    has no log channel of its own and writes to stdout)."""
    if type(getattr(handler, "log_sink", None)).__name__ == "StandardLogSink":
        return True
    stream = getattr(handler, "stream", None)
    return stream is not None and (stream in (sys.stdout, sys.stderr) or isinstance(stream, _Tee))


def write_uncaptured(stream: TextIO, text: str) -> None:
    """Write ``text`` to ``stream`` bypassing an `OutputCapture` (a message line, which its channel keeps)."""
    if isinstance(stream, _Tee):
        stream.write_original(text)
    else:
        stream.write(text)
