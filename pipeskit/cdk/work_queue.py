"""The SQS work queue for fan-out, with its dead-letter queue, and how a function consumes it."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_lambda_event_sources import SqsEventSource
from constructs import Construct

from ..errors import ConstructConfigurationError
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
        self.consumer_timeout_s = consumer_timeout_s
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

    def add_consumer(
        self,
        function: Any,
        *,
        batch_size: int = 10,
        batching_window_s: int = 0,
        max_concurrency: int | None = None,
    ) -> None:
        """Make ``function`` consume the work queue: one call for everything fan-out needs of it.

        The function is any Pipes handler behind the kit's entrypoint (a `PipesFunction`, or a
        function whose handler uses ``pipeskit_lambda.pipes_handler``): its Lambda side runs each record as
        its own session and reports the failed ones. This adds the event source mapping with
        ``ReportBatchItemFailures`` (so one bad item never fails its batch-mates), the batch size and
        window and the mapping's maximum concurrency, and grants the function's role what the
        mapping needs on the queue.

        Args:
            function: a `PipesFunction` or an ``aws_lambda.Function``.
            batch_size: records per invocation (1–10,000; 10 at most without a batching window).
            batching_window_s: how long the mapping gathers records before invoking (0: none).
            max_concurrency: concurrent invocations the mapping may make (2–1,000; None: Lambda's).

        Raises:
            ConstructConfigurationError: the function's timeout is longer than the queue's consumer
                timeout: its visibility timeout (6 × the consumer timeout) would be under 6 × the
                function's, and SQS would hand a batch still running to a second consumer.
        """
        target = getattr(function, "function", function)
        timeout = target.timeout.to_seconds() if getattr(target, "timeout", None) is not None else 3
        if timeout > self.consumer_timeout_s:
            raise ConstructConfigurationError(
                f"{target.node.path} times out after {timeout} s, longer than the work queue's consumer timeout "
                f"({self.consumer_timeout_s} s): SQS would hand a batch still running to a second consumer. "
                f"Build the WorkQueue with consumer_timeout_s={timeout} (or more), or shorten the function's timeout."
            )
        source = SqsEventSource(
            self.queue,
            batch_size=batch_size,
            max_batching_window=Duration.seconds(batching_window_s) if batching_window_s else None,
            max_concurrency=max_concurrency,
            report_batch_item_failures=True,
        )
        target.add_event_source(source)
