"""The one invoke (`pipeskit.invoke`): back-off, request ids, AWS errors translated, function errors.

A real boto3 Lambda client answers through botocore's `Stubber`: the kit's own code runs as it is.
"""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import Stubber

from pipeskit import (
    AwsAccessDeniedError,
    AwsEndpointUnreachableError,
    FunctionNotFoundError,
    InvocationLogReader,
    InvokeThrottledError,
    LambdaClientSettings,
    LambdaFunctionError,
    LambdaInvocation,
    LambdaInvokeError,
    PipesContextReusedError,
)
from pipeskit.invoke import function_error, invoke_function
from pipeskit.lambda_commands import LambdaCommandError, call_invoke, invocation_document
from pipeskit_lambda.protocol import CONTEXT_REUSED_MESSAGE

RID = "8f5c1f9e-1111-4c2b-9d55-0123456789ab"
FAST = LambdaClientSettings(throttle_max_attempts=4, throttle_base_delay_s=0.2, throttle_max_delay_s=0.3)
PACKAGE = Path(__file__).resolve().parents[2] / "pipeskit"


def lambda_client(**kwargs: Any) -> Any:
    return boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing", **kwargs
    )


@pytest.fixture
def client() -> Any:
    return lambda_client()


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def answer(payload: bytes = b"{}", *, status: int = 200, request_id: str = RID, **fields: Any) -> dict[str, Any]:
    """Lambda's answer, its request id in the header as Lambda sends it."""
    return {
        "StatusCode": status,
        "Payload": body(payload),
        "ResponseMetadata": {"RequestId": request_id, "HTTPHeaders": {"x-amzn-requestid": request_id}},
        **fields,
    }


def expected(payload: bytes = b"{}", **fields: Any) -> dict[str, Any]:
    return {"FunctionName": "fn", "InvocationType": "RequestResponse", "Payload": payload, **fields}


def throttle(stub: Stubber) -> None:
    stub.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)


def test_throttled_attempts_back_off_with_full_jitter_then_succeed(client, stub) -> None:
    for _ in range(3):
        throttle(stub)
    stub.add_response("invoke", answer(b'{"rows": 3}', ExecutedVersion="$LATEST"), expected(b'{"n": 1}'))
    pauses: list[float] = []

    invocation = invoke_function(client, "fn", b'{"n": 1}', settings=FAST, sleep=pauses.append)

    assert invocation.return_value == {"rows": 3}
    assert (invocation.request_id, invocation.status_code, invocation.executed_version) == (RID, 200, "$LATEST")
    assert invocation.function_error is None and invocation.started_ms > 0
    assert len(pauses) == 3, "one pause before each retry"
    caps = [0.2, 0.3, 0.3]  # base * 2 ** (attempt - 1), capped at the maximum delay
    assert all(0 <= pause <= cap for pause, cap in zip(pauses, caps, strict=True)), pauses


def test_every_attempt_throttled_is_an_invoke_throttled_error(client, stub) -> None:
    for _ in range(FAST.throttle_max_attempts):
        throttle(stub)
    pauses: list[float] = []

    with pytest.raises(InvokeThrottledError) as raised:
        invoke_function(client, "fn", b"{}", qualifier="live", settings=FAST, sleep=pauses.append)

    message = str(raised.value)
    assert "Lambda throttled fn:live on all 4 attempts (429 TooManyRequestsException" in message
    assert "reserved concurrency" in message and "PIPESKIT_THROTTLE_MAX_ATTEMPTS" in message
    assert len(pauses) == 3, "no pause after the last attempt"


def test_a_missing_function_is_named_with_where_the_call_went(client, stub) -> None:
    stub.add_client_error(
        "invoke", "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:1:function:fn:live", 404,
        expected_params=expected(Qualifier="live"),
    )  # fmt: skip
    pauses: list[float] = []

    with pytest.raises(FunctionNotFoundError) as raised:
        invoke_function(client, "fn", b"{}", qualifier="live", settings=FAST, sleep=pauses.append)

    error = raised.value
    assert str(error).startswith(
        "function fn:live not found in us-east-1 (endpoint https://lambda.us-east-1.amazonaws.com): "
        "Function not found: arn:aws:lambda:us-east-1:1:function:fn:live. Check the name and qualifier, the region"
    )
    assert "AWS_ENDPOINT_URL" in str(error) and "Nothing was invoked." in str(error)
    assert (error.function_name, error.qualifier) == ("fn", "live")
    assert error.where == "us-east-1 (endpoint https://lambda.us-east-1.amazonaws.com)"
    assert pauses == [], "a missing function is not retried"


def test_a_refused_invoke_names_the_permission_the_function_and_the_grant(client, stub) -> None:
    stub.add_client_error("invoke", "AccessDeniedException", "not authorized to perform: lambda:InvokeFunction", 403)

    with pytest.raises(AwsAccessDeniedError) as raised:
        invoke_function(client, "fn", b"{}", settings=FAST, sleep=lambda _: None)

    assert str(raised.value) == (
        "invoking fn: AWS refused lambda:InvokeFunction on fn in us-east-1 (endpoint https://lambda.us-east-1."
        "amazonaws.com) to the credentials in use (AccessDeniedException: not authorized to perform: "
        "lambda:InvokeFunction). Nothing was invoked. To fix it, give the orchestrator's role the kit's "
        "OrchestratorPolicy (pipeskit.cdk.OrchestratorPolicy), or lambda:InvokeFunction on the function."
    )
    assert (raised.value.action, raised.value.code) == ("invoking fn", "AccessDeniedException")
    assert (raised.value.permission, raised.value.resource) == ("lambda:InvokeFunction", "fn")
    assert isinstance(raised.value, LambdaInvokeError)


def test_another_aws_error_names_the_action_and_what_aws_answered(client, stub) -> None:
    stub.add_client_error("invoke", "KMSAccessDeniedException", "Lambda was unable to decrypt the variables", 502)

    with pytest.raises(LambdaInvokeError) as raised:
        invoke_function(client, "fn", b"{}", settings=FAST, sleep=lambda _: None)

    assert str(raised.value) == (
        "invoking fn: AWS answered KMSAccessDeniedException: Lambda was unable to decrypt the variables"
    )
    assert (raised.value.action, raised.value.code) == ("invoking fn", "KMSAccessDeniedException")


def test_a_call_that_never_reaches_lambda_names_where_it_went() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    client = lambda_client(endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}, connect_timeout=2))

    with pytest.raises(AwsEndpointUnreachableError) as raised:
        invoke_function(client, "fn", b"{}", settings=FAST, sleep=lambda _: None)

    assert str(raised.value) == (
        f"invoking fn: could not connect to the AWS endpoint {endpoint} (region us-east-1). Nothing was invoked. "
        "To fix it, check that it is up and reachable from here, or point the client's endpoint_url "
        "(AWS_ENDPOINT_URL) at the right one; unset, AWS's own endpoint of the region is used."
        " For the local AWS, start "
        "`pipeskit local` and export what it prints."
    )
    assert raised.value.code is None and raised.value.endpoint_url == endpoint
    assert isinstance(raised.value, LambdaInvokeError)


def test_the_request_id_comes_from_the_header_else_from_the_metadata(client, stub) -> None:
    both = {"RequestId": "from-metadata", "HTTPHeaders": {"x-amzn-requestid": "from-header"}}
    stub.add_response("invoke", {**answer(), "ResponseMetadata": both})
    stub.add_response("invoke", {**answer(), "ResponseMetadata": {"RequestId": "from-metadata", "HTTPHeaders": {}}})

    assert invoke_function(client, "fn", b"{}", settings=FAST).request_id == "from-header"
    assert invoke_function(client, "fn", b"{}", settings=FAST).request_id == "from-metadata"


def test_a_failed_invocation_is_parsed_and_becomes_the_function_error(client, stub) -> None:
    document = {"errorType": "ValueError", "errorMessage": "bad input", "stackTrace": ["  File x, in parse\n"]}
    tail = "START RequestId: x\nTraceback ...\nREPORT RequestId: x\n"
    encoded = base64.b64encode(tail.encode()).decode()
    failed = answer(json.dumps(document).encode(), FunctionError="Unhandled", LogResult=encoded)
    stub.add_response("invoke", failed, expected(LogType="Tail"))

    invocation = invoke_function(client, "fn", b"{}", arguments={"LogType": "Tail"}, settings=FAST)

    assert invocation.function_error == "Unhandled"
    assert invocation.error_details == document
    assert invocation.envelope is None and invocation.log_tail == tail
    error = function_error(invocation)
    assert isinstance(error, LambdaFunctionError) and not isinstance(error, PipesContextReusedError)
    assert (error.error_type, error.error_message) == ("ValueError", "bad input")
    assert error.stack_trace == document["stackTrace"]
    assert error.request_id == RID and error.read_error is None
    where = f"failed (Unhandled) with ValueError: bad input [request id {RID}]. Logs: /aws/lambda/fn,"
    assert where in error.description


def test_the_function_errors_log_group_is_the_one_the_function_is_configured_with(client, stub) -> None:
    stub.add_response("get_function_configuration", {"FunctionName": "fn", "LoggingConfig": {"LogGroup": "/team/fn"}},
                      {"FunctionName": "fn:live"})  # fmt: skip
    failed = LambdaInvocation(
        function_name="fn:live", request_id=RID, function_error="Unhandled",
        payload=json.dumps({"errorType": "E", "errorMessage": "m"}).encode(),
    )  # fmt: skip
    logs = InvocationLogReader(lambda_client=client)

    first, second = function_error(failed, logs=logs), function_error(failed, logs=logs)

    assert "Logs: /team/fn, request id" in first.description
    assert first.description == second.description, "the log group is looked up once (the reader caches it)"


def test_a_reused_context_is_named_with_its_fix() -> None:
    failed = LambdaInvocation(
        function_name="fn", request_id=RID, function_error="Unhandled",
        payload=json.dumps({"errorType": "DagsterPipesError", "errorMessage": CONTEXT_REUSED_MESSAGE}).encode(),
    )  # fmt: skip
    error = function_error(failed, RuntimeError("unreadable"))
    assert isinstance(error, PipesContextReusedError)
    assert "pipeskit adopt fn" in error.description and error.read_error is not None


def test_an_asynchronous_invoke_is_queued_with_no_payload(client, stub) -> None:
    stub.add_response("invoke", answer(b"", status=202), expected(InvocationType="Event", Qualifier="3"))

    invocation = invoke_function(client, "fn", b"{}", invocation_type="Event", qualifier="3", settings=FAST)

    assert (invocation.status_code, invocation.request_id, invocation.payload) == (202, RID, b"")
    assert invocation.function_error is None and invocation.log_tail is None and invocation.return_value is None


# --- the CLI's view: the same invoke, its messages unchanged --------------------------------------


def test_the_cli_keeps_its_messages_for_the_kits_errors(client, stub) -> None:
    for _ in range(FAST.throttle_max_attempts):
        throttle(stub)
    stub.add_client_error("invoke", "ResourceNotFoundException", "Function not found: fn", 404)
    stub.add_client_error("invoke", "InvalidRequestContentException", "Could not parse request body", 400)
    quiet = {"settings": FAST, "sleep": lambda _: None}

    with pytest.raises(LambdaCommandError) as throttled:
        call_invoke(client, "fn", b"{}", qualifier="live", **quiet)
    with pytest.raises(LambdaCommandError) as missing:
        call_invoke(client, "fn", b"{}", **quiet)
    with pytest.raises(LambdaCommandError) as refused:
        call_invoke(client, "fn", b"{}", **quiet)

    assert str(throttled.value) == (
        "Lambda throttled fn:live on all 4 attempts (429 TooManyRequestsException); the function did not run. "
        "Try again later, or raise its reserved concurrency."
    )
    assert str(missing.value).startswith("function fn not found in us-east-1 (endpoint ")
    assert str(refused.value) == (
        "invoking fn: AWS answered InvalidRequestContentException: Could not parse request body"
    )


def test_the_cli_outcome_is_built_from_the_invocation(client, stub) -> None:
    tail = "START RequestId: x\nhello\n"
    encoded = base64.b64encode(tail.encode()).decode()
    ran = answer(b'{"ok": true}', ExecutedVersion="$LATEST", LogResult=encoded)
    stub.add_response("invoke", ran, expected(LogType="Tail"))
    stub.add_response("invoke", answer(b"", status=202), expected(InvocationType="Event"))

    outcome = call_invoke(client, "fn", b"{}", settings=FAST)
    queued = call_invoke(client, "fn", b"{}", asynchronous=True, settings=FAST)

    assert invocation_document(outcome) == {
        "function": "fn", "request_id": RID, "status_code": 200, "executed_version": "$LATEST",
        "function_error": None, "payload": {"ok": True}, "log_tail": tail,
    }  # fmt: skip
    assert invocation_document(queued) == {"function": "fn", "request_id": RID, "status_code": 202}


# --- one mechanism --------------------------------------------------------------------------------
