"""A durable handler: three steps with waits of hours between them."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration


@durable_step
def add(step_context, value: int, amount: int) -> int:
    print(f"step add {amount} to {value}")
    return value + amount


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    print("replay or run: handler entered")
    value = context.step(add(event["start"], 1), name="first")
    context.wait(Duration.from_hours(3), name="three-hours")
    value = context.step(add(value, 10), name="second")
    context.wait(Duration.from_hours(5), name="five-hours")
    value = context.step(add(value, 100), name="third")
    return {"value": value}
