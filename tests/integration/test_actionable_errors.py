"""Errors a user can act on, through the Dagster resource against the local AWS: each is one line that
says what happened, names the value at fault and what to do, is one of the kit's errors (botocore's
chained), and a run whose handler never ran carries no "did not receive any messages" warning."""

import json
import socket
import uuid

import pytest
from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize

from pipeskit import (
    AwsAccessDeniedError,
    AwsCredentialsMissingError,
    AwsEndpointUnreachableError,
    AwsRegionMissingError,
    CloudWatchLogsMessageReader,
    FanOutFailedError,
    FunctionNotFoundError,
    LambdaFunctionError,
    LambdaInvokeError,
    PipesKitError,
    PipesLambdaClient,
    ResponsePayloadMessageReader,
    S3MessageReader,
)

from .conftest import run_asset
from .test_async_runs import async_client, configure
from .test_fan_out import queue_client

NO_MESSAGES = "did not receive any messages"
INVOCATION_TYPES = ["RequestResponse", "Event"]


def closed_port_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def no_messages_warnings(run) -> list[str]:
    return [m for _, m in run.log_messages() if NO_MESSAGES in m]


def assert_one_actionable_line(error: BaseException, kind: type, *names: str) -> None:
    """One of the kit's errors, one line naming each of ``names``, botocore's error chained, not re-printed."""
    assert isinstance(error, kind) and isinstance(error, PipesKitError), repr(error)
    message = str(error)
    assert "\n" not in message, message
    for name in names:
        assert name in message, (name, message)
    assert error.__cause__ is not None and type(error.__cause__).__module__.startswith("botocore")
    assert str(error.__cause__) not in message, "botocore's own words are the cause, not the message"


def configured_client(invocation_type: str, bucket: str, **config) -> PipesLambdaClient:
    """The resource as a user configures it (asynchronous runs need the S3 channel)."""
    if invocation_type == "Event":
        config = {"channel": "s3", "messages_bucket": bucket, **config}
    return PipesLambdaClient(**config)


@pytest.mark.parametrize("invocation_type", INVOCATION_TYPES)
def test_a_missing_function_names_it_and_where_the_call_went(local_aws, bucket, invocation_type, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = configured_client(invocation_type, bucket, region_name="us-east-1", endpoint_url=local_aws.endpoint_url)
    run = run_asset(client, "no-such-function", {}, invocation_type=invocation_type)
    assert_one_actionable_line(
        run.error, FunctionNotFoundError, "no-such-function not found", "us-east-1", local_aws.endpoint_url,
        "region_name", "AWS_DEFAULT_REGION", "endpoint_url", "Nothing was invoked",
    )  # fmt: skip
    assert no_messages_warnings(run) == []


@pytest.mark.parametrize("invocation_type", INVOCATION_TYPES)
def test_an_unreachable_endpoint_names_its_url_and_the_setting(bucket, invocation_type, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = closed_port_url()
    client = configured_client(invocation_type, bucket, region_name="us-east-1", endpoint_url=endpoint,
                               connect_timeout_s=2.0)  # fmt: skip
    run = run_asset(client, "my-function", {}, invocation_type=invocation_type)
    assert_one_actionable_line(
        run.error, AwsEndpointUnreachableError, "invoking my-function", f"could not connect to the AWS endpoint "
        f"{endpoint} (region us-east-1)", "endpoint_url", "AWS_ENDPOINT_URL", "Nothing was invoked",
    )  # fmt: skip
    assert run.error.endpoint_url == endpoint
    assert "urllib3" not in str(run.error) and "/2015-03-31/functions" not in str(run.error)
    assert no_messages_warnings(run) == []


@pytest.mark.parametrize("invocation_type", INVOCATION_TYPES)
def test_no_region_names_region_name_and_aws_region(local_aws, bucket, invocation_type, monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    client = configured_client(invocation_type, bucket, endpoint_url=local_aws.endpoint_url)
    run = run_asset(client, "my-function", {}, invocation_type=invocation_type)
    assert_one_actionable_line(run.error, AwsRegionMissingError, "no AWS region is set", "region_name",
                               "AWS_DEFAULT_REGION", "No AWS call was made")  # fmt: skip
    assert no_messages_warnings(run) == []


@pytest.mark.parametrize("invocation_type", INVOCATION_TYPES)
def test_no_credentials_say_how_to_give_them(local_aws, bucket, invocation_type, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = configured_client(invocation_type, bucket, region_name="us-east-1", endpoint_url=local_aws.endpoint_url)
    run = run_asset(client, "my-function", {}, invocation_type=invocation_type)
    assert_one_actionable_line(
        run.error, AwsCredentialsMissingError, "invoking my-function", "no AWS credentials were found",
        "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "Nothing was invoked",
    )  # fmt: skip
    assert no_messages_warnings(run) == []


def test_an_invoke_iam_refuses_names_the_action_the_function_and_the_grant(local_aws, handler_function) -> None:
    """On the IAM-enforcing local AWS, an orchestrator whose policy lacks lambda:InvokeFunction."""
    function = handler_function("reporter", "lambda_handler")  # deployed by the operator, before
    with local_aws.override(iam=True):
        iam = local_aws.client("iam")
        user = f"no-invoke-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="all-but-invoking", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["lambda:GetFunctionConfiguration", "logs:*", "s3:*"], "Resource": "*"},
            ]}))  # fmt: skip
        key = iam.create_access_key(UserName=user)["AccessKey"]
        limited = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"],
                   "aws_session_token": None}  # fmt: skip
        lam = local_aws.client("lambda", retries=0, **limited)
        reader = ResponsePayloadMessageReader(logs_client=local_aws.client("logs", **limited), lambda_client=lam)
        run = run_asset(PipesLambdaClient(client=lam, message_reader=reader), function, {"id": "x"})
    assert_one_actionable_line(
        run.error, AwsAccessDeniedError, f"invoking {function}: AWS refused lambda:InvokeFunction on {function}",
        "OrchestratorPolicy", "Nothing was invoked",
    )  # fmt: skip
    assert (run.error.permission, run.error.resource, run.error.code) == (
        "lambda:InvokeFunction", function, "AccessDeniedException"
    )
    assert no_messages_warnings(run) == []


def test_credentials_aws_does_not_recognise_say_how_to_give_them(local_aws, handler_function) -> None:
    function = handler_function("reporter", "lambda_handler")
    with local_aws.override(iam=True):
        unknown = {"aws_access_key_id": "AKIAUNKNOWN", "aws_secret_access_key": "x", "aws_session_token": None}
        lam = local_aws.client("lambda", retries=0, **unknown)
        reader = ResponsePayloadMessageReader(logs_client=local_aws.client("logs", **unknown), lambda_client=lam)
        run = run_asset(PipesLambdaClient(client=lam, message_reader=reader), function, {"id": "x"})
    assert_one_actionable_line(
        run.error, AwsCredentialsMissingError, f"invoking {function}: AWS did not accept the credentials in use",
        "UnrecognizedClientException", "AWS_PROFILE", "Nothing was invoked",
    )  # fmt: skip
    assert no_messages_warnings(run) == []


def fan_out_error(client: PipesLambdaClient, function_name: str) -> Exception:
    """What a one-item invoke fan-out of ``function_name`` raised in an asset run through ``client``."""
    errors = []

    @asset
    def fanned(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        try:
            lambda_pipes.fan_out(context=context, items=["a"], transport="invoke", function_name=function_name)
        except Exception as error:
            errors.append(error)
            raise

    result = materialize([fanned], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(),
                         raise_on_error=False)  # fmt: skip
    assert not result.success
    [error] = errors
    return error


def test_a_fan_out_to_an_unreachable_endpoint_names_it(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = closed_port_url()
    client = PipesLambdaClient(region_name="us-east-1", endpoint_url=endpoint, messages_bucket="messages",
                               connect_timeout_s=2.0)  # fmt: skip
    error = fan_out_error(client, "my-function")
    assert_one_actionable_line(error, AwsEndpointUnreachableError, f"could not connect to the AWS endpoint {endpoint}",
                               "AWS_ENDPOINT_URL")  # fmt: skip
    assert isinstance(error, LambdaInvokeError) and error.endpoint_url == endpoint


def test_a_fan_out_to_a_missing_function_names_it_and_sends_nothing(local_aws, bucket) -> None:
    error = fan_out_error(queue_client(local_aws, bucket), "no-such-function")
    assert_one_actionable_line(error, FunctionNotFoundError, "function no-such-function not found", "Nothing was sent")


# -- a function whose handler never ran fails at once, with its own error --------------------------

INIT_FAILURE = ("Runtime.ImportModuleError", "Unable to import module 'broken_import'",
                "No module named 'a_module_this_function_does_not_ship'")  # fmt: skip


def assert_init_failure(run, budget_s: float = 10.0) -> None:
    assert isinstance(run.error, LambdaFunctionError), run.error
    assert run.error.error_type == INIT_FAILURE[0]
    assert INIT_FAILURE[1] in run.error.error_message and INIT_FAILURE[2] in run.error.error_message
    message = str(run.error)
    assert "\n" not in message and f"{INIT_FAILURE[0]}: {INIT_FAILURE[1]}" in message
    assert "handler never ran" in message and "deploy it again" in message
    assert run.error.read_error is None, "nothing was waited for, so nothing timed out"
    assert run.elapsed_s < budget_s, f"failed after {run.elapsed_s:.1f} s, not at once"
    assert no_messages_warnings(run) == []


@pytest.mark.parametrize("channel", ["response", "logs", "s3"])
def test_a_function_that_fails_at_import_fails_the_run_at_once(channel, handler_function, local_aws, bucket):
    """The default 60 s ingestion timeout (and the S3 channel's completion timeout) are not waited out:
    the invoke response says the handler never ran, so no message or log line of it will come."""
    function = handler_function("broken_import", entrypoint=False)
    lam, logs = local_aws.client("lambda", retries=0, read_timeout=120), local_aws.client("logs")
    readers = {
        "response": lambda: ResponsePayloadMessageReader(logs_client=logs, lambda_client=lam),
        "logs": lambda: CloudWatchLogsMessageReader(logs_client=logs, lambda_client=lam),
        "s3": lambda: S3MessageReader(bucket, client=local_aws.client("s3"), logs_client=logs, lambda_client=lam),
    }
    reader = readers[channel]()
    assert reader.log_reader().settings.ingestion_timeout_s == 60.0, "the default, not a test's shorter one"
    run = run_asset(PipesLambdaClient(client=lam, message_reader=reader), function, {})
    assert_init_failure(run)


def test_an_async_run_of_a_function_that_fails_at_import_fails_at_its_failure_record(
    local_aws, bucket, handler_function
) -> None:
    sqs = local_aws.client("sqs")
    url = sqs.create_queue(QueueName=f"failures-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    function = handler_function("broken_import", entrypoint=False, fresh=True)
    configure(local_aws, function, retries=0, failure_arn=arn)
    client = async_client(local_aws, bucket, failure_queue_url=url)
    assert client.message_reader.log_reader().settings.ingestion_timeout_s == 60.0
    run = run_asset(client, function, {}, invocation_type="Event")
    assert_init_failure(run)


# -- the function's error type is said once ---------------------------------------------------------

@pytest.mark.parametrize("invocation_type", INVOCATION_TYPES)
def test_a_failed_run_names_its_error_type_once(local_aws, bucket, handler_function, make_client, invocation_type):
    if invocation_type == "Event":
        function = handler_function("failing", timeout=10, log_format="JSON")
        configure(local_aws, function, retries=0)
        client = async_client(local_aws, bucket)
    else:
        function, (client, _) = handler_function("failing", log_format="JSON"), make_client()
    run = run_asset(client, function, {"value": "x"}, invocation_type=invocation_type)
    assert isinstance(run.error, LambdaFunctionError), run.error
    assert (run.error.error_type, run.error.error_message) == ("ValueError", "bad input: 'x' is not a number")
    assert str(run.error).count("ValueError") == 1, str(run.error)


def test_a_failed_fan_out_item_names_its_error_type_once(local_aws, bucket, handler_function) -> None:
    function = handler_function("fan_item", "lambda_handler")
    local_aws.client("lambda").put_function_event_invoke_config(FunctionName=function, MaximumRetryAttempts=0)
    client = queue_client(local_aws, bucket)
    summaries, errors = [], []

    @asset
    def fanned(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        summary = lambda_pipes.fan_out(context=context, items=[{"id": "a", "fail": True}], transport="invoke",
                                       function_name=function)  # fmt: skip
        summaries.append(summary)
        try:
            summary.raise_for_failures()
        except FanOutFailedError as error:
            errors.append(error)
            raise
        yield MaterializeResult()

    materialize([fanned], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(),
                raise_on_error=False)  # fmt: skip
    [result] = summaries[0].results
    assert result.error == "ValueError: item a fails"
    [error] = errors
    assert str(error).count("ValueError") == 1 and "ValueError: item a fails" in str(error), str(error)
