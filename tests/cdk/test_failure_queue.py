"""`FailureQueue` on its own: the on-failure destination of asynchronous runs, and the work queue's DLQ."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from pipeskit.cdk import FailureQueue, WorkQueue
from pipeskit.cdk.failure_queue import ON_FAILURE_DESTINATION_REASON


@pytest.fixture(scope="module")
def synthesized() -> tuple[cdk.Stack, FailureQueue, WorkQueue]:
    app = cdk.App()
    stack = cdk.Stack(app, "failure-queue")
    failures = FailureQueue(stack, "Failures", removal_policy=RemovalPolicy.RETAIN)
    work = WorkQueue(stack, "Work", consumer_timeout_s=30, max_receive_count=3, removal_policy=RemovalPolicy.DESTROY)
    function = lambda_.Function(
        stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )  # fmt: skip
    function.configure_async_invoke(on_failure=destinations.SqsDestination(failures.queue))
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    app.synth()
    return stack, failures, work


def _queue(template: Template, logical_id: str) -> dict:
    return template.to_json()["Resources"][logical_id]


def test_the_failure_queue_is_encrypted_tls_only_kept_14_days_without_a_dlq(synthesized) -> None:
    stack, failures, _ = synthesized
    template = Template.from_stack(stack)
    logical_id = stack.get_logical_id(failures.queue.node.default_child)
    assert logical_id.startswith("Failures"), "the queue's logical id is the construct's, not a child's"
    queue = _queue(template, logical_id)
    assert queue["Properties"] == {"MessageRetentionPeriod": 14 * 24 * 3600, "SqsManagedSseEnabled": True}
    assert queue["DeletionPolicy"] == "Retain"
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": logical_id}],
            "PolicyDocument": {
                "Statement": [
                    Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
                ]
            },
        },
    )
    suppressed = queue["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert suppressed == [{"id": "AwsSolutions-SQS3", "reason": ON_FAILURE_DESTINATION_REASON}]


def test_asynchronous_failures_go_to_the_queue(synthesized) -> None:
    stack, failures, _ = synthesized
    logical_id = stack.get_logical_id(failures.queue.node.default_child)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [logical_id, "Arn"]}}}},
    )


def test_the_work_queues_dead_letter_queue_is_a_failure_queue(synthesized) -> None:
    stack, failures, work = synthesized
    template = Template.from_stack(stack)
    dlq = _queue(template, stack.get_logical_id(work.dead_letter_queue.node.default_child))
    failure_queue = _queue(template, stack.get_logical_id(failures.queue.node.default_child))
    assert dlq["Properties"] == failure_queue["Properties"], "one set of queue settings"
    [suppression] = dlq["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert suppression["id"] == "AwsSolutions-SQS3" and "dead-letter queue of the work queue" in suppression["reason"]


def test_cdk_nag_finds_nothing_on_the_queues(synthesized) -> None:
    stack, _, _ = synthesized
    errors = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-SQS.*"))
    assert not errors, [e.entry.data for e in errors]


def test_one_call_makes_a_function_consume_the_work_queue() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "consumer")
    work = WorkQueue(stack, "Work", consumer_timeout_s=60, max_receive_count=3, removal_policy=RemovalPolicy.DESTROY)
    function = lambda_.Function(
        stack, "Worker", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler", timeout=cdk.Duration.seconds(60),
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )  # fmt: skip
    work.add_consumer(function, batch_size=50, batching_window_s=2, max_concurrency=20)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 50, "MaximumBatchingWindowInSeconds": 2, "ScalingConfig": {"MaximumConcurrency": 20},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    })  # fmt: skip
    queue = _queue(template, stack.get_logical_id(work.queue.node.default_child))
    assert queue["Properties"]["VisibilityTimeout"] == 360, "six times the function's timeout"
    policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert "sqs:ReceiveMessage" in policies and "sqs:DeleteMessage" in policies, "the role may consume the queue"


def test_a_consumer_slower_than_the_queue_allows_is_refused_at_synth() -> None:
    from pipeskit.errors import ConstructConfigurationError

    stack = cdk.Stack(cdk.App(), "slow-consumer")
    work = WorkQueue(stack, "Work", consumer_timeout_s=30, max_receive_count=3, removal_policy=RemovalPolicy.DESTROY)
    function = lambda_.Function(
        stack, "Worker", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler", timeout=cdk.Duration.seconds(90),
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )  # fmt: skip
    refused = r"times out after 90 s.*consumer timeout \(30 s\).*consumer_timeout_s=90"
    with pytest.raises(ConstructConfigurationError, match=refused):
        work.add_consumer(function)
