"""The fault-injection suite's end-to-end cases: each fault injected by the local AWS (or by the function
itself), each run through real Dagster, the real pipes layer and the kit's client.

For every fault the channels keep their promises: no hang, no lost message that the function managed to
write, no duplicate result, and an error that names the cause. Outcomes are asserted, never timings.
The rest of the suite (``pytest -m faults``) lives next to the features it exercises; README.md's
"Fault-injection suite" table maps each fault to its test.
"""

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dagster import StaticPartitionsDefinition

from pipeskit import (
    CloudWatchLogsMessageReader,
    LambdaFunctionError,
    LogsNotReadableError,
    LogsReaderSettings,
    PayloadTooLargeError,
    PipesLambdaClient,
    RateBudget,
    ResponsePayloadMessageReader,
    S3ContextInjector,
    S3MessageReader,
    S3NotUsableError,
)
from pipeskit.local.testing import ApiCallCounter, deploy_pipes_function
from pipeskit.settings import DeploymentSettings, S3ReaderSettings
from pipeskit_lambda.protocol import HANDLER_ENV_VAR

from .conftest import HANDLERS_DIR, run_asset
from .handlers.garbled import GARBAGE, TORN, UNKNOWN

pytestmark = pytest.mark.faults

CHANNELS = {"response": ResponsePayloadMessageReader, "logs": CloudWatchLogsMessageReader}


@pytest.fixture(params=sorted(CHANNELS))
def channel(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fresh_function(local_aws, pipes_layer_arn, role_arn) -> Iterator[Callable[..., str]]:
    """Deploy a handler as a new function (its first invocation starts a new environment, with a new log
    stream), optionally with extra environment variables; deleted after the test."""
    lam = local_aws.client("lambda")
    created: list[str] = []

    def _deploy(module: str, function: str = "lambda_handler", *, environment: dict[str, str] | None = None,
                **kwargs: Any) -> str:
        user_handler = f"{module}.{function}"
        name = deploy_pipes_function(lam, code=HANDLERS_DIR / f"{module}.py", user_handler=user_handler,
                                     layer_arn=pipes_layer_arn, role_arn=role_arn, **kwargs)
        if environment:
            lam.update_function_configuration(
                FunctionName=name, Environment={"Variables": {HANDLER_ENV_VAR: user_handler, **environment}}
            )
        created.append(name)
        return name

    yield _deploy
    for name in created:
        lam.delete_function(FunctionName=name)


def numbered(run: Any) -> list[str]:
    """The handlers' ``message NNN`` log lines that reached the step's log, in order."""
    return [m for _, m in run.log_messages() if re.fullmatch(r"message \d{3}", m)]


def expected(n: int) -> list[str]:
    return [f"message {i:03d}" for i in range(n)]


# -- a log stream that appears late ----------------------------------------------------------------------
# A new execution environment's stream is created only `log_stream_delay_s` after its first line; its
# lines are held until then. Each test deploys a new function, so its environment's stream is new.


def test_a_late_log_stream_is_waited_for_on_the_logs_channel(local_aws, fresh_function, make_client) -> None:
    client, counter = make_client(CloudWatchLogsMessageReader)
    function = fresh_function("noisy")
    with local_aws.override(log_stream_delay_s=3.0):
        run = run_asset(client, function, {"messages": 50, "noise_bytes": 20_000})
    assert run.result.success, run.error
    assert [m["i"] for m in run.completed.get_custom_messages()] == list(range(50))
    assert run.metadata()["messages"].value == 50
    assert "ResourceNotFoundException" in counter.error_codes, "the stream did not exist when first read"


def test_a_late_log_stream_is_waited_for_after_a_failure(local_aws, fresh_function, make_client) -> None:
    """The response channel reads a failed function's messages back from its log stream, once it exists."""
    client, counter = make_client(ResponsePayloadMessageReader)
    function = fresh_function("dying")
    with local_aws.override(log_stream_delay_s=3.0):
        run = run_asset(client, function, {"messages": 20, "mode": "raise"})
    assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "ValueError"
    assert run.error.read_error is None
    assert numbered(run) == expected(20)
    assert counter.calls.count("FilterLogEvents") > 1, "the stream was looked for until it appeared"


def test_a_log_stream_later_than_the_ingestion_timeout_fails_naming_where_it_waited(
    channel, local_aws, fresh_function, make_client
) -> None:
    client, _ = make_client(CHANNELS[channel], ingestion_timeout_s=0.5)
    function = fresh_function("noisy" if channel == "logs" else "dying")
    group = f"/aws/lambda/{function}"
    with local_aws.override(log_stream_delay_s=30.0):
        if channel == "logs":  # the function succeeds; its messages are only in the stream
            run = run_asset(client, function, {"messages": 5, "noise_bytes": 0})
            error = run.error
        else:  # the function fails; its messages are read back from the stream
            run = run_asset(client, function, {"messages": 5, "mode": "raise"})
            assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "ValueError"
            assert "could not all be read back" in run.error.description
            error = run.error.read_error
    assert isinstance(error, LogsNotReadableError), error
    # the logs channel knows the stream (the function's envelope names it); the read-back finds it by request id
    assert (f"{group}/" if channel == "logs" else group) in str(error)
    assert "PIPESKIT_INGESTION_TIMEOUT_S" in str(error) and "within 0.5 s" in str(error)
    if channel == "logs":
        assert "the log stream" in str(error) and "no message was read" in str(error)


def test_late_log_lines_are_waited_for_after_a_failure(channel, local_aws, handler_function, make_client) -> None:
    client, _ = make_client(CHANNELS[channel])
    function = handler_function("dying", "lambda_handler")
    with local_aws.override(log_ingestion_delay_s=1.0):
        run = run_asset(client, function, {"messages": 20, "mode": "raise"})
    assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "ValueError"
    assert run.error.read_error is None
    assert numbered(run) == expected(20)


# -- corrupted and partial message lines -----------------------------------------------------------------
# The documented behaviour (pipeskit.message_lines): a torn line, an unknown method or garbage carrying the
# Pipes marker costs that line only — a warning, and the text forwarded to the step's log; every intact
# message is delivered and the session succeeds.


@pytest.mark.parametrize("path", ["logs channel", "response overflow read-back", "response read-back after failure"])
def test_corrupted_and_partial_message_lines_cost_only_themselves(path, handler_function, fresh_function,
                                                                   make_client) -> None:
    fail = path == "response read-back after failure"
    if path == "logs channel":
        client, _ = make_client(CloudWatchLogsMessageReader)
        function = handler_function("garbled", "lambda_handler")
    elif path == "response overflow read-back":  # not even compressed do they fit the response: read from the log
        client, _ = make_client(ResponsePayloadMessageReader)
        function = fresh_function("garbled", environment={"PIPESKIT_RESPONSE_BUDGET_BYTES": "1024"})
    else:
        client, _ = make_client(ResponsePayloadMessageReader)
        function = handler_function("garbled", "lambda_handler")
    count = 300 if path == "response overflow read-back" else 10  # 300: several KB even compressed
    run = run_asset(client, function, {"messages": count, "fail": fail})

    assert numbered(run) == expected(count), "every intact log message arrived, once"
    if fail:
        assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "RuntimeError"
        assert run.error.read_error is None
        assert "[pipes] external process pipes closed with exception" in run.engine_events()
    else:
        assert run.result.success, run.error
        assert list(run.completed.get_custom_messages()) == [{"i": i} for i in range(count)]
        assert run.metadata()["messages"].value == count
        assert len(run.materializations()) == 1
    warnings = [m for level, m in run.log_messages() if level >= 30]
    assert any("skipped a 'log' message line that is not valid JSON (torn or corrupt)" in m for m in warnings)
    assert any("skipped a message with the unknown method 'report_future_thing'" in m for m in warnings)
    assert any("skipped a message line that is not valid JSON" in m and "#@!garbage" in m for m in warnings)
    forwarded = "\n".join(m for _, m in run.log_messages() if "log lines:" in m)
    for line in (TORN, UNKNOWN, GARBAGE, "progress 50%..."):
        assert line in forwarded, f"{line!r} was forwarded as text"


# -- warm reuse after a failed invocation ----------------------------------------------------------------


def test_a_warm_environment_serves_again_after_a_failed_invocation(channel, handler_function, make_client) -> None:
    """A docs-style handler behind the kit's entrypoint: invocations 1 and 3 raise after reporting,
    2 and 4 succeed in the same environment, each with its own partition key and extras (dagster#22094)."""
    client, _ = make_client(CHANNELS[channel])
    function = handler_function("relapse", "lambda_handler")
    partitions = StaticPartitionsDefinition(["a", "b", "c", "d"])
    plan = [("a", True), ("b", False), ("c", True), ("d", False)]
    runs = [
        run_asset(client, function, {"fail": fail}, partitions_def=partitions, partition_key=key, extras={"turn": turn})
        for turn, (key, fail) in enumerate(plan)
    ]
    seen: list[tuple[int, str]] = []  # (invocation, environment) per run, from what each reported
    for turn, ((key, fail), run) in enumerate(zip(plan, runs, strict=True)):
        reported = [re.fullmatch(rf"invocation (\d+) of (\w+) for {key}", m) for _, m in run.log_messages()]
        [match] = [m for m in reported if m]
        invocation, environment = int(match[1]), match[2]
        seen.append((invocation, environment))
        if fail:
            assert isinstance(run.error, LambdaFunctionError), run.error
            assert run.error.error_type == "RuntimeError"
            assert run.error.error_message == f"invocation {invocation} for {key} failed on purpose"
            assert run.error.read_error is None
            assert "[pipes] external process pipes closed with exception" in run.engine_events()
        else:
            assert run.result.success, run.error
            assert run.completed.return_value == {"environment": environment, "invocation": invocation}
            assert list(run.completed.get_custom_messages()) == [
                {"environment": environment, "invocation": invocation, "partition_key": key, "extras": {"turn": turn}}
            ]
            [event] = run.materializations()
            assert event.materialization.partition == key
            assert run.metadata()["partition_key"].value == key
    assert len({environment for _, environment in seen}) == 1, "one warm environment served all four"
    first = seen[0][0]
    assert [invocation for invocation, _ in seen] == [first, first + 1, first + 2, first + 3]


# -- S3 slow-down (503) ----------------------------------------------------------------------------------


@pytest.fixture
def context_bucket(local_aws) -> str:
    name = f"contexts-{uuid.uuid4().hex[:10]}"
    local_aws.client("s3").create_bucket(Bucket=name)
    return name


def s3_channel_client(local_aws, bucket: str, *, counter: ApiCallCounter | None = None,
                      s3_retries: int | None = None, context_bucket: str | None = None) -> PipesLambdaClient:
    """A kit client on the S3 channel (and the S3 context injector when given a context bucket)."""
    counter = counter or ApiCallCounter()
    s3 = counter.attach(local_aws.client("s3", retries=s3_retries))
    lambda_client = counter.attach(local_aws.client("lambda", retries=0, read_timeout=120))
    reader = S3MessageReader(
        bucket, client=s3, s3_settings=S3ReaderSettings(s3_completion_timeout_s=10.0, s3_gap_timeout_s=2.0),
        logs_client=counter.attach(local_aws.client("logs", retries=3)), lambda_client=lambda_client,
        settings=LogsReaderSettings(ingestion_timeout_s=15.0, poll_interval_s=0.05), budget=RateBudget(50),
    )  # fmt: skip
    injector = S3ContextInjector(context_bucket, client=s3) if context_bucket else None
    return PipesLambdaClient(client=lambda_client, message_reader=reader, context_injector=injector)


def objects_left(local_aws, bucket: str) -> list[str]:
    return [item["Key"] for item in local_aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_s3_slow_down_is_ridden_out_losing_and_doubling_nothing(local_aws, handler_function, bucket,
                                                                context_bucket) -> None:
    """Every S3 request target (context object, chunk, listing) is refused once with 503 SlowDown first.

    The function works past the writer's 1 s upload interval, so its messages travel in two chunks at least.
    """
    counter = ApiCallCounter()
    client = s3_channel_client(local_aws, bucket, counter=counter, context_bucket=context_bucket)
    function = handler_function("streaming", "lambda_handler")
    before = dict(local_aws.faults.s3_slow_downs)
    with local_aws.override(s3_slow_down_per_key=1):
        run = run_asset(client, function, {"messages": 100, "work_s": 2.0})
    refused = {method: n - before.get(method, 0) for method, n in local_aws.faults.s3_slow_downs.items()}
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == list(range(100)), "nothing lost, nothing doubled"
    assert [m for _, m in run.log_messages() if m.endswith(" message")] == ["early message", "late message"]
    assert len(run.materializations()) == 1 and run.metadata()["sent"].value == 100
    assert refused.get("PUT", 0) >= 3, "the context and at least two chunks were refused once each"
    assert refused.get("GET", 0) >= 3, "the function's context read and the reader's reads were refused"
    assert "SlowDown" in counter.error_codes
    assert objects_left(local_aws, bucket) == [] and objects_left(local_aws, context_bucket) == []


def test_a_chunk_upload_refused_past_the_functions_retries_loses_nothing(local_aws, fresh_function, bucket) -> None:
    """The first chunk's key is refused twice, as often as the function's boto3 tries (AWS_MAX_ATTEMPTS=2);
    the orchestrator's reads ride it out. The writer keeps the refused chunk's lines under its number and
    uploads them on its next try: every message arrives once, in order."""
    client = s3_channel_client(local_aws, bucket)
    function = fresh_function("streaming", environment={"AWS_MAX_ATTEMPTS": "2"})
    with local_aws.override(s3_slow_down_per_key=2):
        run = run_asset(client, function, {"messages": 10, "work_s": 1.5})
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == list(range(10))
    assert [m for _, m in run.log_messages() if m.endswith(" message")] == ["early message", "late message"]


def test_s3_refusing_the_context_object_fails_naming_slow_down_and_the_bucket(
    local_aws, handler_function, context_bucket, make_client
) -> None:
    kit, counter = make_client()
    s3 = counter.attach(local_aws.client("s3", retries=1))
    client = PipesLambdaClient(client=kit.lambda_client, message_reader=kit.message_reader,
                               context_injector=S3ContextInjector(context_bucket, client=s3))  # fmt: skip
    with local_aws.override(s3_slow_down_rate=1.0):
        run = run_asset(client, handler_function("streaming", "lambda_handler"), {"messages": 5})
    assert isinstance(run.error, S3NotUsableError), run.error
    assert "SlowDown" in str(run.error) and f"s3://{context_bucket}/" in str(run.error)
    assert "Nothing was invoked" in str(run.error) and "Invoke" not in counter.calls


def test_s3_refusing_every_chunk_request_loses_nothing_the_log_copy_holds(local_aws, fresh_function, bucket) -> None:
    """The function's uploads and the reader's listings are all refused: the messages come from their copy
    in the function's log, and a warning names SlowDown and the bucket."""
    counter = ApiCallCounter()
    client = s3_channel_client(local_aws, bucket, counter=counter, s3_retries=1)
    with local_aws.override(s3_slow_down_rate=1.0):
        run = run_asset(client, fresh_function("streaming", environment={"AWS_MAX_ATTEMPTS": "2"}), {"messages": 5})
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == list(range(5))
    assert "SlowDown" in counter.error_codes
    warnings = [m for level, m in run.log_messages() if "s3://" in m and "SlowDown" in m]
    assert warnings and f"s3://{bucket}/" in warnings[0] and "copy in the function's log" in warnings[0]


# -- timeout and crash on the S3 channel ------------------------------------------------------------------


@pytest.mark.parametrize("mode, error_type", [("timeout", "Sandbox.Timedout"), ("kill", "Runtime.ExitError")])
def test_the_s3_channel_loses_and_doubles_nothing_when_the_function_times_out_or_is_killed(
    mode, error_type, local_aws, handler_function, bucket
) -> None:
    """What reached S3 before the end is read from the chunks, the rest from the log copy, each message once."""
    client = s3_channel_client(local_aws, bucket)
    run = run_asset(client, handler_function("dying", "lambda_handler", timeout=3), {"messages": 100, "mode": mode})
    assert isinstance(run.error, LambdaFunctionError), run.error
    assert run.error.error_type == error_type
    assert run.error.read_error is None
    assert numbered(run) == expected(100)
    assert objects_left(local_aws, bucket) == []


# -- an event too large for any channel ------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["response", "logs", "s3"])
def test_an_event_too_large_for_any_channel_is_refused_before_anything_is_invoked(
    reader, local_aws, handler_function, bucket, context_bucket
) -> None:
    """Even with a context bucket (the context could travel through S3), the event itself cannot."""
    counter = ApiCallCounter()
    s3 = counter.attach(local_aws.client("s3"))
    lambda_client = counter.attach(local_aws.client("lambda", retries=0))
    readers = {
        "response": lambda: ResponsePayloadMessageReader(lambda_client=lambda_client),
        "logs": lambda: CloudWatchLogsMessageReader(lambda_client=lambda_client),
        "s3": lambda: S3MessageReader(bucket, client=s3, lambda_client=lambda_client),
    }
    client = PipesLambdaClient(client=lambda_client, message_reader=readers[reader](), s3_client=s3,
                               deployment=DeploymentSettings(context_bucket=context_bucket))
    run = run_asset(client, handler_function("all_methods"), {"blob": "x" * (6 * 1024 * 1024)})
    assert isinstance(run.error, PayloadTooLargeError), run.error
    assert "6,291,456-byte request limit" in str(run.error) and "Nothing was invoked" in str(run.error)
    assert not [call for call in counter.calls if call.startswith("Invoke")]
    assert objects_left(local_aws, context_bucket) == [] and objects_left(local_aws, bucket) == []


def test_an_asynchronous_event_too_large_is_refused_before_anything_is_invoked(local_aws, handler_function,
                                                                               bucket) -> None:
    counter = ApiCallCounter()
    s3 = counter.attach(local_aws.client("s3"))
    lambda_client = counter.attach(local_aws.client("lambda", retries=0))
    client = PipesLambdaClient(client=lambda_client,
                               message_reader=S3MessageReader(bucket, client=s3, lambda_client=lambda_client))
    run = run_asset(client, handler_function("all_methods"), {"blob": "x" * (1024 * 1024 + 1)},
                    invocation_type="Event")
    assert isinstance(run.error, PayloadTooLargeError), run.error
    assert "1,048,576-byte request limit" in str(run.error)
    assert not [call for call in counter.calls if call.startswith("Invoke")]
