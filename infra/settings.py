"""Stack settings, read from ``cdk.json`` context (override with ``cdk deploy -c pipeskit:stage=prod``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from .constants import CONTEXT_KEY

Stage = Literal["dev", "prod"]

# The day counts CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)


class SettingsError(ValueError):
    """A ``cdk.json`` / ``-c`` setting is missing a valid value; the message names it and the fix."""


@dataclass(frozen=True)
class StackSettings:
    """Settings of one deployment of the kit's stack.

    Attributes:
        stage: ``dev`` destroys buckets with the stack; ``prod`` retains them.
        memory_mb: memory of the example functions (128–10240).
        timeout_s: timeout of the example functions (1–900 s); the work queue's visibility timeout
            is six times this, as AWS recommends for SQS-triggered functions.
        log_retention_days: retention of each function's log group.
        session_expiry_days: S3 lifecycle expiry of context payloads and message chunks.
        max_receive_count: deliveries of a work item before it goes to the dead-letter queue.
    """

    stage: Stage = "dev"
    memory_mb: int = 512
    timeout_s: int = 60
    log_retention_days: int = 14
    session_expiry_days: int = 1
    max_receive_count: int = 3

    def __post_init__(self) -> None:
        checks = {
            "stage": self.stage in ("dev", "prod"),
            "memory_mb": 128 <= self.memory_mb <= 10240,
            "timeout_s": 1 <= self.timeout_s <= 900,
            "log_retention_days": self.log_retention_days in LOG_RETENTION_DAYS,
            "session_expiry_days": self.session_expiry_days >= 1,
            "max_receive_count": 1 <= self.max_receive_count <= 1000,
        }
        for name, ok in checks.items():
            if not ok:
                raise SettingsError(
                    f"setting {CONTEXT_KEY}:{name}={getattr(self, name)!r} is out of range; "
                    f"fix it in cdk.json or pass -c {CONTEXT_KEY}:{name}=<value>"
                )

    @property
    def stack_name(self) -> str:
        return f"pipeskit-{self.stage}"

    @property
    def queue_visibility_timeout_s(self) -> int:
        return 6 * self.timeout_s

    @classmethod
    def from_context(cls, try_get_context: Any) -> StackSettings:
        """Build settings from a CDK node's ``try_get_context``.

        Values come from the ``pipeskit`` object in ``cdk.json``; a flat ``-c pipeskit:<name>=value``
        on the command line wins over it.
        """
        base: dict[str, Any] = dict(try_get_context(CONTEXT_KEY) or {})
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = try_get_context(f"{CONTEXT_KEY}:{field.name}")
            raw = base.get(field.name) if raw is None else raw
            if raw is None:
                continue
            default = getattr(cls, field.name)
            try:
                values[field.name] = type(default)(raw)
            except (TypeError, ValueError) as error:
                raise SettingsError(
                    f"setting {CONTEXT_KEY}:{field.name}={raw!r} is not a {type(default).__name__}"
                ) from error
        unknown = set(base) - {f.name for f in fields(cls)}
        if unknown:
            raise SettingsError(
                f"unknown settings in cdk.json {CONTEXT_KEY}: {sorted(unknown)}; "
                f"known: {sorted(asdict(cls()))}"
            )
        return cls(**values)
