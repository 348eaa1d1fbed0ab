"""Durable handlers of the tests: ``@durable_execution`` above the kit's ``@pipes_handler``, run by the
durable SDK's in-process test runner (its clock skips the waits)."""

from __future__ import annotations

import json
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestResult, DurableFunctionTestRunner
from dagster_pipes import PipesContext

from pipeskit_lambda import pipes_handler

EXPECTED_LOGS = (
    ["execution begins"] + [f"loaded row {i}" for i in range(600)] + [f"between steps {i}" for i in range(400)]
    + ["execution ends"]
)  # fmt: skip
"""The log messages `three_steps` reports, each once, in order: 1,002 (with a materialization and a check)."""


@durable_step
def load(step: StepContext, count: int) -> int:
    pipes = PipesContext.get()
    for i in range(count):
        pipes.log.info(f"loaded row {i}")
    return count


@durable_step
def transform(step: StepContext, rows: int) -> int:
    PipesContext.get().report_asset_materialization(metadata={"rows": rows})
    return rows * 2


@durable_step
def check(step: StepContext, rows: int) -> bool:
    PipesContext.get().report_asset_check(check_name="rows_positive", passed=rows > 0)
    return rows > 0


@durable_execution
@pipes_handler
def three_steps(event: dict[str, Any], context: DurableContext, pipes: PipesContext) -> dict[str, Any]:
    """Three steps, a wait of 2 hours and one of 5 between them; messages in steps and outside them."""
    pipes.log.info("execution begins")  # outside any step: runs again on each replay
    rows = context.step(load(600))
    for i in range(400):  # outside any step too, replayed after each wait
        pipes.log.info(f"between steps {i}")
    context.wait(Duration.from_hours(2))
    doubled = context.step(transform(rows))
    context.wait(Duration.from_hours(5))
    passed = context.step(check(doubled))
    pipes.log.info("execution ends")
    return {"rows": doubled, "passed": passed}


@durable_step
def flaky(step: StepContext) -> int:
    PipesContext.get().log.info(f"attempt {step.attempt}")
    raise RuntimeError("the source refused the query")


@durable_execution
@pipes_handler
def failing(event: dict[str, Any], context: DurableContext, pipes: PipesContext) -> int:
    """A step that fails each of its 3 attempts."""
    pipes.log.info("before the flaky step")
    retries = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=3)))
    return context.step(flaky(), config=retries)


def run_durably(handler: Any, execution_input: dict[str, Any] | str) -> DurableFunctionTestResult:
    """Run ``handler``'s whole durable execution in-process, its waits skipped."""
    text = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
    with DurableFunctionTestRunner(handler=handler) as runner:
        return runner.run(input=text, execution_timeout=60)
