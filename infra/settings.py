"""Stack settings, read from ``cdk.json`` context (override with ``cdk deploy -c pipeskit:stage=prod``).

Uses the kit's one settings mechanism (`pipeskit_lambda.settings.Settings`): typed fields with
defaults in code, bounds and allowed values checked, errors that name the setting and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from pipeskit.settings import Settings, SettingsError
from pipeskit_lambda.settings import setting

from .constants import CONTEXT_KEY

__all__ = ["LOG_RETENTION_DAYS", "SettingsError", "Stage", "StackSettings"]

Stage = Literal["dev", "prod"]

# The day counts CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)


@dataclass(frozen=True)
class StackSettings(Settings):
    """Settings of one deployment of the reference stack.

    Attributes:
        stage: ``dev`` destroys buckets with the stack; ``prod`` retains them.
        memory_mb: memory of the example functions (128–10240).
        timeout_s: timeout of the example functions (1–900 s); the work queue's visibility timeout
            is six times this, as AWS recommends for SQS-triggered functions.
        log_retention_days: retention of each function's log group.
        session_expiry_days: S3 lifecycle expiry of context payloads and message chunks.
        max_receive_count: deliveries of a work item before it goes to the dead-letter queue.
        async_retry_attempts: Lambda's retries of a failed asynchronous invocation (0–2).
        async_max_event_age_s: how long Lambda keeps an asynchronous event before it gives up
            (60–21600 s); failures of both kinds go to the on-failure destination queue.
        queue_batch_size: work items per batch of the fan-out worker (1–10).
        queue_batching_window_s: how long the event source gathers a batch (0–300 s).
        queue_max_concurrency: batches the work queue's consumers run at once (2–1000).
    """

    stage: Stage = "dev"
    memory_mb: int = setting(512, minimum=128, maximum=10240)
    timeout_s: int = setting(60, minimum=1, maximum=900)
    log_retention_days: int = setting(14, allowed=LOG_RETENTION_DAYS)
    session_expiry_days: int = setting(1, minimum=1)
    max_receive_count: int = setting(3, minimum=1, maximum=1000)
    async_retry_attempts: int = setting(2, minimum=0, maximum=2)
    async_max_event_age_s: int = setting(3600, minimum=60, maximum=21600)
    queue_batch_size: int = setting(10, minimum=1, maximum=10)
    queue_batching_window_s: int = setting(0, minimum=0, maximum=300)
    queue_max_concurrency: int = setting(50, minimum=2, maximum=1000)

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

        Raises:
            SettingsError: an unknown name, or a value that does not parse or is out of range; the
                message names it as ``pipeskit:<name>`` and lists what is allowed.
        """
        values: dict[str, Any] = dict(try_get_context(CONTEXT_KEY) or {})
        for field in fields(cls):
            flat = try_get_context(f"{CONTEXT_KEY}:{field.name}")
            if flat is not None:
                values[field.name] = flat
        try:
            return cls.from_mapping(values, source=f"{CONTEXT_KEY}:")
        except SettingsError as error:
            raise SettingsError(
                f"{error} — fix it in cdk.json (context.{CONTEXT_KEY}) or pass -c {CONTEXT_KEY}:<name>=<value>"
            ) from None
