"""Everything the kit needs around a project's functions, in one construct, with the outputs the client reads."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda_destinations as destinations
from cdk_nag import NagSuppressions
from constructs import Construct

from pipeskit_lambda.protocol import CONTEXT_PREFIX, MESSAGES_PREFIX

from ..errors import ConstructConfigurationError
from ..settings import DeploymentSettings
from ..stack_outputs import OutputNames
from .failure_queue import FailureQueue
from .orchestrator_policy import OrchestratorPolicy
from .pipes_function import DurableExecution, PipesFunction
from .pipes_layer import PipesLayer
from .session_buckets import SessionBuckets
from .work_queue import WorkQueue

_OUTPUT_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class QueueConsumer:
    """How a function consumes the work queue (`WorkQueue.add_consumer`'s options).

    Attributes:
        batch_size: records per invocation (1–10,000; 10 at most without a batching window).
        batching_window_s: how long the mapping gathers records before invoking (0: none).
        max_concurrency: concurrent invocations the mapping may make (2–1,000; None: Lambda's).
    """

    batch_size: int = 10
    batching_window_s: int = 0
    max_concurrency: int | None = None


class PipesDeployment(Construct):
    """The pipes layer, the session buckets, the work queue and its dead-letter queue, the on-failure queue
    and the orchestrator's policy, wired around the functions added to it, with a ``CfnOutput`` for
    every value the orchestrator reads.

    Each function added (`add_function`, or `include_function` for a `PipesFunction` built elsewhere)
    gets exactly what its channels need: reading context objects under the context bucket's session
    prefix, writing message chunks under the messages bucket's, consuming the work queue when it is a
    consumer; its asynchronous invocations fail to the failure queue; the orchestrator's policy may
    invoke it and read its log group. Outputs have stable names (`pipeskit.stack_outputs.OutputNames`):
    ``MessagesBucketName``, ``ContextBucketName``, ``WorkQueueUrl``/``Arn``, ``DeadLetterQueueUrl``/``Arn``,
    ``FailureQueueUrl``/``Arn``, ``OrchestratorPolicyArn``, ``PipesLayerArn`` and, per function,
    ``<Id>FunctionName``, ``<Id>FunctionArn``, ``<Id>LogGroupName``: ``PipesLambdaClient(stack_name=...)``
    and ``pipeskit env --stack`` read them. One deployment per stack carries outputs (``outputs=False``
    for another).

    Args:
        scope: parent construct.
        construct_id: construct id. ``"Default"`` leaves it out of the children's logical ids (they are
            then those of constructs created directly in ``scope``).
        removal_policy: what happens to the buckets, queues and log groups when the stack goes
            (``RETAIN`` for production data).
        layer: a pipes layer built elsewhere; default: one built here.
        layer_requirements: pinned requirements of the layer built here (what your handlers import
            besides ``dagster-pipes``, e.g. ``aws-lambda-powertools``); not with ``layer``.
        session_expiry_days: lifecycle expiry of session objects in both buckets.
        work_queue: include the work queue and its dead-letter queue (fan-out over SQS).
        consumer_timeout_s: the longest timeout of a work queue consumer; the queue's visibility timeout
            is six times it, and a consumer with a longer timeout is refused.
        max_receive_count: deliveries of a work item before it moves to the dead-letter queue.
        failure_queue: include the on-failure destination of asynchronous runs.
        async_retry_attempts: Lambda's retries of a failed asynchronous invocation (0–2).
        async_max_event_age_s: how long Lambda keeps an asynchronous event (60–21600 s).
        policy_name: the orchestrator policy's physical name; default ``<stack name>-orchestrator``.
        outputs: emit the ``CfnOutput``s.

    Attributes:
        layer: the `PipesLayer`.
        buckets: the `SessionBuckets`.
        work_queue: the `WorkQueue`, or None.
        failure_queue: the `FailureQueue`, or None.
        orchestrator_policy: the `OrchestratorPolicy` (``.policy`` is the managed policy to attach to
            the role that runs Dagster).
        functions: the functions added, by construct id.

    Raises:
        ConstructConfigurationError: both ``layer`` and ``layer_requirements``, or async settings out of
            Lambda's bounds.

    Example:
        >>> deployment = PipesDeployment(stack, "Pipes")
        >>> deployment.add_function("Report", code_dir="src", handler="report.handler")
        >>> deployment.add_function("Worker", code_dir="src", handler="worker.handler", consumer=QueueConsumer())
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        layer: PipesLayer | None = None,
        layer_requirements: str | Path | None = None,
        session_expiry_days: int = 1,
        work_queue: bool = True,
        consumer_timeout_s: int = 60,
        max_receive_count: int = 3,
        failure_queue: bool = True,
        async_retry_attempts: int = 2,
        async_max_event_age_s: int = 3600,
        policy_name: str | None = None,
        outputs: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        if layer is not None and layer_requirements is not None:
            raise ConstructConfigurationError(
                f"{self.node.path}: give either layer= (a PipesLayer built elsewhere) or layer_requirements= "
                f"(for the layer built here), not both; got layer={layer.node.path} and "
                f"layer_requirements={str(layer_requirements)!r}."
            )
        if not 0 <= async_retry_attempts <= 2 or not 60 <= async_max_event_age_s <= 21600:
            raise ConstructConfigurationError(
                f"{self.node.path}: async_retry_attempts={async_retry_attempts} (Lambda allows 0–2) and "
                f"async_max_event_age_s={async_max_event_age_s} (60–21600): set both within Lambda's bounds."
            )
        self.removal_policy = removal_policy
        self.async_retry_attempts = async_retry_attempts
        self.async_max_event_age_s = async_max_event_age_s
        self.emits_outputs = outputs
        self.functions: dict[str, PipesFunction] = {}
        self.layer = layer or PipesLayer(self, "PipesLayer", requirements_file=layer_requirements)
        self.buckets = SessionBuckets(
            self, "SessionBuckets", expiry_days=session_expiry_days, removal_policy=removal_policy
        )
        self.work_queue = (
            WorkQueue(
                self,
                "WorkQueue",
                consumer_timeout_s=consumer_timeout_s,
                max_receive_count=max_receive_count,
                removal_policy=removal_policy,
            )
            if work_queue
            else None
        )
        self.failure_queue = (
            FailureQueue(self, "FailureQueue", removal_policy=removal_policy) if failure_queue else None
        )
        self.orchestrator_policy = OrchestratorPolicy(
            self,
            "OrchestratorPolicy",
            managed_policy_name=policy_name or f"{Stack.of(self).stack_name}-orchestrator",
            context_bucket=self.buckets.context_bucket,
            messages_bucket=self.buckets.messages_bucket,
            work_queue=self.work_queue.queue if self.work_queue else None,
            failure_queue=self.failure_queue.queue if self.failure_queue else None,
            dead_letter_queue=self.work_queue.dead_letter_queue if self.work_queue else None,
        )
        self._output(OutputNames.CONTEXT_BUCKET, self.buckets.context_bucket.bucket_name)
        self._output(OutputNames.MESSAGES_BUCKET, self.buckets.messages_bucket.bucket_name)
        if self.work_queue is not None:
            self._output(OutputNames.WORK_QUEUE_URL, self.work_queue.queue.queue_url)
            self._output(OutputNames.WORK_QUEUE_ARN, self.work_queue.queue.queue_arn)
            self._output(OutputNames.DEAD_LETTER_QUEUE_URL, self.work_queue.dead_letter_queue.queue_url)
            self._output(OutputNames.DEAD_LETTER_QUEUE_ARN, self.work_queue.dead_letter_queue.queue_arn)
        self._output(OutputNames.ORCHESTRATOR_POLICY_ARN, self.orchestrator_policy.policy.managed_policy_arn)
        self._output(OutputNames.PIPES_LAYER_ARN, self.layer.layer.layer_version_arn)
        if self.failure_queue is not None:
            self._output(OutputNames.FAILURE_QUEUE_URL, self.failure_queue.queue.queue_url)
            self._output(OutputNames.FAILURE_QUEUE_ARN, self.failure_queue.queue.queue_arn)

    def add_function(
        self,
        construct_id: str,
        *,
        code_dir: str | Path,
        handler: str,
        function_name: str | None = None,
        memory_mb: int = 512,
        timeout_s: int = 60,
        log_retention_days: int = 14,
        environment: dict[str, str] | None = None,
        consumer: QueueConsumer | None = None,
        durable: DurableExecution | None = None,
    ) -> PipesFunction:
        """Build a `PipesFunction` in this deployment and wire it (`include_function`).

        Args:
            construct_id: construct id; letters and digits, as it prefixes the function's outputs
                (``<Id>FunctionName``, ``<Id>FunctionArn``, ``<Id>LogGroupName``).
            code_dir: directory with the handler module.
            handler: the handler's ``module.function``, written as in the Dagster docs or with
                ``pipeskit_lambda.pipes_handler``.
            function_name: physical name; default ``<stack name>-<construct id in kebab case>``.
            memory_mb: memory size.
            timeout_s: timeout in seconds.
            log_retention_days: retention of its log group (a day count CloudWatch offers).
            environment: extra environment variables.
            consumer: consume the work queue this way; None: it does not.
            durable: run it as durable executions (`DurableExecution`: execution timeout up to 366 days,
                retention); the orchestrator's policy then follows its executions too.

        Returns:
            The function (``.function``, ``.role``, ``.log_group``).

        Raises:
            ConstructConfigurationError: as `include_function`.
        """
        self._check_wiring(construct_id, f"{self.node.path}/{construct_id}", consumer)
        kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", construct_id).lower()
        function = PipesFunction(
            self,
            construct_id,
            function_name=function_name or f"{Stack.of(self).stack_name}-{kebab}",
            code_dir=str(code_dir),
            handler=handler,
            layer=self.layer,
            memory_mb=memory_mb,
            timeout_s=timeout_s,
            log_retention_days=log_retention_days,
            removal_policy=self.removal_policy,
            environment={**self._bucket_environment(), **(environment or {})},
            durable=durable,
        )
        return self.include_function(function, consumer=consumer)

    def include_function(self, function: PipesFunction, *, consumer: QueueConsumer | None = None) -> PipesFunction:
        """Wire a `PipesFunction` into this deployment.

        Grants its role reading context objects and writing message chunks under the session prefixes
        (nothing else of the buckets), sets ``PIPESKIT_CONTEXT_BUCKET``/``PIPESKIT_MESSAGES_BUCKET`` in
        its environment, maps it to the work queue when ``consumer`` is given, sends its failed
        asynchronous invocations to the failure queue (with the deployment's retries and event age),
        lets the orchestrator's policy invoke it and read its log group, and emits its outputs under its
        construct id.

        Args:
            function: the function (its construct id names its outputs: letters and digits).
            consumer: consume the work queue this way; None: it does not.

        Returns:
            ``function``.

        Raises:
            ConstructConfigurationError: a construct id already added or not usable in an output name, a
                consumer without a work queue, or a consumer whose timeout is longer than the queue's
                ``consumer_timeout_s``.
        """
        self._check_wiring(function.node.id, function.node.path, consumer)
        construct_id = function.node.id
        for name, value in self._bucket_environment().items():
            function.function.add_environment(name, value)
        self.buckets.context_bucket.grant_read(function.role, f"{CONTEXT_PREFIX}/*")
        self.buckets.messages_bucket.grant_put(function.role, f"{MESSAGES_PREFIX}/*")
        if consumer is not None and self.work_queue is not None:
            self.work_queue.add_consumer(function, **asdict(consumer))
        if self.failure_queue is not None:
            function.function.configure_async_invoke(
                on_failure=destinations.SqsDestination(self.failure_queue.queue),
                retry_attempts=self.async_retry_attempts,
                max_event_age=Duration.seconds(self.async_max_event_age_s),
            )
        self.orchestrator_policy.add_function(
            function.function, function.log_group, durable=function.durable is not None
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
                        {"regex": "/^Resource::<.*SessionBuckets.*\\.Arn>/pipeskit/(contexts|sessions)/\\*$/g"},
                    ],
                }
            ],
            apply_to_children=True,
        )
        self.functions[construct_id] = function
        self._output(OutputNames.function_name(construct_id), function.function.function_name)
        self._output(OutputNames.function_arn(construct_id), function.function.function_arn)
        self._output(OutputNames.log_group(construct_id), function.log_group.log_group_name)
        return function

    def _bucket_environment(self) -> dict[str, str]:
        return {
            DeploymentSettings.env_var("context_bucket"): self.buckets.context_bucket.bucket_name,
            DeploymentSettings.env_var("messages_bucket"): self.buckets.messages_bucket.bucket_name,
        }

    def _check_wiring(self, construct_id: str, path: str, consumer: QueueConsumer | None) -> None:
        """Refuse what cannot be wired, before anything of the function is built."""
        if not _OUTPUT_ID.match(construct_id):
            raise ConstructConfigurationError(
                f"{self.node.path}: function construct id {construct_id!r} cannot name CloudFormation outputs "
                f"({OutputNames.function_name(construct_id)!r}): use letters and digits only, starting with a "
                "letter, e.g. 'DailyReport'."
            )
        if construct_id in self.functions:
            raise ConstructConfigurationError(
                f"{self.node.path} already has a function {construct_id!r} ({self.functions[construct_id].node.path}); "
                "give each function its own construct id: it names the function's outputs."
            )
        if consumer is not None and self.work_queue is None:
            raise ConstructConfigurationError(
                f"{path} is to consume the work queue, but {self.node.path} was built with work_queue=False: "
                "build it with work_queue=True, or add the function without consumer=."
            )

    def _output(self, name: str, value: str) -> None:
        if not self.emits_outputs:
            return
        output = CfnOutput(self, name, value=value)
        output.override_logical_id(name)  # stable names: the client reads them, whatever this construct's id
