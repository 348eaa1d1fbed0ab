"""The kit's errors, one hierarchy: each says what happened, with the AWS request id, and what to do.

Every error derives from `PipesKitError` (its root lives on the Lambda side, which stands alone, so
both sides share it). The errors that fail a Dagster step are also Dagster ``Failure``s, through one
base, `PipesKitFailure`: Dagster shows their description and metadata on the step. Nothing of the
public API raises a bare built-in exception; where a caller may expect one (a bad value), the kit's
error also derives from it (`InvalidEventError` is a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import Failure, MetadataValue

from pipeskit_lambda.errors import HandlerConfigurationError, PipesKitError, SettingsError, UnknownChannelError

__all__ = [
    "AdoptError",
    "AwsAccessDeniedError",
    "AwsCredentialsMissingError",
    "AwsEndpointUnreachableError",
    "AwsRegionMissingError",
    "CdkCliError",
    "FanOutFailedError",
    "FunctionNotFoundError",
    "HandlerConfigurationError",
    "InvalidEventError",
    "InvalidFanOutError",
    "InvokeThrottledError",
    "LambdaCommandError",
    "LambdaFunctionError",
    "LambdaInvokeError",
    "LayerBuildError",
    "LogsNotReadableError",
    "MessagesLostError",
    "PayloadTooLargeError",
    "PipInstallError",
    "PipesContextReusedError",
    "PipesKitError",
    "PipesKitFailure",
    "PipesSessionNotOpenedError",
    "S3NotUsableError",
    "SettingsError",
    "StackOutputsError",
    "UnknownChannelError",
    "UnsupportedComponentError",
]


class PipesKitFailure(PipesKitError, Failure):
    """Base of the kit's errors that fail a Dagster step: a Dagster ``Failure`` with its description
    and metadata shown on the step.

    Args:
        description: what happened and what to do.
        metadata: shown on the step's failure.
        allow_retries: whether Dagster's retry policies may retry the step.
    """

    def __init__(
        self, description: str, metadata: dict[str, Any] | None = None, *, allow_retries: bool = True
    ) -> None:
        Failure.__init__(self, description=description, metadata=metadata, allow_retries=allow_retries)


class PayloadTooLargeError(PipesKitError):
    """The invoke payload (event + bootstrap) exceeds what Lambda accepts."""


class InvokeThrottledError(PipesKitError):
    """Lambda kept answering 429 TooManyRequestsException after every retry."""


class LogsNotReadableError(PipesKitError):
    """The invocation's log lines could not be read back in time."""


class S3NotUsableError(PipesKitError):
    """S3 refused or failed the kit's request (SlowDown after the retries, access denied, no such
    bucket, no connection); it names the bucket and the operation."""


class MessagesLostError(PipesKitError):
    """A message split over CloudWatch log events could not be put back together; it names which."""


class InvalidEventError(PipesKitError, ValueError):
    """The event or extras cannot be sent to Lambda; nothing was invoked. The message names the value."""


class UnsupportedComponentError(PipesKitError, TypeError):
    """A context injector or message reader the kit's client cannot use; the message names the kit's."""


class LambdaFunctionError(PipesKitFailure):
    """The function raised (or timed out, or crashed): Lambda answered with a ``FunctionError``.

    The function's own error always comes first: when its messages could not all be read back
    afterwards, that problem is attached (`read_error`) and never raised in its place.

    Attributes:
        function_name: the function invoked.
        request_id: the invocation's AWS request id (find its logs with it).
        error_type: the remote ``errorType`` (e.g. ``ValueError``, ``Sandbox.Timedout``).
        error_message: the remote ``errorMessage``.
        stack_trace: the remote stack trace lines.
        read_error: why messages could not be read back after the failure, or None.
    """

    def __init__(
        self,
        *,
        function_name: str,
        request_id: str,
        function_error: str,
        error_type: str,
        error_message: str,
        stack_trace: Sequence[str],
        log_group_name: str | None = None,
        read_error: BaseException | None = None,
        advice: str = "Fix the handler or its input and re-run; the remote stack trace is attached.",
    ) -> None:
        self.function_name = function_name
        self.request_id = request_id
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = list(stack_trace)
        self.read_error = read_error
        where = f" Logs: {log_group_name}, request id {request_id}." if log_group_name else ""
        metadata = {
            "function_name": MetadataValue.text(function_name),
            "request_id": MetadataValue.text(request_id),
            "error_type": MetadataValue.text(error_type),
            "error_message": MetadataValue.text(error_message),
            "stack_trace": MetadataValue.text("".join(self.stack_trace) or "(none)"),
        }
        unread = ""
        if read_error is not None:
            why = f"{type(read_error).__name__}: {read_error}"
            unread = (
                f" Its messages could not all be read back from CloudWatch Logs afterwards ({why}); "
                "what was read was delivered."
            )
            metadata["messages_not_read"] = MetadataValue.text(
                f"the invocation's log lines after the last one read; {why}"
            )
        super().__init__(
            description=(
                f"Lambda function {function_name} failed ({function_error}) with {error_type}: "
                f"{error_message} [request id {request_id}].{where}{unread} {advice}"
            ),
            metadata=metadata,
            allow_retries=True,
        )


class PipesContextReusedError(LambdaFunctionError):
    """A handler not behind the kit's entrypoint reused dagster-pipes' closed context (dagster#22094).

    ``open_dagster_pipes`` keeps one context per process; once the first invocation of a warm
    environment closed it, every later invocation in that environment fails. The kit's entrypoint
    gives each invocation its own context: ``pipeskit adopt FUNCTION`` puts the function behind it.
    """


class PipesSessionNotOpenedError(PipesKitFailure):
    """The function returned without ever opening Dagster Pipes (dagster#17868)."""

    def __init__(self, *, function_name: str, request_id: str, hint: str) -> None:
        self.function_name = function_name
        self.request_id = request_id
        super().__init__(
            description=(
                f"Lambda function {function_name} returned [request id {request_id}] but never "
                f"opened Dagster Pipes, so nothing it did was reported. {hint}"
            ),
            metadata={
                "function_name": MetadataValue.text(function_name),
                "request_id": MetadataValue.text(request_id),
            },
            allow_retries=False,
        )


class FanOutFailedError(PipesKitFailure):
    """More fan-out items failed than tolerated; the summary is in the failure's metadata."""


class InvalidFanOutError(PipesKitError, ValueError):
    """A fan-out cannot start as asked (no work queue, no function); nothing was sent."""


class AdoptError(PipesKitError):
    """``pipeskit adopt``: the function cannot be adopted (or given back) as asked; the message says why
    and what to do."""


class FunctionNotFoundError(PipesKitError):
    """Lambda has no such function (or no such version or alias): nothing was invoked.

    The message names the function and qualifier, the region and endpoint the call went to, and
    what to check.

    Attributes:
        function_name: the function as it was invoked (name, ``name:alias`` or ARN).
        qualifier: the version or alias asked for, or None.
        where: the region and endpoint the call went to.
    """

    def __init__(self, message: str, *, function_name: str = "", qualifier: str | None = None, where: str = "") -> None:
        super().__init__(message)
        self.function_name = function_name
        self.qualifier = qualifier
        self.where = where


class LambdaInvokeError(PipesKitError):
    """Lambda refused the invoke, or it never reached Lambda (no connection, no credentials).

    The message names what was being done and what AWS answered (its error code and message).

    Attributes:
        action: what was being done, e.g. ``invoking my-fn:live``.
        code: AWS's error code, or None when the call never got an answer.
    """

    def __init__(self, message: str, *, action: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.action = action
        self.code = code


class StackOutputsError(PipesKitError):
    """A deployed stack's outputs cannot give the kit's settings: the stack does not exist where the
    client points, cannot be described, or has none of the kit's outputs; the message names the stack
    and what to do."""


class AwsAccessDeniedError(LambdaInvokeError):
    """AWS refused the call for the credentials in use (``AccessDeniedException``): nothing was done.

    The message names the IAM action (``permission``), the resource, and the grant that allows it.

    Attributes:
        permission: the IAM action refused, e.g. ``lambda:InvokeFunction``.
        resource: what it was refused on, e.g. the function's name.
    """

    def __init__(self, message: str, *, action: str = "", code: str | None = None, permission: str = "",
                 resource: str = "") -> None:  # fmt: skip
        super().__init__(message, action=action, code=code)
        self.permission = permission
        self.resource = resource


class AwsEndpointUnreachableError(LambdaInvokeError):
    """No connection to the AWS endpoint could be made: the call never left the orchestrator.

    Attributes:
        endpoint_url: the endpoint (``endpoint_url`` / ``AWS_ENDPOINT_URL``, else AWS's own).
    """

    def __init__(self, message: str, *, action: str = "", endpoint_url: str = "") -> None:
        super().__init__(message, action=action)
        self.endpoint_url = endpoint_url


class AwsRegionMissingError(LambdaInvokeError):
    """No AWS region is configured (``region_name``, ``AWS_DEFAULT_REGION``, a profile's region): no call was made."""


class AwsCredentialsMissingError(LambdaInvokeError):
    """No AWS credentials were found, or AWS did not recognise them: no call was made (or it was refused)."""


class ConstructConfigurationError(PipesKitError, ValueError):
    """The kit's CDK constructs were wired in a way that cannot work on AWS (raised at synth time)."""


class CdkCliError(PipesKitError, RuntimeError):
    """The CDK CLI is missing or a ``cdk`` command failed; the message holds its output."""


class LayerBuildError(PipesKitError, RuntimeError):
    """The pipes layer could not be built; the message says which step failed and what to do."""


class PipInstallError(PipesKitError, RuntimeError):
    """pip could not install the requirements; the message holds pip's own words."""


class LambdaCommandError(PipesKitError, ValueError):
    """``pipeskit invoke``/``pipeskit logs`` cannot go on: bad input, or what AWS answered. The message
    says what to do."""
