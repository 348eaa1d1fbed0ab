"""Settings of the orchestration side: defaults in code, overridable by ``PIPESKIT_*`` env vars."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Self

ENV_PREFIX = "PIPESKIT_"


class EnvSettings:
    """Mixin for settings dataclasses: each field ``name`` reads ``PIPESKIT_<NAME>``."""

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """Defaults, then ``PIPESKIT_<NAME>`` environment variables, then ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = type(f.default)(raw)
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class LambdaClientSettings(EnvSettings):
    """How `PipesLambdaClient` talks to Lambda.

    Attributes:
        read_timeout_s: boto3 read timeout of invokes; above Lambda's 900 s maximum function
            timeout so a long synchronous invoke is never cut (``PIPESKIT_READ_TIMEOUT_S``).
        connect_timeout_s: boto3 connect timeout.
        max_pool_connections: HTTP connection pool size; one per concurrent invoke.
        throttle_max_attempts: invoke attempts while Lambda answers 429 before giving up.
        throttle_base_delay_s: first back-off delay after a 429 (doubles, with full jitter).
        throttle_max_delay_s: largest back-off delay.
    """

    read_timeout_s: float = 960.0
    connect_timeout_s: float = 10.0
    max_pool_connections: int = 32
    throttle_max_attempts: int = 8
    throttle_base_delay_s: float = 0.2
    throttle_max_delay_s: float = 20.0


@dataclass(frozen=True)
class LogsReaderSettings(EnvSettings):
    """How the CloudWatch Logs reader reads an invocation's lines back.

    Attributes:
        logs_read_tps: CloudWatch Logs read calls per second for the whole process, shared by all
            sessions (the account-wide quota is 5 TPS for FilterLogEvents, ~10 for GetLogEvents;
            ``PIPESKIT_LOGS_READ_TPS``).
        ingestion_timeout_s: how long to wait for late log lines (a stream that does not exist yet,
            or an ``END`` line that has not arrived) before failing.
        poll_interval_s: pause between reads once caught up with the stream.
        logs_max_attempts: attempts per call when CloudWatch answers ThrottlingException
            (botocore's standard retry mode backs off between them).
        forward_batch_bytes: ordinary log lines are forwarded to Dagster's log in batches this big.
    """

    logs_read_tps: float = 4.0
    ingestion_timeout_s: float = 60.0
    poll_interval_s: float = 0.5
    logs_max_attempts: int = 10
    forward_batch_bytes: int = 64_000
