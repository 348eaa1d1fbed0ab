"""Context injectors: how the Pipes context reaches the function — inline in the event, or via S3.

- `LambdaEventContextInjector`: the context inline in the invoke event (dagster-aws's
  ``PipesLambdaEventContextInjector``, under either name).
- `S3ContextInjector`: the context written under a per-session prefix of the context bucket,
  deleted when the session ends whatever its outcome (the bucket's lifecycle rule is only the
  backstop). Twin of ``dagster_pipes.PipesS3ContextLoader``, which the kit's Lambda side uses.

Without an injector given, the client picks per run: inline while the event fits Lambda's request
limit, S3 when it would not and a context bucket is configured (``PIPESKIT_CONTEXT_BUCKET``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from dagster import PipesContextInjector, PipesEnvContextInjector
from dagster_pipes import PipesContextData, PipesParams, encode_param

from pipeskit_lambda.protocol import BUCKET_PARAM

from ._lazy import LazyClient
from .errors import PipesKitError, S3NotUsableError
from .settings import ContextSettings, DeploymentSettings

_log = logging.getLogger(__name__)

CONTEXT_KEY_PARAM = "key"


class LambdaEventContextInjector(PipesEnvContextInjector):
    """Put the context inline in the invoke event (``{**event, **bootstrap}``).

    Twin of ``dagster_pipes.PipesMappingParamsLoader(event)`` on the Lambda side.
    """

    def no_messages_debug_text(self) -> str:
        return "Injected the context inline in the Lambda invoke event."


PipesLambdaEventContextInjector = LambdaEventContextInjector
"""dagster-aws's name for the same injector."""


class S3ContextInjector(PipesContextInjector):
    """Write the context to S3 under a per-session prefix; delete it when the session ends.

    Args:
        bucket: the context bucket; default ``PIPESKIT_CONTEXT_BUCKET``.
        client: a boto3 S3 client (created on first use).
        settings: the prefix.

    Raises:
        PipesKitError: no bucket given and none configured.
    """

    def __init__(self, bucket: str | None = None, *, client: Any | None = None,
                 settings: ContextSettings | None = None) -> None:
        self.settings = settings or ContextSettings.from_env()
        self.bucket = bucket or DeploymentSettings.from_env().context_bucket
        if not self.bucket:
            raise PipesKitError(
                "S3ContextInjector needs the context bucket: pass bucket=..., or set "
                f"{DeploymentSettings.env_var('context_bucket')} (the stack's ContextBucketName output), or name the "
                "deployed stack with the client's stack_name"
            )
        self._client = LazyClient(client, lambda: boto3.client("s3"))

    @property
    def client(self) -> Any:
        return self._client.get()

    @contextmanager
    def inject_context(self, context_data: PipesContextData) -> Iterator[PipesParams]:
        key = f"{self.settings.context_prefix.strip('/')}/{uuid.uuid4().hex}/context.json"
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(context_data).encode("utf-8"))
        except (BotoCoreError, ClientError) as error:
            raise S3NotUsableError(
                f"writing the Pipes context to s3://{self.bucket}/{key} failed: {error}. Nothing was invoked. "
                "Check that the bucket exists and that the orchestrator may s3:PutObject there (the stack's "
                "OrchestratorPolicy); on SlowDown, run again later."
            ) from error
        try:
            yield {BUCKET_PARAM: self.bucket, CONTEXT_KEY_PARAM: key}
        finally:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except (BotoCoreError, ClientError) as error:  # never hides the run's outcome; the lifecycle rule expires
                _log.warning("could not delete the context object s3://%s/%s: %s", self.bucket, key, error)

    def no_messages_debug_text(self) -> str:
        return f"Injected the context as an object in s3://{self.bucket}/{self.settings.context_prefix}/."


def _encoded_size_at_most(params: dict[str, Any]) -> int:
    """An upper bound of ``len(encode_param(params))`` without compressing: zlib adds at most 5 bytes
    per 16 KB block plus 11, base64 takes 4 characters per 3 bytes."""
    raw = len(json.dumps(params).encode("utf-8"))
    return 4 * ((raw + 5 * (raw // 16_384 + 1) + 11 + 2) // 3)


class SizedContextInjector(PipesContextInjector):
    """One run's choice: the context inline while it fits ``inline_budget`` bytes, else via S3.

    Args:
        inline_budget: what the encoded context may take in the event.
        s3: where a larger context goes, or None (it then stays inline and the payload is refused).
    """

    def __init__(self, inline_budget: int, s3: S3ContextInjector | None) -> None:
        self._budget = inline_budget
        self._s3 = s3
        self.used_s3 = False

    @contextmanager
    def inject_context(self, context_data: PipesContextData) -> Iterator[PipesParams]:
        inline = {"data": context_data}
        # Without a context bucket there is no choice to make: no need to size the context (the
        # payload's own check refuses an event too large, naming the setting).
        if self._s3 is None or self._fits(inline):
            yield inline
            return
        self.used_s3 = True
        with self._s3.inject_context(context_data) as params:
            yield params

    def _fits(self, inline: dict[str, Any]) -> bool:
        return _encoded_size_at_most(inline) <= self._budget or len(encode_param(inline)) <= self._budget

    def no_messages_debug_text(self) -> str:
        return "Injected the context inline in the event, or via S3 when too large for it."
