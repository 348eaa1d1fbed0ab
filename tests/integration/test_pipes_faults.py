"""The client under bad conditions: throttled invokes, throttled log reads, late log ingestion."""

import pytest
from dagster import MetadataValue

from pipeskit import (
    CloudWatchLogsMessageReader,
    InvalidEventError,
    InvokeThrottledError,
    LambdaClientSettings,
    LogsNotReadableError,
    PayloadTooLargeError,
    RateBudget,
)

from .conftest import run_asset

pytestmark = pytest.mark.faults


def test_throttled_invokes_back_off_and_succeed(local_aws, handler_function, make_client) -> None:
    settings = LambdaClientSettings(throttle_max_attempts=12, throttle_base_delay_s=0.01)
    client, counter = make_client(client_settings=settings)
    function = handler_function("all_methods")
    local_aws.faults.seed(7)  # the same throttled/accepted sequence on every run
    with local_aws.override(invoke_throttle_rate=0.5):
        runs = [run_asset(client, function, {}, checks=["passes", "fails"]) for _ in range(4)]
    assert all(r.result.success for r in runs), [r.error for r in runs]
    assert counter.calls.count("Invoke") > 4, "some invokes were throttled and retried"


def test_invokes_throttled_every_time_fail_with_advice(local_aws, handler_function, make_client) -> None:
    settings = LambdaClientSettings(throttle_max_attempts=3, throttle_base_delay_s=0.01)
    client, _ = make_client(client_settings=settings)
    with local_aws.override(invoke_throttle_rate=1.0):
        run = run_asset(client, handler_function("all_methods"), {}, checks=["passes", "fails"])
    assert isinstance(run.error, InvokeThrottledError)
    assert "all 3 attempts" in str(run.error) and "reserved concurrency" in str(run.error)


def test_log_reads_stay_inside_the_budget_when_cloudwatch_throttles(local_aws, handler_function, make_client) -> None:
    # a budget of 4 reads/s, under the endpoint's 5/s
    client, counter = make_client(CloudWatchLogsMessageReader, budget=RateBudget(rate=4))
    function = handler_function("noisy", "lambda_handler")
    with local_aws.override(logs_read_tps=5):
        run = run_asset(client, function, {"messages": 200, "noise_bytes": 3_000_000})
    assert run.result.success, run.error
    assert len(run.completed.get_custom_messages()) == 200
    assert counter.calls.count("GetLogEvents") >= 2
    assert "ThrottlingException" not in counter.error_codes


def test_throttled_log_reads_back_off_and_lose_nothing(local_aws, handler_function, make_client) -> None:
    # a budget of 50/s, far above the endpoint's 1/s: back-to-back reads are throttled however slow
    # the machine is, and botocore's back-off (10 attempts) rides it out
    client, counter = make_client(CloudWatchLogsMessageReader, logs_retries=10)
    function = handler_function("noisy", "lambda_handler")
    with local_aws.override(logs_read_tps=1):
        run = run_asset(client, function, {"messages": 100, "noise_bytes": 3_000_000})
    assert run.result.success, run.error
    assert "ThrottlingException" in counter.error_codes, "the endpoint did throttle"
    assert [m["i"] for m in run.completed.get_custom_messages()] == list(range(100))


def test_late_log_ingestion_is_waited_for(local_aws, example_function, make_client) -> None:
    client, _ = make_client(CloudWatchLogsMessageReader)
    function = example_function("docs_style", "handler.lambda_handler")
    with local_aws.override(log_ingestion_delay_s=1.0):
        run = run_asset(client, function, {"some_parameter_value": 1})
    assert run.result.success, run.error
    assert run.metadata()["some_metric"] == MetadataValue.int(2)


def test_logs_that_never_arrive_fail_clearly(local_aws, example_function, make_client) -> None:
    client, _ = make_client(CloudWatchLogsMessageReader, ingestion_timeout_s=0.5)
    function = example_function("docs_style", "handler.lambda_handler")
    with local_aws.override(log_ingestion_delay_s=5.0):
        run = run_asset(client, function, {"some_parameter_value": 1})
    assert isinstance(run.error, LogsNotReadableError)
    assert "PIPESKIT_INGESTION_TIMEOUT_S" in str(run.error)


def test_oversized_event_is_refused_before_invoking(handler_function, make_client) -> None:
    client, counter = make_client()
    run = run_asset(client, handler_function("all_methods"), {"blob": "x" * (6 * 1024 * 1024)})
    assert isinstance(run.error, PayloadTooLargeError)
    assert "6,291,456-byte request limit" in str(run.error)
    assert "Invoke" not in counter.calls


@pytest.mark.parametrize("event", [{"value": None}, {}])
def test_malformed_event_surfaces_the_handlers_error(event, handler_function, make_client) -> None:
    client, _ = make_client()
    run = run_asset(client, handler_function("failing"), event)
    assert run.error.error_type in {"ValueError", "KeyError"}
    assert run.error.request_id


@pytest.mark.parametrize(
    "event, extras",
    [([1, 2], None), ({"ratio": float("nan")}, None), ({"ok": 1}, {"when": object()})],
    ids=["not-a-mapping", "nan", "extras-not-json"],
)
def test_bad_input_is_refused_before_anything_is_invoked(event, extras, handler_function, make_client) -> None:
    client, counter = make_client()
    run = run_asset(client, handler_function("all_methods"), event, extras=extras)
    assert isinstance(run.error, InvalidEventError)
    assert counter.calls == [], "nothing was invoked"
