"""The session engine's promises, through the local AWS with real Dagster and the real pipes layer.

- a run is a value: one client serves concurrent runs, each gets exactly its own messages;
- nothing the function wrote is lost when it raises, times out, crashes or cannot be marshalled;
- the function's own error wins over any problem reading its messages back;
- ordinary output never breaks a session.
"""

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from dagster import AssetExecutionContext, AssetSpec, DagsterInstance, asset, materialize, multi_asset

from pipeskit import (
    CloudWatchLogsMessageReader,
    LambdaFunctionError,
    LogsNotReadableError,
    PipesLambdaClient,
    ResponsePayloadMessageReader,
)

from .conftest import run_asset

CHANNELS = {"response": ResponsePayloadMessageReader, "logs": CloudWatchLogsMessageReader}
RUNS = 16


@pytest.fixture(params=sorted(CHANNELS))
def channel(request: pytest.FixtureRequest) -> str:
    return request.param


def test_one_client_serves_sixteen_concurrent_runs_inside_one_asset(channel, handler_function, make_client) -> None:
    function = handler_function("reporter", "lambda_handler")
    client, counter = make_client(CHANNELS[channel])
    run_asset(client, function, {"id": "warm-up"})  # one run's cost, measured
    one_run = counter.by_operation()
    counter.calls.clear()
    keys = [f"part_{i:02d}" for i in range(RUNS)]
    outcome: dict[str, Any] = {}

    @multi_asset(specs=[AssetSpec(key) for key in keys])
    def parts(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        def one(key: str) -> Any:
            return lambda_pipes.run(
                context=context, function_name=function, event={"id": key, "asset_key": key, "sleep_s": 0.2}
            )

        with ThreadPoolExecutor(max_workers=RUNS) as pool:
            completed = list(pool.map(one, keys))
        outcome["completed"] = completed
        for item in completed:
            yield from item.get_results(implicit_materializations=False)

    result = materialize([parts], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral())
    assert result.success
    for key, completed in zip(keys, outcome["completed"], strict=True):
        assert completed.return_value == {"id": key}
        assert list(completed.get_custom_messages()) == [{"id": key}]
    materialized = {e.asset_key.to_user_string(): e.materialization.metadata["id"].value
                    for e in result.get_asset_materialization_events()}
    assert materialized == {key: key for key in keys}
    assert counter.by_operation() == Counter({op: n * RUNS for op, n in one_run.items()})


def test_eight_assets_in_parallel_share_one_resource(handler_function, make_client) -> None:
    function = handler_function("reporter", "lambda_handler")
    client, counter = make_client()
    results: dict[str, Any] = {}

    def materialize_one(i: int) -> None:
        @asset(name=f"asset_{i}")
        def one(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
            completed = lambda_pipes.run(context=context, function_name=function, event={"id": f"asset_{i}"})
            results[f"asset_{i}"] = completed
            yield from completed.get_results()

        outcome = materialize([one], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral())
        assert outcome.success
        [event] = outcome.get_asset_materialization_events()
        assert event.materialization.metadata["id"].value == f"asset_{i}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        for done in [pool.submit(materialize_one, i) for i in range(8)]:
            done.result()  # an assertion failed in a thread fails the test
    assert {name: c.return_value["id"] for name, c in results.items()} == {f"asset_{i}": f"asset_{i}" for i in range(8)}
    assert counter.by_operation() == Counter({"Invoke": 8})


def _numbered(run: Any) -> list[str]:
    return [m for _, m in run.log_messages() if re.fullmatch(r"message \d{3}", m)]


@pytest.mark.faults
@pytest.mark.parametrize(
    "mode, error_type",
    [
        ("raise", "ValueError"),
        ("timeout", "Sandbox.Timedout"),
        ("exit", "Runtime.ExitError"),
        ("kill", "Runtime.ExitError"),
        ("marshal", "Runtime.MarshalError"),
    ],
)
def test_nothing_written_is_lost_when_the_function_dies(channel, mode, error_type, handler_function, make_client):
    """100 messages, then the function raises, times out, exits, is killed (as by the OOM killer), or
    returns what Lambda cannot marshal: all 100 arrive and the run fails with the function's error."""
    function = handler_function("dying", "lambda_handler", timeout=3)
    client, _ = make_client(CHANNELS[channel])
    run = run_asset(client, function, {"messages": 100, "mode": mode})
    assert not run.result.success
    assert isinstance(run.error, LambdaFunctionError), run.error
    assert run.error.error_type == error_type
    assert run.error.read_error is None
    assert _numbered(run) == [f"message {i:03d}" for i in range(100)]


@pytest.mark.faults
def test_a_late_log_beyond_the_timeout_never_hides_the_functions_error(local_aws, handler_function, make_client):
    function = handler_function("dying", "lambda_handler")
    client, _ = make_client(CHANNELS["response"], ingestion_timeout_s=0.5)
    with local_aws.override(log_ingestion_delay_s=3.0):
        run = run_asset(client, function, {"messages": 5, "mode": "raise"})
    assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "ValueError"
    assert isinstance(run.error.read_error, LogsNotReadableError)
    assert "could not all be read back" in run.error.description
    assert "messages_not_read" in run.error.metadata


@pytest.mark.faults
def test_logs_read_denied_never_hides_the_functions_error(local_aws, handler_function, make_client):
    function = handler_function("dying", "lambda_handler")
    client, _ = make_client(CHANNELS["logs"], logs_retries=0)
    with local_aws.override(logs_read_denied=True):
        run = run_asset(client, function, {"messages": 5, "mode": "raise"})
    assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "ValueError"
    assert "AccessDeniedException" in str(run.error.read_error)
    assert "the function's own error" in run.error.description


@pytest.mark.faults
def test_an_unreachable_logs_endpoint_never_hides_the_functions_error(handler_function, make_client):
    function = handler_function("dying", "lambda_handler")
    unreachable = boto3.client(
        "logs",
        endpoint_url="http://127.0.0.1:9",  # nothing listens there
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    client, _ = make_client(CHANNELS["logs"], logs_client=unreachable)
    run = run_asset(client, function, {"messages": 5, "mode": "raise"})
    assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "ValueError"
    assert "EndpointConnectionError" in type(run.error.read_error).__name__ + str(run.error.read_error)


@pytest.mark.faults
def test_ordinary_output_never_breaks_a_session(handler_function, make_client) -> None:
    """Progress text before each message, an unknown method, a torn line and a 600 KB message."""
    function = handler_function("chatty", "lambda_handler")
    client, _ = make_client(CHANNELS["logs"])
    run = run_asset(client, function, {"big_bytes": 600_000})
    assert run.result.success, run.error
    custom = list(run.completed.get_custom_messages())
    assert custom[:5] == [{"i": i} for i in range(5)]
    assert custom[5] == {"big": "b" * 600_000}, "the message split over log events was put back together"
    warnings = [m for level, m in run.log_messages() if level >= 30]
    assert any("unknown method 'report_future_thing'" in m for m in warnings)
    assert any("not valid JSON (torn or corrupt)" in m for m in warnings)
    assert len(run.materializations()) == 1
