"""The client's side of durable functions, against boto3's real Lambda API shapes (botocore's Stubber
answers the durable-execution calls the local AWS does not serve yet), the S3 channel on the local AWS,
real Dagster, and the durable handler run by the SDK's in-process runner (its waits skipped)."""

import datetime
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from dagster import AssetCheckSpec, AssetExecutionContext, DagsterInstance, asset, materialize
from dagster_pipes import DAGSTER_PIPES_MESSAGES_ENV_VAR, decode_param

from pipeskit import LambdaFunctionError, PipesLambdaClient
from pipeskit.aws_errors import AwsAccessDeniedError
from pipeskit.channels.s3 import StatusLooks
from pipeskit.cli import main
from pipeskit.durable import (
    ProgressReader,
    complete_callback,
    durable_qualifier,
    execution_name,
    fail_callback,
    find_execution,
    progress_lines,
)
from pipeskit.settings import LambdaClientSettings
from pipeskit_lambda.channels import environment_s3_client
from pipeskit_lambda.protocol import KEY_PREFIX_PARAM

from .lambda_side.durable_handlers import EXPECTED_LOGS, failing, run_durably, three_steps

FUNCTION = "etl"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
STARTED = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def arn_of(name: str) -> str:
    return f"{FUNCTION_ARN}:$LATEST/durable-execution/{name}/0f1e2d3c"


@pytest.fixture
def lambda_client() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def bucket(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A messages bucket on the local AWS; the function side's S3 client (in this process) points there too."""
    for name, value in local_aws.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PIPESKIT_S3_FLUSH_INTERVAL_S", "0.05")
    environment_s3_client.cache_clear()
    name = f"durable-{uuid.uuid4().hex[:10]}"
    local_aws.client("s3").create_bucket(Bucket=name)
    return name


def durable_function_is_described(stub: Stubber) -> None:
    stub.add_response(
        "get_function_configuration",
        {"FunctionName": FUNCTION, "FunctionArn": FUNCTION_ARN, "Timeout": 900,
         "DurableConfig": {"ExecutionTimeout": 86400, "RetentionPeriodInDays": 7}},
        {"FunctionName": FUNCTION},
    )  # fmt: skip


STARTED_ARN = arn_of("started-by-the-invoke")
"""The ``DurableExecutionArn`` the stubbed ``Invoke`` answers."""


def execution_answer(name: str, status: str, arn: str | None = None, **more: Any) -> dict[str, Any]:
    return {"DurableExecutionArn": arn or arn_of(name), "DurableExecutionName": name, "FunctionArn": FUNCTION_ARN,
            "StartTimestamp": STARTED, "Status": status, **more}  # fmt: skip


LISTED = {"FunctionName": FUNCTION, "DurableExecutionName": ANY, "ReverseOrder": True, "Qualifier": "$LATEST"}
"""The ``ListDurableExecutionsByFunction`` request of a run (the name is checked where it matters)."""

HISTORY = [
    {"EventType": "ExecutionStarted", "EventId": 1, "Id": "exec", "EventTimestamp": STARTED},
    {"EventType": "StepSucceeded", "EventId": 3, "Id": "1", "Name": "load", "EventTimestamp": STARTED},
    {"EventType": "WaitStarted", "EventId": 4, "Id": "2", "EventTimestamp": STARTED,
     "WaitStartedDetails": {"Duration": 7200, "ScheduledEndTimestamp": STARTED + datetime.timedelta(hours=2)}},
    {"EventType": "CallbackStarted", "EventId": 5, "Id": "3", "Name": "approval", "EventTimestamp": STARTED,
     "CallbackStartedDetails": {"CallbackId": "cb-123"}},
]  # fmt: skip


def run_step(client: PipesLambdaClient) -> tuple[Any, dict[str, Any], DagsterInstance]:
    captured: dict[str, Any] = {}

    @asset(name="lambda_asset", check_specs=[AssetCheckSpec("rows_positive", asset="lambda_asset")])
    def lambda_asset(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        try:
            completed = lambda_pipes.run(context=context, function_name=FUNCTION, event={"day": "2026-11-30"})
        except Exception as error:
            captured["error"] = error
            raise
        captured["completed"] = completed
        yield from completed.get_results()

    instance = DagsterInstance.ephemeral()
    result = materialize([lambda_asset], resources={"lambda_pipes": client}, raise_on_error=False, instance=instance)
    return result, captured, instance


def kit_client(lambda_client: Any, local_aws: Any, bucket: str) -> PipesLambdaClient:
    return PipesLambdaClient(
        client=lambda_client, s3_client=local_aws.client("s3"), channel="s3", messages_bucket=bucket,
        settings=LambdaClientSettings(durable_status_interval_s=0.05),
    )  # fmt: skip


def logs_of(instance: DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if not e.is_dagster_event]


def a_new_execution_is_started(stub: Stubber) -> None:
    """The function is durable, no execution of the step's name exists, and one is started (Event, $LATEST)."""
    durable_function_is_described(stub)
    stub.add_response("list_durable_executions_by_function", {"DurableExecutions": []},
                      LISTED)  # fmt: skip
    stub.add_response("invoke", {"StatusCode": 202, "DurableExecutionArn": STARTED_ARN},
                      {"FunctionName": FUNCTION, "InvocationType": "Event", "Payload": ANY,
                       "DurableExecutionName": ANY, "Qualifier": "$LATEST"})  # fmt: skip


def the_execution_ended(stub: Stubber, answer: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Lambda's answers once the execution ended: its status (``answer``) and its history."""
    stub.add_response("get_durable_execution", answer,
                      {"DurableExecutionArn": STARTED_ARN, "IncludeExecutionData": False})  # fmt: skip
    stub.add_response("get_durable_execution_history", {"Events": history[::-1]},
                      {"DurableExecutionArn": STARTED_ARN, "IncludeExecutionData": False,
                       "ReverseOrder": True})  # fmt: skip


def test_a_durable_function_runs_as_one_session_started_under_the_steps_execution_name(
    lambda_client, local_aws, bucket
) -> None:
    client, stub = lambda_client
    ran: dict[str, Any] = {}

    def run_the_execution(params: dict[str, Any], **_: Any) -> None:
        """Lambda's part: the durable execution runs (in-process, its waits skipped) on the invoked event."""
        name = params["DurableExecutionName"]
        ran["name"], ran["payload"] = name, json.loads(params["Payload"])
        result = run_durably(three_steps, params["Payload"].decode())
        ran["result"] = result
        succeeded = execution_answer(name, "SUCCEEDED", STARTED_ARN, Result=result.result)
        the_execution_ended(stub, succeeded, HISTORY)

    client.meta.events.register("before-parameter-build.lambda.Invoke", run_the_execution)
    a_new_execution_is_started(stub)

    result, captured, instance = run_step(kit_client(client, local_aws, bucket))

    assert result.success, captured.get("error")
    event_json = json.dumps({"day": "2026-11-30"})
    assert ran["name"] == execution_name(f"{result.run_id}/lambda_asset", FUNCTION, event_json=event_json)
    assert captured["completed"].return_value == {"rows": 1200, "passed": True}
    [materialization] = result.get_asset_materialization_events()
    assert materialization.materialization.metadata["rows"].value == 600
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed
    logs = logs_of(instance, result.run_id)
    assert [line for line in logs if line in EXPECTED_LOGS] == EXPECTED_LOGS  # every message once, in order
    assert "[pipeskit durable] step 'load' completed" in logs
    assert "[pipeskit durable] waiting 7200 s (2) until 2026-11-30 14:00:00 UTC" in logs
    awaiting = "[pipeskit durable] awaiting callback 'approval': callback id cb-123"
    assert any(line.startswith(awaiting) for line in logs)
    prefix = decode_param(ran["payload"][DAGSTER_PIPES_MESSAGES_ENV_VAR])[KEY_PREFIX_PARAM]
    assert local_aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount") == 0  # read: deleted


def test_a_re_executed_run_re_attaches_to_the_running_execution_and_invokes_nothing(
    lambda_client, local_aws, bucket, bootstrap_payload
) -> None:
    client, stub = lambda_client
    name = "dagster-lambda_asset-0123456789abcdef0123"
    earlier = bootstrap_payload(bucket)  # what the first execution of the run sent; its session ran since
    finished = run_durably(three_steps, earlier)
    durable_function_is_described(stub)
    stub.add_response("list_durable_executions_by_function",
                      {"DurableExecutions": [execution_answer(name, "RUNNING")]},
                      LISTED)  # fmt: skip
    stub.add_response("get_durable_execution", execution_answer(name, "RUNNING", InputPayload=json.dumps(earlier)),
                      {"DurableExecutionArn": arn_of(name), "IncludeExecutionData": True})  # fmt: skip
    stub.add_response("get_durable_execution", execution_answer(name, "SUCCEEDED", Result=finished.result),
                      {"DurableExecutionArn": arn_of(name), "IncludeExecutionData": False})  # fmt: skip
    stub.add_response("get_durable_execution_history", {"Events": []},
                      {"DurableExecutionArn": arn_of(name), "IncludeExecutionData": False,
                       "ReverseOrder": True})  # fmt: skip

    result, captured, instance = run_step(kit_client(client, local_aws, bucket))  # no Invoke is stubbed

    assert result.success, captured.get("error")
    assert captured["completed"].return_value == {"rows": 1200, "passed": True}
    assert len(result.get_asset_materialization_events()) == 1
    logs = logs_of(instance, result.run_id)
    assert [line for line in logs if line in EXPECTED_LOGS] == EXPECTED_LOGS
    assert any("re-attached to the durable execution" in line for line in logs)


def test_a_failed_execution_fails_the_step_with_the_functions_error(lambda_client, local_aws, bucket) -> None:
    client, stub = lambda_client

    def run_the_execution(params: dict[str, Any], **_: Any) -> None:
        name = params["DurableExecutionName"]
        result = run_durably(failing, params["Payload"].decode())
        error = {"ErrorType": result.error.type, "ErrorMessage": result.error.message}
        the_execution_ended(stub, execution_answer(name, "FAILED", STARTED_ARN, Error=error), [])

    client.meta.events.register("before-parameter-build.lambda.Invoke", run_the_execution)
    a_new_execution_is_started(stub)

    result, captured, instance = run_step(kit_client(client, local_aws, bucket))

    assert not result.success
    error = captured["error"]
    assert isinstance(error, LambdaFunctionError)
    assert "the source refused the query" in error.error_message
    assert logs_of(instance, result.run_id).count("before the flaky step") == 1


def test_an_execution_that_timed_out_fails_the_step_at_once_naming_it(lambda_client, local_aws, bucket,
                                                                       bootstrap_payload) -> None:
    client, stub = lambda_client
    name = "dagster-lambda_asset-00000000000000000000"
    durable_function_is_described(stub)
    stub.add_response("list_durable_executions_by_function", {"DurableExecutions": [execution_answer(name, "RUNNING")]},
                      LISTED)  # fmt: skip
    stub.add_response("get_durable_execution",
                      execution_answer(name, "RUNNING", InputPayload=json.dumps(bootstrap_payload(bucket))),
                      {"DurableExecutionArn": arn_of(name), "IncludeExecutionData": True})  # fmt: skip
    stub.add_response("get_durable_execution", execution_answer(name, "TIMED_OUT"),
                      {"DurableExecutionArn": arn_of(name), "IncludeExecutionData": False})  # fmt: skip
    stub.add_response("get_durable_execution_history", {"Events": []},
                      {"DurableExecutionArn": arn_of(name), "IncludeExecutionData": False,
                       "ReverseOrder": True})  # fmt: skip

    started = time.monotonic()
    result, captured, _ = run_step(kit_client(client, local_aws, bucket))

    assert not result.success
    assert captured["error"].error_type == "DurableExecution.TimedOut"
    assert "ended TIMED_OUT" in captured["error"].error_message
    assert time.monotonic() - started < 20, "no closed is awaited from an execution Lambda ended"


def test_the_execution_name_is_the_same_for_a_re_execution_and_keeps_to_aws_rules() -> None:
    root = "6a8f3c1e-0000-4c4c-9e9e-1234567890ab"
    name = execution_name(f"{root}/nightly.extract orders", "arn:aws:lambda:us-east-1:1:function:etl:prod")
    assert name == execution_name(f"{root}/nightly.extract orders", "etl")  # the function however it is named
    assert name.startswith("dagster-nightly-extract-orders-")
    assert len(name) <= 64 and all(c.isalnum() or c in "-_" for c in name)
    assert name != execution_name(f"{root}/another_step", "etl")
    assert name != execution_name(f"{uuid.uuid4()}/nightly.extract orders", "etl")
    assert name != execution_name(f"{root}/nightly.extract orders", "other-function")
    assert name != execution_name(f"{root}/nightly.extract orders", "etl", event_json='{"day": "2026-11-30"}')
    long = execution_name(f"{root}/{'x' * 300}", "etl", generation=12)
    assert len(long) == 64 and long.endswith("-12")


def test_an_execution_that_failed_is_not_re_attached_to_the_next_generation_starts(lambda_client) -> None:
    client, stub = lambda_client
    first, second = (execution_name("root/step", FUNCTION, generation) for generation in (1, 2))
    stub.add_response("list_durable_executions_by_function",
                      {"DurableExecutions": [execution_answer(first, "FAILED")]},
                      {"FunctionName": FUNCTION, "DurableExecutionName": first, "ReverseOrder": True})  # fmt: skip
    stub.add_response("list_durable_executions_by_function", {"DurableExecutions": []},
                      {"FunctionName": FUNCTION, "DurableExecutionName": second, "ReverseOrder": True})  # fmt: skip

    assert find_execution(client, FUNCTION, None, "root/step") == (second, None)
    assert durable_qualifier(FUNCTION, None) == "$LATEST"  # Lambda invokes durable functions qualified only
    assert durable_qualifier(f"{FUNCTION}:live", None) is None
    assert durable_qualifier(f"{FUNCTION_ARN}:7", None) is None
    assert durable_qualifier(FUNCTION, "7") == "7"


def test_progress_is_said_once_per_history_event(lambda_client) -> None:
    client, stub = lambda_client
    said: list[str] = []
    reader = ProgressReader(client, arn_of("n"), said.append)
    request = {"DurableExecutionArn": arn_of("n"), "IncludeExecutionData": False, "ReverseOrder": True}
    stub.add_response("get_durable_execution_history", {"Events": HISTORY[:2][::-1]}, request)
    # newest first: a page of new events, then one that reaches what was said (no page after it is read)
    stub.add_response("get_durable_execution_history", {"Events": HISTORY[3:][::-1], "NextMarker": "m"}, request)
    stub.add_response("get_durable_execution_history", {"Events": HISTORY[:3][::-1], "NextMarker": "m2"},
                      {**request, "Marker": "m"})  # fmt: skip

    assert reader.read() == 2
    assert reader.read() == 2  # the two new events, from two pages, said in order
    stub.assert_no_pending_responses()
    assert said == [
        "[pipeskit durable] step 'load' completed",
        "[pipeskit durable] waiting 7200 s (2) until 2026-11-30 14:00:00 UTC",
        "[pipeskit durable] awaiting callback 'approval': callback id cb-123 (complete it with: pipeskit callback "
        "succeed cb-123 --result JSON)",
    ]
    assert progress_lines([{"EventType": "ExecutionFailed", "EventId": 9}]) == ["execution failed"]


def test_a_callback_is_completed_or_failed_through_the_api_and_the_cli(lambda_client, monkeypatch, capsys) -> None:
    client, stub = lambda_client
    stub.add_response("send_durable_execution_callback_success", {},
                      {"CallbackId": "cb-1", "Result": b'{"approved": true}'})  # fmt: skip
    stub.add_response("send_durable_execution_callback_failure", {},
                      {"CallbackId": "cb-2", "Error": {"ErrorType": "Rejected", "ErrorMessage": "no"}})  # fmt: skip
    stub.add_response("send_durable_execution_callback_success", {},
                      {"CallbackId": "cb-3", "Result": b'{"rows": 3}'})  # fmt: skip
    too_late = {"ErrorType": "Rejected", "ErrorMessage": "too late"}
    stub.add_response("send_durable_execution_callback_failure", {}, {"CallbackId": "cb-4", "Error": too_late})

    complete_callback(client, "cb-1", {"approved": True})
    fail_callback(client, "cb-2", "Rejected", "no")
    monkeypatch.setattr("pipeskit.lambda_commands.lambda_client_from_env", lambda: client)
    assert main(["callback", "succeed", "cb-3", "--result", '{"rows": 3}']) == 0
    assert main(["callback", "fail", "cb-4", "--error-type", "Rejected", "--message", "too late"]) == 0
    assert "cb-3" in capsys.readouterr().err
    assert main(["callback", "succeed", "cb-5", "--result", "{not json"]) == 2
    assert "--result" in capsys.readouterr().err


@pytest.fixture
def bootstrap_payload() -> Any:
    """The execution input a run sends: the event and a bootstrap naming the S3 channel and a prefix."""
    from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, encode_param

    from .lambda_side.conftest import CONTEXT_DATA

    def _make(bucket: str) -> dict[str, Any]:
        params = {"stdio": "stderr", "pipeskit_channel": "s3", "bucket": bucket,
                  KEY_PREFIX_PARAM: f"pipeskit/sessions/{uuid.uuid4().hex}"}  # fmt: skip
        return {"day": "2026-11-30", DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param({"data": CONTEXT_DATA}),
                DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param(params)}  # fmt: skip

    return _make


def test_the_status_is_read_every_interval_while_running_then_soon_after_closed_is_read() -> None:
    looks = StatusLooks(status_interval_s=5.0, first_after_closed_s=0.1)
    assert looks.due(0.0)  # at once
    looks.looked(0.0)
    assert not looks.due(4.9) and looks.due(5.0)
    looks.looked(5.0)
    looks.closed_read(6.0)  # the invocation ending the execution uploaded closed: its end is due now
    assert looks.due(6.0)
    times = []
    now = 6.0
    for _ in range(8):
        looks.looked(now)
        now = next(t / 100 for t in range(int(now * 100), 10_000) if looks.due(t / 100))
        times.append(round(now - 6.0, 2))
    assert times == [0.1, 0.3, 0.7, 1.5, 3.1, 6.3, 11.3, 16.3]  # doubling from the poll up to the interval
    looks.closed_read(20.0)  # read again later: the pace does not start over
    assert not looks.due(20.0)


def test_a_configuration_that_could_not_be_read_is_read_again_on_the_next_run(lambda_client, local_aws, bucket) -> None:
    client, stub = lambda_client
    stub.add_client_error("get_function_configuration", "ThrottlingException",
                          expected_params={"FunctionName": FUNCTION})  # fmt: skip
    durable_function_is_described(stub)
    runner = kit_client(client, local_aws, bucket)._runner

    assert runner._is_durable(FUNCTION, None, "RequestResponse") is False  # this run: as a function not durable
    assert runner._is_durable(FUNCTION, None, "RequestResponse") is True  # the next run reads it again
    assert runner._is_durable(FUNCTION, None, "RequestResponse") is True  # then remembers it: no third read
    stub.assert_no_pending_responses()


def test_a_throttled_status_read_is_skipped_and_a_refused_one_fails_naming_the_execution(
    lambda_client, local_aws, bucket, bootstrap_payload
) -> None:
    client, stub = lambda_client
    name = "dagster-lambda_asset-11111111111111111111"
    earlier = bootstrap_payload(bucket)
    finished = run_durably(three_steps, earlier)
    following = {"DurableExecutionArn": arn_of(name), "IncludeExecutionData": False}
    durable_function_is_described(stub)
    stub.add_response("list_durable_executions_by_function",
                      {"DurableExecutions": [execution_answer(name, "RUNNING")]}, LISTED)  # fmt: skip
    stub.add_response("get_durable_execution", execution_answer(name, "RUNNING", InputPayload=json.dumps(earlier)),
                      {**following, "IncludeExecutionData": True})  # fmt: skip
    stub.add_client_error("get_durable_execution", "TooManyRequestsException", expected_params=following)
    stub.add_response("get_durable_execution", execution_answer(name, "SUCCEEDED", Result=finished.result), following)
    stub.add_response("get_durable_execution_history", {"Events": []}, {**following, "ReverseOrder": True})

    result, captured, _ = run_step(kit_client(client, local_aws, bucket))

    assert result.success, captured.get("error")  # the throttled read was one look skipped
    assert captured["completed"].return_value == {"rows": 1200, "passed": True}

    durable_function_is_described(stub)
    stub.add_client_error("list_durable_executions_by_function", "AccessDeniedException",
                          "not authorized to perform: lambda:ListDurableExecutionsByFunction")  # fmt: skip
    result, captured, _ = run_step(kit_client(client, local_aws, bucket))

    assert not result.success
    assert isinstance(captured["error"], AwsAccessDeniedError)
    assert FUNCTION in str(captured["error"]) and "Nothing was invoked" in str(captured["error"])
