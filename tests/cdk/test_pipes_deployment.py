"""`PipesDeployment` on its own, as a user's CDK app uses it: resources, grants, outputs, cdk-nag."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import RemovalPolicy
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.constants import LAMBDAS_DIR, LAYER_REQUIREMENTS
from pipeskit.cdk import PipesDeployment, PipesFunction, QueueConsumer
from pipeskit.errors import ConstructConfigurationError
from pipeskit.stack_outputs import OutputNames

from .conftest import assert_no_nag_findings

STACK = "my-pipes"


@pytest.fixture(scope="module")
def deployment() -> tuple[cdk.Stack, PipesDeployment, Template]:
    app = cdk.App()
    stack = cdk.Stack(app, STACK)
    deployment = PipesDeployment(stack, "Pipes", layer_requirements=LAYER_REQUIREMENTS, consumer_timeout_s=120)
    deployment.add_function("Report", code_dir=LAMBDAS_DIR / "hello", handler="handler.handler", memory_mb=256)
    deployment.add_function(
        "Worker", code_dir=LAMBDAS_DIR / "fan_out_worker", handler="handler.handler", timeout_s=120,
        consumer=QueueConsumer(batch_size=5, max_concurrency=4),
    )  # fmt: skip
    existing = PipesFunction(
        stack, "Existing", function_name="my-existing", code_dir=str(LAMBDAS_DIR / "hello"), handler="handler.handler",
        layer=deployment.layer, memory_mb=128, timeout_s=30, log_retention_days=7, removal_policy=RemovalPolicy.DESTROY,
    )  # fmt: skip
    deployment.include_function(existing)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    app.synth()
    return stack, deployment, Template.from_stack(stack)


def _by_name(template: Template, function_name: str) -> tuple[str, dict]:
    return next(
        (logical_id, f["Properties"])
        for logical_id, f in template.find_resources("AWS::Lambda::Function").items()
        if f["Properties"]["FunctionName"] == function_name
    )


def test_functions_get_the_layer_the_bucket_settings_and_default_names(deployment) -> None:
    _, _, template = deployment
    assert len(template.find_resources("AWS::Lambda::LayerVersion")) == 1
    for name in (f"{STACK}-report", f"{STACK}-worker", "my-existing"):
        _, properties = _by_name(template, name)
        variables = properties["Environment"]["Variables"]
        assert set(variables) >= {"PIPESKIT_HANDLER", "PIPESKIT_CONTEXT_BUCKET", "PIPESKIT_MESSAGES_BUCKET"}
        assert variables["PIPESKIT_MESSAGES_BUCKET"]["Ref"].startswith("PipesSessionBucketsMessagesBucket")
    assert _by_name(template, f"{STACK}-report")[1]["MemorySize"] == 256


def test_every_function_reads_contexts_and_writes_messages_under_the_session_prefixes_only(deployment) -> None:
    stack, deployment_, template = deployment
    policies = template.find_resources("AWS::IAM::Policy")
    for construct_id, function in deployment_.functions.items():
        role_id = stack.get_logical_id(function.role.node.default_child)
        [document] = [
            p["Properties"]["PolicyDocument"] for p in policies.values() if {"Ref": role_id} in p["Properties"]["Roles"]
        ]
        text = json.dumps(document)
        assert "/pipeskit/contexts/*" in text and "/pipeskit/sessions/*" in text, construct_id
        assert '"/*"' not in text, f"{construct_id}: no grant on a whole bucket"
        actions = {
            a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
        assert "s3:PutObject" in actions and "s3:GetObject*" in actions
        assert ("sqs:ReceiveMessage" in actions) == (construct_id == "Worker"), "only the consumer reads the queue"


def test_only_the_consumer_is_mapped_to_the_work_queue_with_its_options(deployment) -> None:
    stack, deployment_, template = deployment
    [mapping] = template.find_resources("AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["FunctionName"] == {
        "Ref": stack.get_logical_id(deployment_.functions["Worker"].function.node.default_child)
    }
    assert properties["BatchSize"] == 5
    assert properties["ScalingConfig"] == {"MaximumConcurrency": 4}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_function_fails_asynchronously_to_the_failure_queue(deployment) -> None:
    stack, deployment_, template = deployment
    queue_id = stack.get_logical_id(deployment_.failure_queue.queue.node.default_child)
    configs = template.find_resources("AWS::Lambda::EventInvokeConfig")
    assert len(configs) == 3
    for config in configs.values():
        assert config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": [queue_id, "Arn"]
        }
        assert config["Properties"]["MaximumRetryAttempts"] == 2


def test_the_orchestrator_policy_covers_every_function_and_log_group(deployment) -> None:
    stack, deployment_, template = deployment
    [policy] = template.find_resources("AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["ManagedPolicyName"] == f"{STACK}-orchestrator"
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    invoked = json.dumps(statements["InvokeKitFunctions"]["Resource"])
    logs = {r["Fn::GetAtt"][0] for r in statements["ReadFunctionLogs"]["Resource"]}
    for function in deployment_.functions.values():
        assert stack.get_logical_id(function.function.node.default_child) in invoked
    assert logs == {stack.get_logical_id(f.log_group.node.default_child) for f in deployment_.functions.values()}


def test_outputs_carry_stable_names_for_everything_the_client_reads(deployment) -> None:
    stack, deployment_, template = deployment
    outputs = template.find_outputs("*")
    expected = {
        OutputNames.CONTEXT_BUCKET, OutputNames.MESSAGES_BUCKET, OutputNames.WORK_QUEUE_URL, OutputNames.WORK_QUEUE_ARN,
        OutputNames.DEAD_LETTER_QUEUE_URL, OutputNames.DEAD_LETTER_QUEUE_ARN, OutputNames.FAILURE_QUEUE_URL,
        OutputNames.FAILURE_QUEUE_ARN, OutputNames.ORCHESTRATOR_POLICY_ARN, OutputNames.PIPES_LAYER_ARN,
    }  # fmt: skip
    for construct_id in ("Report", "Worker", "Existing"):
        expected |= {OutputNames.function_name(construct_id), OutputNames.function_arn(construct_id),
                     OutputNames.log_group(construct_id)}  # fmt: skip
    assert set(outputs) == expected
    messages = stack.get_logical_id(deployment_.buckets.messages_bucket.node.default_child)
    assert outputs[OutputNames.MESSAGES_BUCKET]["Value"] == {"Ref": messages}
    report = stack.get_logical_id(deployment_.functions["Report"].function.node.default_child)
    assert outputs[OutputNames.function_name("Report")]["Value"] == {"Ref": report}


def test_cdk_nag_reports_nothing_unsuppressed(deployment) -> None:
    stack, _, _ = deployment
    assert_no_nag_findings(stack)


def test_parts_left_out_leave_no_resources_grants_or_outputs() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "bare")
    deployment = PipesDeployment(
        stack, "Pipes", layer_requirements=LAYER_REQUIREMENTS, work_queue=False, failure_queue=False,
        removal_policy=RemovalPolicy.RETAIN,
    )  # fmt: skip
    deployment.add_function("Report", code_dir=LAMBDAS_DIR / "hello", handler="handler.handler")
    with pytest.raises(ConstructConfigurationError, match="work_queue=False"):
        deployment.add_function("Worker", code_dir=LAMBDAS_DIR / "hello", handler="handler.handler",
                                consumer=QueueConsumer())  # fmt: skip
    with pytest.raises(ConstructConfigurationError, match="already has a function 'Report'"):
        deployment.include_function(deployment.functions["Report"])
    with pytest.raises(ConstructConfigurationError, match="'daily-report'.*letters and digits"):
        deployment.add_function("daily-report", code_dir=LAMBDAS_DIR / "hello", handler="handler.handler")
    template = Template.from_stack(stack)
    assert template.find_resources("AWS::SQS::Queue") == {}
    assert template.find_resources("AWS::Lambda::EventInvokeConfig") == {}
    assert not set(template.find_outputs("*")) & {OutputNames.WORK_QUEUE_URL, OutputNames.FAILURE_QUEUE_URL}
    [policy] = template.find_resources("AWS::IAM::ManagedPolicy").values()
    sids = {s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert not sids & {"SendWorkItems", "NameWorkQueueConsumers", "ReadAsyncFailures"}
    for bucket in template.find_resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"


def test_layer_and_layer_requirements_together_are_refused() -> None:
    stack = cdk.Stack(cdk.App(), "both")
    first = PipesDeployment(stack, "First", layer_requirements=LAYER_REQUIREMENTS, outputs=False)
    with pytest.raises(ConstructConfigurationError, match="not both"):
        PipesDeployment(stack, "Second", layer=first.layer, layer_requirements=LAYER_REQUIREMENTS)


def test_the_orchestrator_may_describe_this_stack_and_no_other(deployment) -> None:
    _, _, template = deployment
    [policy] = template.find_resources("AWS::IAM::ManagedPolicy").values()
    [statement] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "ReadStackOutputs"]
    assert statement["Action"] == "cloudformation:DescribeStacks"
    assert statement["Resource"] == {"Ref": "AWS::StackId"}
