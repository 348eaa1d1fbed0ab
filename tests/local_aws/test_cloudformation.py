"""CloudFormation on the local AWS: functions get their Layers, change sets behave as CloudFormation's
(what a second `cdk deploy` needs), AWS::Lambda::EventInvokeConfig applies, layers are found by ARN."""

from __future__ import annotations

import json
from base64 import b64decode

import pytest

from pipeskit.adopt import plan_adoption
from pipeskit_lambda.protocol import ENTRYPOINT_HANDLER, LAYER_DESCRIPTION
from tests.local_aws.conftest import log_messages, make_zip, payload_of, unique, wait_until
from tests.local_aws.test_async import FAILING, _attempts, _queue, _receive


def _template(
    bucket: str, role_arn: str, layers: bool = True, description: str = "", layer_key: str = "layer.zip"
) -> str:
    function_properties = {
        "Runtime": "python3.12",
        "Handler": "app.handler",
        "Role": role_arn,
        "Timeout": 5,
        "Code": {"S3Bucket": bucket, "S3Key": "function.zip"},
    }
    if layers:
        function_properties["Layers"] = [{"Ref": "Layer"}]
    return json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {
                "Layer": {
                    "Type": "AWS::Lambda::LayerVersion",
                    "Properties": {
                        "Content": {"S3Bucket": bucket, "S3Key": layer_key},
                        "CompatibleRuntimes": ["python3.12"],
                        **({"Description": description} if description else {}),
                    },
                },
                "Function": {"Type": "AWS::Lambda::Function", "Properties": function_properties},
            },
            "Outputs": {
                "FunctionName": {"Value": {"Ref": "Function"}},
                "LayerArn": {"Value": {"Ref": "Layer"}},
            },
        }
    )


def test_cloudformation_function_gets_its_layers(local_aws, lam, role_arn):
    s3 = local_aws.client("s3")
    cfn = local_aws.client("cloudformation")
    bucket = unique("cfn-assets")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket,
        Key="layer.zip",
        Body=make_zip({"python/cfn_layer_module.py": "GREETING = 'hello from the layer'\n"}),
    )
    s3.put_object(
        Bucket=bucket,
        Key="function.zip",
        Body=make_zip(
            {
                "app.py": "import cfn_layer_module\n"
                "def handler(event, context):\n    return cfn_layer_module.GREETING\n"
            }
        ),
    )
    stack = unique("stack")
    cfn.create_stack(StackName=stack, TemplateBody=_template(bucket, role_arn))
    def created():
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
        return next((s for s in stacks if s["StackStatus"] == "CREATE_COMPLETE"), None)

    description = wait_until(created)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description["Outputs"]}
    function_name, layer_arn = outputs["FunctionName"], outputs["LayerArn"]
    assert layer_arn.startswith("arn:aws:lambda:us-east-1:123456789012:layer:")

    configuration = lam.get_function_configuration(FunctionName=function_name)
    assert [layer["Arn"] for layer in configuration["Layers"]] == [layer_arn]

    response = lam.invoke(FunctionName=function_name, LogType="Tail")
    assert "FunctionError" not in response, (response["Payload"].read(), b64decode(response["LogResult"]))
    assert payload_of(response) == "hello from the layer"

    # an update that removes the layer detaches it
    cfn.update_stack(StackName=stack, TemplateBody=_template(bucket, role_arn, layers=False))
    wait_until(
        lambda: cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    )
    assert lam.get_function_configuration(FunctionName=function_name).get("Layers", []) == []
    assert payload_of(lam.invoke(FunctionName=function_name))["errorType"] == "Runtime.ImportModuleError"


def _status(cfn, stack):
    return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def _bare_template(queues, parameters=None):
    """Queues only (quick to create), with optional parameters each feeding a queue's tag."""
    resources = {name: {"Type": "AWS::SQS::Queue", "Properties": {}} for name in queues}
    template = {"Resources": resources, "Outputs": {n: {"Value": {"Fn::GetAtt": [n, "QueueName"]}} for n in queues}}
    if parameters:
        template["Parameters"] = parameters
    return json.dumps(template)


def test_change_sets_are_named_within_their_stack_and_go_once_executed(local_aws):
    """What `cdk deploy` does twice: every stack's change set has the same name; the old one is deleted
    (a missing one too) and waited for until it is not found; the new one is described, executed."""
    cfn = local_aws.client("cloudformation", retries=0)
    first, second = unique("stack"), unique("stack")
    name = "cdk-deploy-change-set"
    for stack in (first, second):
        cfn.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType="CREATE",
                              TemplateBody=_bare_template(["A"]))  # fmt: skip
    assert cfn.describe_change_set(StackName=second, ChangeSetName=name)["StackName"] == second
    cfn.execute_change_set(StackName=first, ChangeSetName=name)
    assert _status(cfn, first) == "CREATE_COMPLETE" and _status(cfn, second) == "REVIEW_IN_PROGRESS"
    outputs = cfn.describe_stacks(StackName=first)["Stacks"][0]["Outputs"]
    assert [o["OutputKey"] for o in outputs] == ["A"]
    # executed: the stack's change sets are gone, the other stack's stays
    with pytest.raises(cfn.exceptions.ChangeSetNotFoundException):
        cfn.describe_change_set(StackName=first, ChangeSetName=name)
    assert cfn.describe_change_set(StackName=second, ChangeSetName=name)["ExecutionStatus"] == "AVAILABLE"
    cfn.delete_change_set(StackName=first, ChangeSetName=name)  # nothing to delete: CloudFormation says fine

    # the next deploy: an UPDATE change set on the same stack, with the same name, adds B and removes A
    created = cfn.create_change_set(StackName=first, ChangeSetName=name, ChangeSetType="UPDATE",
                                    TemplateBody=_bare_template(["B"]))  # fmt: skip
    changes = cfn.describe_change_set(ChangeSetName=created["Id"])["Changes"]
    assert sorted((c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"]) for c in changes) == [
        ("Add", "B"), ("Remove", "A")]  # fmt: skip
    cfn.execute_change_set(ChangeSetName=created["Id"])
    assert _status(cfn, first) == "UPDATE_COMPLETE"
    outputs = cfn.describe_stacks(StackName=first)["Stacks"][0]["Outputs"]
    assert [o["OutputKey"] for o in outputs] == ["B"]
    with pytest.raises(cfn.exceptions.ChangeSetNotFoundException):
        cfn.execute_change_set(ChangeSetName=created["Id"])  # the executed change set is gone


def test_use_previous_value_keeps_a_defaulted_ssm_parameter(local_aws):
    """CDK's BootstrapVersion: an SSM parameter name as the Default, never given; each update passes
    UsePreviousValue. Through a change set and through UpdateStack (`cdk deploy --method=direct`)."""
    cfn = local_aws.client("cloudformation", retries=0)
    ssm = local_aws.client("ssm")
    ssm_name = f"/{unique('bootstrap')}/version"
    ssm.put_parameter(Name=ssm_name, Value="21", Type="String")
    parameters = {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": ssm_name}}
    stack = unique("stack")
    cfn.create_stack(StackName=stack, TemplateBody=_bare_template(["A"], parameters))
    previous = [{"ParameterKey": "BootstrapVersion", "UsePreviousValue": True}]
    cfn.update_stack(StackName=stack, TemplateBody=_bare_template(["A", "B"], parameters), Parameters=previous)
    assert _status(cfn, stack) == "UPDATE_COMPLETE"
    created = cfn.create_change_set(StackName=stack, ChangeSetName="next", ChangeSetType="UPDATE",
                                    TemplateBody=_bare_template(["B"], parameters), Parameters=previous)  # fmt: skip
    cfn.execute_change_set(ChangeSetName=created["Id"])
    [description] = cfn.describe_stacks(StackName=stack)["Stacks"]
    assert description["StackStatus"] == "UPDATE_COMPLETE"
    assert [o["OutputKey"] for o in description["Outputs"]] == ["B"]


def test_event_invoke_config_from_cloudformation_applies_to_async_invocations(local_aws, lam, role_arn, sqs, logs):
    s3 = local_aws.client("s3")
    cfn = local_aws.client("cloudformation", retries=0)
    bucket = unique("cfn-assets")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="function.zip", Body=make_zip({"app.py": FAILING}))
    url, arn = _queue(sqs, "on-failure")
    function = {"Type": "AWS::Lambda::Function", "Properties": {
        "Runtime": "python3.12", "Handler": "app.handler", "Role": role_arn,
        "Code": {"S3Bucket": bucket, "S3Key": "function.zip"}}}  # fmt: skip
    config = {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
        "FunctionName": {"Ref": "Function"}, "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 120,
        "DestinationConfig": {"OnFailure": {"Destination": arn}}}}  # fmt: skip
    outputs = {"Name": {"Value": {"Ref": "Function"}}}
    stack = unique("stack")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(
        {"Resources": {"Function": function, "Config": config}, "Outputs": outputs}))  # fmt: skip
    [output] = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    name = output["OutputValue"]

    applied = lam.get_function_event_invoke_config(FunctionName=name)
    assert (applied["MaximumRetryAttempts"], applied["MaximumEventAgeInSeconds"]) == (0, 120)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"from": "cfn"}')
    [message] = _receive(sqs, url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1, "no retry: MaximumRetryAttempts 0"
    assert record["requestPayload"] == {"from": "cfn"}
    assert _attempts(logs, name) == 1

    # updated: a maximum age shorter than the retry delay (1 s: CloudFormation's own 60 s minimum is not
    # checked locally, which keeps the test short) — the retry finds the event too old
    config["Properties"].update(MaximumRetryAttempts=2, MaximumEventAgeInSeconds=1)
    cfn.update_stack(StackName=stack, TemplateBody=json.dumps(
        {"Resources": {"Function": function, "Config": config}, "Outputs": outputs}))  # fmt: skip
    assert lam.get_function_event_invoke_config(FunctionName=name)["MaximumEventAgeInSeconds"] == 1
    with local_aws.override(async_retry_delays_s=(1.5, 1.5)):
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"from": "cfn, updated"}')
        record = json.loads(_receive(sqs, url, timeout=15)[0]["Body"])
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestPayload"] == {"from": "cfn, updated"}

    # removed from the template: the function is back to Lambda's defaults
    cfn.update_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {"Function": function},
                                                                "Outputs": outputs}))  # fmt: skip
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name)
    assert not any("EventInvokeConfig" in m for m in log_messages(logs, f"/aws/lambda/{name}"))


def test_a_layer_is_found_by_arn_and_adopt_sees_the_pipes_layer(local_aws, lam, role_arn):
    s3 = local_aws.client("s3")
    cfn = local_aws.client("cloudformation", retries=0)
    bucket = unique("cfn-assets")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="layer.zip", Body=make_zip({"python/cfn_layer_module.py": "X = 1\n"}))
    s3.put_object(Bucket=bucket, Key="function.zip", Body=make_zip({"app.py": "def handler(e, c):\n    return 1\n"}))
    stack = unique("stack")
    cfn.create_stack(StackName=stack, TemplateBody=_template(bucket, role_arn, description=LAYER_DESCRIPTION))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}

    layer = lam.get_layer_version_by_arn(Arn=outputs["LayerArn"])
    assert (layer["LayerVersionArn"], layer["Description"]) == (outputs["LayerArn"], LAYER_DESCRIPTION)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_layer_version_by_arn(Arn=outputs["LayerArn"].rsplit(":", 1)[0] + ":99")

    plan = plan_adoption(lam, outputs["FunctionName"], None)  # the attached layer is the pipes layer
    assert plan.update["Handler"] == ENTRYPOINT_HANDLER and "Layers" not in plan.update


def test_a_change_set_without_changes_is_refused_and_a_failing_one_fails_its_stack_with_the_reason(local_aws):
    cfn = local_aws.client("cloudformation", retries=0)
    stack = unique("stack")
    cfn.create_stack(StackName=stack, TemplateBody=_bare_template(["A"]))
    same = cfn.create_change_set(StackName=stack, ChangeSetName="same", ChangeSetType="UPDATE",
                                 TemplateBody=_bare_template(["A"]))  # fmt: skip
    assert cfn.describe_change_set(ChangeSetName=same["Id"])["Status"] == "FAILED"
    with pytest.raises(cfn.exceptions.InvalidChangeSetStatusException):
        cfn.execute_change_set(ChangeSetName=same["Id"])

    broken = {"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "Runtime": "python3.12", "Handler": "app.handler", "Role": "arn:aws:iam::123456789012:role/none",
        "Code": {"S3Bucket": unique("no-such-bucket"), "S3Key": "function.zip"}}}}}  # fmt: skip
    created = cfn.create_change_set(StackName=stack, ChangeSetName="broken", ChangeSetType="UPDATE",
                                    TemplateBody=json.dumps(broken))  # fmt: skip
    cfn.execute_change_set(ChangeSetName=created["Id"])  # answered: the failure is the stack's
    assert _status(cfn, stack) == "UPDATE_FAILED"
    reasons = [e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]
               if e["ResourceStatus"] == "UPDATE_FAILED"]  # fmt: skip
    assert reasons == ["InvalidParameterValueException: Error occurred while GetObject. S3 Error Code: NoSuchBucket. "
                       "S3 Error Message: The specified bucket does not exist"]


def test_a_rebuilt_layer_is_a_new_version_and_the_function_referring_to_it_gets_it(local_aws, lam, role_arn):
    """What `cdk deploy` after a change to the layer's requirements does: the LayerVersion is replaced,
    and the function whose own template text did not change is updated to the new version."""
    s3 = local_aws.client("s3")
    cfn = local_aws.client("cloudformation", retries=0)
    bucket = unique("cfn-assets")
    s3.create_bucket(Bucket=bucket)
    for key, greeting in (("layer-1.zip", "first layer"), ("layer-2.zip", "second layer")):
        s3.put_object(Bucket=bucket, Key=key,
                      Body=make_zip({"python/cfn_layer_module.py": f"GREETING = {greeting!r}\n"}))  # fmt: skip
    s3.put_object(Bucket=bucket, Key="function.zip", Body=make_zip(
        {"app.py": "import cfn_layer_module\ndef handler(event, context):\n    return cfn_layer_module.GREETING\n"}))
    stack = unique("stack")
    cfn.create_stack(StackName=stack, TemplateBody=_template(bucket, role_arn, layer_key="layer-1.zip"))
    first = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    assert payload_of(lam.invoke(FunctionName=first["FunctionName"])) == "first layer"

    cfn.update_stack(StackName=stack, TemplateBody=_template(bucket, role_arn, layer_key="layer-2.zip"))
    second = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    assert second["LayerArn"].rsplit(":", 1) == [first["LayerArn"].rsplit(":", 1)[0], "2"]
    configuration = lam.get_function_configuration(FunctionName=first["FunctionName"])
    assert [layer["Arn"] for layer in configuration["Layers"]] == [second["LayerArn"]]
    assert payload_of(lam.invoke(FunctionName=first["FunctionName"])) == "second layer"
