"""The S3 channel: message chunks read while the function runs, nothing left behind, nothing lost."""

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pipeskit import (
    LambdaFunctionError,
    LogsReaderSettings,
    MessagesLostError,
    PipesLambdaClient,
    RateBudget,
    S3NotUsableError,
)
from pipeskit.channels import S3MessageReader, S3ReaderSettings
from pipeskit.local.testing import ApiCallCounter

from .conftest import run_asset


@pytest.fixture
def s3_client(local_aws, bucket) -> Callable[..., tuple[PipesLambdaClient, ApiCallCounter]]:
    """A kit client on the S3 channel, with an API call counter."""

    def _make(**s3_overrides: Any) -> tuple[PipesLambdaClient, ApiCallCounter]:
        counter = ApiCallCounter()
        lambda_client = counter.attach(local_aws.client("lambda", retries=0, read_timeout=300))
        reader = S3MessageReader(
            bucket,
            client=counter.attach(local_aws.client("s3")),
            s3_settings=S3ReaderSettings(**{"s3_completion_timeout_s": 10.0, "s3_gap_timeout_s": 0.5, **s3_overrides}),
            logs_client=counter.attach(local_aws.client("logs", retries=3)),
            lambda_client=lambda_client,
            settings=LogsReaderSettings(ingestion_timeout_s=15.0, poll_interval_s=0.05),
            budget=RateBudget(50),
        )
        return PipesLambdaClient(client=lambda_client, message_reader=reader), counter

    return _make


def objects_left(local_aws, bucket: str) -> list[str]:
    return [item["Key"] for item in local_aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_every_pipes_method_round_trips_through_s3_chunks(handler_function, s3_client, local_aws, bucket):
    client, counter = s3_client()
    run = run_asset(client, handler_function("all_methods"), {"x": 1}, checks=["passes", "fails"])
    assert run.result.success, run.error
    assert run.metadata()["int"].value == 42
    assert run.check_results()["fails"].passed is False
    assert objects_left(local_aws, bucket) == []
    assert "GetLogEvents" not in counter.by_operation(), "no CloudWatch read on success"


def test_a_hundred_thousand_messages_arrive_in_order_and_nothing_is_left(
    handler_function, s3_client, local_aws, bucket
):
    client, _ = s3_client()
    function = handler_function("streaming", "lambda_handler", timeout=120)
    run = run_asset(client, function, {"messages": 100_000})
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == list(range(100_000))
    assert objects_left(local_aws, bucket) == []


def test_messages_reach_dagster_while_the_function_runs(handler_function, s3_client):
    client, _ = s3_client()
    run = run_asset(client, handler_function("streaming", "lambda_handler"), {"work_s": 5})
    assert run.result.success, run.error
    received = {e.user_message: e.timestamp for e in run.instance.all_logs(run.result.run_id)
                if e.user_message in ("early message", "late message")}
    assert received["late message"] - received["early message"] > 2.0, "the early message arrived before the end"


def test_dagster_pipes_own_s3_writer_works_with_the_kit_reader(handler_function, s3_client, local_aws, bucket):
    client, _ = s3_client()
    function = handler_function("dagster_s3_writer", "lambda_handler", entrypoint=False)
    run = run_asset(client, function, {"messages": 25})
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == list(range(25))
    assert run.metadata()["writer"].value == "dagster-pipes"
    assert objects_left(local_aws, bucket) == []


def test_a_docs_style_handler_without_the_kit_works_on_the_s3_channel(handler_function, s3_client, local_aws, bucket):
    """dagster-pipes' default writer is told to use stdio: its messages are read from the function's log."""
    client, counter = s3_client()
    function = handler_function("reporter", "lambda_handler", entrypoint=False, fresh=True)
    run = run_asset(client, function, {"id": "foreign"})
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == [{"id": "foreign"}]
    assert run.completed.return_value == {"id": "foreign"}
    assert "GetLogEvents" in counter.calls
    assert objects_left(local_aws, bucket) == []


@pytest.mark.faults
def test_a_chunk_deleted_mid_run_is_reported_by_its_key(handler_function, s3_client):
    # the reader's first look comes 6 s after the session opened: the thief deletes chunk 1 before (on a
    # busy host, 3 s sometimes let the reader read it first)
    client, _ = s3_client(s3_poll_interval_s=6.0, s3_max_poll_interval_s=6.0)
    run = run_asset(client, handler_function("chunk_thief"), {})
    assert isinstance(run.error, MessagesLostError)
    # the key of the deleted chunk, whole: the session's prefix, the attempt's folder and the chunk number
    assert re.search(r"chunk\(s\) pipeskit/sessions/[0-9a-f]{32}/[^ ]+/1\.json never appeared in s3://", str(run.error))


@pytest.mark.faults
@pytest.mark.parametrize("mode", ["raise", "exit"])
def test_a_dying_function_loses_nothing_on_the_s3_channel(mode, handler_function, s3_client, local_aws, bucket):
    client, _ = s3_client()
    run = run_asset(client, handler_function("dying", "lambda_handler", timeout=10), {"messages": 100, "mode": mode})
    assert isinstance(run.error, LambdaFunctionError), run.error
    numbered = [m for _, m in run.log_messages() if m.startswith("message ")]
    assert numbered == [f"message {i:03d}" for i in range(100)]
    assert objects_left(local_aws, bucket) == []


# -- misconfiguration: refused before invoking; refused uploads named --------------------------------------


@pytest.mark.parametrize("invocation_type", ["RequestResponse", "Event"])
def test_a_missing_messages_bucket_is_refused_before_invoking(invocation_type, handler_function, local_aws):
    counter = ApiCallCounter()
    reader = S3MessageReader(
        "no-such-bucket-here", client=counter.attach(local_aws.client("s3")), logs_client=local_aws.client("logs"),
        lambda_client=local_aws.client("lambda"),
    )  # fmt: skip
    client = PipesLambdaClient(client=counter.attach(local_aws.client("lambda", retries=0)), message_reader=reader)
    function = handler_function("reporter", "lambda_handler")
    run = run_asset(client, function, {"id": "x"}, invocation_type=invocation_type)
    assert isinstance(run.error, S3NotUsableError), run.error
    assert "'no-such-bucket-here' does not exist" in str(run.error)
    assert "PIPESKIT_MESSAGES_BUCKET" in str(run.error) and "Nothing was invoked" in str(run.error)
    assert "Invoke" not in counter.calls


def deny(local_aws, bucket: str, action: str, resource: str) -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": action, "Resource": resource},
    ]}  # fmt: skip
    local_aws.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def test_uploads_refused_inside_the_function_are_named_and_lose_nothing(handler_function, s3_client, local_aws, bucket):
    """The function may not write its chunks (AccessDenied): the run succeeds from the log copy at once,
    and the step's log names the bucket and AWS's answer."""
    deny(local_aws, bucket, "s3:PutObject", f"arn:aws:s3:::{bucket}/*")
    try:
        client, _ = s3_client()
        started = time.monotonic()
        run = run_asset(client, handler_function("streaming", "lambda_handler"), {"messages": 5})
        took = time.monotonic() - started
    finally:
        local_aws.client("s3").delete_bucket_policy(Bucket=bucket)
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == list(range(5))
    [warning] = [m for level, m in run.log_messages() if "uploads were refused" in m]
    assert f"s3://{bucket}/" in warning and "s3:PutObject" in warning
    assert "AccessDenied" in warning or "(403)" in warning, "what AWS answered"
    assert took < 10, f"no wait for chunks that were never uploaded ({took:.1f} s)"


def test_a_messages_bucket_the_orchestrator_may_not_list_is_refused_before_invoking(
    handler_function, local_aws, bucket
) -> None:
    """On the IAM-enforcing local AWS, an orchestrator whose policy lacks s3:ListBucket on the bucket."""
    function = handler_function("reporter", "lambda_handler")  # deployed by the fixture's operator, before
    with local_aws.override(iam=True):
        iam = local_aws.client("iam")
        user = f"no-list-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="all-but-listing", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["lambda:*", "logs:*", "s3:GetObject", "s3:PutObject"], "Resource": "*"},
            ]}))  # fmt: skip
        key = iam.create_access_key(UserName=user)["AccessKey"]
        limited = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"],
                   "aws_session_token": None}  # fmt: skip
        counter = ApiCallCounter()
        lam = counter.attach(local_aws.client("lambda", retries=0, **limited))
        reader = S3MessageReader(bucket, client=local_aws.client("s3", **limited), lambda_client=lam,
                                 logs_client=local_aws.client("logs", **limited))  # fmt: skip
        run = run_asset(PipesLambdaClient(client=lam, message_reader=reader), function, {"id": "x"})
    assert isinstance(run.error, S3NotUsableError), run.error
    assert f"may not list s3://{bucket}/" in str(run.error) and "s3:ListBucket" in str(run.error)
    assert "Nothing was invoked" in str(run.error) and "Invoke" not in counter.calls
