"""The reference deployment's stack: the library's `PipesDeployment` around this deployment's functions."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from constructs import Construct

from pipeskit.cdk import PipesDeployment, PipesFunction, QueueConsumer

from .constants import EXAMPLE_FUNCTIONS, LAMBDAS_DIR, LAYER_REQUIREMENTS, ExampleFunction
from .settings import StackSettings


class PipesKitStack(Stack):
    """Everything a Dagster deployment needs to run Pipes sessions on Lambda.

    Args:
        scope: the CDK app.
        construct_id: stack id (also the stack name unless ``stack_name`` is passed in kwargs).
        settings: stage, sizing and retention settings.
        functions: the functions to deploy with the pipes layer; defaults to ``lambdas/``'s examples.
        **kwargs: passed to `aws_cdk.Stack`.

    Attributes:
        deployment: the `PipesDeployment` (layer, buckets, queues, policy, functions, outputs).
        functions: the functions, by construct id.
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
        # "Default": the deployment's resources and outputs keep the logical ids they had when this stack
        # composed the constructs itself.
        self.deployment = PipesDeployment(
            self,
            "Default",
            removal_policy=RemovalPolicy.RETAIN if settings.stage == "prod" else RemovalPolicy.DESTROY,
            layer_requirements=LAYER_REQUIREMENTS,
            session_expiry_days=settings.session_expiry_days,
            consumer_timeout_s=settings.timeout_s,
            max_receive_count=settings.max_receive_count,
            async_retry_attempts=settings.async_retry_attempts,
            async_max_event_age_s=settings.async_max_event_age_s,
            policy_name=f"{self.stack_name}-orchestrator",
        )
        self.functions: dict[str, PipesFunction] = {spec.construct_id: self._function(spec) for spec in functions}

    def _function(self, spec: ExampleFunction) -> PipesFunction:
        settings = self.settings
        consumer = QueueConsumer(
            batch_size=settings.queue_batch_size,
            batching_window_s=settings.queue_batching_window_s,
            max_concurrency=settings.queue_max_concurrency,
        )
        return self.deployment.add_function(
            spec.construct_id,
            function_name=f"{self.stack_name}-{spec.name}",
            code_dir=LAMBDAS_DIR / spec.code_dir,
            handler=spec.handler,
            memory_mb=settings.memory_mb,
            timeout_s=settings.timeout_s,
            log_retention_days=settings.log_retention_days,
            consumer=consumer if spec.queue_consumer else None,
        )
