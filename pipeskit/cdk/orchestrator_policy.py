"""The least-privilege managed policy for the Dagster side (the orchestrator)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct


class OrchestratorPolicy(Construct):
    """A managed policy with exactly what the orchestrator needs, and nothing account-wide.

    - invoke only the given functions (any version or alias of them);
    - read, write and delete objects only in the session buckets, and list them;
    - read only the given functions' log groups;
    - send work items only to the work queue (and read its depth for progress).

    Attach it to the role or user that runs Dagster.

    Args:
        scope: parent construct.
        construct_id: construct id.
        managed_policy_name: physical policy name.
        functions: functions the orchestrator may invoke.
        log_groups: log groups it may read.
        buckets: buckets it may use for sessions.
        work_queue: queue it may send work items to.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        managed_policy_name: str,
        functions: Sequence[lambda_.IFunction],
        log_groups: Sequence[logs.ILogGroup],
        buckets: Sequence[s3.IBucket],
        work_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        function_arns = [f.function_arn for f in functions]
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=managed_policy_name,
            description="Least privilege for a Dagster orchestrator driving pipes-lambda-kit",
            statements=[
                iam.PolicyStatement(
                    sid="InvokeKitFunctions",
                    actions=["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
                    resources=[*function_arns, *(f"{arn}:*" for arn in function_arns)],
                ),
                iam.PolicyStatement(
                    sid="SessionObjects",
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    resources=[b.arn_for_objects("*") for b in buckets],
                ),
                iam.PolicyStatement(
                    sid="ListSessionBuckets",
                    actions=["s3:ListBucket"],
                    resources=[b.bucket_arn for b in buckets],
                ),
                iam.PolicyStatement(
                    sid="ReadFunctionLogs",
                    actions=["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"],
                    resources=[g.log_group_arn for g in log_groups],
                ),
                iam.PolicyStatement(
                    sid="SendWorkItems",
                    actions=["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                    resources=[work_queue.queue_arn],
                ),
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.policy,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Wildcards are scoped to this stack's own resources: object keys in the "
                    "two session buckets (session prefixes are made per run), log streams of the "
                    "kit's own log groups (named by Lambda), and versions/aliases of the kit's "
                    "own functions.",
                    "appliesTo": [
                        {"regex": "/^Resource::<.*Function.*\\.Arn>:\\*$/g"},
                        {"regex": "/^Resource::<.*Bucket.*\\.Arn>/\\*$/g"},
                        {"regex": "/^Resource::<.*LogGroup.*\\.Arn>$/g"},
                    ],
                }
            ],
        )
