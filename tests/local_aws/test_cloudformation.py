"""CloudFormation-created functions get their Layers (moto drops them without the fix)."""

from __future__ import annotations

import json
from base64 import b64decode

from tests.local_aws.conftest import make_zip, payload_of, unique, wait_until


def _template(bucket: str, role_arn: str, layers: bool = True) -> str:
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
                        "Content": {"S3Bucket": bucket, "S3Key": "layer.zip"},
                        "CompatibleRuntimes": ["python3.12"],
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
