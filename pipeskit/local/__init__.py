"""A local AWS without Docker: moto plus a Lambda runtime that really runs the deployed code.

The ``local`` extra: ``pip install 'pipes-lambda-kit[local]'``. Start one with ``pipeskit local`` or
``with LocalAWS(port=0) as aws: ...``; the pytest fixture ``local_aws`` is in
``pipeskit.local.pytest_plugin``. Nothing in the rest of the library imports this package.
"""

from pipeskit.local.errors import AWSServiceError, LocalAWSError, ServerStateError
from pipeskit.local.server import LocalAWS
from pipeskit.local.settings import ENV_PREFIX, LocalAWSSettings

__all__ = [
    "ENV_PREFIX",
    "AWSServiceError",
    "LocalAWS",
    "LocalAWSError",
    "LocalAWSSettings",
    "ServerStateError",
]
