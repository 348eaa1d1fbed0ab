"""Settings of the local AWS emulation.

Defaults live in code (:class:`LocalAWSSettings`); every field can be overridden by
an environment variable named ``PIPESKIT_LOCAL_<FIELD NAME IN UPPER CASE>``, e.g.
``PIPESKIT_LOCAL_PORT=4567`` or ``PIPESKIT_LOCAL_LOGS_READ_TPS=5``.
Tuple fields take comma-separated values (``PIPESKIT_LOCAL_ASYNC_RETRY_DELAYS_S=1,2``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import ClassVar, Literal

from pipeskit_lambda.settings import Settings, setting

ENV_PREFIX = "PIPESKIT_LOCAL_"

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
DUMMY_SESSION_TOKEN = "testing"


@dataclasses.dataclass(frozen=True)
class LocalAWSSettings(Settings):
    """Tunable behaviour of :class:`pipeskit.local.LocalAWS`.

    Attributes:
        host: Host name written into the endpoint URL. Keep ``localhost``: the CDK CLI
            and moto's CloudFormation only resolve template URLs spelled that way.
        bind_address: Address the HTTP server listens on.
        port: TCP port; ``0`` picks a free port.
        region: Region reported to clients and functions.
        account_id: Account id (moto's default).
        python_executable: Interpreter that runs every execution environment; empty: the
            function's runtime version (``python3.12`` on ``PATH`` or in pyenv), else this one.
        isolation: ``auto`` (bubblewrap where usable, else a warning), ``bubblewrap`` (required),
            ``none``.
        runtime_cache_dir: Where the runtime images (awslambdaric, boto3) are kept; empty: the
            user's cache directory.
        init_concurrency: Environments initialising at once (they share the host's cores).
        work_dir: Where function code and layers are extracted; a temporary
            directory (removed on stop) when empty.
        init_timeout_s: Limit for an execution environment's init phase.
        environment_idle_timeout_s: Idle execution environments older than this are
            reaped (real Lambda keeps them for minutes).
        esm_poll_interval_s: Pause between two polls of an SQS queue that was empty.
        esm_default_max_concurrency: Concurrent batches per SQS event source mapping
            when ``ScalingConfig.MaximumConcurrency`` is not set.
        async_retry_delays_s: Pause before the 1st and 2nd retry of a failed ``Event``
            invocation (real Lambda waits about 1 and 2 minutes).
        async_throttle_retry_s: Pause before an ``Event`` invocation that was
            throttled is tried again.
        async_max_throttle_retries: How often a throttled ``Event`` invocation is
            tried again before it is treated as failed.
        logs_read_tps: Fault injection: CloudWatch Logs read APIs (``GetLogEvents``,
            ``FilterLogEvents``, ``DescribeLogStreams``) allowed per second, beyond
            which ``ThrottlingException`` is returned. ``0`` disables.
        log_ingestion_delay_s: Fault injection: log events (and new log streams)
            become visible only after this many seconds. ``0`` disables.
        log_stream_delay_s: Fault injection: a log stream that does not exist yet (an execution
            environment's first lines) is created only this many seconds after its first event;
            its events are held until then and written in order, and later events of a stream
            that exists appear at once. Its log group is created at once. ``0`` disables.
        logs_read_denied: Fault injection: every CloudWatch Logs read is answered
            ``AccessDeniedException``, as for a caller without ``logs:GetLogEvents``.
        invoke_throttle_rate: Fault injection: fraction (0..1) of Lambda invocations
            rejected with ``TooManyRequestsException``. ``0`` disables.
        esm_duplicate_delivery_rate: Fault injection: fraction (0..1) of the messages an SQS event
            source mapping processed that SQS delivers a second time (at-least-once delivery).
        s3_slow_down_rate: Fault injection: fraction (0..1) of S3 requests answered
            ``503 SlowDown`` (``1`` refuses every one). ``0`` disables.
        s3_slow_down_per_key: Fault injection: every S3 request target (the method and the
            object's key, or the bucket listing's query) is answered ``503 SlowDown`` this many
            times before it is served, as S3 does while it scales a prefix: a client's retries
            ride it out when they allow more attempts. ``0`` disables.
        iam: Enforce IAM as AWS does: every request is authorized against its caller's identity
            policies (answering ``AccessDenied`` in the service's format), clients and ``env()``
            use an administrator's keys, and each execution environment runs with temporary
            credentials of its function's execution role (see :mod:`pipeskit.local.iam`). On by
            default, as on AWS; off for quick experiments (and in the test fixture's shared instance).
        durable_skip_waits: Durable functions: a wait (``context.wait``, a step's retry delay) fires at
            once instead of after its duration, and the execution's clock (its history's timestamps)
            moves on by the time skipped: hours of waits take no time in a test. Off: waits last
            what they say, as on AWS.
        quiet: Do not log each HTTP request.
    """

    env_prefix: ClassVar[str] = ENV_PREFIX

    host: str = "localhost"
    bind_address: str = "127.0.0.1"
    port: int = setting(4566, minimum=0, maximum=65535)
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    python_executable: str = ""
    isolation: Literal["auto", "bubblewrap", "none"] = "auto"
    runtime_cache_dir: Path | None = None
    init_concurrency: int = setting(max(2, os.cpu_count() or 2), minimum=1)
    work_dir: str = ""
    init_timeout_s: float = 10.0
    environment_idle_timeout_s: float = 900.0
    esm_poll_interval_s: float = 0.5
    esm_default_max_concurrency: int = 5
    async_retry_delays_s: tuple[float, ...] = (1.0, 2.0)
    async_throttle_retry_s: float = 0.5
    async_max_throttle_retries: int = 20
    logs_read_tps: float = setting(0.0, minimum=0.0)
    log_ingestion_delay_s: float = setting(0.0, minimum=0.0)
    log_stream_delay_s: float = setting(0.0, minimum=0.0)
    logs_read_denied: bool = False
    invoke_throttle_rate: float = setting(0.0, minimum=0.0, maximum=1.0)
    esm_duplicate_delivery_rate: float = setting(0.0, minimum=0.0, maximum=1.0)
    s3_slow_down_rate: float = setting(0.0, minimum=0.0, maximum=1.0)
    s3_slow_down_per_key: int = setting(0, minimum=0)
    iam: bool = True
    durable_skip_waits: bool = False
    quiet: bool = True
