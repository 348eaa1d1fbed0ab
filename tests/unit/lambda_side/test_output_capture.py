"""The response channel carries the handler's ordinary output with its messages, in the order written."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

from pipeskit.channels.response import unpack_lines
from pipeskit.message_lines import Message, Text, scan_lines
from pipeskit_lambda import run_invocation


def talkative(event: dict[str, Any], _context: Any) -> str:
    """Prints, writes to stderr and logs through the root logger around its messages."""
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        print("first line")
        pipes.report_custom_message({"i": 1})
        sys.stderr.write("to stderr\n")
        logging.getLogger("app.module").warning("a warning record")
        pipes.log.info("a pipes log message")
        sys.stdout.write("no newline at the end")
    return "done"


def sequence(envelope: dict[str, Any]) -> list[Any]:
    """What the orchestrator finds in the envelope's lines, in order."""
    found = scan_lines(unpack_lines(envelope["lines_zlib"]))
    return [item.line if isinstance(item, Text) else item.message["method"] for item in found if not
            isinstance(item, Message) or item.message["method"] not in ("opened", "closed")]  # fmt: skip


def test_output_and_messages_travel_in_the_order_written(bootstrap_event, lambda_context) -> None:
    stdout, stderr = sys.stdout, sys.stderr
    envelope = run_invocation(talkative, bootstrap_event(), lambda_context)
    assert envelope["result"] == "done" and "messages" not in envelope and "output_dropped" not in envelope
    found = sequence(envelope)
    record = found.pop(3)  # formatted as the root logger's first handler formats (here pytest's)
    assert "WARNING" in record and record.endswith("a warning record")
    assert found == ["first line", "report_custom_message", "to stderr", "log", "no newline at the end"]
    assert sys.stdout is stdout and sys.stderr is stderr, "the streams are given back"


def test_message_lines_are_not_kept_twice_and_still_reach_the_log(
    bootstrap_event, lambda_context, capsys: pytest.CaptureFixture[str]
) -> None:
    envelope = run_invocation(talkative, bootstrap_event(), lambda_context)
    lines = unpack_lines(envelope["lines_zlib"])
    assert sum("__dagster_pipes_version" in line for line in lines) == 4  # opened, custom, log, closed
    written = capsys.readouterr()
    assert "first line" in written.out and "to stderr" in written.err
    assert sum("__dagster_pipes_version" in line for line in written.err.splitlines()) == 4


def test_a_record_the_runtime_prints_to_stdout_is_kept_once(bootstrap_event, lambda_context) -> None:
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stdout)  # the runtime without its own log channel prints records
    root.addHandler(console)
    try:
        envelope = run_invocation(talkative, bootstrap_event(), lambda_context)
    finally:
        root.removeHandler(console)
    assert sum("a warning record" in line for line in unpack_lines(envelope["lines_zlib"])) == 1


def test_output_beyond_its_limit_is_counted_not_kept(bootstrap_event, lambda_context, monkeypatch) -> None:
    monkeypatch.setenv("PIPESKIT_RESPONSE_OUTPUT_BYTES", "100")

    def loud(event: dict[str, Any], _context: Any) -> None:
        with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
            for i in range(20):
                print(f"line {i:02d} of output")  # 18 bytes with the newline
            pipes.report_custom_message({"after": True})

    envelope = run_invocation(loud, bootstrap_event(), lambda_context)
    assert sequence(envelope) == [f"line {i:02d} of output" for i in range(5)] + ["report_custom_message"]
    assert envelope["output_dropped"] == [15, 15 * 18]


def test_output_that_does_not_fit_even_compressed_leaves_the_messages_in_the_envelope(
    bootstrap_event, lambda_context, monkeypatch
) -> None:
    import os

    monkeypatch.setenv("PIPESKIT_RESPONSE_BUDGET_BYTES", "8192")

    def random_output(event: dict[str, Any], _context: Any) -> None:
        with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
            for _ in range(10):
                print(os.urandom(1000).hex())  # 2,001 bytes each that zlib cannot shrink
            pipes.report_custom_message({"kept": True})

    envelope = run_invocation(random_output, bootstrap_event(), lambda_context)
    assert "lines_zlib" not in envelope and len(json.dumps(envelope)) <= 8192
    assert [m["method"] for m in envelope["messages"]] == ["opened", "report_custom_message", "closed"]
    assert envelope["output_dropped"] == [10, 10 * 2001]


def test_without_output_the_messages_travel_plainly(bootstrap_event, lambda_context) -> None:
    def quiet(event: dict[str, Any], _context: Any) -> None:
        with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
            pipes.report_custom_message({"only": "messages"})

    envelope = run_invocation(quiet, bootstrap_event(), lambda_context)
    assert "lines_zlib" not in envelope and "output_dropped" not in envelope
    assert [m["method"] for m in envelope["messages"]] == ["opened", "report_custom_message", "closed"]


def test_capture_off_keeps_no_output(bootstrap_event, lambda_context, monkeypatch) -> None:
    monkeypatch.setenv("PIPESKIT_RESPONSE_OUTPUT_BYTES", "0")
    envelope = run_invocation(talkative, bootstrap_event(), lambda_context)
    assert "lines_zlib" not in envelope and "output_dropped" not in envelope
    assert len(envelope["messages"]) == 4


def test_streams_are_given_back_when_the_handler_raises(bootstrap_event, lambda_context) -> None:
    stdout, stderr, handlers = sys.stdout, sys.stderr, list(logging.getLogger().handlers)

    def failing(event: dict[str, Any], _context: Any) -> None:
        print("about to fail")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_invocation(failing, bootstrap_event(), lambda_context)
    assert sys.stdout is stdout and sys.stderr is stderr
    assert logging.getLogger().handlers == handlers
