"""Durable functions on the local AWS: AWS's testing executor behind the Lambda API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pipeskit.local import LocalAWS
from pipeskit.local.testing import deploy_durable_function, publish_durable_layer
from tests.local_aws.conftest import log_messages, unique, wait_until

HANDLERS = Path(__file__).with_name("durable_handlers")


@pytest.fixture(scope="module")
def durable_layer(local_aws: LocalAWS) -> str:
    """The pipes layer with the durable execution SDK, published once."""
    return publish_durable_layer(local_aws.client("lambda"))


@pytest.fixture
def skip_waits(local_aws: LocalAWS) -> Any:
    """Waits of hours fire at once."""
    with local_aws.override(durable_skip_waits=True) as settings:
        yield settings


@pytest.fixture
def durable(lam: Any, durable_layer: str, role_arn: str) -> Any:
    """Deploys a durable function from a handler file of durable_handlers/; deletes it after the test."""
    created: list[str] = []

    def _deploy(module: str, **kwargs: Any) -> str:
        name = deploy_durable_function(
            lam, code=HANDLERS / f"{module}.py", user_handler=f"{module}.handler", layer_arn=durable_layer,
            role_arn=role_arn, name=unique(module.replace("_", "-")), **kwargs,
        )  # fmt: skip
        created.append(name)
        return name

    yield _deploy
    for name in created:
        lam.delete_function(FunctionName=name)


def _finished(lam: Any, arn: str, timeout: float = 60.0) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        execution = lam.get_durable_execution(DurableExecutionArn=arn)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_until(ended, timeout=timeout, interval=0.1)  # type: ignore[no-any-return]


def test_three_steps_with_hours_of_waits_complete_in_seconds(lam, logs, durable, skip_waits):
    name = durable("three_steps")
    assert lam.get_function_configuration(FunctionName=name)["DurableConfig"] == {
        "ExecutionTimeout": 86400, "RetentionPeriodInDays": 14,
    }  # fmt: skip
    started = time.monotonic()
    response = lam.invoke(
        FunctionName=name, Qualifier="$LATEST", InvocationType="Event", Payload=json.dumps({"start": 1}),
        DurableExecutionName="three-steps",
    )  # fmt: skip
    assert response["StatusCode"] == 202
    arn = response["DurableExecutionArn"]
    assert arn.startswith(f"arn:aws:lambda:us-east-1:123456789012:function:{name}:$LATEST/durable-execution/three-steps/")
    execution = _finished(lam, arn)
    assert time.monotonic() - started < 60
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"]) == {"value": 112}
    assert execution["DurableExecutionName"] == "three-steps"
    # the execution's clock went through the 8 hours of waits
    assert execution["EndTimestamp"] - execution["StartTimestamp"] >= __import__("datetime").timedelta(hours=8)

    events = lam.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    succeeded_steps = [e["Name"] for e in events if e["EventType"] == "StepSucceeded"]
    assert succeeded_steps == ["first", "second", "third"]
    waits = [e for e in events if e["EventType"] == "WaitStarted"]
    assert [w["Name"] for w in waits] == ["three-hours", "five-hours"]
    assert waits[0]["WaitStartedDetails"]["Duration"] == 3 * 3600

    # every replay ran in the local runtime: its lines are in the function's log group
    messages = log_messages(logs, f"/aws/lambda/{name}")
    assert sum(m.startswith("START RequestId") for m in messages) >= 3
    assert sum("replay or run: handler entered" in m for m in messages) >= 3
    assert sum("step add 10 to 2" in m for m in messages) == 1  # a completed step is not run again
