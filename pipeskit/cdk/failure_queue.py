"""The queue where failed work ends: the on-failure destination of asynchronous runs, or a dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct

ON_FAILURE_DESTINATION_REASON = (
    "This queue is itself the on-failure destination of asynchronous invocations; the orchestrator consumes it."
)
"""Why the on-failure destination needs no dead-letter queue of its own (cdk-nag's ``AwsSolutions-SQS3``)."""


class FailureQueue(Construct):
    """An encrypted, TLS-only SQS queue that keeps messages 14 days: where failed work ends.

    The on-failure destination of asynchronous runs: give ``queue`` to each function's
    ``configure_async_invoke(on_failure=aws_lambda_destinations.SqsDestination(...))``, to
    `OrchestratorPolicy` (``failure_queue=``), and its URL to the orchestrator
    (``PIPESKIT_FAILURE_QUEUE_URL``). `WorkQueue` builds its dead-letter queue with it too.

    It is the last stop, so it has no dead-letter queue of its own; cdk-nag's ``AwsSolutions-SQS3``
    is suppressed on it with ``reason``. The queue is the construct's default child, so its logical
    id is the one a queue created directly under ``scope`` with ``construct_id`` would have.

    Args:
        scope: parent construct.
        construct_id: construct id.
        removal_policy: what happens to the queue when the stack goes.
        reason: why the queue needs no dead-letter queue, recorded with the cdk-nag suppression;
            default: it is the on-failure destination of asynchronous invocations.

    Attributes:
        queue: the SQS queue.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        reason: str = ON_FAILURE_DESTINATION_REASON,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Default",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal_policy,
        )
        NagSuppressions.add_resource_suppressions(self.queue, [{"id": "AwsSolutions-SQS3", "reason": reason}])
