"""Settings of the orchestrator side, and their one resolution per client.

Every class here uses the kit's one settings mechanism (`pipeskit_lambda.settings.Settings`): typed
fields, one env prefix, booleans as ``true/false/1/0``, errors that name the variable and what it
accepts. Pass an instance to override the environment in code.

`DeploymentSettings` holds what the deployment provides (buckets and queues: the stack's outputs);
`LambdaClientSettings` how invokes behave; the others how each part reads and paces itself.
`ClientSettings.resolve` is the one place a client's settings are resolved, once, from its
configuration fields, the settings objects given to its constructor and the ``PIPESKIT_*``
variables, in that order of precedence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeskit_lambda.protocol import CONTEXT_PREFIX, MESSAGES_PREFIX
from pipeskit_lambda.settings import Settings, SettingsError, setting

__all__ = [
    "ClientSettings",
    "ContextSettings",
    "DeploymentSettings",
    "FanOutSettings",
    "LambdaClientSettings",
    "LogsReaderSettings",
    "S3ReaderSettings",
    "Settings",
    "SettingsError",
]


@dataclass(frozen=True)
class DeploymentSettings(Settings):
    """The deployment's resources the kit uses: the stack's buckets and queues.

    Attributes:
        messages_bucket: the messages bucket of the S3 channel and of fan-outs
            (``PIPESKIT_MESSAGES_BUCKET``, the stack's ``MessagesBucketName`` output).
        context_bucket: where a context too large for the event goes (``PIPESKIT_CONTEXT_BUCKET``,
            the stack's ``ContextBucketName`` output); empty: such contexts are refused.
        work_queue_url: the fan-out's work queue (``PIPESKIT_WORK_QUEUE_URL``, ``WorkQueueUrl``).
        dead_letter_queue_url: its dead-letter queue (``PIPESKIT_DEAD_LETTER_QUEUE_URL``).
        failure_queue_url: the on-failure destination queue of asynchronous runs
            (``PIPESKIT_FAILURE_QUEUE_URL``, ``FailureQueueUrl``); empty: failures are told by the
            attempts' own ``closed`` messages and the timeout.
        stack_name: a deployed stack whose outputs give whichever of the above nothing else sets
            (``PIPESKIT_STACK_NAME``; read once, with ``cloudformation:DescribeStacks``, when the client
            first needs its settings); empty: none is read.
    """

    messages_bucket: str = ""
    context_bucket: str = ""
    work_queue_url: str = ""
    dead_letter_queue_url: str = ""
    failure_queue_url: str = ""
    stack_name: str = ""


@dataclass(frozen=True)
class LambdaClientSettings(Settings):
    """How `PipesLambdaClient` talks to Lambda.

    Attributes:
        read_timeout_s: boto3 read timeout of invokes; above Lambda's 900 s maximum function
            timeout so a long synchronous invoke is never cut (``PIPESKIT_READ_TIMEOUT_S``).
        connect_timeout_s: boto3 connect timeout.
        max_pool_connections: HTTP connection pool size of the default boto3 Lambda client.
        throttle_max_attempts: invoke attempts while Lambda answers 429 before giving up.
        throttle_base_delay_s: first back-off delay after a 429 (doubles, with full jitter).
        throttle_max_delay_s: largest back-off delay.
        async_timeout_margin_s: an asynchronous run with no word from the function for its timeout
            plus this long fails as timed out.
        durable_status_interval_s: how often a durable execution's status and history are read while it
            runs (its messages are read at the S3 channel's own pace).
    """

    read_timeout_s: float = setting(960.0, minimum=1.0)
    connect_timeout_s: float = setting(10.0, minimum=0.1)
    max_pool_connections: int = setting(32, minimum=1)
    throttle_max_attempts: int = setting(8, minimum=1)
    throttle_base_delay_s: float = setting(0.2, minimum=0.0)
    throttle_max_delay_s: float = setting(20.0, minimum=0.0)
    async_timeout_margin_s: float = setting(30.0, minimum=0.0)
    durable_status_interval_s: float = setting(5.0, minimum=0.05)


@dataclass(frozen=True)
class LogsReaderSettings(Settings):
    """How the CloudWatch Logs reader reads an invocation's lines back.

    Attributes:
        logs_read_tps: CloudWatch Logs read calls per second, shared by all sessions of the host (or
            of the process, see ``logs_budget_scope``): at most this many (rounded down) in any one
            second. The account-wide quota is 5 TPS for FilterLogEvents, ~10 for GetLogEvents
            (``PIPESKIT_LOGS_READ_TPS``).
        logs_budget_scope: ``host``: every process of the host reading through the same endpoint and
            region shares one budget, kept in a file in ``logs_budget_dir`` (Dagster's multiprocess
            executor runs each step in its own process); ``process``: one budget per process
            (``PIPESKIT_LOGS_BUDGET_SCOPE``).
        logs_budget_dir: where the host-wide budget's files live; a local directory the user can
            write. Empty: ``pipeskit-<uid>`` in the system's temporary directory
            (``PIPESKIT_LOGS_BUDGET_DIR``).
        ingestion_timeout_s: how long to wait for late log lines (a stream that does not exist yet,
            or an ``END`` line that has not arrived) before failing.
        poll_interval_s: pause between reads once caught up with the stream.
        logs_max_attempts: attempts per call when CloudWatch answers ThrottlingException
            (botocore's standard retry mode backs off between them).
        forward_batch_bytes: ordinary log lines are forwarded to Dagster's log in batches this big.
        forward_batch_s: a batch is forwarded once it is this old, even when smaller.
        attempt_end_poll_s: how often an asynchronous run's REPORT lines are looked for (one
            ``FilterLogEvents`` per log group for every run of the process waiting on it).
    """

    logs_read_tps: float = setting(4.0, minimum=0.01)
    logs_budget_scope: Literal["host", "process"] = "host"
    logs_budget_dir: Path | None = None
    ingestion_timeout_s: float = setting(60.0, minimum=0.0)
    poll_interval_s: float = setting(0.5, minimum=0.0)
    logs_max_attempts: int = setting(10, minimum=1)
    forward_batch_bytes: int = setting(64_000, minimum=1)
    forward_batch_s: float = setting(1.0, minimum=0.0)
    attempt_end_poll_s: float = setting(1.0, minimum=0.05)


@dataclass(frozen=True)
class S3ReaderSettings(Settings):
    """How the S3 channel's reader works (its bucket is the deployment's ``messages_bucket``).

    Attributes:
        s3_session_prefix: the key prefix every session's own prefix goes under.
        s3_poll_interval_s: pause between two listings while chunks keep coming (doubles while nothing
            new arrives, up to ``s3_max_poll_interval_s``).
        s3_max_poll_interval_s: longest pause between two listings.
        s3_completion_timeout_s: after the invocation returned, how long to wait for ``closed``.
        s3_gap_timeout_s: how long a missing chunk may lag behind the next before it is named lost.
        s3_delete_chunks: delete the run's chunks when it ends.
    """

    s3_session_prefix: str = MESSAGES_PREFIX
    s3_poll_interval_s: float = setting(0.1, minimum=0.01)
    s3_max_poll_interval_s: float = setting(1.0, minimum=0.01)
    s3_completion_timeout_s: float = setting(30.0, minimum=0.0)
    s3_gap_timeout_s: float = setting(5.0, minimum=0.0)
    s3_delete_chunks: bool = True


@dataclass(frozen=True)
class ContextSettings(Settings):
    """Where large contexts go under the deployment's ``context_bucket``.

    Attributes:
        context_prefix: the prefix every session's context goes under.
    """

    context_prefix: str = setting(CONTEXT_PREFIX)


@dataclass(frozen=True)
class FanOutSettings(Settings):
    """How fan-out items are followed (their queues are the deployment's).

    Attributes:
        fan_out_poll_interval_s: pause between two listings of the fan-out's ends folder.
        fan_out_progress_interval_s: how often a progress line goes to the step's log.
        fan_out_dead_letter_grace_s: how long a dead-lettered item's running attempt may still
            succeed before the item is reported failed.
        fan_out_silence_s: with no word from any item this long after the first was sent to the work
            queue, the step's log says why (the queue's depth, its consumers).
        fan_out_invoke_max_items: ``transport="auto"`` invokes the function for fan-outs of at most this
            many items and uses the work queue above (bench/model_fan_out.py: invokes are faster up to
            about 10,000 items of a second or more, and for 1,000 items of any length).
    """

    fan_out_poll_interval_s: float = setting(0.5, minimum=0.01)
    fan_out_progress_interval_s: float = setting(5.0, minimum=0.1)
    fan_out_dead_letter_grace_s: float = setting(60.0, minimum=0.0)
    fan_out_silence_s: float = setting(30.0, minimum=0.0)
    fan_out_invoke_max_items: int = setting(1000, minimum=0)


@dataclass(frozen=True)
class ClientSettings:
    """Every setting of one client, resolved once (`resolve`) and handed to its parts.

    Attributes:
        deployment: the buckets and queues.
        invoke: how invokes behave.
        logs: how CloudWatch Logs are read back.
        s3: how the S3 channel polls.
        context: where large contexts go.
        fan_out: how fan-outs are followed.
    """

    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)
    invoke: LambdaClientSettings = field(default_factory=LambdaClientSettings)
    logs: LogsReaderSettings = field(default_factory=LogsReaderSettings)
    s3: S3ReaderSettings = field(default_factory=S3ReaderSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    fan_out: FanOutSettings = field(default_factory=FanOutSettings)

    @classmethod
    def resolve(
        cls,
        given: Mapping[str, Settings | None] | None = None,
        config: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientSettings:
        """Each part's settings: a configuration value, else the object given, else the environment.

        Args:
            given: settings objects by part name (``invoke``, ``deployment``, …); a part given is
                used as it is, without reading the environment for it.
            config: configuration values by field name (a resource's config fields); a value that is
                not None wins over the object given and over the environment, in whichever part
                has a field of that name.
            environ: the environment (``os.environ`` when omitted).

        Raises:
            SettingsError: a variable or a value that cannot work, naming it.
        """
        given = given or {}
        unknown = sorted(set(given) - {part.name for part in dataclasses.fields(cls)})
        if unknown:
            raise SettingsError(f"unknown settings parts {unknown}; known: {[f.name for f in dataclasses.fields(cls)]}")
        values = {name: value for name, value in (config or {}).items() if value is not None}
        parts: dict[str, Settings] = {}
        for part in dataclasses.fields(cls):
            kind: type[Settings] = part.default_factory  # type: ignore[assignment]
            base = given.get(part.name)
            if base is None:
                base = kind.from_env(environ)
            names = {f.name for f in dataclasses.fields(kind)}
            changes = {name: value for name, value in values.items() if name in names}
            parts[part.name] = base.replace(**changes) if changes else base
        return cls(**parts)  # type: ignore[arg-type]
