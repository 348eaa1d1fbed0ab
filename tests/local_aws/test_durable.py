"""Durable functions on the local AWS: AWS's testing executor behind the Lambda API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pipeskit.local import LocalAWS
from pipeskit.local.testing import deploy_durable_function, publish_durable_layer, zip_files
from tests.local_aws.conftest import log_messages, unique, wait_until

HANDLERS = Path(__file__).with_name("durable_handlers")
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


@pytest.fixture(scope="module")
def durable_layer(local_aws: LocalAWS) -> str:
    """The pipes layer with the durable execution SDK, published once."""
    return publish_durable_layer(local_aws.client("lambda"))


@pytest.fixture
def skip_waits(local_aws: LocalAWS) -> Any:
    """Waits of hours fire at once."""
    with local_aws.override(durable_skip_waits=True) as settings:
        yield settings


@pytest.fixture
def durable(lam: Any, durable_layer: str, role_arn: str) -> Any:
    """Deploys a durable function from a handler file of durable_handlers/; deletes it after the test."""
    created: list[str] = []

    def _deploy(module: str, **kwargs: Any) -> str:
        name = deploy_durable_function(
            lam, code=HANDLERS / f"{module}.py", user_handler=f"{module}.handler", layer_arn=durable_layer,
            role_arn=role_arn, name=unique(module.replace("_", "-")), **kwargs,
        )  # fmt: skip
        created.append(name)
        return name

    yield _deploy
    for name in created:
        lam.delete_function(FunctionName=name)


def _finished(lam: Any, arn: str, timeout: float = 60.0) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        execution = lam.get_durable_execution(DurableExecutionArn=arn)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_until(ended, timeout=timeout, interval=0.1)  # type: ignore[no-any-return]


def test_three_steps_with_hours_of_waits_complete_in_seconds(lam, logs, durable, skip_waits):
    name = durable("three_steps")
    assert lam.get_function_configuration(FunctionName=name)["DurableConfig"] == {
        "ExecutionTimeout": 86400, "RetentionPeriodInDays": 14,
    }  # fmt: skip
    started = time.monotonic()
    response = lam.invoke(
        FunctionName=name, Qualifier="$LATEST", InvocationType="Event", Payload=json.dumps({"start": 1}),
        DurableExecutionName="three-steps",
    )  # fmt: skip
    assert response["StatusCode"] == 202
    arn = response["DurableExecutionArn"]
    assert arn.startswith(f"{FUNCTION_ARN}{name}:$LATEST/durable-execution/three-steps/")
    execution = _finished(lam, arn)
    assert time.monotonic() - started < 60
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"]) == {"value": 112}
    assert execution["DurableExecutionName"] == "three-steps"
    # the execution's clock went through the 8 hours of waits
    assert execution["EndTimestamp"] - execution["StartTimestamp"] >= __import__("datetime").timedelta(hours=8)

    events = lam.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    succeeded_steps = [e["Name"] for e in events if e["EventType"] == "StepSucceeded"]
    assert succeeded_steps == ["first", "second", "third"]
    waits = [e for e in events if e["EventType"] == "WaitStarted"]
    assert [w["Name"] for w in waits] == ["three-hours", "five-hours"]
    assert waits[0]["WaitStartedDetails"]["Duration"] == 3 * 3600

    # every replay ran in the local runtime: its lines are in the function's log group
    messages = log_messages(logs, f"/aws/lambda/{name}")
    assert sum(m.startswith("START RequestId") for m in messages) >= 3
    assert sum("replay or run: handler entered" in m for m in messages) >= 3
    assert sum("step add 10 to 2" in m for m in messages) == 1  # a completed step is not run again


def test_a_callback_completed_with_send_durable_execution_callback_success(lam, durable, skip_waits):
    name = durable("callback")
    arn = lam.invoke(FunctionName=f"{name}:$LATEST", InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]

    def callback_started() -> dict[str, Any] | None:
        events = lam.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        return next((e for e in events if e["EventType"] == "CallbackStarted"), None)

    started = wait_until(callback_started, timeout=30, interval=0.1)
    callback_id = started["CallbackStartedDetails"]["CallbackId"]
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    lam.send_durable_execution_callback_success(CallbackId=callback_id, Result=json.dumps({"by": "ops"}).encode())
    execution = _finished(lam, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"]) == {"approved_by": "ops"}


def test_a_step_failing_after_its_retries_fails_the_execution_with_its_error(lam, logs, durable, skip_waits):
    name = durable("failing_step")
    arn = lam.invoke(
        FunctionName=name, Qualifier="$LATEST", InvocationType="Event", Payload=json.dumps({"table": "orders"})
    )["DurableExecutionArn"]
    execution = _finished(lam, arn)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"].endswith("StepError")  # the SDK wraps what the step raised
    assert execution["Error"]["ErrorMessage"] == "the source table orders is missing"
    attempts = [m for m in log_messages(logs, f"/aws/lambda/{name}") if "attempting the load" in m]
    assert len(attempts) == 3  # three attempts, 10 and 20 minutes apart on the execution's clock


def test_the_same_execution_name_invoked_twice_is_one_execution(lam, durable):
    name = durable("callback")
    first = lam.invoke(FunctionName=name, Qualifier="$LATEST", InvocationType="Event", Payload=b'{"a": 1}',
                       DurableExecutionName="nightly-2026-11-30")  # fmt: skip
    second = lam.invoke(FunctionName=name, Qualifier="$LATEST", InvocationType="Event", Payload=b'{"a":1}',
                        DurableExecutionName="nightly-2026-11-30")  # fmt: skip
    assert first["DurableExecutionArn"] == second["DurableExecutionArn"]
    listed = lam.list_durable_executions_by_function(FunctionName=name)["DurableExecutions"]
    assert [e["DurableExecutionArn"] for e in listed] == [first["DurableExecutionArn"]]
    with pytest.raises(lam.exceptions.DurableExecutionAlreadyStartedException, match="another payload"):
        lam.invoke(FunctionName=name, Qualifier="$LATEST", InvocationType="Event", Payload=b'{"a": 2}',
                   DurableExecutionName="nightly-2026-11-30")  # fmt: skip
    lam.stop_durable_execution(DurableExecutionArn=first["DurableExecutionArn"])
    assert _finished(lam, first["DurableExecutionArn"])["Status"] == "STOPPED"


def test_a_durable_function_is_invoked_qualified(lam, durable):
    name = durable("callback")
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="invoke it qualified"):
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")


def test_a_synchronous_invoke_answers_the_execution_result(lam, durable, skip_waits):
    name = durable("three_steps")
    response = lam.invoke(FunctionName=name, Qualifier="$LATEST", Payload=json.dumps({"start": 0}))
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"value": 111}
    assert response["DurableExecutionArn"].startswith(f"{FUNCTION_ARN}{name}:$LATEST/")


def test_with_iam_the_durable_calls_are_authorized_on_the_function(durable_layer):
    """The function's role checkpoints with the grants AWS documents; a caller reads only executions it is granted."""
    from botocore.exceptions import ClientError

    from pipeskit.local.pytest_plugin import TEST_SETTINGS
    from pipeskit.local.settings import LocalAWSSettings
    from tests.local_aws.test_iam import _allow, _role, _user_client

    aws = LocalAWS(LocalAWSSettings.from_env(**{**TEST_SETTINGS, "iam": True, "durable_skip_waits": True})).start()
    try:
        lam = aws.client("lambda", retries=0, read_timeout=60)
        names = [unique("granted"), unique("other")]
        for name in names:
            durable_sdk = ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]
            role = _role(aws, _allow(durable_sdk, f"{FUNCTION_ARN}{name}:*"))
            deploy_durable_function(lam, code=HANDLERS / "three_steps.py", user_handler="three_steps.handler",
                                    layer_arn=durable_layer, role_arn=role, name=name)  # fmt: skip
        arns = [
            lam.invoke(FunctionName=f"{name}:$LATEST", InvocationType="Event", Payload=b'{"start": 0}')[
                "DurableExecutionArn"
            ]
            for name in names
        ]
        assert _finished(lam, arns[0])["Status"] == "SUCCEEDED"
        reads = ["lambda:GetDurableExecution", "lambda:GetDurableExecutionHistory"]
        reader = _user_client(aws, "lambda", _allow(reads, f"{FUNCTION_ARN}{names[0]}:*"))
        assert reader.get_durable_execution(DurableExecutionArn=arns[0])["Status"] == "SUCCEEDED"
        with pytest.raises(ClientError) as refused:
            reader.get_durable_execution(DurableExecutionArn=arns[1])
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        message = refused.value.response["Error"]["Message"]
        assert f"lambda:GetDurableExecution on resource: {FUNCTION_ARN}{names[1]}:$LATEST" in message
        with pytest.raises(ClientError):
            reader.stop_durable_execution(DurableExecutionArn=arns[0])
    finally:
        aws.stop()


def test_a_cloudformation_function_keeps_its_durable_config(local_aws, lam, role_arn):
    cfn = local_aws.client("cloudformation")
    stack = unique("durable-stack")
    name = unique("durable-cfn")
    bucket = unique("code")
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    code = zip_files({"app.py": "def handler(event, context):\n    return event\n"})
    s3.put_object(Bucket=bucket, Key="code.zip", Body=code)
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": name, "Runtime": "python3.12", "Handler": "app.handler", "Role": role_arn,
                    "Code": {"S3Bucket": bucket, "S3Key": "code.zip"},
                    "DurableConfig": {"ExecutionTimeout": 31622400, "RetentionPeriodInDays": 30},
                },
            }
        }
    }  # fmt: skip
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    try:
        config = wait_until(lambda: _config_or_none(lam, name), timeout=30)
        assert config["DurableConfig"] == {"ExecutionTimeout": 31622400, "RetentionPeriodInDays": 30}
        template["Resources"]["Fn"]["Properties"].pop("DurableConfig")
        cfn.update_stack(StackName=stack, TemplateBody=json.dumps(template))
        wait_until(lambda: "DurableConfig" not in lam.get_function_configuration(FunctionName=name), timeout=30)
    finally:
        cfn.delete_stack(StackName=stack)


def _config_or_none(lam: Any, name: str) -> dict[str, Any] | None:
    try:
        return lam.get_function_configuration(FunctionName=name)  # type: ignore[no-any-return]
    except lam.exceptions.ResourceNotFoundException:
        return None


def test_iam_switched_on_after_the_first_execution_still_lets_the_executor_invoke(local_aws, lam, durable, skip_waits,
                                                                                   durable_layer):
    """The executor invokes handlers as the administrator, whatever the iam setting was when it started."""
    from tests.local_aws.test_iam import _allow, _role

    first = lam.invoke(FunctionName=f"{durable('three_steps')}:$LATEST", Payload=b'{"start": 0}')
    assert json.loads(first["Payload"].read()) == {"value": 111}
    with local_aws.override(iam=True):
        admin = local_aws.client("lambda", retries=0, read_timeout=60)
        name = unique("three-steps-iam")
        role = _role(local_aws, _allow(["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"],
                                       f"{FUNCTION_ARN}{name}:*"))  # fmt: skip
        deploy_durable_function(admin, code=HANDLERS / "three_steps.py", user_handler="three_steps.handler",
                                layer_arn=durable_layer, role_arn=role, name=name)  # fmt: skip
        try:
            second = admin.invoke(FunctionName=f"{name}:$LATEST", Payload=b'{"start": 1}')
            assert json.loads(second["Payload"].read()) == {"value": 112}
        finally:
            admin.delete_function(FunctionName=name)
