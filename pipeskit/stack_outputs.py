"""A deployed kit stack's outputs: their names, shared by the constructs that emit them and the client and
commands that read them, and their one reading (``cloudformation:DescribeStacks``)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .errors import StackOutputsError
from .settings import DeploymentSettings

__all__ = [
    "DEPLOYMENT_OUTPUTS", "OutputNames", "deployment_env", "deployment_from_stack", "deployment_values",
    "read_stack_outputs", "stack_deployment_values",
]  # fmt: skip


class OutputNames:
    """``CfnOutput`` ids of a kit stack (`pipeskit.cdk.PipesDeployment` emits them), stable across releases:
    the orchestrator, ``pipeskit env`` and ``pipeskit adopt --stack`` read them after ``cdk deploy``."""

    CONTEXT_BUCKET = "ContextBucketName"
    MESSAGES_BUCKET = "MessagesBucketName"
    WORK_QUEUE_URL = "WorkQueueUrl"
    WORK_QUEUE_ARN = "WorkQueueArn"
    DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
    DEAD_LETTER_QUEUE_ARN = "DeadLetterQueueArn"
    ORCHESTRATOR_POLICY_ARN = "OrchestratorPolicyArn"
    PIPES_LAYER_ARN = "PipesLayerArn"
    FAILURE_QUEUE_URL = "FailureQueueUrl"
    FAILURE_QUEUE_ARN = "FailureQueueArn"

    @staticmethod
    def function_name(construct_id: str) -> str:
        """The output holding the physical name of the function whose construct id is ``construct_id``."""
        return f"{construct_id}FunctionName"

    @staticmethod
    def function_arn(construct_id: str) -> str:
        """The output holding that function's ARN."""
        return f"{construct_id}FunctionArn"

    @staticmethod
    def log_group(construct_id: str) -> str:
        """The output holding that function's log group name."""
        return f"{construct_id}LogGroupName"


DEPLOYMENT_OUTPUTS: dict[str, str] = {
    "messages_bucket": OutputNames.MESSAGES_BUCKET,
    "context_bucket": OutputNames.CONTEXT_BUCKET,
    "work_queue_url": OutputNames.WORK_QUEUE_URL,
    "dead_letter_queue_url": OutputNames.DEAD_LETTER_QUEUE_URL,
    "failure_queue_url": OutputNames.FAILURE_QUEUE_URL,
}
"""Which stack output each of the client's deployment settings (`pipeskit.settings.DeploymentSettings`,
``PIPESKIT_*``) comes from."""


def deployment_values(outputs: dict[str, str]) -> dict[str, str]:
    """The deployment settings (field name → value) that ``outputs`` give; the others are left out."""
    return {name: outputs[output] for name, output in DEPLOYMENT_OUTPUTS.items() if outputs.get(output)}


def deployment_env(outputs: dict[str, str]) -> dict[str, str]:
    """The ``PIPESKIT_*`` variables (``PIPESKIT_MESSAGES_BUCKET``, …) that ``outputs`` give, with their values."""
    return {DeploymentSettings.env_var(name): value for name, value in deployment_values(outputs).items()}


def stack_deployment_values(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The deployment settings (field name → value) the deployed stack ``stack_name``'s outputs give.

    Raises:
        StackOutputsError: the stack cannot be read (`read_stack_outputs`), or it has none of the kit's
            outputs (``MessagesBucketName``, ``ContextBucketName``, ``WorkQueueUrl``, …).
    """
    values = deployment_values(read_stack_outputs(cloudformation, stack_name))
    if not values:
        raise StackOutputsError(
            f"stack {stack_name!r} has none of the kit's outputs ({', '.join(DEPLOYMENT_OUTPUTS.values())}): "
            "name the stack that holds the kit's PipesDeployment, or give the buckets and queues as settings"
        )
    return values


def deployment_from_stack(cloudformation: Any, deployment: DeploymentSettings) -> DeploymentSettings:
    """``deployment`` with what it leaves empty taken from the outputs of its ``stack_name``'s stack.

    A value set in ``deployment`` (by a config field, a settings object or a ``PIPESKIT_*`` variable) wins
    over the stack's output; the stack is read once, with ``cloudformation``. Without ``stack_name``,
    ``deployment`` is returned as it is and nothing is read.

    Raises:
        StackOutputsError: as `stack_deployment_values`.
    """
    if not deployment.stack_name:
        return deployment
    values = stack_deployment_values(cloudformation, deployment.stack_name)
    return deployment.replace(**{name: value for name, value in values.items() if not getattr(deployment, name)})


def read_stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """Every output of the deployed stack ``stack_name`` (output key → value), read with one ``DescribeStacks``.

    Args:
        cloudformation: a boto3 CloudFormation client, in the stack's region and account.
        stack_name: the stack's name (or id).

    Raises:
        StackOutputsError: the stack does not exist where the client points, the caller may not describe
            it, or CloudFormation could not be reached; the message names the stack, the region and what
            to do.
    """
    region = getattr(getattr(cloudformation, "meta", None), "region_name", None) or "(boto3's default)"
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code == "ValidationError" and "does not exist" in message:
            advice = ("deploy it (cdk deploy), or name the deployed stack, in the region, endpoint and profile "
                      "the client uses")  # fmt: skip
        elif code in ("AccessDenied", "AccessDeniedException"):
            advice = ("allow cloudformation:DescribeStacks on it (the stack's OrchestratorPolicy does) to the "
                      "identity reading it")  # fmt: skip
        else:
            advice = "check the stack's name and the credentials, region and endpoint"
        raise StackOutputsError(
            f"cannot read the outputs of stack {stack_name!r} in region {region}: {code}: {message}; {advice}"
        ) from None
    except BotoCoreError as error:  # no answer: said as the kit's one translation says it
        from .aws_errors import aws_error

        action = f"reading the outputs of stack {stack_name!r}"
        raise StackOutputsError(str(aws_error(error, action, client=cloudformation, nothing_done=""))) from None
    if not stacks:
        raise StackOutputsError(f"stack {stack_name!r} does not exist in region {region}: deploy it, or fix its name")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
