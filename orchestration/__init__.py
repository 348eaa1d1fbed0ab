"""The Dagster side of pipes-lambda-kit: a Lambda Pipes client usable as a resource in ``@asset``s.

``from orchestration import PipesLambdaClient`` is a drop-in for
``dagster_aws.pipes.PipesLambdaClient``; pick a channel with ``message_reader=``.
"""

from .client import LambdaCompletedInvocation, LambdaEventContextInjector, PipesLambdaClient
from .errors import (
    InvokeThrottledError,
    LambdaFunctionError,
    LogsNotReadableError,
    PayloadTooLargeError,
    PipesKitError,
    PipesSessionNotOpenedError,
)
from .rate_limit import RateBudget, shared_logs_budget
from .readers import CloudWatchLogsMessageReader, LambdaMessageReader, ResponsePayloadMessageReader
from .settings import LambdaClientSettings, LogsReaderSettings

__all__ = [
    "CloudWatchLogsMessageReader",
    "InvokeThrottledError",
    "LambdaClientSettings",
    "LambdaCompletedInvocation",
    "LambdaEventContextInjector",
    "LambdaFunctionError",
    "LambdaMessageReader",
    "LogsNotReadableError",
    "LogsReaderSettings",
    "PayloadTooLargeError",
    "PipesKitError",
    "PipesLambdaClient",
    "PipesSessionNotOpenedError",
    "RateBudget",
    "ResponsePayloadMessageReader",
    "shared_logs_budget",
]
