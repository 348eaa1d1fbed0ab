"""Durable handlers reporting to Dagster: ``@durable_execution`` above the kit's ``@pipes_handler``."""

import json

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
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
def three_steps(event: dict, context: DurableContext, pipes: PipesContext) -> dict:
    """Three steps with waits of hours between them (``wait_s`` overrides both), 1,002 messages in all."""
    pipes.log.info("execution begins")
    rows = context.step(load(600), name="load")
    for i in range(400):  # outside any step: runs again on each replay
        pipes.log.info(f"between steps {i}")
    context.wait(Duration.from_seconds(event.get("wait_s", 2 * 3600)), name="two-hours")
    doubled = context.step(transform(rows), name="transform")
    context.wait(Duration.from_seconds(event.get("wait_s", 5 * 3600)), name="five-hours")
    passed = context.step(check(doubled), name="check")
    pipes.log.info("execution ends")
    return {"rows": doubled, "passed": passed}


@durable_step
def flaky(step: StepContext) -> int:
    PipesContext.get().log.info(f"attempt {step.attempt}")
    raise RuntimeError("the source refused the query")


@durable_execution
@pipes_handler
def failing(event: dict, context: DurableContext, pipes: PipesContext) -> int:
    pipes.log.info("before the flaky step")
    retries = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=3)))
    return context.step(flaky(), name="flaky", config=retries)


@durable_execution
@pipes_handler
def approval(event: dict, context: DurableContext, pipes: PipesContext) -> dict:
    """Waits for a callback: its answer (JSON text, the SDK's callbacks pass it through) is the result."""
    callback = context.create_callback(name="approval")
    pipes.log.info(f"asked for approval: {callback.callback_id}")
    answer = json.loads(callback.result() or "{}")
    pipes.report_asset_materialization(metadata={"approved": bool(answer.get("approved"))})
    return answer


NESTED_LOGS = (
    ["root begins", "child begins", "grandchild after its wait", "step in the child", "child ends",
     "root after the child"]
    + [f"item {value} begins" for value in (1, 2, 3)] + [f"item {value} ends" for value in (1, 2, 3)]
    + ["root after the items", "branch a begins", "branch b begins", "branch a ends", "branch b ends", "root ends"]
)  # fmt: skip
"""Every log message `nested` reports; the order of items and branches running at once may differ."""


@durable_step
def inner(step: StepContext) -> int:
    PipesContext.get().log.info("step in the child")
    return 1


def log(message: str) -> None:  # reports from a frame that holds no durable context
    PipesContext.get().log.info(message)


@durable_execution
@pipes_handler
def nested(event: dict, context: DurableContext, pipes: PipesContext) -> dict:
    pipes.log.info("root begins")

    def child(ctx: DurableContext) -> int:
        pipes.log.info("child begins")

        def grandchild(deeper: DurableContext) -> None:
            deeper.wait(Duration.from_seconds(3600), name="grandchild-wait")
            log("grandchild after its wait")

        ctx.run_in_child_context(grandchild, name="grandchild")
        ctx.step(inner(), name="inner")
        pipes.log.info("child ends")
        return 1

    context.run_in_child_context(child, name="child")
    pipes.log.info("root after the child")

    def item(ctx: DurableContext, value: int, index: int, items: list) -> int:
        pipes.log.info(f"item {value} begins")
        ctx.wait(Duration.from_seconds(600 * (index + 1)), name=f"item-wait-{value}")
        pipes.log.info(f"item {value} ends")
        return value

    context.map([1, 2, 3], item, name="items")
    pipes.log.info("root after the items")

    def branch(name: str, hours: int):
        def run(ctx: DurableContext) -> str:
            assert ctx is not context  # a branch that closes over the root context is judged by its own
            log(f"branch {name} begins")
            ctx.wait(Duration.from_seconds(hours * 3600), name=f"branch-wait-{name}")
            log(f"branch {name} ends")
            return name

        return run

    context.parallel([branch("a", 1), branch("b", 2)], name="branches")
    pipes.log.info("root ends")
    return {"ok": True}
