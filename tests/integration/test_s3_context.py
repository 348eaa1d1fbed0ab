"""A context too large for the event travels through S3 and is deleted when the session ends."""

import hashlib
import secrets
import uuid

import pytest

from pipeskit import DeploymentSettings, LambdaFunctionError, PayloadTooLargeError, PipesLambdaClient, S3ContextInjector

from .conftest import run_asset

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def context_bucket(local_aws) -> str:
    name = f"contexts-{uuid.uuid4().hex[:10]}"
    local_aws.client("s3").create_bucket(Bucket=name)
    return name


def _objects(local_aws, bucket: str) -> list[str]:
    return [o["Key"] for o in local_aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


BLOB = secrets.token_hex(TEN_MB // 2)  # random text: zlib cannot squeeze it under the event's 6 MB


def _big_extras() -> dict:
    return {"blob": BLOB}


def test_a_ten_megabyte_context_goes_through_s3_and_is_deleted(local_aws, context_bucket, handler_function,
                                                                make_client):
    kit, _ = make_client()
    client = PipesLambdaClient(
        client=kit.lambda_client, message_reader=kit.message_reader,
        deployment=DeploymentSettings(context_bucket=context_bucket), s3_client=local_aws.client("s3"),
    )  # fmt: skip
    run = run_asset(client, handler_function("context_size"), {"x": 1}, extras=_big_extras())
    assert run.result.success, run.error
    digest = hashlib.sha256(BLOB.encode()).hexdigest()
    assert run.completed.return_value == {"blob_bytes": TEN_MB, "blob_sha256": digest}
    assert _objects(local_aws, context_bucket) == [], "the context object is deleted"


@pytest.mark.faults
def test_the_context_object_is_deleted_when_the_function_fails(local_aws, context_bucket, handler_function,
                                                               make_client):
    kit, _ = make_client()
    s3 = local_aws.client("s3")
    client = PipesLambdaClient(client=kit.lambda_client, message_reader=kit.message_reader,
                               context_injector=S3ContextInjector(context_bucket, client=s3))
    run = run_asset(client, handler_function("failing"), {"value": "abc"}, extras={"small": True})
    assert isinstance(run.error, LambdaFunctionError) and run.error.error_type == "ValueError"
    assert _objects(local_aws, context_bucket) == []


@pytest.mark.faults
def test_without_a_context_bucket_a_large_context_is_refused_naming_the_setting(handler_function, make_client):
    client, counter = make_client()
    run = run_asset(client, handler_function("context_size"), {"x": 1}, extras=_big_extras())
    assert isinstance(run.error, PayloadTooLargeError)
    assert "PIPESKIT_CONTEXT_BUCKET" in str(run.error)
    assert counter.calls == [], "nothing was invoked"
