"""`PipesLambdaClient`: invoke a Lambda function as a Dagster Pipes session, losslessly."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Mapping, Sequence
from typing import Any, Literal

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetMaterialization,
    ConfigurableResource,
    OpExecutionContext,
    PipesClient,
    PipesContextInjector,
)
from pydantic import Field, PrivateAttr

from ._boto import AwsTarget
from ._dagster import KeepsObjectsAcrossConfig
from ._lazy import LazyClient
from .channels import LambdaMessageReader, reader_class
from .durable import complete_callback, fail_callback
from .errors import UnsupportedComponentError
from .fan_out import FanOutSummary
from .runner import (
    ClientParts,
    LambdaCompletedInvocation,
    SessionRunner,
    checked_injector,
    checked_reader,
    default_lambda_client,
)
from .settings import ClientSettings, ContextSettings, DeploymentSettings, FanOutSettings, LambdaClientSettings
from .stack_outputs import deployment_from_stack

__all__ = ["LambdaCompletedInvocation", "PipesLambdaClient", "default_lambda_client"]

_AWS_FIELDS = ("region_name", "endpoint_url", "profile_name")
"""Config fields that say where the kit's clients point; every other field but ``channel`` is a setting."""

_UNSET = "unset: the PIPESKIT_* environment variable, else the kit's default (README: Settings)"


class PipesLambdaClient(KeepsObjectsAcrossConfig, ConfigurableResource, PipesClient):
    """Invoke AWS Lambda functions as Dagster Pipes sessions.

    A drop-in for ``dagster_aws.pipes.PipesLambdaClient`` (same constructor and ``run`` keywords)
    that delivers every message (no 4 KB log tail), returns the function's value, raises a Dagster
    failure carrying the remote error, retries throttled invokes and fails when the function never
    opened Pipes.

    It is a Dagster resource with configuration, like dagster-aws's ``S3Resource``: the AWS
    profile, region and endpoint, the timeouts, the channel and the buckets and queues can be given
    as keywords, in the run config (``resources: lambda_pipes: config: ...``) or in the UI's
    launchpad. Settings are resolved once per client (`ClientSettings.resolve`): a config value wins
    over a settings object given to the constructor, which wins over the ``PIPESKIT_*`` environment
    variables, which win over the outputs of the deployed stack ``stack_name`` (read once, on first
    use); boto3 clients and components given to the constructor are used as given.

    Args:
        client: boto3 Lambda client; defaults to `default_lambda_client`.
        context_injector: defaults to the context inline in the event.
        message_reader: the channel; defaults to `ResponsePayloadMessageReader`. Use
            ``CloudWatchLogsMessageReader()`` for handlers that write messages to stdout/stderr.
            A reader owns its own clients and settings (e.g. the CloudWatch Logs client).
        settings: invoke settings; defaults from ``PIPESKIT_*`` environment variables.
        deployment: the buckets and queues (the stack's outputs); defaults from ``PIPESKIT_*``
            environment variables (``PIPESKIT_MESSAGES_BUCKET``, ``PIPESKIT_CONTEXT_BUCKET``, …).
        context_settings: the prefix of contexts too large for the event, when no
            ``context_injector`` is given.
        s3_client: boto3 S3 client for that (created on first use).
        sqs_client: boto3 SQS client reading the on-failure destination of asynchronous runs.
        fan_out_settings: the pace of `fan_out`.
        **config: the configuration fields below, by name.

    Example:
        >>> @asset
        ... def summary(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        ...     return lambda_pipes.run(
        ...         context=context, function_name="pipeskit-dev-dataset-summary", event={"rows": 100}
        ...     ).get_materialize_result()
    """

    region_name: str | None = Field(
        default=None,
        description="AWS region of the clients the kit creates; unset: boto3's chain (AWS_DEFAULT_REGION, the profile)",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="AWS endpoint of the clients the kit creates (e.g. the local AWS); unset: boto3's "
        "(AWS_ENDPOINT_URL, else AWS's own)",
    )
    profile_name: str | None = Field(
        default=None, description="shared-config profile of the clients the kit creates; unset: boto3's chain"
    )
    read_timeout_s: float | None = Field(
        default=None, description=f"read timeout of invokes, above the function timeout; {_UNSET}"
    )
    connect_timeout_s: float | None = Field(default=None, description=f"connect timeout of invokes; {_UNSET}")
    throttle_max_attempts: int | None = Field(
        default=None, description=f"invoke attempts while Lambda answers 429; {_UNSET}"
    )
    channel: str | None = Field(
        default=None,
        description="where messages travel back: response (the invoke response, 1 AWS call; the default), "
        "logs (CloudWatch Logs) or s3 (chunks in messages_bucket), or a channel of your own registered with "
        "pipeskit.channels.register_channel; not with a message_reader",
    )
    messages_bucket: str | None = Field(
        default=None, description=f"the messages bucket of the S3 channel and of fan-outs; {_UNSET}"
    )
    context_bucket: str | None = Field(
        default=None, description=f"where a context too large for the event goes; {_UNSET}"
    )
    work_queue_url: str | None = Field(default=None, description=f"the work queue of fan-outs; {_UNSET}")
    dead_letter_queue_url: str | None = Field(default=None, description=f"the work queue's dead-letter queue; {_UNSET}")
    failure_queue_url: str | None = Field(
        default=None, description=f"the on-failure destination queue of asynchronous runs; {_UNSET}"
    )
    stack_name: str | None = Field(
        default=None,
        description="a deployed stack (PipesDeployment) whose outputs give the buckets and queues that no "
        "field, settings object or PIPESKIT_* variable sets; read once, on first use, with the client's region, "
        f"endpoint and profile; {_UNSET}",
    )

    _objects: dict[str, Any] = PrivateAttr(default_factory=dict)
    _runner_holder: LazyClient | None = PrivateAttr(default=None)

    def __init__(
        self,
        client: Any | None = None,
        context_injector: PipesContextInjector | None = None,
        message_reader: LambdaMessageReader | None = None,
        *,
        settings: LambdaClientSettings | None = None,
        deployment: DeploymentSettings | None = None,
        context_settings: ContextSettings | None = None,
        s3_client: Any | None = None,
        sqs_client: Any | None = None,
        fan_out_settings: FanOutSettings | None = None,
        **config: Any,
    ) -> None:
        super().__init__(**config)
        self._runner_holder = LazyClient(None, self._build_runner)
        self._objects = {
            "parts": ClientParts(
                lambda_client=client,
                context_injector=checked_injector(context_injector) if context_injector else None,
                message_reader=checked_reader(message_reader) if message_reader else None,
                s3_client=s3_client,
                sqs_client=sqs_client,
            ),
            "settings": {
                "invoke": settings, "deployment": deployment, "context": context_settings, "fan_out": fan_out_settings,
            },
        }  # fmt: skip
        self._check_channel()

    def _kept_objects(self) -> dict[str, Any]:
        return self._objects

    def _keep_objects(self, objects: dict[str, Any]) -> None:
        self._objects = objects
        self._check_channel()

    def _check_channel(self) -> None:
        if self.channel is None:
            return
        reader_class(self.channel)  # an unknown name is refused when the client is built, naming the choices
        reader = self._objects["parts"].message_reader
        if reader is not None:
            raise UnsupportedComponentError(
                f"PipesLambdaClient was given both message_reader={type(reader).__name__}(...) and the config "
                f"channel={self.channel.upper()}: give one of them (the config channel builds the reader, with the "
                "client's region, profile and endpoint)."
            )

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    @property
    def _runner(self) -> SessionRunner:
        """The machinery, built on first use from the objects given and the configuration."""
        # Read from the model's private-values slot: `self._runner_holder` goes through pydantic's
        # `__getattr__` (about 5 µs) on every run.
        return self.__pydantic_private__["_runner_holder"].get()  # type: ignore[index]

    def _build_runner(self) -> SessionRunner:
        config = {name: getattr(self, name) for name in type(self).model_fields}  # this run's values
        aws = AwsTarget(**{name: config.pop(name) for name in _AWS_FIELDS})
        channel = config.pop("channel")
        settings = ClientSettings.resolve(self._objects["settings"], config)
        if settings.deployment.stack_name:  # the stack's outputs fill what nothing else set
            deployment = deployment_from_stack(aws.client("cloudformation"), settings.deployment)
            settings = dataclasses.replace(settings, deployment=deployment)
        return SessionRunner(self._objects["parts"], settings, aws=aws, channel=channel)

    @property
    def lambda_client(self) -> Any:
        """The boto3 Lambda client (the injected one, or `default_lambda_client`)."""
        return self._runner.lambda_client

    @property
    def message_reader(self) -> LambdaMessageReader:
        """The channel's reader."""
        return self._runner.message_reader

    @property
    def deployment_settings(self) -> DeploymentSettings:
        """The buckets and queues this client uses, as resolved: from its fields, the settings object given,
        the ``PIPESKIT_*`` variables and, for what they leave empty, the outputs of ``stack_name``'s stack.

        Raises:
            StackOutputsError: ``stack_name`` is set and its stack cannot be read or has none of the
                kit's outputs.
        """
        return self._runner.deployment

    def run(  # type: ignore[override]
        self,
        *,
        context: OpExecutionContext | AssetExecutionContext,
        function_name: str,
        event: Mapping[str, Any],
        extras: Mapping[str, Any] | None = None,
        qualifier: str | None = None,
        invocation_type: Literal["RequestResponse", "Event"] = "RequestResponse",
    ) -> LambdaCompletedInvocation:
        """Invoke ``function_name`` synchronously as a Pipes session.

        Safe to call from many threads at once on one client: everything of a run lives in the run.

        A durable function (its configuration has a ``DurableConfig``; checked on the S3 channel) runs as a
        durable execution of up to a year: invoked asynchronously under a ``DurableExecutionName`` derived from
        the run and step (a re-execution of the run re-attaches to it instead of starting another), followed
        over the S3 channel with its progress in the step's log, ``return_value`` its result
        (README: Runs longer than 15 minutes).

        Args:
            context: the asset's or op's execution context.
            function_name: name, ARN or ``name:alias`` of the function.
            event: a mapping of JSON values; the Pipes bootstrap is merged into it.
            extras: extra JSON values for the remote ``PipesContext.extras``.
            qualifier: version or alias to invoke.
            invocation_type: ``RequestResponse`` (synchronous, up to 15 minutes and 6 MB) or
                ``Event`` (asynchronous: returns when the session's ``closed`` arrives, a failure
                comes from the on-failure destination or the attempts, a silence longer than the
                function timeout plus a margin is a timeout; needs the S3 channel).

        Returns:
            The completed invocation: ``get_materialize_result()``/``get_results()`` for Dagster and
            ``return_value`` for the handler's own value.

        Raises:
            LambdaFunctionError: the function failed; carries the remote error and request id, and
                what could not be read back, if anything (`PipesContextReusedError` for dagster#22094).
            PipesSessionNotOpenedError: the function returned without opening Pipes.
            InvalidEventError: the event or extras cannot be sent; nothing was invoked.
            PayloadTooLargeError: the event plus bootstrap exceeds Lambda's 6 MB; nothing was invoked.
            InvokeThrottledError: Lambda throttled every attempt.
            FunctionNotFoundError: no such function, version or alias; nothing was invoked.
            AwsAccessDeniedError: the credentials in use may not invoke the function (it names
                ``lambda:InvokeFunction`` and the grant); nothing was invoked.
            AwsEndpointUnreachableError: no connection to the endpoint (it names the URL); nothing was invoked.
            AwsRegionMissingError: no region is set (``region_name``, ``AWS_DEFAULT_REGION``); nothing was invoked.
            AwsCredentialsMissingError: no credentials, or AWS did not recognise them; nothing was invoked.
            LambdaInvokeError: Lambda refused the invoke otherwise (the base of the four above).
            MessagesLostError: a message split over log events could not be put back together.
            UnsupportedComponentError: an asynchronous run on a channel that cannot follow one.
            StackOutputsError: ``stack_name`` is set and its stack cannot be read or has none of the
                kit's outputs (on the client's first use).
        """
        return self._runner.run(context, function_name, event, extras, qualifier, invocation_type)

    def complete_callback(self, callback_id: str, result: Any = None) -> None:
        """Complete the callback ``callback_id`` a durable function's execution waits for, handing it ``result``
        (a JSON value; ``SendDurableExecutionCallbackSuccess``). Its id is in the step's log while it waits.

        Raises:
            botocore.exceptions.ClientError: Lambda refused (e.g. no such callback, or it was answered already).
        """
        complete_callback(self.lambda_client, callback_id, result)

    def fail_callback(self, callback_id: str, error_type: str, message: str) -> None:
        """Fail the callback ``callback_id``: the function's wait for it raises with ``error_type`` and ``message``
        (``SendDurableExecutionCallbackFailure``).

        Raises:
            botocore.exceptions.ClientError: Lambda refused (e.g. no such callback, or it was answered already).
        """
        fail_callback(self.lambda_client, callback_id, error_type, message)

    def fan_out(
        self,
        *,
        context: OpExecutionContext | AssetExecutionContext,
        items: Sequence[Any],
        function_name: str | None = None,
        transport: Literal["auto", "sqs", "invoke"] = "auto",
        queue_url: str | None = None,
        max_concurrency: int | None = None,
        tolerated_failures: int | float = 0,
        deadline_s: float | None = None,
        extras: Mapping[str, Any] | None = None,
        event: Mapping[str, Any] | None = None,
        qualifier: str | None = None,
    ) -> FanOutSummary:
        """Run one Pipes session per item on Lambda, through the work queue or asynchronous invokes.

        Every item is its own session (its own context — for a single-run backfill over partition
        keys, its own partition — and its own messages); its logs reach the step's log as it
        completes, with a progress line (done / failed / pending, rate). SQS delivers at least once
        and Lambda retries: an item counts once, duplicates are absorbed and counted. An item that
        fails every attempt is reported with its error; the deadline turns what is pending into
        failures. Re-executing a run skips the items that finished before.

        Yield the items' materializations and checks from the asset, then let the tolerance decide::

            summary = lambda_pipes.fan_out(context=context, items=context.partition_keys)
            yield from summary.events          # one materialization per item (per partition)
            summary.raise_for_failures()       # FanOutFailedError beyond tolerated_failures

        `stream_fan_out` yields them as each item ends instead (recorded even if the process dies).

        Args:
            context: the asset's or op's execution context.
            items: JSON values, one per session (e.g. ``context.partition_keys``).
            function_name: the function whose handler runs each item: invoked (``transport="invoke"``), or
                consuming the work queue (``sqs``; there it only names the fan-out).
            transport: ``invoke`` (asynchronous invokes of ``function_name``), ``sqs`` (the work queue,
                consumed by any Pipes function mapped to it), or ``auto`` (the default): invokes when
                ``function_name`` is given and there are at most ``PIPESKIT_FAN_OUT_INVOKE_MAX_ITEMS``
                items (1,000: faster there, by the README's model), else the work queue.
            queue_url: the work queue; default ``PIPESKIT_WORK_QUEUE_URL``.
            max_concurrency: items in flight at once (default: all).
            tolerated_failures: failed items allowed (a count, or a fraction below 1).
            deadline_s: items with no outcome after this long are reported failed.
            extras: extra JSON values for each session's ``PipesContext.extras``.
            event: JSON members sent in every item's event next to the item (``event["pipeskit_item"]``),
                as `run` sends its ``event``: the same handler serves both.
            qualifier: version or alias invoked (``transport="invoke"``; the work queue's consumer is
                whatever the queue is mapped to).

        Returns:
            The summary: a result per item (status, request id, return value, error), the items'
                check results,
            duplicates absorbed; ``raise_for_failures()`` applies ``tolerated_failures``.

        Raises:
            InvalidEventError: an item, the event or the extras are not JSON, or the event uses a key the
                kit adds; nothing was sent.
            InvalidFanOutError: no work queue (``sqs``) or no ``function_name`` (``invoke``); nothing was sent.
            PipesKitError: no messages bucket is configured; nothing was sent.
        """
        return self._runner.fan_out(
            context, items, extras, function_name=function_name, transport=transport, queue_url=queue_url,
            max_concurrency=max_concurrency, tolerated_failures=tolerated_failures, deadline_s=deadline_s,
            event=event, qualifier=qualifier,
        ).run()  # fmt: skip

    def stream_fan_out(
        self,
        *,
        context: OpExecutionContext | AssetExecutionContext,
        items: Sequence[Any],
        function_name: str | None = None,
        transport: Literal["auto", "sqs", "invoke"] = "auto",
        queue_url: str | None = None,
        max_concurrency: int | None = None,
        tolerated_failures: int | float = 0,
        deadline_s: float | None = None,
        extras: Mapping[str, Any] | None = None,
        event: Mapping[str, Any] | None = None,
        qualifier: str | None = None,
    ) -> Generator[AssetMaterialization | AssetCheckResult, None, FanOutSummary]:
        """`fan_out`, yielding each item's materializations and check results the moment it ends.

        Dagster records an event when the asset yields it: streamed, a long backfill's partitions
        show as they finish, and an item recorded before the orchestrator's process died is skipped
        when the run is re-executed. The generator's return value is the summary (its ``events``
        empty: they were yielded)::

            summary = yield from lambda_pipes.stream_fan_out(context=context, items=context.partition_keys)
            summary.raise_for_failures()

        Takes the same arguments as `fan_out`.
        """
        return self._runner.fan_out(
            context, items, extras, function_name=function_name, transport=transport, queue_url=queue_url,
            max_concurrency=max_concurrency, tolerated_failures=tolerated_failures, deadline_s=deadline_s,
            event=event, qualifier=qualifier,
        ).stream()  # fmt: skip

