"""The synthesized template: each resource and each security property the kit promises."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from infra.constants import EXAMPLE_FUNCTIONS, OutputNames

from .conftest import Synthesized


def _resources(s: Synthesized, type_: str) -> dict:
    return s.template.find_resources(type_)


def _only(s: Synthesized, type_: str) -> dict:
    found = _resources(s, type_)
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return next(iter(found.values()))


def test_pipes_layer_targets_python_312(dev: Synthesized) -> None:
    layer = _only(dev, "AWS::Lambda::LayerVersion")
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]


def test_each_example_function_carries_the_layer_and_settings(dev: Synthesized) -> None:
    functions = _resources(dev, "AWS::Lambda::Function")
    assert len(functions) == len(EXAMPLE_FUNCTIONS)
    layer_id = next(iter(_resources(dev, "AWS::Lambda::LayerVersion")))
    for spec in EXAMPLE_FUNCTIONS:
        props = next(
            f["Properties"]
            for f in functions.values()
            if f["Properties"]["FunctionName"] == f"{dev.settings.stack_name}-{spec.name}"
        )
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == "pipeskit_lambda.entrypoint.handler"
        assert props["Environment"]["Variables"]["PIPESKIT_HANDLER"] == spec.handler
        assert props["Layers"] == [{"Ref": layer_id}]
        assert props["MemorySize"] == dev.settings.memory_mb
        assert props["Timeout"] == dev.settings.timeout_s
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert "Ref" in props["LoggingConfig"]["LogGroup"]


def test_each_function_has_its_own_log_group_with_retention(dev: Synthesized) -> None:
    groups = _resources(dev, "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"] for g in groups.values()}
    assert names == {f"/aws/lambda/{dev.settings.stack_name}-{s.name}" for s in EXAMPLE_FUNCTIONS}
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == dev.settings.log_retention_days


def test_function_roles_have_no_account_wide_managed_policies(dev: Synthesized) -> None:
    for role in _resources(dev, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
        principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        assert principal == {"Service": "lambda.amazonaws.com"}


def test_two_session_buckets_are_private_encrypted_and_expire(dev: Synthesized) -> None:
    buckets = _resources(dev, "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        rule = props["LifecycleConfiguration"]["Rules"][0]
        assert rule["Status"] == "Enabled"
        assert rule["ExpirationInDays"] == dev.settings.session_expiry_days


def test_buckets_refuse_plain_http(dev: Synthesized) -> None:
    policies = _resources(dev, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_dev_destroys_and_prod_retains_buckets(dev: Synthesized, prod: Synthesized) -> None:
    for bucket in _resources(dev, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    for bucket in _resources(prod, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"


def test_work_queue_has_dlq_sse_ssl_and_visibility_six_times_timeout(dev: Synthesized) -> None:
    queues = _resources(dev, "AWS::SQS::Queue")
    assert len(queues) == 3, "work queue, its dead-letter queue, the asynchronous failure queue"
    work = next(q for q in queues.values() if "RedrivePolicy" in q["Properties"])
    dlq_id = next(i for i in queues if i.startswith("WorkQueueDeadLetterQueue"))
    props = work["Properties"]
    assert props["VisibilityTimeout"] == 6 * dev.settings.timeout_s
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": dev.settings.max_receive_count,
    }
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    for policy in _resources(dev, "AWS::SQS::QueuePolicy").values():
        statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _policy_statements(s: Synthesized) -> dict[str, dict]:
    policy = _only(s, "AWS::IAM::ManagedPolicy")
    assert policy["Properties"]["ManagedPolicyName"] == f"{s.settings.stack_name}-orchestrator"
    return {st["Sid"]: st for st in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_orchestrator_policy_is_least_privilege(dev: Synthesized) -> None:
    statements = _policy_statements(dev)
    assert set(statements) == {
        "InvokeKitFunctions", "WriteSessionContexts", "ReadSessionMessages", "ListSessionMessages",
        "ReadFunctionLogs", "SendWorkItems", "ReadAsyncFailures", "NameWorkQueueConsumers", "ReadStackOutputs",
    }  # fmt: skip
    listing_mappings = statements.pop("NameWorkQueueConsumers")
    assert listing_mappings["Action"] == "lambda:ListEventSourceMappings" and listing_mappings["Resource"] == "*", (
        "the one statement on every resource: a read-only listing without resource-level permissions"
    )
    text = json.dumps(statements)
    assert '"*"' not in text, "no other statement may target every resource"
    assert all(s["Effect"] == "Allow" for s in statements.values())

    function_ids = set(_resources(dev, "AWS::Lambda::Function"))
    invoke = statements["InvokeKitFunctions"]
    assert set(invoke["Action"]) == {
        "lambda:InvokeFunction", "lambda:GetFunctionConfiguration", "lambda:GetFunctionEventInvokeConfig",
    }  # fmt: skip
    targets = json.dumps(invoke["Resource"])
    assert all(fid in targets for fid in function_ids)

    contexts, messages = statements["WriteSessionContexts"], statements["ReadSessionMessages"]
    assert set(contexts["Action"]) == {"s3:PutObject", "s3:DeleteObject"}
    assert set(messages["Action"]) == {"s3:GetObject", "s3:DeleteObject", "s3:PutObject"}, "PutObject: resume markers"
    assert contexts["Resource"]["Fn::Join"][1][1] == "/pipeskit/contexts/*", "the session prefix, not the bucket"
    assert messages["Resource"]["Fn::Join"][1][1] == "/pipeskit/sessions/*"
    listing = statements["ListSessionMessages"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["pipeskit/sessions/*"]}}

    failures = statements["ReadAsyncFailures"]
    assert set(failures["Action"]) == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    queue_ids = {r["Fn::GetAtt"][0] for r in failures["Resource"]}
    assert len(queue_ids) == 2, "the failure queue and the work queue's dead-letter queue (a fan-out reads both)"
    queues = _resources(dev, "AWS::SQS::Queue")
    assert queue_ids == {i for i, q in queues.items() if "RedrivePolicy" not in q["Properties"]}

    log_group_ids = set(_resources(dev, "AWS::Logs::LogGroup"))
    logs = statements["ReadFunctionLogs"]
    assert set(logs["Action"]) == {"logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"}
    resources = logs["Resource"] if isinstance(logs["Resource"], list) else [logs["Resource"]]
    assert {r["Fn::GetAtt"][0] for r in resources} == log_group_ids

    send = statements["SendWorkItems"]
    assert "sqs:SendMessage" in send["Action"]
    assert not any(a in send["Action"] for a in ("sqs:DeleteMessage", "sqs:ReceiveMessage", "sqs:*"))
    work_queue_id = next(
        i for i, q in _resources(dev, "AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]
    )
    assert send["Resource"] == {"Fn::GetAtt": [work_queue_id, "Arn"]}
    assert sorted(r["Fn::GetAtt"][0][:12] for r in failures["Resource"]) == ["FailureQueue", "WorkQueueDea"]

    stack_outputs = statements["ReadStackOutputs"]
    assert stack_outputs["Action"] == "cloudformation:DescribeStacks"
    assert stack_outputs["Resource"] == {"Ref": "AWS::StackId"}, "this stack's own ARN, no other stack"


def test_async_invocations_retry_per_settings_and_fail_to_the_queue(dev: Synthesized) -> None:
    configs = _resources(dev, "AWS::Lambda::EventInvokeConfig")
    assert len(configs) == len(EXAMPLE_FUNCTIONS)
    for config in configs.values():
        properties = config["Properties"]
        assert properties["MaximumRetryAttempts"] == dev.settings.async_retry_attempts
        assert properties["MaximumEventAgeInSeconds"] == dev.settings.async_max_event_age_s
        target = properties["DestinationConfig"]["OnFailure"]["Destination"]
        assert target["Fn::GetAtt"][0].startswith("FailureQueue")


def test_function_roles_reach_only_their_session_prefixes(dev: Synthesized) -> None:
    text = json.dumps(_resources(dev, "AWS::IAM::Policy"))
    assert "/pipeskit/contexts/*" in text and "/pipeskit/sessions/*" in text
    assert '"/*"' not in text, "no grant on a whole bucket"


def test_outputs_name_everything_the_orchestrator_needs(dev: Synthesized) -> None:
    outputs = dev.template.find_outputs("*")
    expected = {
        OutputNames.CONTEXT_BUCKET, OutputNames.MESSAGES_BUCKET, OutputNames.WORK_QUEUE_URL,
        OutputNames.WORK_QUEUE_ARN, OutputNames.DEAD_LETTER_QUEUE_URL, OutputNames.DEAD_LETTER_QUEUE_ARN,
        OutputNames.ORCHESTRATOR_POLICY_ARN, OutputNames.PIPES_LAYER_ARN,
        OutputNames.FAILURE_QUEUE_URL, OutputNames.FAILURE_QUEUE_ARN,
    }  # fmt: skip
    for spec in EXAMPLE_FUNCTIONS:
        expected |= {
            OutputNames.function_name(spec.construct_id),
            OutputNames.function_arn(spec.construct_id),
            OutputNames.log_group(spec.construct_id),
        }
    assert expected <= set(outputs)


def test_cdk_nag_aws_solutions_reports_no_unsuppressed_error(dev: Synthesized, prod: Synthesized) -> None:
    for synthesized in (dev, prod):
        errors = synthesized.annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
        assert errors == [], "\n".join(str(e.entry.data) for e in errors)
        warnings = synthesized.annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))
        assert warnings == [], "\n".join(str(e.entry.data) for e in warnings)


def test_every_nag_suppression_carries_a_written_reason(dev: Synthesized) -> None:
    suppressions = [
        rule
        for resource in dev.template.to_json()["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert suppressions, "the checks must have run and been answered, not skipped"
    for rule in suppressions:
        assert len(rule["reason"].split()) >= 8, f"{rule['id']}: reason too thin: {rule['reason']!r}"


def test_the_fan_out_worker_consumes_the_work_queue_per_settings(dev: Synthesized) -> None:
    [mapping] = _resources(dev, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["BatchSize"] == dev.settings.queue_batch_size
    assert properties["ScalingConfig"] == {"MaximumConcurrency": dev.settings.queue_max_concurrency}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    work_queue_id = next(
        i for i, q in _resources(dev, "AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]
    )
    assert properties["EventSourceArn"] == {"Fn::GetAtt": [work_queue_id, "Arn"]}
