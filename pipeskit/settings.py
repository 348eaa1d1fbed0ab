"""Settings of the orchestrator side: defaults in code, overridable by ``PIPESKIT_*`` env vars.

Every class here uses the kit's one settings mechanism (`pipeskit_lambda.settings.Settings`): typed
fields, one env prefix, booleans as ``true/false/1/0``, errors that name the variable and what it
accepts. Pass an instance to override the environment in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeskit_lambda.settings import Settings, SettingsError, setting

__all__ = ["LambdaClientSettings", "LogsReaderSettings", "Settings", "SettingsError"]


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
        failure_queue_url: the on-failure destination queue of asynchronous runs
            (``PIPESKIT_FAILURE_QUEUE_URL``, the stack's ``FailureQueueUrl`` output); empty: failures
            are told by the attempts' own ``closed`` messages and the timeout.
        async_timeout_margin_s: an asynchronous run with no word from the function for its timeout
            plus this long fails as timed out.
    """

    read_timeout_s: float = setting(960.0, minimum=1.0)
    connect_timeout_s: float = setting(10.0, minimum=0.1)
    max_pool_connections: int = setting(32, minimum=1)
    throttle_max_attempts: int = setting(8, minimum=1)
    throttle_base_delay_s: float = setting(0.2, minimum=0.0)
    throttle_max_delay_s: float = setting(20.0, minimum=0.0)
    failure_queue_url: str = ""
    async_timeout_margin_s: float = setting(30.0, minimum=0.0)


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
    """

    logs_read_tps: float = setting(4.0, minimum=0.01)
    logs_budget_scope: Literal["host", "process"] = "host"
    logs_budget_dir: Path | None = None
    ingestion_timeout_s: float = setting(60.0, minimum=0.0)
    poll_interval_s: float = setting(0.5, minimum=0.0)
    logs_max_attempts: int = setting(10, minimum=1)
    forward_batch_bytes: int = setting(64_000, minimum=1)
