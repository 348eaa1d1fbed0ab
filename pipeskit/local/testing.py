"""Helpers for tests and benchmarks against the local AWS: deploy handlers with the pipes layer, count calls.

These deploy the way the kit's stack does (the layer attached, the pipes layer's entrypoint as the
Lambda handler, the user's handler in ``PIPESKIT_HANDLER``) without going through CloudFormation,
so a test or benchmark can stand up a function in milliseconds.
"""

from __future__ import annotations

import io
import json
import socket
import uuid
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from pipeskit_lambda.protocol import ENTRYPOINT_HANDLER, HANDLER_ENV_VAR, LAMBDA_RUNTIME, LAYER_DESCRIPTION


def zip_files(files: dict[str, str]) -> bytes:
    """A zip archive holding ``files`` (archive name -> text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def code_files(path: Path) -> dict[str, str]:
    """The ``.py`` files of a handler file or directory, keyed by archive name."""
    sources = [path] if path.is_file() else sorted(path.glob("*.py"))
    return {p.name: p.read_text() for p in sources}


def publish_pipes_layer(lambda_client: Any, requirements_file: Path | None = None) -> str:
    """Build (or reuse) the real pipes layer zip, publish it, and return the layer version ARN.

    Args:
        lambda_client: boto3 Lambda client.
        requirements_file: pinned requirements the layer carries; default: the library's.
    """
    from pipeskit.layer_build import LayerBuildSettings, build_layer

    settings = LayerBuildSettings.from_env(requirements=requirements_file)
    return lambda_client.publish_layer_version(
        LayerName="pipes",
        Description=LAYER_DESCRIPTION,
        Content={"ZipFile": build_layer(settings).read_bytes()},
        CompatibleRuntimes=[LAMBDA_RUNTIME],
    )["LayerVersionArn"]


DURABLE_LAYER_REQUIREMENTS = Path(__file__).parents[1] / "layer-requirements-durable.txt"
"""The pipes layer of a durable function: the library's pins plus ``aws-durable-execution-sdk-python``."""


def publish_durable_layer(lambda_client: Any) -> str:
    """Build (or reuse) the pipes layer with the durable execution SDK, publish it, return its version ARN."""
    return publish_pipes_layer(lambda_client, DURABLE_LAYER_REQUIREMENTS)


def deploy_durable_function(
    lambda_client: Any,
    *,
    code: Path,
    user_handler: str,
    layer_arn: str,
    role_arn: str,
    execution_timeout_s: int = 86400,
    retention_days: int = 14,
    name: str | None = None,
    timeout_s: int = 60,
    memory_mb: int = 256,
    entrypoint: bool = False,
) -> str:
    """Create a durable function (``DurableConfig``) from ``code`` with the durable layer; returns its name.

    Invoke it qualified (``Qualifier="$LATEST"`` or a published version), as Lambda requires of durable
    functions; its invocations then run as one durable execution. A test skips through its waits with
    ``local_aws.override(durable_skip_waits=True)``.

    Args:
        lambda_client: boto3 Lambda client.
        code: a handler file or a directory of ``.py`` files.
        user_handler: ``module.function`` of the ``@durable_execution`` handler.
        layer_arn: a layer carrying the durable SDK (:func:`publish_durable_layer`).
        role_arn: execution role (with IAM enforced it needs ``lambda:CheckpointDurableExecution`` and
            ``lambda:GetDurableExecutionState`` on the function).
        execution_timeout_s: ``DurableConfig.ExecutionTimeout`` (up to a year).
        retention_days: ``DurableConfig.RetentionPeriodInDays``.
        name: function name (default: from the code's name, made unique).
        timeout_s: timeout of each invocation of the handler.
        memory_mb: function memory.
        entrypoint: behind the pipes layer's entrypoint; False makes ``user_handler`` the Lambda handler.
    """
    return deploy_pipes_function(
        lambda_client, code=code, user_handler=user_handler, layer_arn=layer_arn, role_arn=role_arn, name=name,
        timeout_s=timeout_s, memory_mb=memory_mb, entrypoint=entrypoint,
        durable_config={"ExecutionTimeout": execution_timeout_s, "RetentionPeriodInDays": retention_days},
    )  # fmt: skip


def lambda_role(iam_client: Any) -> str:
    """An execution role ARN to create functions with."""
    return iam_client.create_role(
        RoleName=f"pipeskit-fn-{uuid.uuid4().hex[:8]}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]


def work_queue(sqs_client: Any, *, visibility_timeout_s: int, max_receive_count: int) -> tuple[str, str, str]:
    """A fan-out work queue with its dead-letter queue, as the stack's `WorkQueue` builds them.

    Returns:
        The work queue's URL and ARN, and the dead-letter queue's URL.
    """
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs_client.create_queue(QueueName=f"dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs_client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    queue = sqs_client.create_queue(
        QueueName=f"work-{suffix}",
        Attributes={"VisibilityTimeout": str(visibility_timeout_s), "RedrivePolicy": redrive},
    )["QueueUrl"]
    arn = sqs_client.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue, arn, dlq


def deploy_pipes_function(
    lambda_client: Any,
    *,
    code: Path,
    user_handler: str,
    layer_arn: str,
    role_arn: str,
    name: str | None = None,
    timeout_s: int = 30,
    memory_mb: int = 256,
    entrypoint: bool = True,
    log_format: str = "Text",
    durable_config: dict[str, int] | None = None,
) -> str:
    """Create a Python 3.12 function from ``code`` with the pipes layer; returns its name.

    Args:
        lambda_client: boto3 Lambda client.
        code: a handler file or a directory of ``.py`` files.
        user_handler: ``module.function`` of the handler.
        layer_arn: the pipes layer version.
        role_arn: execution role.
        name: function name (default: from the code's name, made unique).
        timeout_s: function timeout.
        memory_mb: function memory.
        entrypoint: behind the pipes layer's entrypoint, as the kit's stack deploys; False makes
            ``user_handler`` the Lambda handler itself.
        log_format: ``Text`` or ``JSON`` (``LoggingConfig.LogFormat``, INFO levels).
        durable_config: ``DurableConfig`` (``ExecutionTimeout``, ``RetentionPeriodInDays``): a durable function.
    """
    name = name or f"{code.stem.replace('_', '-')}-{uuid.uuid4().hex[:10]}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime=LAMBDA_RUNTIME,
        Role=role_arn,
        Handler=ENTRYPOINT_HANDLER if entrypoint else user_handler,
        Code={"ZipFile": zip_files(code_files(code))},
        Timeout=timeout_s,
        MemorySize=memory_mb,
        Layers=[layer_arn],
        Environment={"Variables": {HANDLER_ENV_VAR: user_handler} if entrypoint else {}},
        LoggingConfig={"LogFormat": log_format, **({"ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"}
                                                   if log_format == "JSON" else {})},
        **({"DurableConfig": durable_config} if durable_config else {}),
    )
    return name


def served_requests(endpoint_url: str, *, reset: bool = False) -> Counter[str]:
    """What the local AWS at ``endpoint_url`` served so far, per service (``GET /_pipeskit/requests``);
    ``reset``: and count again from zero."""
    from urllib.request import Request, urlopen

    from pipeskit.local.front import REQUESTS_PATH

    request = Request(endpoint_url + REQUESTS_PATH, method="DELETE" if reset else "GET")
    with urlopen(request, timeout=30) as answer:
        return Counter(json.loads(answer.read()))


def free_port() -> int:
    """A TCP port free on loopback now (for a server a test or benchmark starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def busiest_second(times: list[float]) -> int:
    """The most events in any one-second window, sliding over ``times`` (seconds): an observed rate."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


class ApiCallCounter:
    """Counts AWS API calls made through the boto3 clients it is attached to."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.error_codes: list[str] = []

    def attach(self, client: Any) -> Any:
        """Count ``client``'s calls (and each attempt's error code) from now on; returns the client."""
        client.meta.events.register("before-call", self._count)
        client.meta.events.register("needs-retry", self._record_error)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def _record_error(self, response: Any = None, **_: Any) -> None:
        if response is not None:
            code = (response[1] or {}).get("Error", {}).get("Code")
            if code:
                self.error_codes.append(code)

    def by_operation(self) -> Counter[str]:
        """Calls per operation name."""
        return Counter(self.calls)


def counting_budget() -> Any:
    """A CloudWatch read budget that never waits and counts the tokens taken (``.taken``): tests see how
    many read requests went through it."""
    from pipeskit.rate_limit import RateBudget

    class CountingBudget(RateBudget):
        def __init__(self) -> None:
            super().__init__(1_000)
            self.taken = 0

        def acquire(self) -> float:
            self.taken += 1
            return 0.0

    return CountingBudget()
