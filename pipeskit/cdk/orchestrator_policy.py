"""The least-privilege managed policy for the Dagster side (the orchestrator)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct

from pipeskit_lambda.protocol import CONTEXT_PREFIX, MESSAGES_PREFIX

DURABLE_ORCHESTRATOR_ACTIONS = (
    "lambda:GetDurableExecution",
    "lambda:GetDurableExecutionHistory",
    "lambda:ListDurableExecutionsByFunction",
    "lambda:SendDurableExecutionCallbackSuccess",
    "lambda:SendDurableExecutionCallbackFailure",
    "lambda:SendDurableExecutionCallbackHeartbeat",
    "lambda:StopDurableExecution",
)
"""What the client calls on a durable function's executions: follow them, complete callbacks, stop them."""


class OrchestratorPolicy(Construct):
    """A managed policy with exactly what the orchestrator needs, and nothing account-wide but one
    read-only listing.

    - invoke only the given functions (any version or alias of them); of the durable ones among them,
      follow their executions (get one and its history, list them), complete the callbacks they wait
      for and stop them — on those functions' versions only;
    - write and delete context objects only under the context bucket's session prefix; read, delete
      and list message chunks only under the messages bucket's session prefix, and write a fan-out's
      resume markers there;
    - read only the given functions' log groups;
    - send work items only to the work queue (and read its depth for progress);
    - receive and delete records only from the asynchronous runs' on-failure destination and the work
      queue's dead-letter queue (a fan-out's failed items);
    - describe this stack only (``cloudformation:DescribeStacks``), to read its outputs;
    - list event source mappings (an action without resource-level permissions), only to name the work
      queue's consumer when a fan-out's items go unanswered.

    Attach it to the role or user that runs Dagster. Functions given later (`add_function`, as
    `PipesDeployment` does) are added to the same statements.

    Args:
        scope: parent construct.
        construct_id: construct id.
        managed_policy_name: physical policy name.
        functions: functions the orchestrator may invoke (a durable function: `add_function(fn, durable=True)`,
            which also lets it follow its executions).
        log_groups: log groups it may read.
        context_bucket: where it writes large contexts.
        messages_bucket: where it reads message chunks.
        work_queue: queue it may send work items to; None: no fan-out over a work queue.
        failure_queue: the on-failure destination of asynchronous runs (`FailureQueue.queue`); None:
            no such queue.
        dead_letter_queue: the work queue's dead-letter queue (`WorkQueue.dead_letter_queue`),
            which a fan-out reads for the items that failed every delivery.
        read_stack_outputs: allow ``cloudformation:DescribeStacks`` on this stack (its own ARN, nothing
            else), so the client takes its settings from the stack's outputs
            (``PipesLambdaClient(stack_name=...)``, ``pipeskit env --stack``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        managed_policy_name: str,
        functions: Sequence[lambda_.IFunction] = (),
        log_groups: Sequence[logs.ILogGroup] = (),
        context_bucket: s3.IBucket,
        messages_bucket: s3.IBucket,
        work_queue: sqs.IQueue | None = None,
        failure_queue: sqs.IQueue | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        read_stack_outputs: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        # Built on the first function or log group: a statement must name at least one resource.
        self._invoke: iam.PolicyStatement | None = None
        self._durable: iam.PolicyStatement | None = None
        self._read_logs: iam.PolicyStatement | None = None
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=managed_policy_name,
            description="Least privilege for a Dagster orchestrator driving pipes-lambda-kit",
        )
        for function in functions:
            self.add_function(function)
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="WriteSessionContexts",
                actions=["s3:PutObject", "s3:DeleteObject"],
                resources=[context_bucket.arn_for_objects(f"{CONTEXT_PREFIX}/*")],
            ),
            iam.PolicyStatement(
                sid="ReadSessionMessages",
                # PutObject: a fan-out's resume markers under its prefix
                actions=["s3:GetObject", "s3:DeleteObject", "s3:PutObject"],
                resources=[messages_bucket.arn_for_objects(f"{MESSAGES_PREFIX}/*")],
            ),
            iam.PolicyStatement(
                sid="ListSessionMessages",
                actions=["s3:ListBucket"],
                resources=[messages_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{MESSAGES_PREFIX}/*"]}},
            ),
        )
        for log_group in log_groups:
            self.add_log_group(log_group)
        if work_queue is not None:
            self.policy.add_statements(
                iam.PolicyStatement(
                    sid="SendWorkItems",
                    actions=["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                    resources=[work_queue.queue_arn],
                ),
                iam.PolicyStatement(
                    sid="NameWorkQueueConsumers",
                    actions=["lambda:ListEventSourceMappings"],
                    resources=["*"],
                ),
            )
        failure_queues = [q.queue_arn for q in (failure_queue, dead_letter_queue) if q is not None]
        if failure_queues:
            self.policy.add_statements(
                iam.PolicyStatement(
                    sid="ReadAsyncFailures",
                    actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
                    resources=failure_queues,
                )
            )
        if read_stack_outputs:
            self.policy.add_statements(
                iam.PolicyStatement(
                    sid="ReadStackOutputs",
                    actions=["cloudformation:DescribeStacks"],
                    resources=[Stack.of(self).stack_id],
                )
            )
        NagSuppressions.add_resource_suppressions(
            self.policy,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Wildcards are scoped to this stack's own resources: object keys in the "
                    "two session buckets (session prefixes are made per run), log streams of the "
                    "kit's own log groups (named by Lambda), and versions/aliases of the kit's "
                    "own functions; the one '*' is lambda:ListEventSourceMappings (read-only, no "
                    "resource-level permissions), to name the work queue's consumer.",
                    "appliesTo": [
                        "Resource::*",  # lambda:ListEventSourceMappings has no resource-level permissions
                        {"regex": "/^Resource::<.*Function.*\\.Arn>:\\*$/g"},  # versions, durable executions
                        {"regex": "/^Resource::<.*Bucket.*\\.Arn>/pipeskit/(contexts|sessions)/\\*$/g"},
                        {"regex": "/^Resource::<.*LogGroup.*\\.Arn>$/g"},
                    ],
                }
            ],
        )

    def add_function(
        self, function: lambda_.IFunction, log_group: logs.ILogGroup | None = None, *, durable: bool = False
    ) -> None:
        """Let the orchestrator invoke ``function`` (any version or alias of it) and read ``log_group``.

        Args:
            function: the function.
            log_group: its log group; None: none to read.
            durable: it is a durable function: also follow its executions (``GetDurableExecution``,
                ``GetDurableExecutionHistory``, ``ListDurableExecutionsByFunction``), complete their
                callbacks (``SendDurableExecutionCallback*``) and stop them (``StopDurableExecution``).
        """
        arn = function.function_arn
        if durable:
            self._add_durable(arn)
        if self._invoke is None:
            self._invoke = iam.PolicyStatement(
                sid="InvokeKitFunctions",
                actions=[
                    "lambda:InvokeFunction",
                    "lambda:GetFunctionConfiguration",
                    "lambda:GetFunctionEventInvokeConfig",
                ],
                resources=[arn, f"{arn}:*"],
            )
            self.policy.add_statements(self._invoke)
        else:
            self._invoke.add_resources(arn, f"{arn}:*")
        if log_group is not None:
            self.add_log_group(log_group)

    def _add_durable(self, arn: str) -> None:
        # A durable execution's ARN is its function version's ARN followed by /durable-execution/...
        if self._durable is None:
            self._durable = iam.PolicyStatement(
                sid="FollowDurableExecutions",
                actions=list(DURABLE_ORCHESTRATOR_ACTIONS),
                resources=[arn, f"{arn}:*"],
            )
            self.policy.add_statements(self._durable)
        else:
            self._durable.add_resources(arn, f"{arn}:*")

    def add_log_group(self, log_group: logs.ILogGroup) -> None:
        """Let the orchestrator read ``log_group`` (a function's log lines, the logs channel)."""
        if self._read_logs is None:
            self._read_logs = iam.PolicyStatement(
                sid="ReadFunctionLogs",
                actions=["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"],
                resources=[log_group.log_group_arn],
            )
            self.policy.add_statements(self._read_logs)
        else:
            self._read_logs.add_resources(log_group.log_group_arn)
