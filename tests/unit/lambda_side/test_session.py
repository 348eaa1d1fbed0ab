"""The Lambda side without Lambda: each invocation is its own Pipes session, finished by its channel."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from dagster_pipes import PipesContext, PipesMappingParamsLoader, open_dagster_pipes

from pipeskit_lambda import pipes_handler, run_invocation
from pipeskit_lambda.protocol import ENVELOPE_KEY, ENVELOPE_VERSION


def docs_style(event: dict[str, Any], _context: Any) -> str:
    """A handler exactly as in the Dagster docs: open_dagster_pipes on the event."""
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        pipes.log.info(f"rows={pipes.extras['rows']}")
        pipes.report_asset_materialization(metadata={"rows": {"raw_value": 3, "type": "int"}})
    return "done"


def methods(envelope: dict[str, Any]) -> list[str]:
    return [m["method"] for m in envelope["messages"]]


def test_response_channel_returns_the_messages_and_the_value_in_one_envelope(
    bootstrap_event, lambda_context
) -> None:
    event = bootstrap_event()
    envelope = run_invocation(docs_style, event, lambda_context)
    assert envelope[ENVELOPE_KEY] == ENVELOPE_VERSION
    assert envelope["result"] == "done"
    assert methods(envelope) == ["opened", "log", "report_asset_materialization", "closed"]
    assert envelope["log_group_name"] == "/aws/lambda/fn"
    assert envelope["log_stream_name"].endswith("]abc")


def test_every_message_also_lands_in_the_log_as_it_is_reported(
    bootstrap_event, lambda_context, capsys: pytest.CaptureFixture[str]
) -> None:
    """The crash-safe copy: were the process to die after any message, the log would hold it."""
    envelope = run_invocation(docs_style, bootstrap_event(), lambda_context)
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "__dagster_pipes_version" in line]
    assert logged == envelope["messages"]


def test_a_handler_that_never_uses_pipes_reports_nothing(bootstrap_event, lambda_context, capsys) -> None:
    """So the orchestrator can say the function never opened Pipes (dagster#17868)."""
    envelope = run_invocation(lambda event, context: "plain", bootstrap_event(), lambda_context)
    assert envelope["result"] == "plain" and envelope["messages"] == []
    assert "__dagster_pipes_version" not in capsys.readouterr().err


def test_a_session_left_open_by_the_handler_is_closed(bootstrap_event, lambda_context) -> None:
    def unclosed(event: dict[str, Any], context: Any) -> None:
        open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)).log.info("no with block")

    envelope = run_invocation(unclosed, bootstrap_event(), lambda_context)
    assert methods(envelope) == ["opened", "log", "closed"]


def test_open_dagster_pipes_hands_back_the_invocations_own_context(bootstrap_event, lambda_context) -> None:
    seen: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
            seen.append(pipes)
            assert isinstance(pipes, PipesContext) and PipesContext.get() is pipes

    run_invocation(handler, bootstrap_event(), lambda_context)
    run_invocation(handler, bootstrap_event(), lambda_context)
    assert seen[0] is not seen[1]
    assert not PipesContext.is_initialized(), "nothing of the session outlives its invocation"


def test_warm_invocations_each_open_their_own_session(bootstrap_event, lambda_context) -> None:
    """dagster#22094: open_dagster_pipes' singleton would refuse the second invocation."""
    for _ in range(3):
        envelope = run_invocation(docs_style, bootstrap_event(), lambda_context)
        assert methods(envelope)[0] == "opened" and methods(envelope)[-1] == "closed"


def test_a_failing_handler_writes_its_messages_to_the_log_and_raises(
    bootstrap_event, lambda_context, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(event: dict[str, Any], context: Any) -> None:
        with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
            pipes.log.info("before the error")
            raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_invocation(failing, bootstrap_event(), lambda_context)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "__dagster_pipes_version" in line]
    assert [m["method"] for m in lines] == ["opened", "log", "closed"]
    exception = lines[-1]["params"]["exception"]
    assert exception["name"] == "ValueError" and "bad input" in exception["message"]


def test_messages_beyond_the_response_budget_even_compressed_go_to_the_log(
    bootstrap_event, lambda_context, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPESKIT_RESPONSE_BUDGET_BYTES", "1024")

    def chatty(event: dict[str, Any], context: Any) -> int:
        with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
            for i in range(50):
                pipes.log.info(f"line {i:03d} " + os.urandom(30).hex())  # random: compression cannot help
        return 50

    envelope = run_invocation(chatty, bootstrap_event(), lambda_context)
    assert envelope["messages_in_logs"] is True and "messages" not in envelope and "messages_zlib" not in envelope
    assert envelope["result"] == 50
    logged = [line for line in capsys.readouterr().err.splitlines() if "__dagster_pipes_version" in line]
    assert len(logged) == 52  # opened + 50 logs + closed, in order
    assert json.loads(logged[1])["params"]["message"].startswith("line 000")


def test_logs_channel_writes_messages_to_stderr_as_they_happen(
    bootstrap_event, lambda_context, capsys: pytest.CaptureFixture[str]
) -> None:
    envelope = run_invocation(docs_style, bootstrap_event("logs"), lambda_context)
    assert envelope["messages_in_logs"] is True and envelope["result"] == "done"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "__dagster_pipes_version" in line]
    assert [m["method"] for m in logged] == ["opened", "log", "report_asset_materialization", "closed"]


def test_without_a_bootstrap_the_handler_is_a_plain_lambda_handler(lambda_context) -> None:
    assert run_invocation(lambda event, context: {"echo": event}, {"a": 1}, lambda_context) == {"echo": {"a": 1}}


def test_a_bootstrap_from_another_orchestrator_is_left_alone(bootstrap_event, lambda_context) -> None:
    """No kit channel named: the handler's value goes back untouched (dagster-aws's client reads logs)."""
    event = bootstrap_event(channel=None)
    assert run_invocation(lambda e, c: "plain", event, lambda_context) == "plain"


def test_pipes_handler_works_for_another_orchestrator_with_dagster_pipes_own_writer(
    bootstrap_event, lambda_context, capsys: pytest.CaptureFixture[str]
) -> None:
    @pipes_handler
    def handler(event: dict[str, Any], context: Any, pipes: Any) -> str:
        pipes.log.info("hello")
        return "ok"

    assert handler(bootstrap_event(channel=None), lambda_context) == "ok"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "__dagster_pipes_version" in line]
    assert [m["method"] for m in logged] == ["opened", "log", "closed"]


def test_pipes_handler_hands_an_open_context_or_none(bootstrap_event, lambda_context) -> None:
    seen: list[Any] = []

    @pipes_handler
    def handler(event: dict[str, Any], context: Any, pipes: Any) -> str:
        seen.append(pipes)
        if pipes is not None:
            pipes.report_asset_check(check_name="non_empty", passed=True)
        return "ok"

    assert handler({"plain": True}, lambda_context) == "ok"
    envelope = handler(bootstrap_event(), lambda_context)
    assert seen[0] is None and seen[1] is not None
    assert methods(envelope) == ["opened", "report_asset_check", "closed"]
    assert envelope["result"] == "ok"


def test_messages_beyond_the_budget_travel_compressed_when_that_fits(
    bootstrap_event, lambda_context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeskit.channels.response import unpack_messages

    monkeypatch.setenv("PIPESKIT_RESPONSE_BUDGET_BYTES", "4096")

    def repetitive(event: dict[str, Any], context: Any) -> int:
        with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
            for i in range(500):
                pipes.report_custom_message({"row": i, "status": "ok", "note": "the same words again"})
        return 500

    envelope = run_invocation(repetitive, bootstrap_event(), lambda_context)
    assert "messages" not in envelope and not envelope.get("messages_in_logs")
    assert len(json.dumps(envelope)) <= 4096, "within the budget"
    messages = unpack_messages(envelope["messages_zlib"])  # the orchestrator's end of the round trip
    assert [m["method"] for m in messages] == ["opened"] + ["report_custom_message"] * 500 + ["closed"]
    assert [m["params"]["payload"]["row"] for m in messages[1:-1]] == list(range(500))


def test_the_envelope_says_when_the_session_began(bootstrap_event, lambda_context) -> None:
    before = int(time.time() * 1000)
    envelope = run_invocation(docs_style, bootstrap_event(), lambda_context)
    assert before <= envelope["started_ms"] <= int(time.time() * 1000)
