"""A Python Lambda function that carries the pipes layer."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct

from pipeskit_lambda.protocol import ENTRYPOINT_HANDLER, HANDLER_ENV_VAR

from .pipes_layer import LAMBDA_RUNTIME, PipesLayer


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
    ) -> None:
        super().__init__(scope, construct_id)
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
        )
        self.log_group.grant_write(self.role)
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Writing log events needs the log-stream wildcard of this function's "
                    "own log group; log stream names are chosen by Lambda at run time.",
                    "appliesTo": [{"regex": "/^Resource::<.*LogGroup.*\\.Arn>(:\\*)?$/g"}],
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

