"""pipes-lambda-kit: run Dagster compute on AWS Lambda through Dagster Pipes.

The Dagster-side API. ``from pipeskit import PipesLambdaClient`` is a drop-in for
``dagster_aws.pipes.PipesLambdaClient``; pick a channel with ``message_reader=``.

- ``pipeskit.component``: `PipesLambdaComponent`, Lambda-backed assets declared in a project's ``defs.yaml``
  (``dg list components`` finds it through the ``dagster_dg_cli.registry_modules`` entry point);
- ``pipeskit.layer_build``: the pipes layer build (``pipeskit layer``), with the core dependencies only;
- ``pipeskit.cdk``: AWS CDK constructs (``pip install 'pipes-lambda-kit[cdk]'``);
- ``pipeskit.local``: a local AWS that really runs your functions (``pipes-lambda-kit[local]``);
- ``pipeskit_lambda``: the Lambda side, inside the pipes layer.
"""

from importlib.metadata import PackageNotFoundError, version

from .channels import (
    CloudWatchLogsMessageReader,
    LambdaMessageReader,
    ResponsePayloadMessageReader,
    S3MessageReader,
    channel_names,
    register_channel,
)
from .channels.cloudwatch import PipesLambdaLogsMessageReader
from .client import LambdaCompletedInvocation, PipesLambdaClient, default_lambda_client
from .cloudwatch_logs import InvocationLogReader
from .component import PipesLambdaComponent
from .errors import (
    AwsAccessDeniedError,
    AwsCredentialsMissingError,
    AwsEndpointUnreachableError,
    AwsRegionMissingError,
    FanOutFailedError,
    FunctionNotFoundError,
    InvalidEventError,
    InvalidFanOutError,
    InvokeThrottledError,
    LambdaFunctionError,
    LambdaInvokeError,
    LogsNotReadableError,
    MessagesLostError,
    PayloadTooLargeError,
    PipesContextReusedError,
    PipesKitError,
    PipesKitFailure,
    PipesSessionNotOpenedError,
    S3NotUsableError,
    StackOutputsError,
    UnsupportedComponentError,
)
from .fan_out import FanOutSummary, ItemResult
from .injectors import LambdaEventContextInjector, PipesLambdaEventContextInjector, S3ContextInjector
from .invocation import LambdaInvocation
from .rate_limit import RateBudget, shared_logs_budget
from .settings import (
    ClientSettings,
    ContextSettings,
    DeploymentSettings,
    FanOutSettings,
    LambdaClientSettings,
    LogsReaderSettings,
    S3ReaderSettings,
    SettingsError,
)

try:
    __version__ = version("pipes-lambda-kit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ClientSettings",
    "CloudWatchLogsMessageReader",
    "ContextSettings",
    "DeploymentSettings",
    "AwsAccessDeniedError",
    "AwsCredentialsMissingError",
    "AwsEndpointUnreachableError",
    "AwsRegionMissingError",
    "FanOutFailedError",
    "FanOutSettings",
    "FanOutSummary",
    "FunctionNotFoundError",
    "ItemResult",
    "InvalidEventError",
    "InvalidFanOutError",
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
    "PipesKitFailure",
    "PipesLambdaClient",
    "PipesLambdaComponent",
    "PipesLambdaEventContextInjector",
    "PipesSessionNotOpenedError",
    "RateBudget",
    "ResponsePayloadMessageReader",
    "S3MessageReader",
    "S3NotUsableError",
    "StackOutputsError",
    "S3ReaderSettings",
    "SettingsError",
    "__version__",
    "channel_names",
    "default_lambda_client",
    "register_channel",
    "shared_logs_budget",
]
