"""The reference deployment's stack: the library's constructs composed with this deployment's functions."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda_destinations as destinations
from cdk_nag import NagSuppressions
from constructs import Construct

from pipeskit.cdk import FailureQueue, OrchestratorPolicy, PipesFunction, PipesLayer, SessionBuckets, WorkQueue
from pipeskit_lambda.protocol import CONTEXT_PREFIX, MESSAGES_PREFIX

from .constants import EXAMPLE_FUNCTIONS, LAMBDAS_DIR, LAYER_REQUIREMENTS, ExampleFunction, OutputNames
from .settings import StackSettings


class PipesKitStack(Stack):
    """Everything a Dagster deployment needs to run Pipes sessions on Lambda.

    Args:
        scope: the CDK app.
        construct_id: stack id (also the stack name unless ``stack_name`` is passed in kwargs).
        settings: stage, sizing and retention settings.
        functions: the functions to deploy with the pipes layer; defaults to ``lambdas/``'s examples.
        **kwargs: passed to `aws_cdk.Stack`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        functions: tuple[ExampleFunction, ...] = EXAMPLE_FUNCTIONS,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        removal = RemovalPolicy.RETAIN if settings.stage == "prod" else RemovalPolicy.DESTROY

        self.layer = PipesLayer(self, "PipesLayer", requirements_file=LAYER_REQUIREMENTS)
        self.buckets = SessionBuckets(
            self, "SessionBuckets", expiry_days=settings.session_expiry_days, removal_policy=removal
        )
        self.work_queue = WorkQueue(
            self,
            "WorkQueue",
            consumer_timeout_s=settings.timeout_s,
            max_receive_count=settings.max_receive_count,
            removal_policy=removal,
        )
        self.failure_queue = FailureQueue(self, "FailureQueue", removal_policy=removal)
        self.functions = {spec.construct_id: self._function(spec, removal) for spec in functions}
        self.orchestrator_policy = OrchestratorPolicy(
            self,
            "OrchestratorPolicy",
            managed_policy_name=f"{self.stack_name}-orchestrator",
            functions=[f.function for f in self.functions.values()],
            log_groups=[f.log_group for f in self.functions.values()],
            context_bucket=self.buckets.context_bucket,
            messages_bucket=self.buckets.messages_bucket,
            work_queue=self.work_queue.queue,
            failure_queue=self.failure_queue.queue,
            dead_letter_queue=self.work_queue.dead_letter_queue,
        )
        self._outputs()

    def _function(self, spec: ExampleFunction, removal: RemovalPolicy) -> PipesFunction:
        settings = self.settings
        function = PipesFunction(
            self,
            spec.construct_id,
            function_name=f"{self.stack_name}-{spec.name}",
            code_dir=str(LAMBDAS_DIR / spec.code_dir),
            handler=spec.handler,
            layer=self.layer,
            memory_mb=settings.memory_mb,
            timeout_s=settings.timeout_s,
            log_retention_days=settings.log_retention_days,
            removal_policy=removal,
            environment={
                "PIPESKIT_CONTEXT_BUCKET": self.buckets.context_bucket.bucket_name,
                "PIPESKIT_MESSAGES_BUCKET": self.buckets.messages_bucket.bucket_name,
            },
        )
        # Functions read context objects and write message chunks under the session prefixes only.
        self.buckets.context_bucket.grant_read(function.role, f"{CONTEXT_PREFIX}/*")
        self.buckets.messages_bucket.grant_put(function.role, f"{MESSAGES_PREFIX}/*")
        if spec.queue_consumer:
            self.work_queue.add_consumer(
                function,
                batch_size=settings.queue_batch_size,
                batching_window_s=settings.queue_batching_window_s,
                max_concurrency=settings.queue_max_concurrency,
            )
        # Asynchronous invocations: Lambda's retries and event age from settings, failures to the queue.
        function.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.failure_queue.queue),
            retry_attempts=settings.async_retry_attempts,
            max_event_age=Duration.seconds(settings.async_max_event_age_s),
        )
        NagSuppressions.add_resource_suppressions(
            function.role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "CDK's S3 read/put grants under the session prefixes of the two buckets "
                    "only: object keys are per-session prefixes created at run time.",
                    "appliesTo": [
                        "Action::s3:GetObject*",
                        "Action::s3:GetBucket*",
                        "Action::s3:List*",
                        "Action::s3:Abort*",
                        {"regex": "/^Resource::<SessionBuckets.*\\.Arn>/pipeskit/(contexts|sessions)/\\*$/g"},
                    ],
                }
            ],
            apply_to_children=True,
        )
        return function

    def _outputs(self) -> None:
        values = {
            OutputNames.CONTEXT_BUCKET: self.buckets.context_bucket.bucket_name,
            OutputNames.MESSAGES_BUCKET: self.buckets.messages_bucket.bucket_name,
            OutputNames.WORK_QUEUE_URL: self.work_queue.queue.queue_url,
            OutputNames.WORK_QUEUE_ARN: self.work_queue.queue.queue_arn,
            OutputNames.DEAD_LETTER_QUEUE_URL: self.work_queue.dead_letter_queue.queue_url,
            OutputNames.DEAD_LETTER_QUEUE_ARN: self.work_queue.dead_letter_queue.queue_arn,
            OutputNames.ORCHESTRATOR_POLICY_ARN: self.orchestrator_policy.policy.managed_policy_arn,
            OutputNames.PIPES_LAYER_ARN: self.layer.layer.layer_version_arn,
            OutputNames.FAILURE_QUEUE_URL: self.failure_queue.queue.queue_url,
            OutputNames.FAILURE_QUEUE_ARN: self.failure_queue.queue.queue_arn,
        }
        for construct_id, function in self.functions.items():
            values[OutputNames.function_name(construct_id)] = function.function.function_name
            values[OutputNames.function_arn(construct_id)] = function.function.function_arn
            values[OutputNames.log_group(construct_id)] = function.log_group.log_group_name
        for name, value in values.items():
            CfnOutput(self, name, value=value)
