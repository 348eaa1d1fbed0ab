"""The machinery behind `PipesLambdaClient`: one session on Lambda, from checks to errors, and fan-outs."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    AssetExecutionContext,
    OpExecutionContext,
    PipesClientCompletedInvocation,
    PipesContextInjector,
    PipesEnvContextInjector,
    open_pipes_session,
)

from pipeskit_lambda.protocol import (
    ASYNC_PAYLOAD_LIMIT_BYTES,
    ITEM_KEY,
    RESPONSE_CHANNEL,
    S3_CHANNEL,
    SYNC_PAYLOAD_LIMIT_BYTES,
)

from ._boto import DEFAULT_TARGET, AwsTarget
from ._lazy import LazyClient
from .attempt_ends import EventTracking, event_tracking
from .aws_errors import aws_error
from .channels import DurableFollowing, EventFollowing, LambdaMessageReader, reader_class
from .durable import DurableExecution, ProgressReader, durable_config, durable_qualifier, find_execution
from .errors import (
    InvalidEventError,
    LambdaFunctionError,
    PipesKitError,
    PipesSessionNotOpenedError,
    UnsupportedComponentError,
)
from .failures import failure_watcher
from .fan_out import FanOut, run_key
from .injectors import S3ContextInjector, SizedContextInjector
from .invocation import LambdaInvocation, handler_never_ran
from .invoke import function_error, invoke_function
from .payload import build_payload, check_event, check_json
from .settings import ClientSettings, DeploymentSettings, LambdaClientSettings

_log = logging.getLogger(__name__)
_NO_MESSAGES_WARNING = "[pipes] did not receive any messages"


class _UntilInvoked(logging.Filter):
    """On a run's Dagster log while its session is open: drops dagster's "did not receive any messages"
    warning when the function was never invoked, or Lambda answered that its handler never ran (an init
    error such as ``Runtime.ImportModuleError``) — the run's own error says why (not found, refused,
    unreachable, no region or credentials, too large, the code would not load), and the warning would
    send the user to logs of a handler that never ran. Only the run's own thread's record is dropped:
    runs sharing one step's log from other threads keep theirs."""

    def __init__(self) -> None:
        super().__init__()
        self.invoked = False
        self._thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        mine = record.thread == self._thread
        return self.invoked or not mine or not str(record.msg).startswith(_NO_MESSAGES_WARNING)


_BOOTSTRAP_MARGIN_BYTES = 16 * 1024
"""Room left in the request for the rest of the bootstrap (the messages params) and JSON framing."""

_KIT_READERS = (
    "ResponsePayloadMessageReader() (the default: 1 AWS call) or CloudWatchLogsMessageReader() (every log line)"
)


class LambdaCompletedInvocation(PipesClientCompletedInvocation):
    """A completed session, plus what Lambda answered.

    Attributes:
        return_value: the handler's own return value (JSON-decoded).
        request_id: the invocation's AWS request id.
        function_name: the function invoked.
        executed_version: the function version that ran.
        durable_execution_arn: the durable execution followed, for a durable function (else None).
    """

    def __init__(self, session: Any, invocation: LambdaInvocation) -> None:
        super().__init__(
            session,
            metadata={"lambda_request_id": invocation.request_id, "lambda_function": invocation.function_name},
        )
        self.return_value: Any = invocation.return_value
        self.request_id = invocation.request_id
        self.function_name = invocation.function_name
        self.executed_version = invocation.executed_version
        self.durable_execution_arn: str | None = invocation.durable_execution_arn



def _completed(session: Any, invocation: LambdaInvocation, hint: str) -> LambdaCompletedInvocation:
    """The run's outcome once its session closed; a session the function never opened is refused, with ``hint``
    saying how to open it.

    Raises:
        PipesSessionNotOpenedError: the function never opened the session.
    """
    if not session.message_handler.received_opened_message:
        raise PipesSessionNotOpenedError(
            function_name=invocation.function_name, request_id=invocation.request_id, hint=hint
        )
    return LambdaCompletedInvocation(session, invocation)


def default_lambda_client(settings: LambdaClientSettings, aws: AwsTarget = DEFAULT_TARGET) -> Any:
    """A boto3 Lambda client fit for long synchronous invokes.

    The read timeout is above Lambda's maximum function timeout, botocore's own retries are off
    (a retried invoke runs the function twice; throttling is retried by the kit, which knows a 429
    means the function did not run), and the pool holds one connection per concurrent invoke.

    Args:
        settings: the timeouts and pool size.
        aws: the profile, region and endpoint (default: boto3's chain).
    """
    return aws.client(
        "lambda",
        config=Config(
            read_timeout=settings.read_timeout_s,
            connect_timeout=settings.connect_timeout_s,
            retries={"total_max_attempts": 1},
            max_pool_connections=settings.max_pool_connections,
            tcp_keepalive=True,
        ),
    )


@dataclass(frozen=True)
class ClientParts:
    """The components given to a client's constructor; None: built from its settings on first use.

    Attributes:
        lambda_client: boto3 Lambda client (default: `default_lambda_client`).
        context_injector: the context injector (default: inline while it fits, else S3).
        message_reader: the channel's reader (default: the configured channel's, else the response's).
        s3_client: boto3 S3 client of large contexts and fan-outs.
        sqs_client: boto3 SQS client of fan-outs and of the on-failure destination.
    """

    lambda_client: Any | None = None
    context_injector: PipesContextInjector | None = None
    message_reader: LambdaMessageReader | None = None
    s3_client: Any | None = None
    sqs_client: Any | None = None


class SessionRunner:
    """The machinery of the client's sessions: checks, invoke, reading back, errors, fan-out.

    Holds the client's parts (boto3 clients, channel, injector, settings) and no state of any run,
    so one runner serves any number of concurrent runs. `PipesLambdaClient` is its public face.

    Args:
        parts: the components given to the client.
        settings: the client's resolved settings (default: `ClientSettings.resolve` of the environment).
        aws: where the clients it creates point.
        channel: the channel whose reader is built when ``parts`` has none (default: ``response``).
    """

    def __init__(
        self,
        parts: ClientParts | None = None,
        settings: ClientSettings | None = None,
        *,
        aws: AwsTarget = DEFAULT_TARGET,
        channel: str | None = None,
    ) -> None:
        parts = parts or ClientParts()
        self._all_settings = settings = settings or ClientSettings.resolve()
        self._settings = settings.invoke
        self._deployment = settings.deployment
        self._s3 = LazyClient(parts.s3_client, lambda: aws.client("s3"))
        self._sqs = LazyClient(parts.sqs_client, lambda: aws.client("sqs"))
        self._client = LazyClient(parts.lambda_client, lambda: default_lambda_client(self._settings, aws))
        self._client_lock = threading.Lock()
        # None: chosen per run, inline while it fits the event, else S3 (the deployment's context bucket)
        self._context_injector = checked_injector(parts.context_injector) if parts.context_injector else None
        self._aws = aws
        self._given_clients = {"lambda": parts.lambda_client, "s3": parts.s3_client}
        reader = parts.message_reader or self._configured_reader(channel or RESPONSE_CHANNEL)
        self._message_reader = checked_reader(reader)
        self._fan_out_reader: LambdaMessageReader | None = None
        self._s3_context: S3ContextInjector | None = None
        self._durable_functions: dict[tuple[str, str | None], bool] = {}

    def _configured_reader(self, channel: str) -> LambdaMessageReader:
        """The reader of the channel named ``channel``, built from this client's settings and clients."""
        return reader_class(channel).configured(self._all_settings, self._aws, self._given_clients)

    @property
    def lambda_client(self) -> Any:
        """The boto3 Lambda client (the injected one, or `default_lambda_client`)."""
        return self._client.get()

    @property
    def message_reader(self) -> LambdaMessageReader:
        """The channel's reader."""
        return self._message_reader

    @property
    def deployment(self) -> DeploymentSettings:
        """The buckets and queues this client uses, as resolved."""
        return self._deployment

    def run(
        self,
        context: OpExecutionContext | AssetExecutionContext,
        function_name: str,
        event: Mapping[str, Any],
        extras: Mapping[str, Any] | None,
        qualifier: str | None,
        invocation_type: Literal["RequestResponse", "Event"],
    ) -> LambdaCompletedInvocation:
        """One session (see `PipesLambdaClient.run`)."""
        asynchronous = invocation_type == "Event"
        if asynchronous and not self._message_reader.supports_event_invocations:
            raise self._needs_s3(
                f"an asynchronous (Event) run of {function_name} needs a channel whose messages do not travel "
                f"in the invoke response; {type(self._message_reader).__name__} does."
            )
        if self._is_durable(function_name, qualifier, invocation_type):
            return self._run_durable(context, function_name, event, extras, qualifier)
        limit = ASYNC_PAYLOAD_LIMIT_BYTES if asynchronous else SYNC_PAYLOAD_LIMIT_BYTES
        event_json = check_event(event, function_name)
        check_json(dict(extras or {}), "extras")
        channel = self._message_reader.open_session(asynchronous=asynchronous)
        with self._session(context, channel, len(event_json), limit, extras) as (session, until_invoked):
            payload = build_payload(event_json, session.get_bootstrap_env_vars(), function_name, limit)
            extra = self._message_reader.invoke_arguments()
            invocation = self._invoke(function_name, payload, extra, qualifier, invocation_type)
            until_invoked.invoked = True
            try:
                self._complete(channel, invocation, qualifier, asynchronous, context)
            except LambdaFunctionError as error:
                until_invoked.invoked = not handler_never_ran({"errorType": error.error_type})
                raise
        return _completed(
            session, invocation,
            "Open it in the handler with `pipeskit_lambda.pipes_handler` or "
            "`open_dagster_pipes(params_loader=PipesMappingParamsLoader(event))`.",
        )  # fmt: skip

    @contextmanager
    def _session(
        self, context: OpExecutionContext | AssetExecutionContext, channel: Any, event_bytes: int, limit: int,
        extras: Mapping[str, Any] | None,
    ) -> Iterator[tuple[Any, _UntilInvoked]]:  # fmt: skip
        """The run's Pipes session on ``channel``, its context injected as an event of ``event_bytes`` allows,
        with the step's log filtered until the function is invoked (`_UntilInvoked`, which the caller sets)."""
        until_invoked = _UntilInvoked()
        context.log.addFilter(until_invoked)
        try:
            with open_pipes_session(
                context=context,
                context_injector=self._injector_for(event_bytes, limit),
                message_reader=channel,
                extras=dict(extras or {}),
            ) as session:
                yield session, until_invoked
        finally:
            context.log.removeFilter(until_invoked)

    @staticmethod
    def _needs_s3(why: str) -> UnsupportedComponentError:
        """The refusal of a run only the S3 channel can carry: ``why``, and how to choose that channel."""
        return UnsupportedComponentError(
            f"{why} Use the S3 channel (channel='s3', or message_reader=pipeskit.S3MessageReader(bucket=...)). "
            "Nothing was invoked."
        )

    def _is_durable(self, function_name: str, qualifier: str | None, invocation_type: str) -> bool:
        """Whether ``function_name`` is a durable function (``GetFunctionConfiguration``'s ``DurableConfig``,
        read once per function and qualifier). Asked only of runs that can follow one — on the S3 channel, or
        asynchronous — so a synchronous run on the response channel stays one AWS call (a durable function
        refuses that channel itself, naming the S3 channel). A configuration that may not be read is taken
        for a function that is not durable, for this run only."""
        if self._message_reader.channel != S3_CHANNEL and invocation_type != "Event":
            return False
        key = (function_name, qualifier)
        with self._client_lock:
            known = self._durable_functions.get(key)
        if known is None:
            try:
                known = durable_config(self.lambda_client, function_name, qualifier) is not None
            except ClientError as error:  # not remembered: a throttle or a grant added later reads it next run
                _log.debug("%s: its configuration could not be read (%s); run as a function that is not durable",
                           function_name, error)  # fmt: skip
                return False
            except BotoCoreError as error:  # no answer at all: the invoke would get none either
                raise aws_error(
                    error, f"invoking {function_name}", client=self.lambda_client, function_name=function_name,
                    qualifier=qualifier,
                ) from error  # fmt: skip
            with self._client_lock:
                self._durable_functions[key] = known
        return known

    def _run_durable(
        self, context: OpExecutionContext | AssetExecutionContext, function_name: str, event: Mapping[str, Any],
        extras: Mapping[str, Any] | None, qualifier: str | None,
    ) -> LambdaCompletedInvocation:  # fmt: skip
        """A durable function's run: started asynchronously under the step's execution name (or re-attached to
        the execution a previous execution of the run started), followed over the S3 channel to its end."""
        reader = self._message_reader
        if reader.channel != S3_CHANNEL:
            raise self._needs_s3(
                f"{function_name} is a durable function: its execution outlives an invocation, and only the S3 "
                f"channel carries its messages across them; {type(reader).__name__} cannot."
            )
        event_json = check_event(event, function_name)
        check_json(dict(extras or {}), "extras")
        client = self.lambda_client
        qualifier = durable_qualifier(function_name, qualifier)
        try:
            name, existing = find_execution(
                client, function_name, qualifier, run_key(context), event_json.decode(),
                readable=lambda execution: reader.holds_session(execution.messages_prefix()),
            )  # fmt: skip
        except (ClientError, BotoCoreError) as error:
            raise aws_error(
                error, f"finding the durable execution of this step's run of {function_name}", client=client,
                function_name=function_name, qualifier=qualifier,
            ) from error  # fmt: skip
        channel = reader.open_session(prefix=existing.messages_prefix() if existing is not None else None)
        limit = ASYNC_PAYLOAD_LIMIT_BYTES
        with self._session(context, channel, len(event_json), limit, extras) as (session, until_invoked):
            if existing is None:
                payload = build_payload(event_json, session.get_bootstrap_env_vars(), function_name, limit)
                started = self._invoke(function_name, payload, {"DurableExecutionName": name}, qualifier, "Event")
                arn = started.durable_execution_arn or ""
                request_id = started.request_id
                context.log.info(f"[pipeskit durable] started the durable execution {name} of {function_name} "
                                 f"({arn})")  # fmt: skip
            else:
                arn, request_id = existing.arn, existing.arn
                context.log.info(f"[pipeskit durable] re-attached to the durable execution {name} of "
                                 f"{function_name} ({arn}, {existing.status}), started by an earlier execution "
                                 "of this run")  # fmt: skip
            until_invoked.invoked = True
            following = DurableFollowing(
                describe=lambda: DurableExecution.describe(client, arn),
                progress=ProgressReader(client, arn, context.log.info).read,
                status_interval_s=self._settings.durable_status_interval_s,
            )
            try:
                execution = channel.follow_durable(following)
            except (ClientError, BotoCoreError) as error:
                raise aws_error(
                    error, f"following the durable execution {arn}", client=client, function_name=function_name,
                    qualifier=qualifier, nothing_done="The execution goes on: re-execute the run to re-attach to it.",
                ) from error  # fmt: skip
            if execution.status != "SUCCEEDED":
                failed = LambdaInvocation(
                    function_name=function_name, request_id=request_id, function_error="Unhandled",
                    payload=json.dumps(execution.error_document()).encode(), durable_execution_arn=arn,
                )  # fmt: skip
                raise self._function_error(failed, None)
        ended = LambdaInvocation(
            function_name=function_name, request_id=request_id, payload=json.dumps(execution.result).encode(),
            status_code=202, durable_execution_arn=arn,
        )  # fmt: skip
        hint = "Decorate the durable handler with `@durable_execution` above `@pipeskit_lambda.pipes_handler`."
        return _completed(session, ended, hint)

    def _complete(
        self, channel: Any, invocation: LambdaInvocation, qualifier: str | None, asynchronous: bool,
        context: OpExecutionContext | AssetExecutionContext,
    ) -> None:  # fmt: skip
        """Read the invoked function's messages back: followed to its end (``Event``), or from its answer."""
        # Python logging, not context.log: each context.log call is a stored Dagster event (~1 ms),
        # and the request id reaches Dagster anyway, in the results' metadata and in any error.
        _log.debug("%s answered, request id %s", invocation.function_name, invocation.request_id)
        if asynchronous:
            self._follow_event(channel, invocation, qualifier, context.log)
        elif invocation.function_error:
            raise self._function_error(invocation, self._read_after_failure(channel, invocation, context))
        else:
            channel.consume(invocation, context.log)

    def _injector_for(self, event_bytes: int, limit_bytes: int) -> PipesContextInjector:
        """The run's context injector: the one given, else inline while it fits, else S3."""
        if self._context_injector is not None:
            return self._context_injector
        with self._client_lock:
            bucket = self._deployment.context_bucket
            if self._s3_context is None and bucket:
                self._s3_context = S3ContextInjector(bucket, settings=self._all_settings.context, client=self._s3.get())
        return SizedContextInjector(limit_bytes - event_bytes - _BOOTSTRAP_MARGIN_BYTES, self._s3_context)

    @staticmethod
    def _read_after_failure(
        channel: Any, invocation: LambdaInvocation, context: OpExecutionContext | AssetExecutionContext
    ) -> BaseException | None:
        """Deliver what the failed function reported; a problem doing so is returned, not raised."""
        try:
            channel.consume(invocation, context.log)
        except Exception as error:  # the function's own error wins; this one is attached to it
            context.log.warning(
                f"[pipeskit] {invocation.function_name} failed [request id {invocation.request_id}] and its "
                f"messages could not all be read back: {type(error).__name__}: {error}"
            )
            return error
        return None

    def _follow_event(self, channel: Any, invocation: LambdaInvocation, qualifier: str | None, log: Any) -> None:
        """Wait for an asynchronous run's end; raise its failure as the function's error."""
        tracking = self._event_tracking(invocation.function_name, qualifier)
        tracking.watch(invocation.request_id, invocation.started_ms)
        try:
            error = channel.follow_event(
                invocation,
                EventFollowing(
                    timeout_s=tracking.timeout_s,
                    margin_s=self._settings.async_timeout_margin_s,
                    max_attempts=tracking.max_attempts,
                    failure_record=tracking.failure_record,
                    log=log,
                    attempt_ends=tracking.attempt_ends,
                    silence_note=tracking.silence_note,
                ),
            )
        finally:
            tracking.forget(invocation.request_id)
        name = invocation.function_name
        if error is not None:
            failed = LambdaInvocation(
                function_name=name, request_id=invocation.request_id, payload=json.dumps(error).encode(),
                function_error="Unhandled", started_ms=invocation.started_ms,
            )  # fmt: skip
            raise self._function_error(failed, None)

    def _event_tracking(
        self, function_name: str, qualifier: str | None, channel: LambdaMessageReader | None = None
    ) -> EventTracking:
        """How asynchronous invocations of ``function_name`` end (`pipeskit.attempt_ends.event_tracking`),
        their REPORT lines read through ``channel``'s log reader (default: the client's channel)."""
        url = self._deployment.failure_queue_url
        return event_tracking(
            self.lambda_client, function_name, qualifier, (channel or self._message_reader).log_reader(),
            failures=failure_watcher(url, self._sqs.get()) if url else None,
        )  # fmt: skip

    def fan_out(
        self, context: OpExecutionContext | AssetExecutionContext, items: Sequence[Any],
        extras: Mapping[str, Any] | None, **options: Any,
    ) -> FanOut:  # fmt: skip
        """The fan-out of ``items`` (see `PipesLambdaClient.fan_out`), not started yet."""
        items = list(items)
        check_json(items, "items")
        check_json(dict(extras or {}), "extras")
        event = options.get("event")
        if event is not None:
            check_event(event, options.get("function_name") or "the fan-out's items")
            if ITEM_KEY in event:
                raise InvalidEventError(
                    f"the fan-out's event uses {ITEM_KEY!r}, the key of each item in its work item's body; rename it "
                    "in your event. Nothing was sent."
                )
        channel = self._fan_out_channel()
        return FanOut(
            context=context, items=items, channel=channel, sqs=self._sqs.get(),
            invoke=self.lambda_client, settings=self._all_settings.fan_out, deployment=self._deployment,
            invoke_settings=self._settings, extras=dict(extras or {}),
            tracking=lambda name: self._event_tracking(name, None, channel),
            **options,
        )  # fmt: skip

    def _fan_out_channel(self) -> Any:
        """The S3 channel's reader, whose bucket, client and prefix fan-outs use: the client's own reader
        when it is on that channel, else one built from the client's settings.

        Raises:
            PipesKitError: no messages bucket is configured (nothing was sent).
        """
        if self._message_reader.channel == S3_CHANNEL:
            reader: Any = self._message_reader
        else:
            with self._client_lock:
                if self._fan_out_reader is None:
                    self._fan_out_reader = self._configured_reader(S3_CHANNEL)
            reader = self._fan_out_reader
        if not reader.bucket_name:
            raise PipesKitError(
                "fan_out needs the messages bucket: set the client's messages_bucket, or "
                f"{DeploymentSettings.env_var('messages_bucket')} (the stack's MessagesBucketName output), or name the "
                "deployed stack with the client's stack_name"
            )
        return reader

    def _invoke(
        self,
        function_name: str,
        payload: bytes,
        extra: Mapping[str, Any],
        qualifier: str | None,
        invocation_type: Literal["RequestResponse", "Event"] = "RequestResponse",
    ) -> LambdaInvocation:
        """The invoke (`pipeskit.invoke.invoke_function`) with this client's Lambda client and settings."""
        return invoke_function(
            self.lambda_client, function_name, payload, invocation_type=invocation_type, qualifier=qualifier,
            arguments=extra, settings=self._settings,
        )  # fmt: skip

    def _function_error(self, invocation: LambdaInvocation, read_error: BaseException | None) -> LambdaFunctionError:
        """The failure of ``invocation`` (`pipeskit.invoke.function_error`), its log group found by the channel."""
        return function_error(invocation, read_error, logs=self._message_reader.log_reader())


def checked_injector(injector: PipesContextInjector) -> PipesContextInjector:
    """Refuse, when the client is built, an injector whose context would never reach the function."""
    if isinstance(injector, (PipesEnvContextInjector, S3ContextInjector, SizedContextInjector)):
        return injector
    raise UnsupportedComponentError(
        f"{type(injector).__module__}.{type(injector).__qualname__} cannot be used with pipes-lambda-kit's "
        "PipesLambdaClient: the client merges the Pipes bootstrap into the invoke event and the kit's Lambda "
        "side loads the context from there or from S3. Use pipeskit.LambdaEventContextInjector() (inline; "
        "dagster-aws's PipesLambdaEventContextInjector works too), pipeskit.S3ContextInjector(bucket=...), "
        "or leave context_injector unset (inline while it fits, else S3)."
    )


def checked_reader(reader: Any) -> LambdaMessageReader:
    """Refuse, when the client is built, a reader that is not one of the kit's channels."""
    if isinstance(reader, LambdaMessageReader):
        return reader
    name = f"{type(reader).__module__}.{type(reader).__qualname__}"
    if type(reader).__name__ == "PipesLambdaLogsMessageReader":
        why = "it reads only the last 4 KB of the invocation's log (LogType=Tail), so messages are lost"
    else:
        why = "it is not a pipes-lambda-kit channel (each kit reader has a twin writer in the pipes layer)"
    raise UnsupportedComponentError(
        f"{name} cannot be used with pipes-lambda-kit's PipesLambdaClient: {why}. Use pipeskit's {_KIT_READERS}."
    )
