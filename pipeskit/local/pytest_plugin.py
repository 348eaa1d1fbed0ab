"""pytest fixtures for the local AWS.

Enable with ``pytest_plugins = ["pipeskit.local.pytest_plugin"]``. Fixtures:

* ``local_aws`` (session): a started :class:`~pipeskit.local.LocalAWS` on a free
  port with short polling/retry intervals. It changes no process-wide state
  (no environment variables): get clients with ``local_aws.client("lambda")`` or
  pass ``local_aws.env()`` to subprocesses.
* ``local_aws_client`` (function): a factory ``local_aws_client("s3", retries=0)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipeskit.local.server import LocalAWS
from pipeskit.local.settings import LocalAWSSettings

#: Settings the session fixture uses on top of the environment's.
TEST_SETTINGS: dict[str, Any] = {
    "port": 0,
    "esm_poll_interval_s": 0.05,
    "async_retry_delays_s": (0.05, 0.05),
    "async_throttle_retry_s": 0.05,
    "work_dir": "",
    # Quick experiments: functions get dummy credentials and nothing is authorized. Tests of policies
    # turn it on (`local_aws.override(iam=True)`) or start their own `LocalAWS(iam=True)`.
    "iam": False,
}


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAWS]:
    """A local AWS endpoint shared by the test session."""
    server = LocalAWS(LocalAWSSettings.from_env(**TEST_SETTINGS))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_aws_client(local_aws: LocalAWS) -> Callable[..., Any]:
    """Factory of boto3 clients bound to the session's local AWS."""
    return local_aws.client
