"""The edit-deploy loop of a user's own CDK app on the local AWS: `cdk deploy` again and again.

A tiny app of its own (a `PipesLayer`, a `PipesFunction`, sometimes a queue) is deployed with the real
CDK CLI, its handler and settings edited between deploys, with both deployment methods (change sets,
``--method=direct``), then destroyed and deployed again. Each time, the next invocation runs what was
deployed last.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.constants import PROJECT_DIR
from pipeskit.cdk_cli import CdkCli
from pipeskit.local import LocalAWS
from tests.local_aws.conftest import payload_of

pytestmark = pytest.mark.e2e

FUNCTION = "loop-fn"

APP = '''
import json
import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from pipeskit.cdk import PipesFunction, PipesLayer

config = json.load(open("config.json"))
app = cdk.App()
stack = cdk.Stack(app, "deploy-loop")
layer = PipesLayer(stack, "PipesLayer")
PipesFunction(
    stack, "Fn",
    function_name="loop-fn",
    code_dir="src",
    handler="app.handler",
    layer=layer,
    memory_mb=config["memory_mb"],
    timeout_s=config["timeout_s"],
    log_retention_days=1,
    removal_policy=RemovalPolicy.DESTROY,
    environment={"GREETING": config["greeting"]},
)
if config["queue"]:
    queue = sqs.Queue(stack, "Extra", visibility_timeout=Duration.seconds(30))
    cdk.CfnOutput(stack, "QueueUrl", value=queue.queue_url)
app.synth()
'''

HANDLER = '''
import os, uuid
ENVIRONMENT = uuid.uuid4().hex  # one per execution environment

def handler(event, context):
    return {{"code": {version}, "greeting": os.environ["GREETING"], "environment": ENVIRONMENT,
            "memory": context.memory_limit_in_mb}}
'''


class UserApp:
    """The user's CDK project in a directory of its own."""

    def __init__(self, root: Path, local_aws: LocalAWS) -> None:
        self.root = root
        (root / "src").mkdir()
        (root / "app.py").write_text(APP)
        (root / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py"}))
        self.cli = CdkCli(root, cdk=str(PROJECT_DIR / "node_modules" / ".bin" / "cdk"), output_dir=root / "cdk.out")
        path = os.pathsep.join([str(PROJECT_DIR / "node_modules" / ".bin"), os.environ.get("PATH", "")])
        python_path = os.pathsep.join(filter(None, [str(PROJECT_DIR), str(PROJECT_DIR / "layers"),
                                                    os.environ.get("PYTHONPATH")]))  # fmt: skip
        self.env = {**local_aws.env(), "PATH": path, "PYTHONPATH": python_path}

    def edit(self, version: int, *, greeting: str, memory_mb: int = 256, timeout_s: int = 10,
             queue: bool = False) -> None:  # fmt: skip
        (self.root / "src" / "app.py").write_text(HANDLER.format(version=version))
        config = {"greeting": greeting, "memory_mb": memory_mb, "timeout_s": timeout_s, "queue": queue}
        (self.root / "config.json").write_text(json.dumps(config))

    def deploy(self, *extra: str) -> dict[str, str]:
        _, outputs = self.cli.deploy(self.root / "outputs.json", self.env, extra=extra)
        return outputs


def test_deploy_again_after_edits_with_both_methods_then_destroy_and_deploy(
    local_aws: LocalAWS, tmp_path: Path
) -> None:
    lam = local_aws.client("lambda", retries=0, read_timeout=60)
    sqs = local_aws.client("sqs", retries=0)
    cfn = local_aws.client("cloudformation", retries=0)
    user = UserApp(tmp_path, local_aws)

    def invoke() -> dict[str, Any]:
        response = lam.invoke(FunctionName=FUNCTION)
        assert "FunctionError" not in response, response["Payload"].read()
        return payload_of(response)  # type: ignore[no-any-return]

    user.edit(1, greeting="one")
    user.cli.bootstrap(local_aws.settings.account_id, local_aws.settings.region, user.env)
    user.deploy()
    first = invoke()
    assert (first["code"], first["greeting"], first["memory"]) == (1, "one", "256")
    assert invoke()["environment"] == first["environment"], "warm: the same environment serves again"

    # change set again: new code, environment and memory; a queue added
    user.edit(2, greeting="two", memory_mb=512, queue=True)
    outputs = user.deploy()
    second = invoke()
    assert (second["code"], second["greeting"], second["memory"]) == (2, "two", "512")
    assert second["environment"] != first["environment"], "the old code's warm environment is retired"
    queue_url = outputs["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]

    # direct (UpdateStack), twice: the queue removed, timeout changed; then only the code
    user.edit(3, greeting="three", memory_mb=512, timeout_s=20)
    outputs = user.deploy("--method=direct")
    assert "QueueUrl" not in outputs
    assert invoke()["code"] == 3
    assert lam.get_function_configuration(FunctionName=FUNCTION)["Timeout"] == 20
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    user.edit(4, greeting="four", memory_mb=512, timeout_s=20)
    user.deploy("--method=direct")
    assert (invoke()["code"], invoke()["greeting"]) == (4, "four")

    # destroy, then deploy afresh
    user.cli.run(["destroy", "--force"], user.env)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=FUNCTION)
    user.edit(5, greeting="five")
    user.deploy()
    fifth = invoke()
    assert (fifth["code"], fifth["greeting"], fifth["memory"]) == (5, "five", "256")
    statuses = [s["StackStatus"] for s in cfn.describe_stacks(StackName="deploy-loop")["Stacks"]]
    assert statuses == ["CREATE_COMPLETE"]
