"""A Python Lambda function that carries the pipes layer."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct

from pipeskit_lambda.protocol import ENTRYPOINT_HANDLER, HANDLER_ENV_VAR

from ..errors import ConstructConfigurationError
from .pipes_layer import LAMBDA_RUNTIME, PipesLayer

MAX_DURABLE_EXECUTION_TIMEOUT_S = 31_622_400
"""Lambda's limit on a durable execution: 366 days."""

DURABLE_SDK_ACTIONS = ("lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState")
"""What the durable execution SDK calls from inside the function (AWS's durable-functions security page)."""


@dataclass(frozen=True)
class DurableExecution:
    """A function's durable configuration (``DurableConfig``): it runs as durable executions.

    Args:
        execution_timeout_s: how long one durable execution may run, waits included (1 s to 366 days;
            each invocation of the handler is still bounded by the function's timeout).
        retention_days: how long Lambda keeps a closed execution's history (1 to 90 days).

    Raises:
        ConstructConfigurationError: a value out of Lambda's range.
    """

    execution_timeout_s: int
    retention_days: int = 14

    def __post_init__(self) -> None:
        if not 1 <= self.execution_timeout_s <= MAX_DURABLE_EXECUTION_TIMEOUT_S:
            raise ConstructConfigurationError(
                f"DurableExecution execution_timeout_s={self.execution_timeout_s} is out of Lambda's range: "
                f"give 1 to {MAX_DURABLE_EXECUTION_TIMEOUT_S} seconds (366 days)."
            )
        if not 1 <= self.retention_days <= 90:
            raise ConstructConfigurationError(
                f"DurableExecution retention_days={self.retention_days} is out of Lambda's range: give 1 to 90 days."
            )


class PipesFunction(Construct):
    """A Python 3.12 Lambda function with the pipes layer, its own log group and its own role.

    The role starts empty but for writing to the function's own log group (no
    ``AWSLambdaBasicExecutionRole`` with its account-wide log permissions); callers add grants.

    Args:
        scope: parent construct.
        construct_id: construct id.
        function_name: physical name (the orchestrator invokes it by name).
        code_dir: directory with the handler module.
        handler: the user's ``module.function``. The function's Lambda handler is the pipes
            layer's ``pipeskit_lambda.entrypoint.handler``, which calls it (``PIPESKIT_HANDLER``) so
            that handlers written as in the Dagster docs work on warm environments and with every
            channel, unmodified.
        layer: the pipes layer to attach.
        memory_mb: memory size.
        timeout_s: timeout in seconds.
        log_retention_days: retention of the log group.
        removal_policy: what happens to the log group when the stack goes.
        environment: extra environment variables.
        durable: run as durable executions (`DurableExecution`: execution timeout, retention); the role
            is granted what the durable SDK calls (``lambda:CheckpointDurableExecution``,
            ``lambda:GetDurableExecutionState``) on this function's versions only. None: a plain function.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        code_dir: str,
        handler: str,
        layer: PipesLayer,
        memory_mb: int,
        timeout_s: int,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
        environment: dict[str, str] | None = None,
        durable: DurableExecution | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.durable = durable
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            # Lambda's own naming, so tools that assume it (and the orchestrator's reader) find it.
            log_group_name=f"/aws/lambda/{function_name}",
            removal_policy=removal_policy,
        )
        # Any of CloudWatch's allowed day counts (validated in StackSettings), not only enum members.
        cfn_log_group = self.log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = log_retention_days
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {function_name}",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            code=lambda_.Code.from_asset(code_dir, exclude=["__pycache__", "*.pyc"]),
            handler=ENTRYPOINT_HANDLER,
            layers=[layer.layer],
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_s),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            environment={
                HANDLER_ENV_VAR: handler,
                "POWERTOOLS_SERVICE_NAME": function_name,
                **(environment or {}),
            },
            durable_config=None if durable is None else lambda_.DurableConfig(
                execution_timeout=Duration.seconds(durable.execution_timeout_s),
                retention_period=Duration.days(durable.retention_days),
            ),
        )
        self.log_group.grant_write(self.role)
        if durable is not None:
            # The function's versions by name, not its Arn attribute: the function depends on its role's
            # policy, which would then depend on the function.
            versions = Stack.of(self).format_arn(
                service="lambda", resource="function", resource_name=f"{function_name}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )  # fmt: skip
            self.role.add_to_policy(iam.PolicyStatement(actions=list(DURABLE_SDK_ACTIONS), resources=[versions]))
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Writing log events needs the log-stream wildcard of this function's "
                    "own log group; log stream names are chosen by Lambda at run time.",
                    "appliesTo": [{"regex": "/^Resource::<.*LogGroup.*\\.Arn>(:\\*)?$/g"}],
                },
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "A durable function checkpoints its executions, which run on a version or "
                    "alias of this function (its own name followed by ':*', nothing else).",
                    "appliesTo": [{"regex": f"/^Resource::arn:<AWS::Partition>:lambda:<AWS::Region>:"
                                            f"<AWS::AccountId>:function:{function_name}:\\*$/g"}],
                },
            ],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            self.function,
            [
                {
                    "id": "AwsSolutions-L1",
                    "reason": "Pinned to Python 3.12, the runtime the pipes layer's wheels are "
                    "resolved for; move layer and functions together when upgrading.",
                }
            ],
        )

