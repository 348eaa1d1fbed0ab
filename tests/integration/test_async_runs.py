"""Asynchronous (Event) runs: they end when the session closes, fail once with the remote error
through the on-failure destination, time out, never double a materialization on Lambda's retries."""

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from dagster import AssetExecutionContext, DagsterInstance, asset, materialize

from pipeskit import (
    DeploymentSettings,
    LambdaClientSettings,
    LambdaFunctionError,
    PipesLambdaClient,
    UnsupportedComponentError,
)
from pipeskit.channels import S3MessageReader, S3ReaderSettings

from .conftest import run_asset


@pytest.fixture
def failure_queue(local_aws) -> tuple[str, str]:
    sqs = local_aws.client("sqs")
    url = sqs.create_queue(QueueName=f"failures-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def async_client(local_aws, bucket: str, failure_queue_url: str = "", margin_s: float = 5.0) -> PipesLambdaClient:
    reader = S3MessageReader(
        bucket, client=local_aws.client("s3"), s3_settings=S3ReaderSettings(s3_completion_timeout_s=10.0),
        logs_client=local_aws.client("logs"), lambda_client=local_aws.client("lambda"),
    )  # fmt: skip
    return PipesLambdaClient(
        client=local_aws.client("lambda", retries=0),
        message_reader=reader,
        settings=LambdaClientSettings(async_timeout_margin_s=margin_s),
        deployment=DeploymentSettings(failure_queue_url=failure_queue_url),
        sqs_client=local_aws.client("sqs"),
    )


def configure(local_aws, function: str, retries: int, failure_arn: str | None = None) -> None:
    config = {"FunctionName": function, "MaximumRetryAttempts": retries}
    if failure_arn:
        config["DestinationConfig"] = {"OnFailure": {"Destination": failure_arn}}
    local_aws.client("lambda").put_function_event_invoke_config(**config)


def run_event(client, function, event, **kwargs):
    return run_asset(client, function, event, invocation_type="Event", **kwargs)


def test_an_async_run_ends_when_its_session_closes(local_aws, bucket, handler_function):
    client = async_client(local_aws, bucket)
    run = run_event(client, handler_function("reporter", "lambda_handler"), {"id": "async-1"})
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == [{"id": "async-1"}]
    assert run.metadata()["id"].value == "async-1"


@pytest.mark.faults
def test_a_retried_failure_is_reported_once_with_the_remote_error(local_aws, bucket, failure_queue, handler_function):
    url, arn = failure_queue
    function = handler_function("flaky", "lambda_handler", timeout=10)
    configure(local_aws, function, retries=2, failure_arn=arn)
    client = async_client(local_aws, bucket, failure_queue_url=url)
    run = run_event(client, function, {"bucket": bucket, "marker": f"m/{uuid.uuid4().hex}", "always_fail": True})
    assert isinstance(run.error, LambdaFunctionError), run.error
    assert run.error.error_type == "RuntimeError" and "first attempt fails" in run.error.error_message
    assert run.materializations() == [], "a failed run records no materialization, whatever the attempts reported"


@pytest.mark.faults
def test_a_retry_that_succeeds_gives_one_success_and_one_materialization(local_aws, bucket, handler_function):
    function = handler_function("flaky", "lambda_handler", timeout=10)
    configure(local_aws, function, retries=2)
    client = async_client(local_aws, bucket)
    run = run_event(client, function, {"bucket": bucket, "marker": f"m/{uuid.uuid4().hex}"})
    assert run.result.success, run.error
    assert len(run.materializations()) == 1
    assert [m for _, m in run.log_messages() if m == "attempt starting"] == ["attempt starting"] * 2


@pytest.mark.faults
def test_an_async_timeout_is_detected(local_aws, bucket, handler_function):
    function = handler_function("slow", timeout=1)
    configure(local_aws, function, retries=0)
    client = async_client(local_aws, bucket, margin_s=2.0)
    run = run_event(client, function, {"sleep_s": 30})
    assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "Sandbox.Timedout"


def test_sixteen_concurrent_async_runs_share_one_failure_queue(local_aws, bucket, failure_queue, handler_function):
    url, arn = failure_queue
    ok = handler_function("reporter", "lambda_handler")
    failing = handler_function("flaky", "lambda_handler", timeout=10)
    configure(local_aws, failing, retries=0, failure_arn=arn)
    client = async_client(local_aws, bucket, failure_queue_url=url)
    outcomes: dict[int, object] = {}

    def one(i: int) -> None:
        @asset(name=f"async_{i}")
        def the_asset(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
            event = {"id": f"run-{i}"} if i % 2 else {"bucket": bucket, "marker": f"m/{i}", "always_fail": True}
            try:
                completed = lambda_pipes.run(context=context, function_name=ok if i % 2 else failing, event=event,
                                             invocation_type="Event")
            except LambdaFunctionError as error:
                outcomes[i] = error
                raise
            outcomes[i] = completed
            yield from completed.get_results()

        materialize([the_asset], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(),
                    raise_on_error=False)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(16)))
    for i in range(16):
        if i % 2:
            assert list(outcomes[i].get_custom_messages()) == [{"id": f"run-{i}"}]
        else:
            assert isinstance(outcomes[i], LambdaFunctionError) and outcomes[i].error_type == "RuntimeError"
    assert len({o.request_id for o in outcomes.values()}) == 16


def test_an_async_run_needs_a_channel_outside_the_response(handler_function, make_client):
    client, counter = make_client()
    run = run_event(client, handler_function("reporter", "lambda_handler"), {"id": "x"})
    assert isinstance(run.error, UnsupportedComponentError) and "S3MessageReader" in str(run.error)
    assert counter.calls == []


# -- failures off the happy path: nothing lost, the function's own error, promptly ---------------------------


def numbered(run) -> list[str]:
    return [m for _, m in run.log_messages() if re.fullmatch(r"message \d{3}", m)]


@pytest.mark.faults
@pytest.mark.parametrize(
    "mode, error_type",
    [("exit", "Runtime.ExitError"), ("kill", "Runtime.ExitError"), ("timeout", "Sandbox.Timedout"),
     ("raise", "ValueError")],
)  # fmt: skip
def test_an_async_run_that_dies_loses_nothing_and_fails_promptly_with_its_own_error(
    mode, error_type, local_aws, bucket, handler_function
):
    """No failure queue, a 30 s margin: the end is told by the function's REPORT line, not by silence,
    and every message it reported (50, none of them uploaded before it died) reaches Dagster once."""
    function = handler_function("dying", "lambda_handler", timeout=3)
    configure(local_aws, function, retries=0)
    client = async_client(local_aws, bucket, margin_s=30.0)
    started = time.monotonic()
    run = run_event(client, function, {"messages": 50, "mode": mode})
    took = time.monotonic() - started
    assert isinstance(run.error, LambdaFunctionError), run.error
    assert run.error.error_type == error_type, run.error
    assert numbered(run) == [f"message {i:03d}" for i in range(50)]
    assert took < 3 + 12, f"prompt: {took:.1f} s, not the function's timeout plus the 30 s margin"


@pytest.mark.faults
def test_an_async_exit_with_a_failure_queue_loses_nothing(local_aws, bucket, failure_queue, handler_function):
    url, arn = failure_queue
    function = handler_function("dying", "lambda_handler", timeout=10)
    configure(local_aws, function, retries=0, failure_arn=arn)
    run = run_event(async_client(local_aws, bucket, failure_queue_url=url), function, {"messages": 50, "mode": "exit"})
    assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "Runtime.ExitError", run.error
    assert numbered(run) == [f"message {i:03d}" for i in range(50)]


@pytest.mark.faults
def test_an_async_run_whose_uploads_are_refused_succeeds_from_its_log(local_aws, bucket, handler_function):
    """The function's PutObject answers AccessDenied: it succeeded, and the run says so — never a timeout."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
    ]}  # fmt: skip
    local_aws.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    try:
        function = handler_function("reporter", "lambda_handler")
        configure(local_aws, function, retries=0)
        started = time.monotonic()
        run = run_event(async_client(local_aws, bucket, margin_s=30.0), function, {"id": "refused"})
        took = time.monotonic() - started
    finally:
        local_aws.client("s3").delete_bucket_policy(Bucket=bucket)
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == [{"id": "refused"}]
    assert run.metadata()["id"].value == "refused"
    assert took < 15, f"{took:.1f} s"


def test_a_docs_style_handler_without_the_kit_runs_asynchronously_on_the_s3_channel(
    local_aws, bucket, handler_function
) -> None:
    function = handler_function("reporter", "lambda_handler", entrypoint=False, fresh=True)
    configure(local_aws, function, retries=0)
    run = run_event(async_client(local_aws, bucket, margin_s=30.0), function, {"id": "foreign"})
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == [{"id": "foreign"}]
