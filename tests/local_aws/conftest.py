"""Helpers for the local AWS tests: function zips, deployment, polling."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.constants import LAYER_REQUIREMENTS
from pipeskit.local import LocalAWS
from pipeskit.local.testing import publish_pipes_layer
from pipeskit.local.testing import zip_files as make_zip


def assert_report_line(line: str, request_id: str, memory_mb: int = 128) -> None:
    """``line`` is Lambda's REPORT line for ``request_id``."""
    assert re.fullmatch(
        rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        rf"Memory Size: {memory_mb} MB\tMax Memory Used: \d+ MB(\tInit Duration: \d+\.\d\d ms)?",
        line,
    ), line


def unique(prefix: str) -> str:
    """A resource name unique in the session."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture(scope="session")
def role_arn(local_aws: LocalAWS) -> str:
    """An IAM role functions can be created with."""
    iam = local_aws.client("iam")
    return iam.create_role(
        RoleName=unique("lambda-role"),
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]


@pytest.fixture(scope="session")
def powertools_layer(local_aws: LocalAWS) -> str:
    """The reference deployment's pipes layer (dagster-pipes, Powertools), published once."""
    return publish_pipes_layer(local_aws.client("lambda"), LAYER_REQUIREMENTS)


@pytest.fixture
def lam(local_aws: LocalAWS) -> Any:
    """A Lambda client without retries (a retried invoke runs the function twice)."""
    return local_aws.client("lambda", retries=0, read_timeout=30)


@pytest.fixture
def logs(local_aws: LocalAWS) -> Any:
    """A CloudWatch Logs client."""
    return local_aws.client("logs", retries=0)


@pytest.fixture
def sqs(local_aws: LocalAWS) -> Any:
    """An SQS client."""
    return local_aws.client("sqs", retries=0)


@pytest.fixture
def deploy(lam: Any, role_arn: str) -> Iterator[Callable[..., str]]:
    """Create functions from inline source; deletes them after the test."""
    created: list[str] = []

    def _deploy(
        source: str | None = None,
        *,
        files: dict[str, str] | None = None,
        handler: str = "app.handler",
        timeout: int = 3,
        name: str | None = None,
        **kwargs: Any,
    ) -> str:
        name = name or unique("fn")
        files = files if files is not None else {"app.py": source or ""}
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": make_zip(files)},
            Timeout=timeout,
            **kwargs,
        )
        created.append(name)
        return name

    yield _deploy
    for name in created:
        try:
            lam.delete_function(FunctionName=name)
        except Exception:
            pass


def payload_of(response: dict[str, Any]) -> Any:
    """The decoded JSON payload of an invoke response."""
    return json.loads(response["Payload"].read())


def log_messages(logs: Any, group: str) -> list[str]:
    """Every message of a log group, in order."""
    try:
        events = logs.filter_log_events(logGroupName=group)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"] for e in events]
