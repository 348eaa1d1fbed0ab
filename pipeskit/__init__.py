"""pipes-lambda-kit: run Dagster compute on AWS Lambda through Dagster Pipes.

The Dagster-side API. ``from pipeskit import PipesLambdaClient`` is a drop-in for
``dagster_aws.pipes.PipesLambdaClient``; pick a channel with ``message_reader=``.

- ``pipeskit.cdk``: AWS CDK constructs and the layer build (``pip install 'pipes-lambda-kit[cdk]'``);
- ``pipeskit.local``: a local AWS that really runs your functions (``pipes-lambda-kit[local]``);
- ``pipeskit_lambda``: the Lambda side, inside the pipes layer.
"""

from importlib.metadata import PackageNotFoundError, version

from .channels import (
    CloudWatchLogsMessageReader,
    LambdaMessageReader,
    ResponsePayloadMessageReader,
    S3MessageReader,
    S3ReaderSettings,
)
from .channels.cloudwatch import PipesLambdaLogsMessageReader
from .client import LambdaCompletedInvocation, PipesLambdaClient, default_lambda_client
from .cloudwatch_logs import InvocationLogReader
from .errors import (
    FunctionNotFoundError,
    InvalidEventError,
    InvokeThrottledError,
    LambdaFunctionError,
    LambdaInvokeError,
    LogsNotReadableError,
    MessagesLostError,
    PayloadTooLargeError,
    PipesContextReusedError,
    PipesKitError,
    PipesSessionNotOpenedError,
    S3NotUsableError,
    UnsupportedComponentError,
)
from .fan_out import FanOutFailedError, FanOutSettings, FanOutSummary, ItemResult
from .injectors import ContextSettings, LambdaEventContextInjector, PipesLambdaEventContextInjector, S3ContextInjector
from .invocation import LambdaInvocation
from .rate_limit import RateBudget, shared_logs_budget
from .settings import LambdaClientSettings, LogsReaderSettings, SettingsError

try:
    __version__ = version("pipes-lambda-kit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CloudWatchLogsMessageReader",
    "ContextSettings",
    "FanOutFailedError",
    "FanOutSettings",
    "FanOutSummary",
    "FunctionNotFoundError",
    "ItemResult",
    "InvalidEventError",
    "S3ContextInjector",
    "MessagesLostError",
    "PipesContextReusedError",
    "PipesLambdaLogsMessageReader",
    "UnsupportedComponentError",
    "InvocationLogReader",
    "InvokeThrottledError",
    "LambdaClientSettings",
    "LambdaCompletedInvocation",
    "LambdaEventContextInjector",
    "LambdaFunctionError",
    "LambdaInvocation",
    "LambdaInvokeError",
    "LambdaMessageReader",
    "LogsNotReadableError",
    "LogsReaderSettings",
    "PayloadTooLargeError",
    "PipesKitError",
    "PipesLambdaClient",
    "PipesLambdaEventContextInjector",
    "PipesSessionNotOpenedError",
    "RateBudget",
    "ResponsePayloadMessageReader",
    "S3MessageReader",
    "S3NotUsableError",
    "S3ReaderSettings",
    "SettingsError",
    "__version__",
    "default_lambda_client",
    "shared_logs_budget",
]
