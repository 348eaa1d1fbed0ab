"""The SQS work queue for fan-out, with its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .failure_queue import FailureQueue


class WorkQueue(Construct):
    """An encrypted, TLS-only work queue whose failed items land in a dead-letter queue.

    Args:
        scope: parent construct.
        construct_id: construct id.
        consumer_timeout_s: timeout of the consuming function; the visibility timeout is six times
            it, so a batch still running is never handed to a second consumer.
        max_receive_count: deliveries of an item before it moves to the dead-letter queue.
        removal_policy: what happens to the queues when the stack goes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        consumer_timeout_s: int,
        max_receive_count: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = FailureQueue(
            self, "DeadLetterQueue", removal_policy=removal_policy,
            reason="This queue is itself the dead-letter queue of the work queue.",
        ).queue  # fmt: skip
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * consumer_timeout_s),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=max_receive_count, queue=self.dead_letter_queue
            ),
            removal_policy=removal_policy,
        )
