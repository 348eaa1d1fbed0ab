"""Errors raised by the local AWS emulation.

Each error that is surfaced to an AWS client carries the HTTP status and the AWS
error code a real service would use, so the front app can shape the response.
"""

from __future__ import annotations

from pipeskit_lambda.errors import PipesKitError


class LocalAWSError(PipesKitError):
    """Base class for every error raised by :mod:`pipeskit.local` (a kit error, like every other)."""


class ServerStateError(LocalAWSError):
    """The server was used in the wrong state (e.g. ``endpoint_url`` before ``start()``)."""


class AWSServiceError(LocalAWSError):
    """An error to be returned to an AWS client as a JSON error response.

    Attributes:
        code: The AWS error code (``x-amzn-ErrorType`` / ``__type``).
        message: Human readable message.
        status: HTTP status code.
        error_type: ``User`` or ``Service`` (the Lambda ``Type`` field).
        reason: Optional Lambda ``Reason`` field (e.g. for throttling).
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        error_type: str = "User",
        reason: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.error_type = error_type
        self.reason = reason


class FunctionNotFound(AWSServiceError):
    """The Lambda function (or qualifier) does not exist."""

    def __init__(self, arn: str) -> None:
        super().__init__("ResourceNotFoundException", f"Function not found: {arn}", 404)


class TooManyRequests(AWSServiceError):
    """An invocation was throttled (HTTP 429), as Lambda does."""

    def __init__(self, reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded") -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.", 429, reason=reason)


class ServiceStopping(AWSServiceError):
    """The local AWS is stopping: no new execution environment is started."""

    def __init__(self) -> None:
        super().__init__("ServiceException", "The local AWS is stopping.", 503, error_type="Service")


class InvalidRequestContent(AWSServiceError):
    """The invocation payload is not valid JSON."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "InvalidRequestContentException",
            f"Could not parse request body into json: {detail}",
            400,
        )


class RequestTooLarge(AWSServiceError):
    """The invocation payload is over Lambda's limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
            413,
        )
        self.size = size


class AccessDenied(AWSServiceError):
    """An ``AccessDeniedException``, as IAM answers a caller without permission (fault injection)."""

    def __init__(self, action: str) -> None:
        super().__init__(
            "AccessDeniedException",
            f"User: arn:aws:iam::123456789012:user/orchestrator is not authorized to perform: logs:{action}",
            400,
        )


class Throttling(AWSServiceError):
    """A CloudWatch Logs style ``ThrottlingException`` (fault injection)."""

    def __init__(self) -> None:
        super().__init__("ThrottlingException", "Rate exceeded", 400)


class SlowDown(AWSServiceError):
    """S3's ``503 SlowDown``, answered while it scales a prefix (fault injection)."""

    def __init__(self) -> None:
        super().__init__("SlowDown", "Please reduce your request rate.", 503, error_type="Service")
