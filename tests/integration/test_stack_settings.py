"""The client and ``pipeskit env`` take the deployment settings from a deployed stack's outputs."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest

from pipeskit import PipesLambdaClient, S3MessageReader
from pipeskit.cli import main
from pipeskit.errors import StackOutputsError
from pipeskit.local import LocalAWS
from pipeskit.stack_outputs import OutputNames
from tests.integration.conftest import run_asset

ODD_URL = 'https://queue.example/it\'s $HOME & `no` "command"'
"""A value the shell must take literally once `pipeskit env` printed it."""


def _create_stack(local_aws: LocalAWS, resources: dict[str, Any], outputs: dict[str, Any]) -> str:
    cfn = local_aws.client("cloudformation")
    name = f"kit-{uuid.uuid4().hex[:8]}"
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs}
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


@pytest.fixture(scope="module")
def kit_stack(local_aws: LocalAWS) -> str:
    """A stack with the kit's outputs: its messages bucket and work queue are real resources of the stack."""
    return _create_stack(
        local_aws,
        {"Messages": {"Type": "AWS::S3::Bucket"}, "Work": {"Type": "AWS::SQS::Queue"}},
        {
            OutputNames.MESSAGES_BUCKET: {"Value": {"Ref": "Messages"}},
            OutputNames.WORK_QUEUE_URL: {"Value": {"Ref": "Work"}},
            OutputNames.FAILURE_QUEUE_URL: {"Value": ODD_URL},
            "SomethingElse": {"Value": "not a setting"},
        },
    )


@pytest.fixture
def pointed_at(local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's chain points at the local AWS; no PIPESKIT_* deployment variable is set."""
    for name, value in local_aws.env().items():
        monkeypatch.setenv(name, value)
    for name in ("PIPESKIT_MESSAGES_BUCKET", "PIPESKIT_WORK_QUEUE_URL", "PIPESKIT_FAILURE_QUEUE_URL",
                 "PIPESKIT_CONTEXT_BUCKET", "PIPESKIT_DEAD_LETTER_QUEUE_URL", "PIPESKIT_STACK_NAME"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def _outputs(local_aws: LocalAWS, stack: str) -> dict[str, str]:
    [described] = local_aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


@pytest.mark.usefixtures("pointed_at")
def test_a_run_on_the_s3_channel_uses_the_stacks_messages_bucket(local_aws, kit_stack, handler_function) -> None:
    outputs = _outputs(local_aws, kit_stack)
    client = PipesLambdaClient(
        stack_name=kit_stack, channel="s3", endpoint_url=local_aws.endpoint_url, region_name=local_aws.settings.region
    )
    materialized = run_asset(client, handler_function("reporter", "lambda_handler"), {"id": "from-the-stack"})
    assert materialized.result.success, materialized.error
    assert [m.materialization.metadata["id"].value for m in materialized.materializations()] == ["from-the-stack"]
    reader = client.message_reader
    assert isinstance(reader, S3MessageReader) and reader.bucket == outputs[OutputNames.MESSAGES_BUCKET]
    deployment = client.deployment_settings
    assert deployment.work_queue_url == outputs[OutputNames.WORK_QUEUE_URL]
    assert deployment.failure_queue_url == ODD_URL
    assert deployment.context_bucket == "", "an output the stack does not have leaves its setting empty"


@pytest.mark.usefixtures("pointed_at")
def test_fields_and_variables_win_over_the_stacks_outputs(
    local_aws, kit_stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPESKIT_WORK_QUEUE_URL", "https://queue.example/from-the-environment")
    monkeypatch.setenv("PIPESKIT_STACK_NAME", kit_stack)
    client = PipesLambdaClient(messages_bucket="from-the-field")
    deployment = client.deployment_settings
    assert deployment.stack_name == kit_stack, "the stack named by PIPESKIT_STACK_NAME"
    assert deployment.messages_bucket == "from-the-field"
    assert deployment.work_queue_url == "https://queue.example/from-the-environment"
    assert deployment.failure_queue_url == ODD_URL, "what nothing else set comes from the stack"


@pytest.mark.usefixtures("pointed_at")
def test_the_stack_is_read_once_and_only_when_first_used(kit_stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    described: list[str] = []
    original = boto3.session.Session.client

    def counting(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made = original(self, service, *args, **kwargs)
        if service == "cloudformation":
            made.meta.events.register(
                "before-call.cloudformation.DescribeStacks", lambda **_: described.append(service)
            )
        return made

    monkeypatch.setattr(boto3.session.Session, "client", counting)
    client = PipesLambdaClient(stack_name=kit_stack, region_name="us-east-1")
    assert described == [], "building the client (loading the definitions) reads nothing"
    assert client.deployment_settings.messages_bucket
    client.message_reader  # noqa: B018 - first use of another part
    client.deployment_settings  # noqa: B018
    assert described == ["cloudformation"]


@pytest.mark.usefixtures("pointed_at")
def test_a_missing_stack_or_one_without_the_kits_outputs_is_named_in_one_line(local_aws) -> None:
    with pytest.raises(StackOutputsError) as missing:
        PipesLambdaClient(stack_name="no-such-stack").deployment_settings  # noqa: B018
    message = str(missing.value)
    assert "'no-such-stack'" in message and "does not exist" in message and "deploy it" in message
    assert local_aws.settings.region in message and "\n" not in message

    other = _create_stack(local_aws, {"Queue": {"Type": "AWS::SQS::Queue"}}, {"QueueUrl": {"Value": {"Ref": "Queue"}}})
    with pytest.raises(StackOutputsError, match=rf"stack '{other}' has none of the kit's outputs \(MessagesBucketName"):
        PipesLambdaClient(stack_name=other).deployment_settings  # noqa: B018


@pytest.mark.usefixtures("pointed_at")
def test_pipeskit_env_prints_shell_quoted_exports_of_every_setting_the_stack_gives(
    local_aws, kit_stack, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = _outputs(local_aws, kit_stack)
    assert main(["env", "--stack", kit_stack]) == 0
    printed = capsys.readouterr().out
    assert all(line.startswith("export PIPESKIT_") for line in printed.splitlines())
    assert len(printed.splitlines()) == 3
    script = (
        printed + 'printf "%s\\n" "$PIPESKIT_MESSAGES_BUCKET" "$PIPESKIT_WORK_QUEUE_URL" "$PIPESKIT_FAILURE_QUEUE_URL"'
    )
    evaluated = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, env={})
    assert evaluated.stdout.splitlines() == [
        outputs[OutputNames.MESSAGES_BUCKET], outputs[OutputNames.WORK_QUEUE_URL], ODD_URL,
    ]  # fmt: skip


@pytest.mark.usefixtures("pointed_at")
def test_pipeskit_env_on_a_missing_stack_says_so_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env", "--stack", "no-such-stack"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("error: cannot read the outputs of stack 'no-such-stack'") and "deploy it" in line
