"""Local AWS emulation without Docker: moto plus a real Lambda runtime on one endpoint."""

from local_aws.errors import AWSServiceError, LocalAWSError, ServerStateError
from local_aws.server import LocalAWS
from local_aws.settings import ENV_PREFIX, LocalAWSSettings

__all__ = [
    "ENV_PREFIX",
    "AWSServiceError",
    "LocalAWS",
    "LocalAWSError",
    "LocalAWSSettings",
    "ServerStateError",
]
