"""Pipes sessions end to end against the local AWS: real pipes layer, real Dagster, both channels."""

import logging

import pytest
from dagster import DailyPartitionsDefinition, MetadataValue

from pipeskit import (
    CloudWatchLogsMessageReader,
    LambdaFunctionError,
    PipesSessionNotOpenedError,
    ResponsePayloadMessageReader,
)

from .conftest import run_asset

CHANNELS = {"response": ResponsePayloadMessageReader, "logs": CloudWatchLogsMessageReader}


@pytest.fixture(params=sorted(CHANNELS))
def channel(request: pytest.FixtureRequest) -> str:
    return request.param


def test_every_pipes_method_round_trips(channel, log_format, handler_function, make_client) -> None:
    client, _ = make_client(CHANNELS[channel])
    run = run_asset(client, handler_function("all_methods", log_format=log_format), {"x": 1},
                    checks=["passes", "fails"], extras={"source": "test"})
    assert run.result.success, run.error

    metadata = run.metadata()
    assert metadata["text"] == MetadataValue.text("hello")
    assert metadata["url"] == MetadataValue.url("https://example.com/a")
    assert metadata["path"] == MetadataValue.path("/data/out.parquet")
    assert metadata["notebook"] == MetadataValue.notebook("/notebooks/a.ipynb")
    assert metadata["json"] == MetadataValue.json({"a": [1, 2, {"b": None}]})
    assert metadata["md"] == MetadataValue.md("# Title\n\n*bold*")
    assert metadata["float"] == MetadataValue.float(1.5)
    assert metadata["int"] == MetadataValue.int(42)
    assert metadata["bool"] == MetadataValue.bool(True)
    assert metadata["dagster_run"] == MetadataValue.dagster_run("3f7c1bb3-7a5b-4a5e-9e4e-2f2b3a7a0c11")
    assert metadata["asset"].value.path == ["upstream", "table"]
    assert metadata["null"] == MetadataValue.null()
    assert metadata["timestamp"].value == 1763700000.5
    assert [c.name for c in metadata["table_schema"].schema.columns] == ["id", "name"]
    assert [r.data for r in metadata["table"].records] == [{"id": 1}, {"id": 2}]
    assert metadata["inferred"] == MetadataValue.json({"nested": [1, 2]})
    [materialization] = run.materializations()
    assert materialization.materialization.tags["dagster/data_version"] == "v1"

    checks = run.check_results()
    assert checks["passes"].passed is True
    assert checks["fails"].passed is False
    assert checks["fails"].severity.value == "WARN"

    messages = run.log_messages()
    for level in ("debug", "info", "warning", "error", "critical"):
        assert (getattr(logging, level.upper()), f"{level} from lambda") in messages

    completed = run.completed
    assert list(completed.get_custom_messages()) == [{"custom": [1, 2, 3], "request": completed.request_id}]
    assert completed.return_value["extras"] == {"source": "test"}
    assert completed.return_value["partition_key"] is None


def test_docs_style_handler_works_unmodified_through_both_channels(channel, example_function, make_client) -> None:
    client, _ = make_client(CHANNELS[channel])
    function = example_function("docs_style", "handler.lambda_handler")
    run = run_asset(client, function, {"some_parameter_value": 41})
    assert run.result.success, run.error
    assert run.metadata()["some_metric"] == MetadataValue.int(42)
    assert (logging.INFO, "Using some_parameter value: 41") in run.log_messages()


@pytest.mark.faults
def test_three_invocations_in_one_warm_environment(channel, example_function, handler_function, make_client) -> None:
    client, _ = make_client(CHANNELS[channel])
    kit = [run_asset(client, handler_function("all_methods"), {}, checks=["passes", "fails"]) for _ in range(3)]
    assert all(r.result.success for r in kit), [r.error for r in kit]
    assert len({r.completed.return_value["environment"] for r in kit}) == 1, "one warm environment served all three"
    counts = [r.completed.return_value["invocations"] for r in kit]
    assert counts == sorted(counts) and counts[-1] - counts[0] == 2

    docs_function = example_function("docs_style", "handler.lambda_handler")
    docs = [run_asset(client, docs_function, {"some_parameter_value": i}) for i in range(3)]
    assert all(r.result.success for r in docs), [r.error for r in docs]
    assert [r.metadata()["some_metric"].value for r in docs] == [1, 2, 3]


@pytest.mark.faults
def test_function_error_carries_the_remote_error_and_loses_no_message(
    channel, log_format, handler_function, make_client
) -> None:
    client, _ = make_client(CHANNELS[channel])
    run = run_asset(client, handler_function("failing", log_format=log_format), {"value": "abc"})
    assert not run.result.success
    error = run.error
    assert isinstance(error, LambdaFunctionError)
    assert error.error_type == "ValueError"
    assert error.error_message == "bad input: 'abc' is not a number"
    assert any("in parse" in line for line in error.stack_trace)
    assert error.request_id and error.request_id in error.description
    # the messages written before the failure were recovered, and so was the closing exception
    assert (logging.INFO, "about to parse") in run.log_messages()
    assert "[pipes] external process pipes closed with exception" in run.engine_events()


@pytest.mark.faults
def test_function_timeout_fails_the_asset_with_the_timeout(handler_function, make_client) -> None:
    client, _ = make_client()
    run = run_asset(client, handler_function("slow", timeout=1), {"sleep_s": 10})
    assert isinstance(run.error, LambdaFunctionError)
    assert "Task timed out after 1.00 seconds" in run.error.error_message


def test_partition_key_reaches_the_function(example_function, handler_function, make_client) -> None:
    client, _ = make_client()
    partitions = DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-04")
    run = run_asset(client, handler_function("all_methods"), {}, checks=["passes", "fails"],
                    partitions_def=partitions, partition_key="2026-11-02")
    assert run.result.success, run.error
    assert run.completed.return_value["partition_key"] == "2026-11-02"

    summary = run_asset(client, example_function("dataset_summary", "handler.handler"), {"rows": 50},
                        checks=["amounts_are_positive"], partitions_def=partitions, partition_key="2026-11-03")
    assert summary.result.success, summary.error
    assert summary.metadata()["day"] == MetadataValue.text("2026-11-03")
    assert summary.metadata()["rows"] == MetadataValue.int(50)
    assert summary.check_results()["amounts_are_positive"].passed is True


def test_a_function_that_never_opens_pipes_fails_the_asset(channel, handler_function, make_client) -> None:
    client, _ = make_client(CHANNELS[channel], ingestion_timeout_s=2.0)
    run = run_asset(client, handler_function("plain"), {})
    assert not run.result.success
    assert isinstance(run.error, PipesSessionNotOpenedError)
    assert "never opened Dagster Pipes" in run.error.description


def test_a_thousand_messages_in_two_megabytes_of_logs_all_arrive(
    channel, log_format, handler_function, make_client
) -> None:
    client, counter = make_client(CHANNELS[channel])
    function = handler_function("noisy", "lambda_handler", log_format=log_format)
    run = run_asset(client, function, {"messages": 1000, "noise_bytes": 2_000_000})
    assert run.result.success, run.error
    assert [m["i"] for m in run.completed.get_custom_messages()] == list(range(1000))
    assert run.metadata()["messages"] == MetadataValue.int(1000)
    forwarded = "\n".join(m for _, m in run.log_messages() if "log lines:" in m)
    assert forwarded.count("x" * 199) == 10_000, "ordinary output is forwarded to the step's log"
    if channel == "logs":
        assert counter.calls[0] == "Invoke" and set(counter.calls[1:]) == {"GetLogEvents"}
    else:  # the response channel carries the output too: one call
        assert counter.calls == ["Invoke"]


@pytest.mark.parametrize("channel", ["logs", "response"])
def test_ordinary_lines_are_forwarded_in_a_few_batches_in_order_with_the_events(
    channel, handler_function, make_client
) -> None:
    """Custom messages among the lines create no Dagster event, so they do not split the batches; a
    Pipes log message does, and the lines printed before it come before it in the step's log — read
    from the log, or carried in the response with the messages (one AWS call)."""
    client, counter = make_client(CHANNELS[channel])
    run = run_asset(client, handler_function("interleaved", "lambda_handler"), {"lines": 500})
    assert run.result.success, run.error
    assert len(list(run.completed.get_custom_messages())) == 500
    logged = [message for _, message in run.log_messages()]
    batches = [i for i, message in enumerate(logged) if "log lines:" in message]
    [pipes_log] = [i for i, message in enumerate(logged) if message.endswith("the pipes log message")]
    before = [i for i in batches if "before " in logged[i]]
    after = [i for i in batches if "after " in logged[i]]
    assert len(batches) <= 4, f"500 + 500 short lines in a few batches, not one per line: {len(batches)}"
    assert before and after and max(before) < pipes_log < min(after), "the step's log keeps the function's order"
    forwarded = "\n".join(logged[i] for i in batches)
    assert all(f"before {i}\n" in forwarded and f"after {i}" in forwarded for i in range(500))
    if channel == "response":
        assert counter.calls == ["Invoke"]


def test_messages_too_many_for_the_response_travel_in_it_compressed(handler_function, make_client) -> None:
    """60,000 messages (about 6 MB as JSON) overflow Lambda's response; compressed they fit: one AWS call."""
    client, counter = make_client(ResponsePayloadMessageReader)
    run = run_asset(client, handler_function("noisy", "lambda_handler"), {"messages": 60_000, "noise_bytes": 0})
    assert run.result.success, run.error
    assert [m["i"] for m in run.completed.get_custom_messages()] == list(range(60_000))
    assert counter.calls == ["Invoke"]


def test_a_function_never_invoked_fails_with_its_reason_and_no_no_messages_warning(make_client) -> None:
    """Nothing was invoked: the error says why, and dagster's "did not receive any messages" warning,
    which would send the user to logs that do not exist, is not in the step's log."""
    from pipeskit.errors import FunctionNotFoundError

    client, _ = make_client()
    run = run_asset(client, "no-such-function", {})
    assert isinstance(run.error, FunctionNotFoundError)
    assert "no-such-function not found" in str(run.error) and "Nothing was invoked" in str(run.error)
    assert not [m for _, m in run.log_messages() if "did not receive any messages" in m]


def test_a_function_invoked_that_never_opens_pipes_still_gets_the_warning(handler_function, make_client) -> None:
    """The filter stands aside once the function was invoked: dagster's own hint stays."""
    client, _ = make_client()
    run = run_asset(client, handler_function("fan_careless", "unopened"), {})
    assert isinstance(run.error, PipesSessionNotOpenedError)
    assert [m for _, m in run.log_messages() if "did not receive any messages" in m]
